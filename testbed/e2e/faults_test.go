//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/loklak/loklak-dumps/internal/stackconfig"
	"github.com/loklak/loklak-dumps/testbed/e2e/e2etest"
	"github.com/loklak/loklak-dumps/testbed/gke"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optrefresh"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
)

// faultStack brings up the local stack in its own namespace and returns it with its config, and the
// UIDs of its PV and PVC, which every fault test must find unchanged at the end.
func faultStack(t *testing.T, name string) (auto.Stack, stackconfig.Values, func(stackconfig.Values) auto.Stack, string, string) {
	t.Helper()
	ctx := context.Background()
	d := newDriver(t)
	values := localValues(t, map[string]string{"namespace": name, "diskName": name + "-data"})
	restack := func(v stackconfig.Values) auto.Stack {
		t.Helper()
		s, err := d.Stack(ctx, name, v, map[string]string{"kubeconfig": cp.Kubeconfig})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	stack := restack(values)
	if _, err := stack.Up(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := stack.Destroy(ctx); err != nil {
			t.Errorf("clean-up destroy: %v", err)
		}
	})
	pv := kubectlJSON(t, "get", "pv", name+"-dump")
	pvc := kubectlJSON(t, "-n", name, "get", "pvc", "dump")
	return stack, values, restack, pv.str("metadata.uid"), pvc.str("metadata.uid")
}

// Ten image updates in a row: every rollout completes, and storage is never replaced.
func TestTenImageUpdatesKeepStorage(t *testing.T) {
	ctx := context.Background()
	const ns = "fault-images"
	_, values, restack, pvUID, pvcUID := faultStack(t, ns)
	for i := 1; i <= 10; i++ {
		image := fmt.Sprintf("loklak/loklak_server:update-%d", i)
		s := restack(values.With(map[string]string{"image": image}))
		res, err := s.Up(ctx)
		if err != nil {
			t.Fatalf("update %d: %v", i, err)
		}
		if c := res.Summary.ResourceChanges; c == nil || (*c)["update"] != 1 || (*c)["replace"] != 0 || (*c)["delete"] != 0 || (*c)["create"] != 0 {
			t.Fatalf("update %d changed %v, want exactly one update", i, res.Summary.ResourceChanges)
		}
		dep := kubectlJSON(t, "-n", ns, "get", "deployment", "loklak-server")
		want(t, fmt.Sprintf("update %d image", i), dep.str("spec.template.spec.containers.0.image"), image)
		want(t, fmt.Sprintf("update %d available", i), dep.get("status.availableReplicas"), any(float64(1)))
		want(t, fmt.Sprintf("update %d strategy", i), dep.str("spec.strategy.type"), "Recreate")
	}
	assertStorageKept(t, ns, pvUID, pvcUID)
}

// Two `up`s on the same stack at once, from two workspaces on one backend (two people, or two CI jobs):
// the backend's lock refuses the second with a clear message while the first holds it, the first makes
// exactly its one update, and the state stays consistent (a following preview plans nothing).
func TestConcurrentUpsAreSerializedByTheLock(t *testing.T) {
	ctx := context.Background()
	const ns = "fault-lock"
	_, values, restack, pvUID, pvcUID := faultStack(t, ns)
	first := restack(values.With(map[string]string{"image": "loklak/loklak_server:lock-a"}))
	other := newDriver(t)
	// The same StateDir, so the same backend; another workspace, so another stack file.
	other.StateDir, other.Workspace = filepath.Dir(first.Workspace().WorkDir()), "workspace-b"
	second, err := other.Stack(ctx, ns, values.With(map[string]string{"image": "loklak/loklak_server:lock-b"}), map[string]string{"kubeconfig": cp.Kubeconfig})
	if err != nil {
		t.Fatal(err)
	}

	// The second up starts once the first has begun its Deployment step, so the first holds the lock.
	secondErr := make(chan error, 1)
	atDeployment := onceAtDeploymentStep(func() {
		_, err := second.Up(ctx)
		secondErr <- err
	})
	res, err := first.Up(ctx, optup.EventStreams(atDeployment))
	if err != nil {
		t.Fatalf("the first up failed: %v", err)
	}
	if c := res.Summary.ResourceChanges; c == nil || (*c)["update"] != 1 || (*c)["replace"] != 0 || (*c)["create"] != 0 || (*c)["delete"] != 0 {
		t.Errorf("the first up changed %v, want exactly its one update", res.Summary.ResourceChanges)
	}
	select {
	case err := <-secondErr:
		if err == nil || !strings.Contains(err.Error(), "the stack is currently locked") {
			t.Fatalf("the second up was not refused by the lock: %v", err)
		}
		t.Logf("the second user sees: %s", lastLines(err.Error(), 3))
	case <-time.After(time.Minute):
		t.Fatal("the second up never ran: no Deployment step in the first")
	}
	wantSteps(t, previewChanges(t, first), nil)
	want(t, "image", kubectlJSON(t, "-n", ns, "get", "deployment", "loklak-server").str("spec.template.spec.containers.0.image"), "loklak/loklak_server:lock-a")
	assertStorageKept(t, ns, pvUID, pvcUID)
}

// Someone deletes the Deployment by hand: refresh notices, up recreates it on the same claim.
func TestHandDeletedDeploymentIsRestored(t *testing.T) {
	ctx := context.Background()
	const ns = "fault-deploy"
	stack, _, _, pvUID, pvcUID := faultStack(t, ns)
	if _, err := cp.Kubectl(ctx, "-n", ns, "delete", "deployment", "loklak-server", "--wait=true"); err != nil {
		t.Fatal(err)
	}
	if _, err := stack.Refresh(ctx, optrefresh.ExpectNoChanges()); err == nil {
		t.Errorf("refresh with --expect-no-changes did not notice the deleted Deployment")
	}
	if _, err := stack.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := stack.Up(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c := res.Summary.ResourceChanges; c == nil || (*c)["create"] != 1 {
		t.Errorf("up changed %v, want the Deployment created", res.Summary.ResourceChanges)
	}
	want(t, "Deployment available", kubectlJSON(t, "-n", ns, "get", "deployment", "loklak-server").get("status.availableReplicas"), any(float64(1)))
	assertStorageKept(t, ns, pvUID, pvcUID)
}

// Someone deletes the PVC by hand: the PV turns Released and keeps the data (Retain). The documented
// recovery (README: clear the PV's stale claimRef.uid, then refresh + up) binds a new claim to the same PV.
func TestHandDeletedClaimRebindsToTheSameVolume(t *testing.T) {
	ctx := context.Background()
	const ns = "fault-claim"
	stack, _, _, pvUID, oldPVC := faultStack(t, ns)
	// The claim is in use; it goes once the pod is gone, as when someone deletes both.
	if _, err := cp.Kubectl(ctx, "-n", ns, "delete", "deployment", "loklak-server", "--wait=true"); err != nil {
		t.Fatal(err)
	}
	if _, err := cp.Kubectl(ctx, "-n", ns, "delete", "pvc", "dump", "--wait=true", "--timeout=2m"); err != nil {
		t.Fatal(err)
	}
	// The PV controller marks the volume Released once it sees the claim gone.
	if _, err := cp.Kubectl(ctx, "wait", "--for=jsonpath={.status.phase}=Released", "pv/"+ns+"-dump", "--timeout=60s"); err != nil {
		t.Fatal(err)
	}
	pv := kubectlJSON(t, "get", "pv", ns+"-dump")
	want(t, "PV uid (the volume, and so the disk, remains)", pv.str("metadata.uid"), pvUID)

	// README, "Recovering a Released volume".
	if _, err := cp.Kubectl(ctx, "patch", "pv", ns+"-dump", "--type", "json", "-p", `[{"op":"remove","path":"/spec/claimRef/uid"}]`); err != nil {
		t.Fatal(err)
	}
	if _, err := stack.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := stack.Up(ctx); err != nil {
		t.Fatal(err)
	}
	pv = kubectlJSON(t, "get", "pv", ns+"-dump")
	pvc := kubectlJSON(t, "-n", ns, "get", "pvc", "dump")
	want(t, "PV uid", pv.str("metadata.uid"), pvUID)
	want(t, "PV phase", pv.str("status.phase"), "Bound")
	want(t, "PVC phase", pvc.str("status.phase"), "Bound")
	want(t, "PV claimRef is the new claim", pv.str("spec.claimRef.uid"), pvc.str("metadata.uid"))
	if pvc.str("metadata.uid") == oldPVC {
		t.Errorf("the claim was not recreated")
	}
	want(t, "Deployment available", kubectlJSON(t, "-n", ns, "get", "deployment", "loklak-server").get("status.availableReplicas"), any(float64(1)))
}

// lastLines is e2etest.LastLines.
func lastLines(s string, n int) string { return e2etest.LastLines(s, n) }

// The engine is killed (SIGKILL) in the middle of an update. It leaves a stale lock that refuses the next
// up. The recovery in docs/recovery.md: `pulumi cancel` (removes the lock), `pulumi refresh
// --clear-pending-creates` (clears a pending operation, if the engine left one), then `pulumi up`. It
// converges with nothing replaced.
func TestEngineKilledMidUpdateRecovers(t *testing.T) {
	ctx := context.Background()
	const ns = "fault-kill"
	_, values, restack, pvUID, pvcUID := faultStack(t, ns)
	stack := restack(values.With(map[string]string{"image": "loklak/loklak_server:killed-mid-update"}))

	killed := make(chan int, 1)
	atDeployment := onceAtDeploymentStep(func() {
		clis := gke.ChildProcesses(os.Getpid(), "pulumi")
		if len(clis) != 1 {
			t.Errorf("want one pulumi CLI child, found %v", clis)
			return
		}
		// A killed engine orphans its provider plugin, as it would for a user: end it afterwards.
		plugins := gke.ChildProcesses(clis[0], "pulumi-resource")
		t.Cleanup(func() {
			for _, p := range plugins {
				_ = syscall.Kill(p, syscall.SIGKILL)
			}
		})
		_ = syscall.Kill(clis[0], syscall.SIGKILL)
		killed <- clis[0]
	})
	if _, err := stack.Up(ctx, optup.EventStreams(atDeployment)); err == nil {
		t.Fatal("up finished although its engine was killed")
	}
	select {
	case <-killed:
	case <-time.After(time.Minute):
		t.Fatal("the engine was never killed: no Deployment step")
	}
	_, err := stack.Up(ctx)
	if err != nil && strings.Contains(err.Error(), "failed to load checkpoint: EOF") {
		// docs/recovery.md: the kill landed while the file backend rewrote a metadata sidecar, which it
		// truncates first (seen once so far). The documented command removes the empty one.
		backend := filepath.Join(filepath.Dir(stack.Workspace().WorkDir()), "backend")
		removed, ferr := exec.Command("find", backend, "-name", "*.attrs", "-empty", "-print", "-delete").CombinedOutput()
		if ferr != nil || len(removed) == 0 {
			t.Fatalf("find -empty -delete: %v, removed %q", ferr, removed)
		}
		t.Logf("the kill left empty metadata sidecars; removed: %s", removed)
		_, err = stack.Up(ctx)
	}
	if err == nil || !strings.Contains(err.Error(), "locked") {
		t.Fatalf("after the kill, up was not refused by the stale lock: %v", err)
	}

	// docs/recovery.md, "When the engine was killed".
	if err := stack.Cancel(ctx); err != nil {
		t.Fatalf("pulumi cancel: %v", err)
	}
	// Whether a pending operation was left depends on how far the engine got; the recovery does not
	// depend on it (refresh --clear-pending-creates clears one if there is one). Say what there was.
	state, err := stack.Export(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var deployment struct {
		Pending []struct {
			Type     string `json:"type"`
			Resource struct {
				Type string `json:"type"`
			} `json:"resource"`
		} `json:"pending_operations"`
	}
	if err := json.Unmarshal(state.Deployment, &deployment); err != nil {
		t.Fatal(err)
	}
	t.Logf("pending operations after the kill: %+v", deployment.Pending)
	if _, err := stack.Refresh(ctx, optrefresh.ClearPendingCreates()); err != nil {
		t.Fatalf("pulumi refresh --clear-pending-creates: %v", err)
	}
	res, err := stack.Up(ctx)
	if err != nil {
		t.Fatalf("up after recovery: %v", err)
	}
	if c := res.Summary.ResourceChanges; c != nil && ((*c)["replace"] != 0 || (*c)["delete"] != 0) {
		t.Errorf("recovery replaced or deleted resources: %v", *c)
	}
	dep := kubectlJSON(t, "-n", ns, "get", "deployment", "loklak-server")
	want(t, "image after recovery", dep.str("spec.template.spec.containers.0.image"), "loklak/loklak_server:killed-mid-update")
	want(t, "available after recovery", dep.get("status.availableReplicas"), any(float64(1)))
	assertStorageKept(t, ns, pvUID, pvcUID)
}

// onceAtDeploymentStep returns an event stream for optup.EventStreams that calls f once, as soon as the
// engine starts the Deployment's step: the moment a fault hurts most.
func onceAtDeploymentStep(f func()) chan events.EngineEvent {
	ch := make(chan events.EngineEvent)
	go func() {
		done := false
		for ev := range ch { // the Automation API closes it when the operation ends
			if !done && ev.ResourcePreEvent != nil && ev.ResourcePreEvent.Metadata.Type == "kubernetes:apps/v1:Deployment" {
				done = true
				f()
			}
		}
	}()
	return ch
}

// The node goes away and a new one appears in the same zone: the pod is rescheduled there on the same
// claim. With no node in the disk's zone the pod stays Pending (the PV's zone affinity); nothing
// recreates storage.
func TestNodeReplacementKeepsTheClaim(t *testing.T) {
	ctx := context.Background()
	const ns = "fault-node"
	_, _, _, pvUID, pvcUID := faultStack(t, ns)
	// Whatever happens below, leave the suite a Ready node in the zone and no other.
	t.Cleanup(func() {
		_, _ = cp.Kubectl(ctx, "delete", "node", "kwok-node-elsewhere", "kwok-node-1", "--ignore-not-found")
		if err := cp.AddNode(ctx, gke.NodeName, zone); err != nil {
			t.Error(err)
		}
	})
	podNode := func() (string, string) {
		node, phase, _ := loklakPod(t, ns)
		return node, phase
	}

	if err := cp.AddNode(ctx, "kwok-node-1", zone); err != nil {
		t.Fatal(err)
	}
	if _, err := cp.Kubectl(ctx, "delete", "node", gke.NodeName); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the pod to run on kwok-node-1", func() bool {
		node, phase := podNode()
		return node == "kwok-node-1" && phase == "Running"
	})
	assertStorageKept(t, ns, pvUID, pvcUID)

	// Only a node in another zone: the pod cannot follow the disk there.
	if err := cp.AddNode(ctx, "kwok-node-elsewhere", "europe-west1-b"); err != nil {
		t.Fatal(err)
	}
	if _, err := cp.Kubectl(ctx, "delete", "node", "kwok-node-1"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the pod to be Pending", func() bool {
		node, phase := podNode()
		return node == "" && phase == "Pending"
	})
	events := kubectlJSON(t, "-n", ns, "get", "events", "--field-selector", "reason=FailedScheduling")
	if !strings.Contains(fmt.Sprint(events.get("items")), "didn't match PersistentVolume's node affinity") {
		t.Errorf("FailedScheduling does not name the zone affinity: %v", events.get("items"))
	}
	assertStorageKept(t, ns, pvUID, pvcUID)
}

// The API server is stopped in the middle of an update and started again: the interrupted up fails, and
// a retried up converges with nothing replaced.
func TestAPIServerOutageDuringUpRecovers(t *testing.T) {
	ctx := context.Background()
	const ns = "fault-api"
	_, values, restack, pvUID, pvcUID := faultStack(t, ns)
	stack := restack(values.With(map[string]string{"image": "loklak/loklak_server:api-outage"}))

	restarted := make(chan error, 1)
	atDeployment := onceAtDeploymentStep(func() {
		restart, err := cp.StopProcess("kube-apiserver")
		if err == nil {
			time.Sleep(5 * time.Second)
			err = restart()
		}
		restarted <- err
	})
	upCtx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	_, firstErr := stack.Up(upCtx, optup.EventStreams(atDeployment))
	select {
	case err := <-restarted:
		if err != nil {
			t.Fatalf("stopping or restarting kube-apiserver: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the API server was never stopped: no Deployment step")
	}
	if firstErr == nil {
		t.Errorf("the up whose API server went away in its Deployment step reported success")
	}
	t.Logf("the interrupted up: %v", firstErr)
	if err := cp.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	var res auto.UpResult
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		if res, err = stack.Up(ctx); err == nil {
			break
		}
		t.Logf("retry %d: %v", attempt, lastLines(err.Error(), 2))
		if strings.Contains(err.Error(), "locked") {
			_ = stack.Cancel(ctx)
		}
	}
	if err != nil {
		t.Fatalf("retried up did not converge: %v", err)
	}
	if c := res.Summary.ResourceChanges; c != nil && ((*c)["replace"] != 0 || (*c)["delete"] != 0) {
		t.Errorf("recovery replaced or deleted resources: %v", *c)
	}
	// The retried up can return before the rollout has finished: right after the outage the provider may
	// read a Progressing condition the Deployment controller has not refreshed yet (seen in about one run
	// in three). The rollout then finishes by itself; `kubectl rollout status` is how to confirm it
	// (docs/data-safety.md says so).
	if av := kubectlJSON(t, "-n", ns, "get", "deployment", "loklak-server").get("status.availableReplicas"); av == nil {
		t.Logf("the retried up returned before the new pod was available")
	}
	if _, err := cp.Kubectl(ctx, "-n", ns, "rollout", "status", "deployment/loklak-server", "--timeout=120s"); err != nil {
		t.Fatalf("the rollout did not finish after the retried up: %v", err)
	}
	dep := kubectlJSON(t, "-n", ns, "get", "deployment", "loklak-server")
	want(t, "image", dep.str("spec.template.spec.containers.0.image"), "loklak/loklak_server:api-outage")
	want(t, "available", dep.get("status.availableReplicas"), any(float64(1)))
	assertStorageKept(t, ns, pvUID, pvcUID)
}

// The file backend's empty metadata sidecar, as a SIGKILL can leave it (docs/recovery.md): every command
// fails with "failed to load checkpoint: EOF" until the documented find removes it, and then the stack
// is whole (a preview plans nothing).
func TestEmptyBackendSidecarIsRecovered(t *testing.T) {
	ctx := context.Background()
	stack, _, _, _, _ := faultStack(t, "fault-attrs")
	backend := filepath.Join(filepath.Dir(stack.Workspace().WorkDir()), "backend")
	sidecars, err := filepath.Glob(filepath.Join(backend, ".pulumi", "stacks", "*", "fault-attrs.json.attrs"))
	if err != nil || len(sidecars) != 1 {
		t.Fatalf("the stack's metadata sidecar: %v %v", sidecars, err)
	}
	if err := os.Truncate(sidecars[0], 0); err != nil { // what setAttrs leaves when killed after os.Create
		t.Fatal(err)
	}
	if _, err := stack.Preview(ctx); err == nil || !strings.Contains(err.Error(), "failed to load checkpoint: EOF") {
		t.Fatalf("preview with an empty sidecar: %v, want failed to load checkpoint: EOF", err)
	}
	removed, err := exec.Command("find", backend, "-name", "*.attrs", "-empty", "-print", "-delete").CombinedOutput()
	if err != nil {
		t.Fatalf("find: %v %s", err, removed)
	}
	want(t, "removed", strings.TrimSpace(string(removed)), sidecars[0])
	wantSteps(t, previewChanges(t, stack), nil)
}
