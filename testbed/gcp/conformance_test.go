package gcp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/common/tokens"
)

// The real pulumi-gcp v7.38.0 provider's answers to Check and Diff (and Read on import), recorded over
// gRPC beside the repository (../shared/conformance, read-only). The stand-in is held to them: every case
// is replayed against it the way the file's "how" says it was run against the real provider, and any
// difference in the verdict fails the case by its id.
//
// The repository is checked out with shared/ beside it (/work/main and /work/shared; CI clones into
// another folder with a copy of shared/ beside it), so the file is ../shared/conformance from the
// repository's root, ../../../shared/conformance from this package.
const conformanceFile = "../../../shared/conformance/pulumi-gcp-7.38.0.json"

// storageConformanceFile is the second recording: the four Cloud Storage and IAM types a dumps archive
// declares (Bucket, Account, BucketIAMMember, IAMMember; gcs-provider-rules.md), recorded against a
// loopback fake of the Storage and IAM APIs. It is replayed the same way.
const storageConformanceFile = "../../../shared/conformance/pulumi-gcp-7.38.0-storage-iam.json"

// conformanceSkips are types the files record that the stand-in does not implement, with the reason.
// It must stay empty: the stand-in implements every type either file records.
var conformanceSkips = map[string]string{}

// knownFields are the header's "fields" entries this test knows: each is compared, except check.reasons,
// which is shown on a mismatch (the stand-in's wording is its own). A recording that describes another
// field fails, so nothing recorded goes uncompared.
var knownFields = []string{"check.failedProperties", "check.reasons", "check.rpcError", "diff.changes", "diff.replaces",
	"diff.diffs", "diff.deleteBeforeReplace"}

// recording is the file. Decoding is strict: a field the test does not know (say, detailed-diff paths
// added to a later recording) fails the test, so nothing recorded goes uncompared.
type recording struct {
	What           string            `json:"what"`
	Recorded       string            `json:"recorded"`
	ProviderConfig map[string]string `json:"providerConfig"`
	How            string            `json:"how"`
	Fields         map[string]string `json:"fields"`
	Cases          []recordedCase    `json:"cases"`
}

type recordedCase struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	// Name is the resource's logical name (the URN's), which autonaming uses.
	Name string `json:"name"`
	Note string `json:"note"`
	// A check case: Check(news=Check, olds={}).
	Check map[string]any `json:"check"`
	// A diff case: Check and Create Base, then Check(New, olds=Base) and Diff.
	Base map[string]any `json:"base"`
	New  map[string]any `json:"new"`
	// An import case: Read with ImportID only, then Check and Diff of New against what Read returned.
	ImportID string `json:"importId"`
	// Setup is what existed before: resources (created through the provider) or snapshots.
	Setup []setupEntry `json:"setup"`
	Real  struct {
		Check *recordedCheck `json:"check"`
		Diff  *recordedDiff  `json:"diff"`
		// SetupError is the real provider's error when its Create of Base failed (so there is no Diff):
		// the text the engine's gRPC client printed, prefixed "create old state: ".
		SetupError string `json:"setupError"`
	} `json:"real"`
}

type setupEntry struct {
	Type   string         `json:"Type"`
	Name   string         `json:"Name"`
	Inputs map[string]any `json:"Inputs"`
}

type recordedCheck struct {
	FailedProperties []string `json:"failedProperties"`
	RPCError         bool     `json:"rpcError"`
	// Error is the RPC error's text, as the engine's gRPC client prints it.
	Error string `json:"error"`
	// Reasons are the real provider's failure texts: shown on a mismatch, not compared (the stand-in's
	// wording is its own).
	Reasons []string `json:"reasons"`
}

type recordedDiff struct {
	Changes             string   `json:"changes"`
	Replaces            []string `json:"replaces"`
	Diffs               []string `json:"diffs"`
	DeleteBeforeReplace bool     `json:"deleteBeforeReplace"`
}

// importedBefore is what existed in the project before an import case's Read. The recording does not
// hold it (import cases carry no setup), so each import case names its resource here, as its id and note
// describe it; an import case without an entry fails.
var importedBefore = map[string]func(c *Compute) error{
	// The 2017 disk: 100 GB pd-standard, unlabelled (docs/migration.md).
	"import/disk-prod-labels-omitted": prodDisk2017(nil),
	"import/disk-prod-labels-given":   prodDisk2017(nil),
	"import/disk-prod-size-mismatch":  prodDisk2017(nil),
	// "a labeled disk, labels: {} asked for".
	"import/disk-labelled-none-asked": prodDisk2017(map[string]string{"app": "loklak", "team": "data"}), //nolint:misspell // the recorded case's id
	// "regional disk adopted": dev's regional disk as the stack would have made it.
	"import/rdisk": func(c *Compute) error {
		_, err := c.PutDisk(Disk{Name: "loklak-dev-data", Project: "loklak-server", Region: "us-central1", SizeGB: 200, Type: "pd-standard",
			ReplicaZones: []string{APIBase + "projects/loklak-server/zones/us-central1-a", APIBase + "projects/loklak-server/zones/us-central1-b"},
			Labels:       map[string]string{"app": "loklak", "env": "dev"}})
		return err
	},
}

func prodDisk2017(labels map[string]string) func(c *Compute) error {
	return func(c *Compute) error {
		_, err := c.PutDisk(Disk{Name: "data-dump-disk", Project: "loklak-server", Zone: "us-central1-a", SizeGB: 100, Type: "pd-standard", Labels: labels})
		return err
	}
}

func loadRecording(t *testing.T, file string) recording {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		abs, _ := filepath.Abs(file)
		t.Fatalf("the recorded answers of the real provider are missing: %v\n"+
			"This test needs ../shared/conformance/%s beside the repository (here %s); "+
			"check out shared/ next to the repository's folder.", err, filepath.Base(file), abs)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var r recording
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("%s: %v (a field this test does not compare? extend the test)", file, err)
	}
	if len(r.Cases) == 0 {
		t.Fatalf("%s holds no cases", file)
	}
	for field := range r.Fields {
		if !slices.Contains(knownFields, field) {
			t.Fatalf("%s describes a field this test does not compare: %s (%s); extend the test", file, field, r.Fields[field])
		}
	}
	return r
}

// TestConformanceWithTheRealProvider replays every recorded case of the Compute Engine and Monitoring
// types against the stand-in.
func TestConformanceWithTheRealProvider(t *testing.T) {
	replayAll(t, conformanceFile)
}

// TestConformanceStorageAndIAMWithTheRealProvider replays every recorded case of the Cloud Storage and IAM
// types (bucket, service account, bucket IAM member, service-account IAM member) against the stand-in.
func TestConformanceStorageAndIAMWithTheRealProvider(t *testing.T) {
	replayAll(t, storageConformanceFile)
}

// replayAll replays every case of one recording, each as a subtest named by its id.
func replayAll(t *testing.T, file string) {
	r := loadRecording(t, file)
	for typ, reason := range conformanceSkips {
		if _, implemented := kinds[typ]; implemented {
			t.Errorf("conformanceSkips lists %s (%s), which the stand-in implements: its cases must run", typ, reason)
		}
	}
	seen := map[string]bool{}
	for _, c := range r.Cases {
		if seen[c.ID] {
			t.Errorf("case id %q is recorded twice", c.ID)
		}
		seen[c.ID] = true
		t.Run(c.ID, func(t *testing.T) {
			if _, implemented := kinds[c.Type]; !implemented {
				if reason, ok := conformanceSkips[c.Type]; ok {
					t.Skipf("%s: %s", c.Type, reason)
				}
				t.Fatalf("the stand-in does not implement %s, and conformanceSkips does not list it", c.Type)
			}
			replay(t, r.ProviderConfig, c)
		})
	}
}

// replay runs one case as the file's "how" describes and compares the verdicts.
func replay(t *testing.T, config map[string]string, c recordedCase) {
	ctx := context.Background()
	compute, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	serveStorage(t, compute)
	p, err := NewProvider(compute, "7.38.0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := resource.PropertyMap{}
	for k, v := range config {
		cfg[resource.PropertyKey(strings.TrimPrefix(k, "gcp:"))] = resource.NewStringProperty(v)
	}
	if _, err := p.Configure(ctx, plugin.ConfigureRequest{Inputs: cfg}); err != nil {
		t.Fatal(err)
	}
	for _, s := range c.Setup {
		if err := setUp(ctx, p, config["gcp:project"], s); err != nil {
			t.Fatalf("setup %s %s: %v", s.Type, s.Name, err)
		}
	}
	typ := tokens.Type(c.Type)
	u := resource.NewURN("dev", "loklak-dumps", "", typ, c.Name)
	seed := []byte("conformance")

	var id resource.ID
	var oldInputs, oldState resource.PropertyMap
	news := c.Check
	switch {
	case c.Check != nil:
	case c.ImportID != "":
		before, ok := importedBefore[c.ID]
		if !ok {
			t.Fatalf("import case %s has no entry in importedBefore: what existed before its Read?", c.ID)
		}
		if err := before(compute); err != nil {
			t.Fatal(err)
		}
		res, err := p.Read(ctx, plugin.ReadRequest{URN: u, Type: typ, ID: resource.ID(c.ImportID)})
		if err != nil {
			t.Fatalf("Read(%s): %v", c.ImportID, err)
		}
		if res.Outputs == nil {
			t.Fatalf("Read(%s) found nothing", c.ImportID)
		}
		id, oldInputs, oldState, news = res.ID, res.Inputs, res.Outputs, c.New
	case c.Base != nil:
		base, err := p.Check(ctx, plugin.CheckRequest{URN: u, Type: typ, News: recordedProps(c.Base), RandomSeed: seed})
		if err != nil || len(base.Failures) > 0 {
			t.Fatalf("Check(base): %v %v", err, base.Failures)
		}
		created, err := p.Create(ctx, plugin.CreateRequest{URN: u, Type: typ, Properties: base.Properties})
		if want := c.Real.SetupError; want != "" {
			compareSetupError(t, want, err)
			return
		}
		if err != nil {
			t.Fatalf("Create(base): %v", err)
		}
		id, oldInputs, oldState, news = created.ID, base.Properties, created.Properties, c.New
	default:
		t.Fatalf("case %s has neither check, base nor importId", c.ID)
	}

	checked, err := p.Check(ctx, plugin.CheckRequest{URN: u, Type: typ, Olds: oldInputs, News: recordedProps(news), RandomSeed: seed})
	if want := c.Real.Check; want != nil {
		compareCheck(t, want, checked, err)
	}
	if err != nil || len(checked.Failures) > 0 {
		if c.Real.Diff != nil {
			t.Fatalf("the real provider accepted the new inputs and diffed them; the stand-in's Check: %v %v", err, checked.Failures)
		}
		return
	}
	if c.Real.Diff == nil {
		return
	}
	d, err := p.Diff(ctx, plugin.DiffRequest{URN: u, Type: typ, ID: id, OldInputs: oldInputs, OldOutputs: oldState, NewInputs: checked.Properties})
	if err != nil {
		t.Fatalf("Diff: %v", err)
	}
	compareDiff(t, c.Real.Diff, d)
}

// recordingFakeLabel is how the recording's loopback fake of the Google APIs signed its error messages;
// it is the fake's, not Google's nor the provider's, so it is taken out before comparing.
const recordingFakeLabel = " (gcpdiff fake API)"

// compareSetupError holds a failed Create of the base inputs to the real provider's: the stand-in's Create
// must fail too, and its error must carry the provider's diagnostic (the "* " line of the Terraform error
// list the bridge returns, less the recording fake's label): the provider's own text and the API's answer.
func compareSetupError(t *testing.T, want string, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("Create(base) succeeded; the real provider's failed: %q", want)
	}
	var diagnostic string
	for _, line := range strings.Split(want, "\n") {
		if d, ok := strings.CutPrefix(line, "\t* "); ok {
			diagnostic = strings.Replace(d, recordingFakeLabel, "", 1)
		}
	}
	if diagnostic == "" {
		t.Fatalf("the recorded setupError holds no diagnostic line (\"\\t* ...\"): %q", want)
	}
	if !strings.Contains(err.Error(), diagnostic) {
		t.Errorf("Create(base): error %q, real provider: %q", err, diagnostic)
	}
}

func compareCheck(t *testing.T, want *recordedCheck, got plugin.CheckResponse, err error) {
	t.Helper()
	if want.RPCError != (err != nil) {
		t.Errorf("Check: rpcError = %v (%v), real provider: %v %s", err != nil, err, want.RPCError, want.Error)
	}
	if err != nil && want.Error != "" {
		// The engine sees a plugin error through gRPC as "rpc error: code = Unknown desc = <error>".
		if g := "rpc error: code = Unknown desc = " + err.Error(); g != want.Error {
			t.Errorf("Check: error %q, real provider: %q", g, want.Error)
		}
	}
	var failed []string
	for _, f := range got.Failures {
		failed = append(failed, string(f.Property))
	}
	if !sameSet(failed, want.FailedProperties) {
		t.Errorf("Check: failed properties %q (%v), real provider: %q %q", sorted(failed), got.Failures, sorted(want.FailedProperties), want.Reasons)
	}
}

func compareDiff(t *testing.T, want *recordedDiff, got plugin.DiffResult) {
	t.Helper()
	changes := map[plugin.DiffChanges]string{plugin.DiffNone: "NONE", plugin.DiffSome: "SOME", plugin.DiffUnknown: "UNKNOWN"}[got.Changes]
	if changes != want.Changes {
		t.Errorf("Diff: changes %s, real provider: %s", changes, want.Changes)
	}
	if replaces := keyStrings(got.ReplaceKeys); !sameSet(replaces, want.Replaces) {
		t.Errorf("Diff: replaces %q, real provider: %q", replaces, sorted(want.Replaces))
	}
	if diffs := keyStrings(got.ChangedKeys); !sameSet(diffs, want.Diffs) {
		t.Errorf("Diff: diffs %q, real provider: %q", diffs, sorted(want.Diffs))
	}
	if got.DeleteBeforeReplace != want.DeleteBeforeReplace {
		t.Errorf("Diff: deleteBeforeReplace %v, real provider: %v", got.DeleteBeforeReplace, want.DeleteBeforeReplace)
	}
	// Every top-level key in the detailed diff is a changed key, and the other way round.
	if detailed := slices.Collect(maps.Keys(got.DetailedDiff)); !sameSet(topLevel(detailed), want.Diffs) {
		t.Errorf("Diff: detailed diff %v, real provider's diffs: %q", got.DetailedDiff, sorted(want.Diffs))
	}
}

// setUp makes what existed before a case: a snapshot put into the project, or a resource created by the
// stand-in's own Check and Create.
func setUp(ctx context.Context, p *Provider, project string, s setupEntry) error {
	if s.Type == "snapshot" {
		size, _ := num(s.Inputs["diskSizeGb"])
		_, err := p.compute.PutSnapshot(Snapshot{Name: str(s.Inputs["name"]), Project: project, DiskSizeGB: size})
		return err
	}
	typ := tokens.Type(s.Type)
	u := resource.NewURN("dev", "loklak-dumps", "", typ, s.Name)
	checked, err := p.Check(ctx, plugin.CheckRequest{URN: u, Type: typ, News: recordedProps(s.Inputs), RandomSeed: []byte("setup")})
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	if len(checked.Failures) > 0 {
		return fmt.Errorf("check: %v", checked.Failures)
	}
	_, err = p.Create(ctx, plugin.CreateRequest{URN: u, Type: typ, Properties: checked.Properties})
	return err
}

// recordedProps turns recorded inputs into a property map; {"__unknown": true} is an unknown value, as
// the engine sends a computed input in a preview.
func recordedProps(m map[string]any) resource.PropertyMap {
	out := resource.PropertyMap{}
	for k, v := range m {
		out[resource.PropertyKey(k)] = recordedValue(v)
	}
	return out
}

func recordedValue(v any) resource.PropertyValue {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 1 && x["__unknown"] == true {
			return resource.MakeComputed(resource.NewStringProperty(""))
		}
		return resource.NewObjectProperty(recordedProps(x))
	case []any:
		arr := make([]resource.PropertyValue, len(x))
		for i, e := range x {
			arr[i] = recordedValue(e)
		}
		return resource.NewArrayProperty(arr)
	default:
		return resource.NewPropertyValue(v)
	}
}

func keyStrings(ks []resource.PropertyKey) []string {
	out := make([]string, 0, len(ks))
	for _, k := range ks {
		out = append(out, string(k))
	}
	return sorted(out)
}

// topLevel returns the distinct top-level properties of detailed-diff paths ("labels.env" -> "labels",
// "replicaZones[0]" -> "replicaZones").
func topLevel(paths []string) []string {
	set := map[string]bool{}
	for _, p := range paths {
		if i := strings.IndexAny(p, ".["); i >= 0 {
			p = p[:i]
		}
		set[p] = true
	}
	return sorted(slices.Collect(maps.Keys(set)))
}

func sorted(ss []string) []string {
	out := slices.Clone(ss)
	slices.Sort(out)
	return out
}

func sameSet(a, b []string) bool {
	return slices.Equal(slices.Compact(sorted(a)), slices.Compact(sorted(b)))
}
