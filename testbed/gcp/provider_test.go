package gcp

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/common/tokens"
)

// Each test drives the provider through plugin.Provider, the interface the gRPC server wraps, and names
// the rule of ../shared/notes/gce-provider-rules.md it relies on.

type fixture struct {
	t       *testing.T
	compute *Compute
	p       *Provider
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	c, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	serveStorage(t, c)
	p, err := NewProvider(c, "7.38.0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Configure(context.Background(), plugin.ConfigureRequest{Inputs: resource.PropertyMap{}}); err != nil {
		t.Fatal(err)
	}
	return fixture{t: t, compute: c, p: p}
}

func urn(typ, name string) resource.URN {
	return resource.NewURN("dev", "loklak-dumps", "", tokens.Type(typ), name)
}

func props(m map[string]any) resource.PropertyMap { return resource.NewPropertyMapFromMap(m) }

// check runs Check and fails the test on check failures.
func (f fixture) check(typ, name string, olds, news resource.PropertyMap) resource.PropertyMap {
	f.t.Helper()
	res, err := f.p.Check(context.Background(), plugin.CheckRequest{URN: urn(typ, name), Type: tokens.Type(typ), Olds: olds, News: news, RandomSeed: []byte("seed")})
	if err != nil || len(res.Failures) > 0 {
		f.t.Fatalf("Check(%s): %v %v", typ, err, res.Failures)
	}
	return res.Properties
}

func (f fixture) create(typ, name string, inputs map[string]any) (resource.ID, resource.PropertyMap, resource.PropertyMap) {
	f.t.Helper()
	checked := f.check(typ, name, nil, props(inputs))
	res, err := f.p.Create(context.Background(), plugin.CreateRequest{URN: urn(typ, name), Type: tokens.Type(typ), Properties: checked})
	if err != nil {
		f.t.Fatalf("Create(%s): %v", typ, err)
	}
	return res.ID, checked, res.Properties
}

func (f fixture) diff(typ, name string, id resource.ID, oldInputs, oldState resource.PropertyMap, news map[string]any) plugin.DiffResult {
	f.t.Helper()
	checked := f.check(typ, name, oldInputs, props(news))
	d, err := f.p.Diff(context.Background(), plugin.DiffRequest{URN: urn(typ, name), Type: tokens.Type(typ), ID: id,
		OldInputs: oldInputs, OldOutputs: oldState, NewInputs: checked})
	if err != nil {
		f.t.Fatal(err)
	}
	return d
}

func (f fixture) disk(name string) Disk {
	f.t.Helper()
	d, err := f.compute.GetDisk(DiskPath("p1", "us-central1-a", name))
	if err != nil {
		f.t.Fatal(err)
	}
	return d
}

func diskInputs(size int, labels map[string]any) map[string]any {
	return map[string]any{"name": "data", "project": "p1", "zone": "us-central1-a", "size": size, "type": "pd-standard", "labels": labels}
}

func replaceKeys(d plugin.DiffResult) []string {
	var out []string
	for _, k := range d.ReplaceKeys {
		out = append(out, string(k))
	}
	slices.Sort(out)
	return out
}

func changedKeys(d plugin.DiffResult) []string {
	var out []string
	for _, k := range d.ChangedKeys {
		out = append(out, string(k))
	}
	slices.Sort(out)
	return out
}

func TestDiskCreateReadsBackWhatTheAPIHolds(t *testing.T) {
	f := newFixture(t)
	id, _, state := f.create(DiskType, "dump-disk", diskInputs(10, map[string]any{"app": "loklak"}))
	if id != "projects/p1/zones/us-central1-a/disks/data" { // rules §1, ID
		t.Errorf("ID = %q", id)
	}
	d := f.disk("data")
	if d.SizeGB != 10 || d.Type != "pd-standard" || d.Labels["app"] != "loklak" || d.PhysicalBlockSizeBytes != 4096 {
		t.Errorf("disk in the project = %+v", d)
	}
	if got := state["selfLink"].StringValue(); got != APIBase+"projects/p1/zones/us-central1-a/disks/data" { // rules §0, v1 links
		t.Errorf("selfLink = %q", got)
	}
	if !state["effectiveLabels"].IsSecret() || !state["pulumiLabels"].IsSecret() { // rules §0, labels
		t.Errorf("effectiveLabels/pulumiLabels are not secret: %v", state)
	}
	if state["diskId"].StringValue() != d.ID {
		t.Errorf("diskId = %v, want %s", state["diskId"], d.ID)
	}
}

func TestDiskCheckDefaultsAndAutonames(t *testing.T) {
	f := newFixture(t)
	in := f.check(DiskType, "dump-disk", nil, props(map[string]any{"zone": "us-central1-a", "size": 10}))
	name := in["name"].StringValue()
	if !strings.HasPrefix(name, "dump-disk-") || len(name) != len("dump-disk-")+7 { // rules §0, autonaming
		t.Errorf("autoname = %q, want dump-disk-<7 hex>", name)
	}
	if in["type"].StringValue() != "pd-standard" { // rules §1, type default
		t.Errorf("type = %v", in["type"])
	}
	again := f.check(DiskType, "dump-disk", in, props(map[string]any{"zone": "us-central1-a", "size": 20}))
	if again["name"].StringValue() != name {
		t.Errorf("a second Check renamed the disk: %v -> %v", name, again["name"])
	}
	// An imported disk's inputs carry an empty __defaults: an omitted name becomes a fresh one (rules §10).
	imported := props(map[string]any{"name": "data", "zone": "us-central1-a", "__defaults": []any{}})
	if n := f.check(DiskType, "dump-disk", imported, props(map[string]any{"zone": "us-central1-a"}))["name"].StringValue(); n == "data" {
		t.Errorf("an omitted name after import kept the imported name %q", n)
	}
}

func TestDiskDiffFollowsTheProvider(t *testing.T) {
	f := newFixture(t)
	id, inputs, state := f.create(DiskType, "dump-disk", diskInputs(20, map[string]any{"app": "loklak"}))
	for _, tc := range []struct {
		name             string
		news             map[string]any
		changed, replace []string
	}{
		{"nothing", diskInputs(20, map[string]any{"app": "loklak"}), nil, nil},
		{"grow is in place", diskInputs(30, map[string]any{"app": "loklak"}), []string{"size"}, nil},             // rules §1
		{"shrink replaces", diskInputs(10, map[string]any{"app": "loklak"}), []string{"size"}, []string{"size"}}, // rules §1
		{"labels are in place", diskInputs(20, map[string]any{"app": "x"}), []string{"labels"}, nil},
		{"type replaces", func() map[string]any {
			m := diskInputs(20, map[string]any{"app": "loklak"})
			m["type"] = "pd-ssd"
			return m
		}(), []string{"type"}, []string{"type"}},
		{"a type self link is the same type", func() map[string]any {
			m := diskInputs(20, map[string]any{"app": "loklak"})
			m["type"] = "projects/p1/zones/us-central1-a/diskTypes/pd-standard"
			return m
		}(), nil, nil},
		{"rename replaces", func() map[string]any {
			m := diskInputs(20, map[string]any{"app": "loklak"})
			m["name"] = "other"
			return m
		}(), []string{"name"}, []string{"name"}},
		{"description replaces", func() map[string]any {
			m := diskInputs(20, map[string]any{"app": "loklak"})
			m["description"] = "d"
			return m
		}(), []string{"description"}, []string{"description"}},
		{"an omitted zone is no change", func() map[string]any {
			m := diskInputs(20, map[string]any{"app": "loklak"})
			delete(m, "zone")
			return m
		}(), nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := f.diff(DiskType, "dump-disk", id, inputs, state, tc.news)
			if got := changedKeys(d); !slices.Equal(got, tc.changed) {
				t.Errorf("changed = %v, want %v", got, tc.changed)
			}
			if got := replaceKeys(d); !slices.Equal(got, tc.replace) {
				t.Errorf("replaces = %v, want %v", got, tc.replace)
			}
			if len(tc.replace) > 0 && !d.DeleteBeforeReplace { // rules §0: explicit name
				t.Errorf("an explicitly named disk is not deleted before it is replaced")
			}
		})
	}
}

func TestDiskUpdateResizesAndKeepsUnmanagedLabels(t *testing.T) {
	f := newFixture(t)
	id, inputs, state := f.create(DiskType, "dump-disk", diskInputs(20, map[string]any{"app": "loklak"}))
	// Someone adds a label in the console: the stack does not manage it and must keep it (rules §0). The
	// update works from the state, so it needs a refresh first (TestLabelsChangedByHandFailTheUpdate).
	if _, err := f.compute.EditDiskLabels(DiskPath("p1", "us-central1-a", "data"), func(l map[string]string) { l["owner"] = "ops" }); err != nil {
		t.Fatal(err)
	}
	refreshed, err := f.p.Read(context.Background(), plugin.ReadRequest{URN: urn(DiskType, "dump-disk"), Type: DiskType, ID: id, Inputs: inputs, State: state})
	if err != nil {
		t.Fatal(err)
	}
	inputs, state = refreshed.Inputs, refreshed.Outputs
	news := f.check(DiskType, "dump-disk", inputs, props(diskInputs(40, map[string]any{"app": "loklak", "env": "dev"})))
	res, err := f.p.Update(context.Background(), plugin.UpdateRequest{URN: urn(DiskType, "dump-disk"), Type: DiskType, ID: id,
		OldInputs: inputs, OldOutputs: state, NewInputs: news})
	if err != nil {
		t.Fatal(err)
	}
	d := f.disk("data")
	if d.SizeGB != 40 {
		t.Errorf("size = %d, want 40", d.SizeGB)
	}
	if want := map[string]string{"app": "loklak", "env": "dev", "owner": "ops"}; !same(anyMap(d.Labels), anyMap(want)) {
		t.Errorf("labels = %v, want %v", d.Labels, want)
	}
	if got := res.Properties["labels"].ObjectValue(); len(got) != 2 {
		t.Errorf("state labels = %v, want only the two managed ones", got)
	}
	if _, err := f.compute.ResizeDisk(DiskPath("p1", "us-central1-a", "data"), 30); err == nil || !strings.Contains(err.Error(), "cannot be smaller") {
		t.Errorf("the API shrank a disk: %v", err)
	}
}

func TestDiskImportByEveryIDForm(t *testing.T) {
	f := newFixture(t)
	if _, err := f.p.Configure(context.Background(), plugin.ConfigureRequest{Inputs: props(map[string]any{"project": "p1", "zone": "us-central1-a"})}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.compute.PutDisk(Disk{Name: "data-dump-disk", Project: "p1", Zone: "us-central1-a", SizeGB: 100, Type: "pd-standard", Labels: map[string]string{"team": "x"}}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"projects/p1/zones/us-central1-a/disks/data-dump-disk", "p1/us-central1-a/data-dump-disk", "us-central1-a/data-dump-disk", "data-dump-disk"} { // rules §1, import
		res, err := f.p.Read(context.Background(), plugin.ReadRequest{URN: urn(DiskType, "dump-disk"), Type: DiskType, ID: resource.ID(id)})
		if err != nil {
			t.Fatalf("import %q: %v", id, err)
		}
		if res.ID != "projects/p1/zones/us-central1-a/disks/data-dump-disk" {
			t.Errorf("import %q: canonical ID %q", id, res.ID)
		}
		if _, hasType := res.Inputs["type"]; res.Inputs["size"].NumberValue() != 100 || hasType || res.Outputs["type"].StringValue() != "pd-standard" {
			t.Errorf("import %q: inputs %v; want size 100 and no type (pd-standard is the default, left out)", id, res.Inputs)
		}
		if _, has := res.Inputs["labels"]; has || len(res.Outputs["labels"].ObjectValue()) != 0 { // rules §10: no labels
			t.Errorf("import %q read labels: inputs %v, state %v", id, res.Inputs["labels"], res.Outputs["labels"])
		}
		if d := res.Inputs["__defaults"]; !d.IsArray() || len(d.ArrayValue()) != 0 {
			t.Errorf("import %q: __defaults = %v, want []", id, d)
		}
	}
	_, err := f.p.Read(context.Background(), plugin.ReadRequest{Type: DiskType, ID: "zones/us-central1-a/disks/x/y"})
	if err == nil || !strings.Contains(err.Error(), "doesn't match any of the accepted formats") {
		t.Errorf("a malformed import ID: %v", err)
	}
	res, err := f.p.Read(context.Background(), plugin.ReadRequest{Type: DiskType, ID: "projects/p1/zones/us-central1-a/disks/missing"})
	if err != nil || res.Outputs != nil {
		t.Errorf("reading a missing disk: outputs %v, err %v; want gone", res.Outputs, err)
	}
}

func TestDiskDeleteDetachesFirst(t *testing.T) {
	f := newFixture(t)
	node := APIBase + "projects/p1/zones/us-central1-a/instances/node-1"
	if _, err := f.compute.PutDisk(Disk{Name: "data", Project: "p1", Zone: "us-central1-a", SizeGB: 10, Type: "pd-standard", Users: []string{node}}); err != nil {
		t.Fatal(err)
	}
	if err := f.compute.DeleteDisk(DiskPath("p1", "us-central1-a", "data")); err == nil {
		t.Fatal("the API deleted a disk an instance uses")
	}
	if _, err := f.p.Delete(context.Background(), plugin.DeleteRequest{Type: DiskType, ID: "projects/p1/zones/us-central1-a/disks/data"}); err != nil {
		t.Fatal(err)
	}
	calls, _ := f.compute.Calls()
	if _, err := f.compute.GetDisk(DiskPath("p1", "us-central1-a", "data")); !IsNotFound(err) {
		t.Errorf("the disk is still there: %v", err)
	}
	var methods []string
	for _, c := range calls {
		methods = append(methods, c.Method+" "+c.Path)
	}
	want := []string{"DELETE projects/p1/zones/us-central1-a/disks/data", "GET projects/p1/zones/us-central1-a/disks/data",
		"POST " + node + "/detachDisk", "DELETE projects/p1/zones/us-central1-a/disks/data"} // rules §8
	if !slices.Equal(methods, want) {
		t.Errorf("calls = %v\nwant %v", methods, want)
	}
}

func TestDiskCreateChecksLikeTheAPI(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		inputs map[string]any
		want   string
	}{
		{diskInputs(5, nil), "outside the range 10 GB to 65536 GB"}, // rules §7
		{func() map[string]any { m := diskInputs(10, nil); m["name"] = "Bad_Name"; return m }(), "Invalid value for field 'resource.name'"},
		{func() map[string]any { m := diskInputs(10, nil); delete(m, "project"); return m }(), "project: required field is not set"},
	} {
		checked := f.check(DiskType, "d", nil, props(tc.inputs)) // the provider does not validate the name (rules §1)
		_, err := f.p.Create(context.Background(), plugin.CreateRequest{Type: DiskType, URN: urn(DiskType, "d"), Properties: checked})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Create(%v) = %v, want an error containing %q", tc.inputs, err, tc.want)
		}
	}
}

func policyInputs(days int, withProperties bool) map[string]any {
	ssp := map[string]any{
		"schedule":        map[string]any{"dailySchedule": map[string]any{"daysInCycle": 1, "startTime": "03:00"}},
		"retentionPolicy": map[string]any{"maxRetentionDays": days},
	}
	if withProperties {
		ssp["snapshotProperties"] = map[string]any{"labels": map[string]any{"app": "loklak"}}
	}
	return map[string]any{"name": "data-snapshots", "project": "p1", "region": "us-central1", "snapshotSchedulePolicy": ssp}
}

func TestPolicyUpdateHitsTheGuestFlushBug(t *testing.T) {
	f := newFixture(t)
	id, inputs, state := f.create(PolicyType, "snapshots", policyInputs(14, true))
	if rp, err := f.compute.GetResourcePolicy("p1", "us-central1", "data-snapshots"); err != nil {
		t.Fatal(err)
	} else if got := rp.SnapshotSchedulePolicy["retentionPolicy"].(map[string]any)["onSourceDiskDelete"]; got != "KEEP_AUTO_SNAPSHOTS" {
		t.Errorf("onSourceDiskDelete default = %v", got) // rules §3
	}
	d := f.diff(PolicyType, "snapshots", id, inputs, state, policyInputs(7, true))
	if got := changedKeys(d); !slices.Equal(got, []string{"snapshotSchedulePolicy"}) || len(d.ReplaceKeys) != 0 {
		t.Fatalf("retention change: changed %v, replaces %v; want an in-place update (rules §9.1)", got, d.ReplaceKeys)
	}
	news := f.check(PolicyType, "snapshots", inputs, props(policyInputs(7, true)))
	_, err := f.p.Update(context.Background(), plugin.UpdateRequest{Type: PolicyType, URN: urn(PolicyType, "snapshots"), ID: id, OldInputs: inputs, OldOutputs: state, NewInputs: news})
	if err == nil || !strings.Contains(err.Error(), "Patching guest_flush field is not supported.") {
		t.Errorf("update with snapshotProperties = %v, want the guest_flush 400 (rules §9.1)", err)
	}
	// Without snapshotProperties the PATCH goes through.
	id2, inputs2, state2 := f.create(PolicyType, "plain", func() map[string]any { m := policyInputs(14, false); m["name"] = "plain"; return m }())
	news2 := f.check(PolicyType, "plain", inputs2, props(func() map[string]any { m := policyInputs(7, false); m["name"] = "plain"; return m }()))
	if _, err := f.p.Update(context.Background(), plugin.UpdateRequest{Type: PolicyType, URN: urn(PolicyType, "plain"), ID: id2, OldInputs: inputs2, OldOutputs: state2, NewInputs: news2}); err != nil {
		t.Errorf("update without snapshotProperties: %v", err)
	}
}

func TestPolicyRulesOnNamesRegionsAndStartTimes(t *testing.T) {
	f := newFixture(t)
	id, inputs, state := f.create(PolicyType, "snapshots", policyInputs(14, false))
	renamed := policyInputs(14, false)
	renamed["name"] = "new-name"
	if d := f.diff(PolicyType, "snapshots", id, inputs, state, renamed); len(d.ReplaceKeys) != 0 {
		t.Errorf("a rename plans a replacement %v; the provider plans an update (rules §3, rename bug)", d.ReplaceKeys)
	}
	news := f.check(PolicyType, "snapshots", inputs, props(renamed))
	if _, err := f.p.Update(context.Background(), plugin.UpdateRequest{Type: PolicyType, ID: id, OldInputs: inputs, OldOutputs: state, NewInputs: news}); !IsNotFound(err) {
		t.Errorf("a rename PATCHes the new name's URL and finds nothing; got %v", err)
	}
	moved := policyInputs(14, false)
	moved["region"] = "europe-west1"
	if d := f.diff(PolicyType, "snapshots", id, inputs, state, moved); !slices.Equal(replaceKeys(d), []string{"region"}) {
		t.Errorf("a region change: replaces %v, want [region]", d.ReplaceKeys)
	}
	for start, ok := range map[string]bool{"03:00": true, "5:00": true, "03:30": false, "24:00": false, "3pm": false} { // rules §3
		in := policyInputs(14, false)
		in["snapshotSchedulePolicy"].(map[string]any)["schedule"] = map[string]any{"dailySchedule": map[string]any{"daysInCycle": 1, "startTime": start}}
		res, err := f.p.Check(context.Background(), plugin.CheckRequest{URN: urn(PolicyType, "s"), Type: PolicyType, News: props(in)})
		if err != nil {
			t.Fatal(err)
		}
		if got := len(res.Failures) == 0; got != ok {
			t.Errorf("startTime %q: accepted = %v, want %v (%v)", start, got, ok, res.Failures)
		}
	}
	twoSchedules := policyInputs(14, false)
	twoSchedules["snapshotSchedulePolicy"].(map[string]any)["schedule"] = map[string]any{
		"dailySchedule":  map[string]any{"daysInCycle": 1, "startTime": "03:00"},
		"hourlySchedule": map[string]any{"hoursInCycle": 6, "startTime": "03:00"},
	}
	if res, _ := f.p.Check(context.Background(), plugin.CheckRequest{URN: urn(PolicyType, "s"), Type: PolicyType, News: props(twoSchedules)}); len(res.Failures) == 0 {
		t.Errorf("two schedules were accepted")
	}
}

func TestAttachmentRules(t *testing.T) {
	f := newFixture(t)
	f.create(DiskType, "dump-disk", diskInputs(10, nil))
	f.create(PolicyType, "snapshots", policyInputs(14, false))
	att := map[string]any{"disk": "data", "name": "data-snapshots", "project": "p1", "zone": "us-central1-a"}
	id, inputs, state := f.create(AttachmentType, "snapshots", att)
	if id != "p1/us-central1-a/data/data-snapshots" { // rules §4, ID
		t.Errorf("ID = %q", id)
	}
	want := APIBase + "projects/p1/regions/us-central1/resourcePolicies/data-snapshots"
	if got := f.disk("data").ResourcePolicies; !slices.Equal(got, []string{want}) {
		t.Errorf("disk policies = %v, want [%s]", got, want)
	}
	if err := f.compute.DeleteResourcePolicy("p1", "us-central1", "data-snapshots"); err == nil || !strings.Contains(err.Error(), "resourceInUseByAnotherResource") {
		t.Errorf("deleting an attached policy: %v, want resourceInUseByAnotherResource (rules §3)", err)
	}
	other := map[string]any{"disk": "data", "name": "other", "project": "p1", "zone": "us-central1-a"}
	if d := f.diff(AttachmentType, "snapshots", id, inputs, state, other); !slices.Equal(replaceKeys(d), []string{"name"}) {
		t.Errorf("attachment change: replaces %v, want [name] (rules §4: all ForceNew)", d.ReplaceKeys)
	}
	// A self link as disk makes a URL that finds no disk (rules §4).
	bad := map[string]any{"disk": APIBase + "projects/p1/zones/us-central1-a/disks/data", "name": "data-snapshots", "project": "p1", "zone": "us-central1-a"}
	checked := f.check(AttachmentType, "bad", nil, props(bad))
	if _, err := f.p.Create(context.Background(), plugin.CreateRequest{Type: AttachmentType, URN: urn(AttachmentType, "bad"), Properties: checked}); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("a self link as disk: %v, want a 404", err)
	}
	if _, err := f.p.Delete(context.Background(), plugin.DeleteRequest{Type: AttachmentType, ID: id}); err != nil {
		t.Fatal(err)
	}
	res, err := f.p.Read(context.Background(), plugin.ReadRequest{Type: AttachmentType, ID: id, Inputs: inputs, State: state})
	if err != nil || res.Outputs != nil {
		t.Errorf("a detached policy's attachment reads as %v (%v); want gone (rules §4)", res.Outputs, err)
	}
	if err := f.compute.DeleteResourcePolicy("p1", "us-central1", "data-snapshots"); err != nil {
		t.Errorf("deleting a detached policy: %v", err)
	}
}

func TestAddressRules(t *testing.T) {
	f := newFixture(t)
	in := map[string]any{"name": "loklak-dumps", "project": "p1", "region": "us-central1", "labels": map[string]any{"app": "loklak"}}
	id, inputs, state := f.create(AddressType, "lb-address", in)
	if id != "projects/p1/regions/us-central1/addresses/loklak-dumps" { // rules §5, ID
		t.Errorf("ID = %q", id)
	}
	ip := state["address"].StringValue()
	if !strings.HasPrefix(ip, addressPool) {
		t.Errorf("address = %q, want one the API picked", ip)
	}
	if state["addressType"].StringValue() != "EXTERNAL" || state["networkTier"].StringValue() != "PREMIUM" { // rules §5 defaults
		t.Errorf("addressType/networkTier = %v/%v", state["addressType"], state["networkTier"])
	}
	relabel := clone(in)
	relabel["labels"] = map[string]any{"app": "x"}
	if d := f.diff(AddressType, "lb-address", id, inputs, state, relabel); len(d.ReplaceKeys) != 0 || !slices.Equal(changedKeys(d), []string{"labels"}) {
		t.Errorf("a label change: changed %v, replaces %v; want labels in place", d.ChangedKeys, d.ReplaceKeys)
	}
	moved := clone(in)
	moved["address"] = "198.51.100.99"
	if d := f.diff(AddressType, "lb-address", id, inputs, state, moved); !slices.Equal(replaceKeys(d), []string{"address"}) {
		t.Errorf("an address change: replaces %v, want [address]", d.ReplaceKeys)
	}
	res, err := f.p.Check(context.Background(), plugin.CheckRequest{URN: urn(AddressType, "a"), Type: AddressType, News: props(map[string]any{"name": "Bad_Name"})})
	if err != nil || len(res.Failures) != 1 || res.Failures[0].Property != "name" { // rules §5: the provider checks the name
		t.Errorf("a bad name: %v %v", res.Failures, err)
	}
	// Adopting an address promoted to static before the stack: import by every ID form.
	if _, err := f.p.Configure(context.Background(), plugin.ConfigureRequest{Inputs: props(map[string]any{"project": "p1", "region": "us-central1"})}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.compute.PutAddress(Address{Name: "promoted", Project: "p1", Region: "us-central1", Address: "198.51.100.7", NetworkTier: "PREMIUM"}); err != nil {
		t.Fatal(err)
	}
	for _, importID := range []string{"projects/p1/regions/us-central1/addresses/promoted", "p1/us-central1/promoted", "us-central1/promoted", "promoted"} {
		r, err := f.p.Read(context.Background(), plugin.ReadRequest{Type: AddressType, ID: resource.ID(importID)})
		_, hasType := r.Inputs["addressType"] // EXTERNAL is the default: left out of the inputs
		if err != nil || r.Inputs["address"].StringValue() != "198.51.100.7" || hasType || r.Outputs["addressType"].StringValue() != "EXTERNAL" {
			t.Errorf("import %q: %v %v", importID, r.Inputs, err)
		}
	}
	if _, err := f.compute.InsertAddress(Address{Name: "clash", Project: "p1", Region: "us-central1", Address: "198.51.100.7"}); err == nil {
		t.Errorf("the API reserved an address twice")
	}
}
