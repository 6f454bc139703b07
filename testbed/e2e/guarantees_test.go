//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/loklak/loklak-dumps/testbed/e2e/podwatch"
	"github.com/loklak/loklak-dumps/testbed/gcp"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optrefresh"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
)

// podWatch follows every loklak pod in the given namespaces through kubectl's watch, event by event, and
// keeps the largest number that held the dumps claim at once: scheduled to a node (kwok mounts nothing) and
// not yet gone.
type podWatch struct{ *podwatch.Watch }

// watchLoklakPods starts the watch of the loklak pods in the given namespaces (the suite's other tests
// leave theirs elsewhere); stop it with stop.
func watchLoklakPods(t *testing.T, namespaces ...string) podWatch {
	t.Helper()
	w, err := podwatch.Start(tools.Path("kubectl"), cp.Kubeconfig, "app.kubernetes.io/name=loklak-server", namespaces, podwatch.Scheduled)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _, _ = w.Stop() })
	return podWatch{w}
}

// window returns the most pods that held the claim at once since the last window (or the start), and
// starts a new window from the pods holding it now. A kubectl that stopped fails the test.
func (w podWatch) window(t *testing.T) int {
	t.Helper()
	most, err := w.Window()
	if err != nil {
		t.Fatal(err)
	}
	return most
}

// stop ends the watch and returns the most pods that held the claim at once, and the pods seen.
func (w podWatch) stop(t *testing.T) (most int, seen []string) {
	t.Helper()
	most, seen, err := w.Stop()
	if err != nil {
		t.Fatal(err)
	}
	return most, seen
}

// A new namespace replaces the Deployment (and the claim and volume, named after it): the old loklak pod
// is gone before the new one is scheduled, never two at once on the disk (issue 17.1). Before the
// Deployment was delete-before-replace, the new namespace's pod ran beside the old one.
func TestNamespaceChangeNeverRunsTwoPods(t *testing.T) {
	ctx := context.Background()
	_, gce, stack := devOnStandIn(t, map[string]string{"namespace": "loklak-move-a"})
	if _, err := stack.Up(ctx, optup.ProgressStreams(testLog{T: t})); err != nil {
		t.Fatal(err)
	}
	handle := gcp.DiskPath("loklak-server", zone, "loklak-dev-data")
	disk := simDisk(t, gce, "loklak-server", "loklak-dev-data")
	since := callCount(t, gce)

	setConfig(t, stack, "namespace", "loklak-move-b")
	w := watchLoklakPods(t, "loklak-move-a", "loklak-move-b")
	if _, err := stack.Up(ctx, optup.ProgressStreams(testLog{T: t})); err != nil {
		t.Fatal(err)
	}
	most, seen := w.stop(t)
	want(t, "most loklak pods holding the disk at once", most, 1)
	if len(seen) < 2 {
		t.Errorf("the watch saw only %v: it must see the old pod and the new one", seen)
	}
	_, phase, claim := loklakPod(t, "loklak-move-b")
	want(t, "new pod", phase, "Running")
	want(t, "new pod's claim", claim, "dump")
	want(t, "new volume's handle", kubectlJSON(t, "get", "pv", "loklak-move-b-dump").str("spec.csi.volumeHandle"), handle)
	if exists(t, "namespace", "loklak-move-a") {
		phase := kubectlJSON(t, "get", "namespace", "loklak-move-a").str("status.phase")
		want(t, "old namespace (deleted, or being deleted)", phase, "Terminating")
	}
	// Compute Engine: nothing. (The archiver's Google service account follows the namespace: a new one
	// with its grants, the old one deleted; the bucket is untouched.)
	wantCallsUnder(t, gce, since, "projects/", nil)
	wantCallsUnder(t, gce, since, "storage/v1/b?", nil)
	want(t, "disk ID", simDisk(t, gce, "loklak-server", "loklak-dev-data").ID, disk.ID)
}

// The disk deleted outside the stack, then `pulumi refresh` (docs/recovery.md) drops it from the state:
// the next up is refused before anything changes, naming the restore runbook, instead of creating an
// empty disk under the unchanged volume and claim (issue 17.2). diskRecreateBlank asks for the blank disk.
func TestLostDiskIsNotRecreatedBlankAfterARefresh(t *testing.T) {
	ctx := context.Background()
	_, gce, stack := devOnStandIn(t, nil)
	if _, err := stack.Up(ctx, optup.ProgressStreams(testLog{T: t})); err != nil {
		t.Fatal(err)
	}
	handle := gcp.DiskPath("loklak-server", zone, "loklak-dev-data")
	pvUID := kubectlJSON(t, "get", "pv", "loklak-dev-dump").str("metadata.uid")
	if err := gce.DeleteDisk(handle); err != nil {
		t.Fatal(err)
	}
	if _, err := stack.Refresh(ctx, optrefresh.ProgressStreams(testLog{T: t})); err != nil {
		t.Fatal(err)
	}
	if protectedInState(t, stack, "gcp:compute/disk:Disk") {
		t.Fatal("the refresh kept the deleted disk in the state: this test no longer reproduces the fault")
	}
	since := callCount(t, gce)

	var out strings.Builder
	_, err := stack.Up(ctx, optup.ProgressStreams(&out), optup.ErrorProgressStreams(&out))
	if err == nil {
		t.Fatal("up created the lost disk again")
	}
	for _, part := range []string{"loklak-dumps:diskName", "Compute Engine no longer has", "docs/restore.md", "diskRecreateBlank"} {
		if !strings.Contains(out.String(), part) {
			t.Errorf("the refusal does not say %q:\n%s", part, lastLines(out.String(), 15))
		}
	}
	wantCalls(t, gce, since, nil)
	want(t, "PV kept", kubectlJSON(t, "get", "pv", "loklak-dev-dump").str("metadata.uid"), pvUID)

	setConfig(t, stack, "diskRecreateBlank", "true")
	if _, err := stack.Up(ctx, optup.ProgressStreams(testLog{T: t})); err != nil {
		t.Fatal(err)
	}
	wantCalls(t, gce, since, []string{"POST projects/loklak-server/zones/" + zone + "/disks"})
	want(t, "a blank disk again", simDisk(t, gce, "loklak-server", "loklak-dev-data").SizeGB, 10)
}

// In external mode the stack never resizes the disk, and a shrink is refused in every mode: before, the
// PV was lowered to 10Gi and then the API server refused the claim's shrink (issue 17.3).
func TestExternalDiskSizeIsRefusedBeforeAnythingChanges(t *testing.T) {
	ctx := context.Background()
	_, _, stack := devOnStandIn(t, map[string]string{"diskMode": "external", "diskName": "loklak-shared-data",
		"diskSizeGb": "20", "namespace": "loklak-external"})
	if _, err := stack.Up(ctx, optup.ProgressStreams(testLog{T: t})); err != nil {
		t.Fatal(err)
	}
	for _, size := range []string{"10", "30"} {
		setConfig(t, stack, "diskSizeGb", size)
		var out strings.Builder
		if _, err := stack.Up(ctx, optup.ProgressStreams(&out), optup.ErrorProgressStreams(&out)); err == nil {
			t.Fatalf("diskSizeGb %s applied to an external disk", size)
		}
		if !strings.Contains(out.String(), `loklak-dumps:diskSizeGb = "`+size+`"`) {
			t.Errorf("the refusal does not name diskSizeGb = %s:\n%s", size, lastLines(out.String(), 15))
		}
		want(t, "PV capacity after "+size, kubectlJSON(t, "get", "pv", "loklak-external-dump").str("spec.capacity.storage"), "20Gi")
		want(t, "claim request after "+size, kubectlJSON(t, "-n", "loklak-external", "get", "pvc", "dump").str("spec.resources.requests.storage"), "20Gi")
	}
	setConfig(t, stack, "diskSizeGb", "20")
}

// createNamespace false with a namespace that does not exist: refused before anything changes, and the
// namespace is not created (the NamespacePatch used to create it and leave it behind) (issue 17.4).
func TestMissingNamespaceIsNotCreated(t *testing.T) {
	ctx := context.Background()
	_, gce, stack := devOnStandIn(t, map[string]string{"namespace": "loklak-typo", "createNamespace": "false"})
	var out strings.Builder
	if _, err := stack.Up(ctx, optup.ProgressStreams(&out), optup.ErrorProgressStreams(&out)); err == nil {
		t.Fatal("up succeeded with a namespace that does not exist")
	}
	for _, part := range []string{`loklak-dumps:namespace = "loklak-typo"`, "set createNamespace to true"} {
		if !strings.Contains(out.String(), part) {
			t.Errorf("the refusal does not say %q:\n%s", part, lastLines(out.String(), 15))
		}
	}
	if exists(t, "namespace", "loklak-typo") {
		t.Error("the namespace was created")
	}
	wantCalls(t, gce, 0, nil)
}
