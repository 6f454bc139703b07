//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/loklak/loklak-dumps/testbed/gcp"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
)

// staleFingerprint is Compute Engine's answer to a setLabels whose labelFingerprint is not the disk's
// current one, as the provider's error shows it.
const staleFingerprint = "Error 412: Labels fingerprint either invalid or resource labels have changed, conditionNotMet"

// The disk's labels edited by hand (the console, `gcloud compute disks add-labels`) after an up: the
// provider updates labels from its state, with the label fingerprint the state holds, so the next plain
// `up` that changes the labels is refused by Compute Engine (412 conditionNotMet) and changes nothing.
// `up --refresh` reads the new fingerprint first and converges, keeping the hand-made label; a following
// preview plans nothing (docs/conformance.md).
func TestLabelsEditedByHandNeedARefresh(t *testing.T) {
	const (
		project = "loklak-server"
		ns      = "fingerprint-dev"
		diskNm  = "fingerprint-dev-data"
	)
	ctx := context.Background()
	_, gce, stack := devOnStandIn(t, map[string]string{"namespace": ns, "diskName": diskNm})
	handle := gcp.DiskPath(project, zone, diskNm)
	step := stepper(t)
	var disk gcp.Disk
	var pvUID, pvcUID string

	step("up creates the labeled disk", func(t *testing.T) {
		if _, err := stack.Up(ctx, optup.ProgressStreams(testLog{T: t})); err != nil {
			t.Fatal(err)
		}
		disk = simDisk(t, gce, project, diskNm)
		wantDeep(t, "disk labels", disk.Labels, map[string]string{"app": "loklak", "env": "dev"})
		pvUID = kubectlJSON(t, "get", "pv", ns+"-dump").str("metadata.uid")
		pvcUID = kubectlJSON(t, "-n", ns, "get", "pvc", "dump").str("metadata.uid")
	})

	step("someone adds a label by hand: the fingerprint changes", func(t *testing.T) {
		edited, err := gce.EditDiskLabels(handle, func(l map[string]string) { l["owner"] = "ops" })
		if err != nil {
			t.Fatal(err)
		}
		if edited.LabelFingerprint == disk.LabelFingerprint {
			t.Fatalf("the hand edit kept the fingerprint %q", edited.LabelFingerprint)
		}
		disk = edited
	})

	// The program asks for one more label, as `pulumi config set --path 'diskLabels[2]' team=data` does.
	if err := stack.SetConfigWithOptions(ctx, "diskLabels[2]", auto.ConfigValue{Value: "team=data"}, &auto.ConfigOptions{Path: true}); err != nil {
		t.Fatal(err)
	}

	step("a plain up fails with the 412 and changes nothing", func(t *testing.T) {
		wantSteps(t, previewChanges(t, stack), []string{"update gcp:compute/disk:Disk::dump-disk"})
		calls := callCount(t, gce)
		var out strings.Builder
		_, err := stack.Up(ctx, optup.ProgressStreams(&out))
		if err == nil {
			t.Fatalf("up after a hand edit of the labels succeeded:\n%s", out.String())
		}
		msg := out.String() + err.Error()
		if !strings.Contains(msg, staleFingerprint) {
			t.Fatalf("the user does not see the 412:\n%s", msg)
		}
		t.Logf("the engine says: %s", lineWith(msg, "Error 412"))
		// The refused setLabels, sent with the state's fingerprint, is the only change the stack asked for.
		wantCalls(t, gce, calls, []string{"POST " + handle + "/setLabels"})
		after := simDisk(t, gce, project, diskNm)
		want(t, "disk ID", after.ID, disk.ID)
		want(t, "disk size", after.SizeGB, disk.SizeGB)
		wantDeep(t, "disk labels (as edited by hand)", after.Labels, map[string]string{"app": "loklak", "env": "dev", "owner": "ops"})
		want(t, "fingerprint", after.LabelFingerprint, disk.LabelFingerprint)
		assertStorageKept(t, ns, pvUID, pvcUID)
	})

	step("up --refresh converges and keeps the hand-made label", func(t *testing.T) {
		calls := callCount(t, gce)
		if _, err := stack.Up(ctx, optup.Refresh(), optup.ProgressStreams(testLog{T: t})); err != nil {
			t.Fatal(err)
		}
		wantCalls(t, gce, calls, []string{"POST " + handle + "/setLabels"})
		after := simDisk(t, gce, project, diskNm)
		want(t, "disk ID", after.ID, disk.ID)
		wantDeep(t, "disk labels", after.Labels, map[string]string{"app": "loklak", "env": "dev", "owner": "ops", "team": "data"})
		assertStorageKept(t, ns, pvUID, pvcUID)
	})

	step("a following preview plans nothing", func(t *testing.T) {
		wantSteps(t, previewChanges(t, stack), nil)
	})
}
