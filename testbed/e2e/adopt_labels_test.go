//go:build e2e

package e2e

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

// Adopting a disk that already carries labels, with diskLabels equal to them (docs/migration.md, step 1):
// the provider's Read of an imported disk puts its labels into effectiveLabels, never into the labels it
// records as inputs (pulumi-gcp#1959, #1916), so the preview shows the import plus an update of labels to
// the values the disk already has, and nothing else on the disk. The up keeps the disk (same ID, size and
// labels: no insert, no delete, no resize), and a second preview plans nothing.
func TestAdoptALabelledDiskWithItsLabels(t *testing.T) {
	const ns = "adopt-labels" // not web: the prod runbook's 2017 namespace stays untouched
	ctx := context.Background()
	ensureNamespace(t, ns) // createNamespace is false in prod: the program refuses a missing namespace
	t.Cleanup(func() { _, _ = cp.Kubectl(ctx, "delete", "namespace", ns, "--ignore-not-found", "--wait=false") })
	d, gce, _, stack := prodOnDisk(t, 100)
	t.Cleanup(func() {
		if out, err := d.CLI(ctx, "destroy", "--stack", "prod", "--yes", "--non-interactive", "--exclude-protected"); err != nil {
			t.Errorf("clean-up: %v\n%s", err, out)
		}
	})
	// The disk as someone labeled it before the stack existed (gcloud compute disks add-labels).
	labeledBefore, err := gce.EditDiskLabels(prodHandle, func(l map[string]string) { l["team"] = "loklak" })
	if err != nil {
		t.Fatal(err)
	}
	setConfig(t, stack, "namespace", ns)
	setConfig(t, stack, "archiveBucket", "") // the disk's calls alone (TestProdMigrationRunbook runs prod's archive)
	if err := stack.SetConfigWithOptions(ctx, "diskLabels[0]", auto.ConfigValue{Value: "team=loklak"}, &auto.ConfigOptions{Path: true}); err != nil {
		t.Fatal(err)
	}
	step := stepper(t)

	step("the preview imports the disk and updates only its labels", func(t *testing.T) {
		var ops []string
		for _, m := range previewDisk(t, stack) {
			ops = append(ops, string(m.Op))
			if m.Op != apitype.OpUpdate {
				continue
			}
			if len(m.Keys) > 0 {
				t.Errorf("the update replaces the disk for %q", m.Keys)
			}
			changed := slices.Clone(m.Diffs)
			for path := range m.DetailedDiff {
				changed = append(changed, path)
			}
			for _, p := range changed {
				top := p // "labels.team" -> "labels"
				if i := strings.IndexAny(p, ".["); i >= 0 {
					top = p[:i]
				}
				if top != "labels" && top != "pulumiLabels" && top != "effectiveLabels" {
					t.Errorf("the update changes %s: only the labels may change (diffs %q, detailed %v)", p, m.Diffs, m.DetailedDiff)
				}
			}
			if !slices.Contains(m.Diffs, "labels") {
				t.Errorf("the update does not name labels (diffs %q)", m.Diffs)
			}
		}
		wantDeep(t, "the disk's planned steps", ops, []string{"import", "update"})
	})

	step("up keeps the disk and its labels", func(t *testing.T) {
		calls := callCount(t, gce)
		if _, err := stack.Up(ctx, optup.ProgressStreams(testLog{T: t})); err != nil {
			t.Fatal(err)
		}
		after := simDisk(t, gce, prodProject, prodDisk)
		want(t, "disk ID (recreated?)", after.ID, labeledBefore.ID)
		want(t, "disk created", after.CreationTimestamp, labeledBefore.CreationTimestamp)
		want(t, "disk size", after.SizeGB, 100)
		wantDeep(t, "disk labels", after.Labels, map[string]string{"team": "loklak"})
		want(t, "label fingerprint (labels unchanged)", after.LabelFingerprint, labeledBefore.LabelFingerprint)
		// No insert, delete or resize of the disk. The stand-in sends the labels it planned, the same ones
		// (the real provider may skip that call, its effectiveLabels being unchanged); then the schedule.
		wantCalls(t, gce, calls, []string{
			"POST " + prodHandle + "/setLabels",
			"POST projects/loklak-server/regions/us-central1/resourcePolicies",
			"POST " + prodHandle + "/addResourcePolicies",
		})
		want(t, "disk protected in the state", protectedInState(t, stack, "gcp:compute/disk:Disk"), true)
	})

	step("a second preview plans nothing", func(t *testing.T) {
		wantSteps(t, previewChanges(t, stack), nil)
	})
}

// previewDisk previews with the diff and returns the steps planned for the disk, with their diffs
// (harness.PreviewSteps keeps only the operation).
func previewDisk(t *testing.T, stack auto.Stack) []apitype.StepEventMetadata {
	t.Helper()
	ch := make(chan events.EngineEvent)
	done := make(chan struct{})
	var steps []apitype.StepEventMetadata
	go func() {
		defer close(done)
		for ev := range ch {
			if ev.ResourcePreEvent != nil && ev.ResourcePreEvent.Metadata.Type == "gcp:compute/disk:Disk" &&
				resource.URN(ev.ResourcePreEvent.Metadata.URN).Name() == "dump-disk" {
				steps = append(steps, ev.ResourcePreEvent.Metadata)
			}
		}
	}()
	var out strings.Builder
	if _, err := stack.Preview(context.Background(), optpreview.Diff(), optpreview.ProgressStreams(&out),
		optpreview.ErrorProgressStreams(&out), optpreview.EventStreams(ch)); err != nil {
		t.Fatalf("preview: %v\n%s", err, out.String())
	}
	<-done // closed by the SDK after the last event of a finished preview
	t.Log(out.String())
	return steps
}
