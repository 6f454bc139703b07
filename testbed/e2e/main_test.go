//go:build e2e

// Package e2e runs the program on the real Pulumi engine and the real Kubernetes provider against a real
// kube-apiserver on loopback (with kube-controller-manager, kube-scheduler, etcd, and kwok as the
// kubelet). Run it with `make e2e`, which builds the tools when the cache is cold.
//
// What is not real here: no GCP API (the disk is in external mode, so the PV names a handle nothing
// attaches), kwok instead of kubelets (pods go Running without a container runtime or a mount).
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/loklak/loklak-dumps/internal/recorder"
	"github.com/loklak/loklak-dumps/internal/stackconfig"
	"github.com/loklak/loklak-dumps/testbed/e2e/e2etest"
	"github.com/loklak/loklak-dumps/testbed/gke"
	"github.com/loklak/loklak-dumps/testbed/harness"
	"github.com/loklak/loklak-dumps/testbed/toolchain"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"
)

const zone = "us-central1-a"

var (
	tools toolchain.Tools
	cp    *gke.ControlPlane
)

// TestMain starts one control plane for the suite and stops it on success, failure or interrupt.
func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	if tools, err = toolchain.ToolsFromEnv(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "loklak-e2e-cluster-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	start := time.Now()
	cp, err = gke.StartControlPlane(context.Background(), tools, dir, gke.ControlPlaneOptions{Zone: zone})
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: control plane:", err)
		return 1
	}
	fmt.Printf("e2e: control plane ready in %.1f s at %s\n", time.Since(start).Seconds(), cp.Server)
	interrupted := make(chan os.Signal, 1)
	signal.Notify(interrupted, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-interrupted
		stopCluster()
		os.Exit(130)
	}()
	code := m.Run()
	if !stopCluster() {
		code = 1
	}
	if code == 0 {
		if err := os.RemoveAll(dir); err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
		}
	} else {
		fmt.Fprintln(os.Stderr, "e2e: control plane logs kept in", dir)
	}
	return code
}

// stopCluster stops the control plane and reports whether it released everything.
func stopCluster() bool {
	if err := cp.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: stopping the control plane:", err)
		return false
	}
	return true
}

// repoDir is the project root: Pulumi.yaml and the stack files.
func repoDir(t *testing.T) string {
	dir, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func newDriver(t *testing.T) harness.Driver {
	return harness.Driver{Tools: tools, RepoDir: repoDir(t), StateDir: t.TempDir(), Passphrase: "e2e-passphrase",
		AmbientKubeconfig: cp.Kubeconfig, GCEDir: t.TempDir()}
}

// localValues is the local stack's config (Pulumi.yaml defaults + Pulumi.local.yaml) with overrides.
func localValues(t *testing.T, overrides map[string]string) stackconfig.Values {
	_, values, err := stackconfig.Load(repoDir(t), "local")
	if err != nil {
		t.Fatal(err)
	}
	return values.With(overrides)
}

// object is a Kubernetes object as kubectl prints it in JSON.
type object map[string]any

func (o object) get(path string) any { return recorder.Lookup(o, path) }

func (o object) str(path string) string {
	s, _ := o.get(path).(string)
	return s
}

func kubectlJSON(t *testing.T, args ...string) object {
	t.Helper()
	out, err := cp.Kubectl(context.Background(), append(args, "-o", "json")...)
	if err != nil {
		t.Fatal(err)
	}
	var o object
	if err := json.Unmarshal(out, &o); err != nil {
		t.Fatal(err)
	}
	return o
}

// exists reports whether `kubectl get ARGS` finds the object.
func exists(t *testing.T, args ...string) bool {
	t.Helper()
	args = append([]string{"get"}, args...)
	out, err := cp.Kubectl(context.Background(), append(args, "--ignore-not-found", "-o", "name")...)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out)) != ""
}

// want is e2etest.Want.
func want[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	e2etest.Want(t, what, got, want)
}

// loklakPod returns the node and phase of the loklak pod that is not being deleted, and the claim it mounts.
func loklakPod(t *testing.T, ns string) (node, phase, claim string) {
	t.Helper()
	pods := kubectlJSON(t, "-n", ns, "get", "pods", "-l", "app.kubernetes.io/name=loklak-server")
	items, _ := pods.get("items").([]any)
	for _, it := range items {
		p := object(it.(map[string]any))
		if p.get("metadata.deletionTimestamp") == nil {
			return p.str("spec.nodeName"), p.str("status.phase"), p.str("spec.volumes.0.persistentVolumeClaim.claimName")
		}
	}
	return "", "", ""
}

// waitUntil is e2etest.WaitUntil: up to three minutes, polled every second.
func waitUntil(t *testing.T, what string, ok func() bool) { t.Helper(); e2etest.WaitUntil(t, what, ok) }

// changed returns the steps that are not "same", as "op type::name", sorted.
func changed(steps []harness.Step) []string {
	var out []string
	for _, s := range steps {
		if s.Op != "same" {
			out = append(out, fmt.Sprintf("%s %s::%s", s.Op, s.Type, s.Name))
		}
	}
	slices.Sort(out)
	return out
}

// testLog shows the engine's progress in the test's log.
type testLog = e2etest.Log

func wantDeep(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}

// stateResource is a resource as the stack's state records it.
type stateResource struct {
	URN     string `json:"urn"`
	Type    string `json:"type"`
	ID      string `json:"id"`
	Protect bool   `json:"protect"`
}

func stateResources(t *testing.T, stack auto.Stack) []stateResource {
	t.Helper()
	state, err := stack.Export(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var deployment struct {
		Resources []stateResource `json:"resources"`
	}
	if err := json.Unmarshal(state.Deployment, &deployment); err != nil {
		t.Fatal(err)
	}
	return deployment.Resources
}

// protectedInState reports whether the state holds exactly one resource of typ, protected.
func protectedInState(t *testing.T, stack auto.Stack, typ string) bool {
	t.Helper()
	var found []stateResource
	for _, r := range stateResources(t, stack) {
		if r.Type == typ {
			found = append(found, r)
		}
	}
	return len(found) == 1 && found[0].Protect
}

// stateTypes lists the types of the state's resources, leaving out the stack and the providers.
func stateTypes(t *testing.T, stack auto.Stack) []string {
	t.Helper()
	var types []string
	for _, r := range stateResources(t, stack) {
		if r.Type != "pulumi:pulumi:Stack" && !strings.HasPrefix(r.Type, "pulumi:providers:") {
			types = append(types, r.Type)
		}
	}
	return types
}
