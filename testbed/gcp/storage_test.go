package gcp

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/common/tokens"
)

// Each test names the rule of ../shared/notes/gcs-provider-rules.md it relies on ("gcs rules").

func archiveInputs(extra map[string]any) map[string]any {
	in := map[string]any{"name": "loklak-dev-dumps-archive", "project": "p1", "location": "us-central1",
		"uniformBucketLevelAccess": true, "publicAccessPrevention": "enforced", "versioning": map[string]any{"enabled": true},
		"softDeletePolicy": map[string]any{"retentionDurationSeconds": 0}, "labels": map[string]any{"app": "loklak"}}
	for k, v := range extra {
		in[k] = v
	}
	return in
}

func (f fixture) delete(typ string, id resource.ID, state resource.PropertyMap) error {
	_, err := f.p.Delete(context.Background(), plugin.DeleteRequest{URN: urn(typ, "x"), Type: tokens.Type(typ), ID: id, Outputs: state})
	return err
}

func TestBucketLivesInTheEmulatorAndItsDocument(t *testing.T) {
	f := newFixture(t)
	id, _, state := f.create(BucketType, "dump-archive", archiveInputs(nil))
	if id != "loklak-dev-dumps-archive" || state["url"].StringValue() != "gs://loklak-dev-dumps-archive" { // gcs rules §1, ID and outputs
		t.Errorf("ID %q, url %v", id, state["url"])
	}
	if loc := state["location"].StringValue(); loc != "US-CENTRAL1" { // the API's spelling
		t.Errorf("location = %q", loc)
	}
	if err := f.compute.PutObject("loklak-dev-dumps-archive", "dumps/messages_20170101.txt.gz", []byte("dump")); err != nil {
		t.Fatal(err)
	}
	// The emulator's filesystem backend: a folder per bucket, a file per object, under the project's gcs/.
	if _, err := os.Stat(filepath.Join(f.compute.Dir, GCSDir, "loklak-dev-dumps-archive")); err != nil {
		t.Errorf("the bucket's folder in the emulator: %v", err)
	}
	// A later plugin process (another Compute over the same directory) finds the bucket and its object.
	again, err := Open(f.compute.Dir)
	if err != nil {
		t.Fatal(err)
	}
	again.StorageURL = f.compute.StorageURL // the engine gives every plugin process the same environment
	b, err := again.GetBucket("loklak-dev-dumps-archive")
	if err != nil || !b.Versioning || !b.UniformAccess || b.PublicAccessPrev != "enforced" || b.SoftDeleteSeconds != 0 {
		t.Errorf("bucket read by another process: %+v %v", b, err)
	}
	data, err := again.ReadObject("loklak-dev-dumps-archive", "dumps/messages_20170101.txt.gz")
	if err != nil || string(data) != "dump" {
		t.Errorf("object read by another process: %q %v", data, err)
	}
}

func TestBucketWithObjectsIsNotDeletedWithoutForceDestroy(t *testing.T) {
	f := newFixture(t)
	id, _, state := f.create(BucketType, "dump-archive", archiveInputs(nil))
	if err := f.compute.PutObject(string(id), "dumps/a.txt.gz", []byte("a")); err != nil {
		t.Fatal(err)
	}
	// gcs rules §1 "Delete": refused with the provider's message, and nothing is deleted.
	err := f.delete(BucketType, id, state)
	if err == nil || !strings.Contains(err.Error(), "Error trying to delete bucket loklak-dev-dumps-archive containing objects without `force_destroy` set to true") {
		t.Fatalf("Delete of a bucket with an object: %v", err)
	}
	if objs, err := f.compute.Objects(string(id)); err != nil || len(objs) != 1 {
		t.Fatalf("after the refused delete: %v %v", objs, err)
	}
	// With forceDestroy (only in state), every object goes, then the bucket.
	state["forceDestroy"] = resource.NewBoolProperty(true)
	if err := f.delete(BucketType, id, state); err != nil {
		t.Fatal(err)
	}
	if _, err := f.compute.GetBucket(string(id)); !IsNotFound(err) {
		t.Errorf("bucket after a forced delete: %v", err)
	}
	if _, err := os.Stat(filepath.Join(f.compute.Dir, GCSDir, string(id))); !os.IsNotExist(err) {
		t.Errorf("the bucket's folder in the emulator after the delete: %v", err)
	}
}

func TestLockedRetentionProtectsYoungObjectsEvenWithForceDestroy(t *testing.T) {
	f := newFixture(t)
	in := archiveInputs(map[string]any{"forceDestroy": true, "retentionPolicy": map[string]any{"retentionPeriod": 86400, "isLocked": true}})
	id, _, state := f.create(BucketType, "dump-archive", in)
	if err := f.compute.PutObject(string(id), "dumps/a.txt.gz", []byte("a")); err != nil {
		t.Fatal(err)
	}
	err := f.delete(BucketType, id, state)
	if err == nil || !strings.Contains(err.Error(), "contains objects that have not met the retention period yet") { // gcs rules §1 "Delete" 3
		t.Fatalf("Delete: %v", err)
	}
}

func TestBucketUpdatePatchesOnlyWhatChanged(t *testing.T) {
	f := newFixture(t)
	id, inputs, state := f.create(BucketType, "dump-archive", archiveInputs(nil))
	news := archiveInputs(map[string]any{"storageClass": "NEARLINE"})
	checked := f.check(BucketType, "dump-archive", inputs, props(news))
	res, err := f.p.Update(context.Background(), plugin.UpdateRequest{URN: urn(BucketType, "dump-archive"), Type: BucketType, ID: id,
		OldInputs: inputs, OldOutputs: state, NewInputs: checked})
	if err != nil {
		t.Fatal(err)
	}
	if sc := res.Properties["storageClass"].StringValue(); sc != "NEARLINE" {
		t.Errorf("storageClass = %q", sc)
	}
	calls, err := f.compute.Calls()
	if err != nil {
		t.Fatal(err)
	}
	var patch *Call
	for i, c := range calls {
		if c.Method == "PATCH" {
			patch = &calls[i]
		}
	}
	// gcs rules §1 "In place": one PATCH carrying only the changed part.
	if patch == nil || patch.Path != "storage/v1/b/loklak-dev-dumps-archive" || len(patch.Body) != 1 || patch.Body["storageClass"] != "NEARLINE" {
		t.Errorf("PATCH = %+v", patch)
	}
}

func TestAccountEmailFromAccountIDAndProject(t *testing.T) {
	f := newFixture(t)
	id, _, state := f.create(AccountType, "archiver", map[string]any{"accountId": "loklak-dev-archiver", "project": "p1"})
	const email = "loklak-dev-archiver@p1.iam.gserviceaccount.com" // gcs rules §2 "Outputs"
	if id != "projects/p1/serviceAccounts/"+email {
		t.Errorf("ID = %q", id)
	}
	if state["email"].StringValue() != email || state["member"].StringValue() != "serviceAccount:"+email ||
		state["name"].StringValue() != string(id) || state["uniqueId"].StringValue() == "" {
		t.Errorf("state = %v", state)
	}
	// Imported by its email alone, the project from the configuration.
	f.p.project = "p1"
	res, err := f.p.Read(context.Background(), plugin.ReadRequest{URN: urn(AccountType, "archiver"), Type: AccountType, ID: email})
	if err != nil || res.ID != id {
		t.Errorf("import by email: %v %v", res.ID, err)
	}
}

// The engine's two orders of a replacement, for an IAM member whose old and new resources denote the
// same binding (a logical rename without an alias).
func TestIAMMemberReplacedCreateBeforeDeleteLosesTheGrant(t *testing.T) {
	for _, deleteFirst := range []bool{false, true} {
		f := newFixture(t)
		f.create(BucketType, "dump-archive", archiveInputs(nil))
		member := map[string]any{"bucket": "loklak-dev-dumps-archive", "role": "roles/storage.objectCreator",
			"member": "serviceAccount:loklak-dev-archiver@p1.iam.gserviceaccount.com"}
		oldID, _, oldState := f.create(BucketIAMMemberType, "creator", member)
		// The provider asks for create-before-delete ([RUN] dbr=false; gcs rules §5.1).
		d := f.diff(BucketIAMMemberType, "creator", oldID, props(member), oldState, map[string]any{
			"bucket": "loklak-dev-dumps-archive", "role": "roles/storage.objectViewer", "member": member["member"]})
		if d.DeleteBeforeReplace || len(d.ReplaceKeys) == 0 {
			t.Fatalf("Diff of a role change: %+v", d)
		}
		if deleteFirst { // what pulumi.DeleteBeforeReplace(true) makes the engine do
			if err := f.delete(BucketIAMMemberType, oldID, oldState); err != nil {
				t.Fatal(err)
			}
			f.create(BucketIAMMemberType, "creator-renamed", member)
		} else {
			f.create(BucketIAMMemberType, "creator-renamed", member)
			if err := f.delete(BucketIAMMemberType, oldID, oldState); err != nil {
				t.Fatal(err)
			}
		}
		policy, err := f.compute.GetBucketIAMPolicy("loklak-dev-dumps-archive")
		if err != nil {
			t.Fatal(err)
		}
		if granted := policy.Has("roles/storage.objectCreator", str(member["member"]), nil); granted != deleteFirst {
			t.Errorf("delete first %v: the grant is there: %v, want %v (pulumi-gcp#2463)", deleteFirst, granted, deleteFirst)
		}
	}
}

func TestDeletedAccountsBucketGrantLeavesState(t *testing.T) {
	f := newFixture(t)
	f.create(BucketType, "dump-archive", archiveInputs(nil))
	accountID, _, accountState := f.create(AccountType, "archiver", map[string]any{"accountId": "loklak-dev-archiver", "project": "p1"})
	member := map[string]any{"bucket": "loklak-dev-dumps-archive", "role": "roles/storage.objectCreator",
		"member": accountState["member"].StringValue()}
	id, inputs, state := f.create(BucketIAMMemberType, "creator", member)
	if err := f.delete(AccountType, accountID, accountState); err != nil {
		t.Fatal(err)
	}
	// gcs rules §5.7: the API rewrites the binding to the deleted principal; Read no longer finds the member.
	res, err := f.p.Read(context.Background(), plugin.ReadRequest{URN: urn(BucketIAMMemberType, "creator"), Type: BucketIAMMemberType,
		ID: id, Inputs: inputs, State: state})
	if err != nil || res.Outputs != nil {
		t.Errorf("Read after the account's deletion: %v %v", res.Outputs, err)
	}
	policy, err := f.compute.GetBucketIAMPolicy("loklak-dev-dumps-archive")
	if err != nil || len(policy.Bindings) != 1 || !strings.HasPrefix(policy.Bindings[0].Members[0], "deleted:serviceAccount:loklak-dev-archiver@p1.iam.gserviceaccount.com?uid=") {
		t.Errorf("bucket policy: %+v %v", policy, err)
	}
}

// The engine creates the archiver's two bucket grants at once: the provider serializes its
// read-modify-writes of one policy (gcs rules §3 "Create"), so neither meets the API's 409. Without the
// lock this failed on the real node one run in a few ("There were concurrent policy changes").
func TestConcurrentMembersOfOneBucketBothLand(t *testing.T) {
	f := newFixture(t)
	f.create(BucketType, "dump-archive", archiveInputs(nil))
	const member = "serviceAccount:loklak-dev-archiver@p1.iam.gserviceaccount.com"
	var roles []string // many at once, so that two read-modify-writes interleave without the lock
	for i := range 24 {
		roles = append(roles, fmt.Sprintf("roles/storage.custom%d", i))
	}
	// Checked here, created at once (Create only: the fixture's helpers fail the test, which only the
	// test's own goroutine may do).
	checked := make([]resource.PropertyMap, len(roles))
	for i, role := range roles {
		checked[i] = f.check(BucketIAMMemberType, fmt.Sprintf("member-%d", i), nil, props(map[string]any{"bucket": "loklak-dev-dumps-archive", "role": role, "member": member}))
	}
	errs := make([]error, len(roles))
	var wg sync.WaitGroup
	for i := range roles {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = f.p.Create(context.Background(), plugin.CreateRequest{URN: urn(BucketIAMMemberType, fmt.Sprintf("member-%d", i)),
				Type: tokens.Type(BucketIAMMemberType), Properties: checked[i]})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("%s: %v", roles[i], err)
		}
	}
	policy, err := f.compute.GetBucketIAMPolicy("loklak-dev-dumps-archive")
	if err != nil {
		t.Fatal(err)
	}
	for _, role := range roles {
		if !policy.Has(role, member, nil) {
			t.Errorf("%s lost in a concurrent create: %+v", role, policy.Bindings)
		}
	}
}
