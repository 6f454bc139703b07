//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// strayVolume is a PV that someone reserved for the stack's claim by hand: a volume for the same claim,
// in the same class and zone, of the same size, on another disk.
func strayVolume(ns string) string {
	return fmt.Sprintf(`{"apiVersion": "v1", "kind": "PersistentVolume",
 "metadata": {"name": "%[1]s-stray"},
 "spec": {"capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteOnce"],
  "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "%[1]s-dump",
  "claimRef": {"namespace": "%[1]s", "name": "dump"},
  "csi": {"driver": "pd.csi.storage.gke.io", "volumeHandle": "projects/elsewhere/zones/%[2]s/disks/stray", "fsType": "ext4"},
  "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
   {"key": "topology.gke.io/zone", "operator": "In", "values": ["%[2]s"]}]}]}}}}`, ns, zone)
}

// A claim that Kubernetes binds to a volume other than the dumps volume stops the up before loklak
// starts, with an error naming both volumes; the runbook in docs/recovery.md ("A claim bound to another
// volume") brings the claim back onto the dumps volume.
//
// The stray binding is set up the one way the PV controller makes it deterministic: the dumps volume
// is Released (its claim was deleted by hand), and another volume is reserved for the claim. A new
// claim then matches only the stray one.
func TestClaimBoundElsewhereStopsTheUp(t *testing.T) {
	ctx := context.Background()
	const ns = "bind-stray"
	stack, _, _, pvUID, _ := faultStack(t, ns)
	for _, args := range [][]string{
		{"-n", ns, "delete", "deployment", "loklak-server", "--wait=true"},
		{"-n", ns, "delete", "pvc", "dump", "--wait=true", "--timeout=2m"},
		{"wait", "--for=jsonpath={.status.phase}=Released", "pv/" + ns + "-dump", "--timeout=60s"},
	} {
		if _, err := cp.Kubectl(ctx, args...); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cp.KubectlInput(ctx, []byte(strayVolume(ns)), "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	// Deleted without waiting: while the claim is bound to it, the pv-protection finalizer holds it until
	// the stack destroy removes the claim.
	t.Cleanup(func() { _, _ = cp.Kubectl(ctx, "delete", "pv", ns+"-stray", "--ignore-not-found", "--wait=false") })

	if _, err := stack.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	_, err := stack.Up(ctx)
	if err == nil {
		t.Fatal("up succeeded with the claim bound to another volume")
	}
	wantMessage := fmt.Sprintf("PersistentVolumeClaim %[1]s/dump is bound to PersistentVolume %[1]s-stray, not to %[1]s-dump, which holds the dumps", ns)
	if !strings.Contains(err.Error(), wantMessage) {
		t.Fatalf("up failed without saying which volumes: %v", err)
	}
	t.Logf("the user sees: %s", lineWith(err.Error(), "is bound to PersistentVolume"))
	want(t, "claim bound to (as the error says)", kubectlJSON(t, "-n", ns, "get", "pvc", "dump").str("spec.volumeName"), ns+"-stray")
	if exists(t, "-n", ns, "deployment", "loklak-server") {
		t.Errorf("the Deployment was created on a claim bound to another volume")
	}

	// docs/recovery.md, "A claim bound to another volume".
	for _, args := range [][]string{
		{"-n", ns, "delete", "pvc", "dump", "--wait=true"},
		{"patch", "pv", ns + "-dump", "--type", "json", "-p", `[{"op":"remove","path":"/spec/claimRef/uid"}]`},
	} {
		if _, err := cp.Kubectl(ctx, args...); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := stack.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := stack.Up(ctx); err != nil {
		t.Fatalf("the runbook's up: %v", err)
	}
	pv := kubectlJSON(t, "get", "pv", ns+"-dump")
	pvc := kubectlJSON(t, "-n", ns, "get", "pvc", "dump")
	want(t, "PV uid (the same dumps volume)", pv.str("metadata.uid"), pvUID)
	want(t, "claim bound to", pvc.str("spec.volumeName"), ns+"-dump")
	want(t, "PV claimRef is the new claim", pv.str("spec.claimRef.uid"), pvc.str("metadata.uid"))
	want(t, "the stray volume", kubectlJSON(t, "get", "pv", ns+"-stray").str("status.phase"), "Released")
	want(t, "Deployment available", kubectlJSON(t, "-n", ns, "get", "deployment", "loklak-server").get("status.availableReplicas"), any(float64(1)))
}

// A stack deployed when the claim named its volume (spec.volumeName) and had no selector, both
// immutable on a claim: the current program plans no replacement of the claim, only the new label on
// the PV, and the claim keeps its UID through the update.
func TestClaimThatNamedItsVolumeIsNotReplaced(t *testing.T) {
	ctx := context.Background()
	const ns = "bind-legacy"
	stack, _, _, pvUID, pvcUID := faultStack(t, ns)

	// Rewrite the state into what the earlier program left: the claim's inputs name the volume and
	// select nothing; the PV's inputs lack the label. The live objects say the same (the controller set
	// volumeName; the label is removed by hand).
	state, err := stack.Export(ctx)
	if err != nil {
		t.Fatal(err)
	}
	state.Deployment = rewriteInputs(t, state.Deployment, map[string]func(map[string]any){
		"kubernetes:core/v1:PersistentVolumeClaim": func(in map[string]any) {
			spec := in["spec"].(map[string]any)
			delete(spec, "selector")
			spec["volumeName"] = ns + "-dump"
		},
		"kubernetes:core/v1:PersistentVolume": func(in map[string]any) {
			delete(in["metadata"].(map[string]any)["labels"].(map[string]any), "loklak.org/dumps-volume")
		},
	})
	if err := stack.Import(ctx, state); err != nil {
		t.Fatal(err)
	}
	if _, err := cp.Kubectl(ctx, "label", "pv", ns+"-dump", "loklak.org/dumps-volume-"); err != nil {
		t.Fatal(err)
	}

	wantSteps(t, previewChanges(t, stack), []string{"update kubernetes:core/v1:PersistentVolume::dump"})
	if _, err := stack.Up(ctx); err != nil {
		t.Fatal(err)
	}
	assertStorageKept(t, ns, pvUID, pvcUID)
	labels, _ := kubectlJSON(t, "get", "pv", ns+"-dump").get("metadata.labels").(map[string]any)
	want(t, "PV label after the update", labels["loklak.org/dumps-volume"], any(ns+"-dump"))
	wantSteps(t, previewChanges(t, stack), nil)
}

// rewriteInputs applies edit to the inputs of each resource of the given types in an exported state:
// the engine's and the provider's copy.
func rewriteInputs(t *testing.T, deployment json.RawMessage, edits map[string]func(map[string]any)) json.RawMessage {
	t.Helper()
	var d map[string]any
	if err := json.Unmarshal(deployment, &d); err != nil {
		t.Fatal(err)
	}
	resources, _ := d["resources"].([]any)
	seen := map[string]bool{}
	for _, r := range resources {
		res := r.(map[string]any)
		typ, _ := res["type"].(string)
		if edit, ok := edits[typ]; ok {
			edit(res["inputs"].(map[string]any))
			// pulumi-kubernetes diffs against the inputs it keeps in its outputs, as __inputs.
			if outputs, ok := res["outputs"].(map[string]any); ok {
				if kept, ok := outputs["__inputs"].(map[string]any); ok {
					edit(kept)
				}
			}
			seen[typ] = true
		}
	}
	for typ := range edits {
		if !seen[typ] {
			t.Fatalf("no %s in the state", typ)
		}
	}
	out, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
