//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/loklak/loklak-dumps/internal/recorder"
	"github.com/loklak/loklak-dumps/internal/stackconfig"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
)

// Bad config through the real engine: the user sees which key, which value and what is allowed, and
// nothing is created, neither in the state nor in the cluster.
func TestBadConfigThroughTheEngine(t *testing.T) {
	ctx := context.Background()
	d := newDriver(t)
	values := localValues(t, map[string]string{"replicas": "2", "diskSizeGb": "5", "namespace": "e2e-bad"})
	stack, err := d.Stack(ctx, "e2e-bad", values, map[string]string{"kubeconfig": cp.Kubeconfig})
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	_, err = stack.Up(ctx, optup.ProgressStreams(&out))
	if err == nil {
		t.Fatal("up accepted replicas=2 and diskSizeGb=5")
	}
	t.Logf("the user sees:\n%s", out.String())
	seen := out.String() + err.Error()
	for _, part := range []string{
		// One engine diagnostic per bad key.
		`error: config loklak-dumps:replicas = "2": must be an integer from 0 to 1`, "ReadWriteOnce",
		`error: config loklak-dumps:diskSizeGb = "5": must be an integer from 10 to 65536`,
		"2 problem(s), each reported above; nothing was changed",
	} {
		if !strings.Contains(seen, part) {
			t.Errorf("the user does not see %q in:\n%s", part, seen)
		}
	}
	state, err := stack.Export(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var deployment struct {
		Resources []struct{ Type string } `json:"resources"`
	}
	if err := json.Unmarshal(state.Deployment, &deployment); err != nil {
		t.Fatal(err)
	}
	for _, r := range deployment.Resources {
		if r.Type != "pulumi:pulumi:Stack" {
			t.Errorf("state holds %s after a refused config", r.Type)
		}
	}
	if exists(t, "namespace", "e2e-bad") {
		t.Errorf("namespace e2e-bad was created")
	}
}

// What dev and prod would send, taken from the program under mocks, must pass the real API server's
// validation and admission (kubectl apply --dry-run=server).
func TestStackObjectsPassServerSideDryRun(t *testing.T) {
	ctx := context.Background()
	for _, stack := range []string{"dev", "prod"} {
		t.Run(stack, func(t *testing.T) {
			_, values, err := stackconfig.Load(repoDir(t), stack)
			if err != nil {
				t.Fatal(err)
			}
			rec, err := recorder.Run(t, "loklak-dumps", stack, values, recorder.Cluster{}.Program)
			if err != nil {
				t.Fatal(err)
			}
			items := rec.Manifests()
			var names []string
			for _, m := range items {
				o := object(m)
				names = append(names, strings.ToLower(o.str("kind"))+"*/"+o.str("metadata.name"))
			}
			if len(items) < 5 {
				t.Fatalf("only %d Kubernetes objects recorded", len(items))
			}
			// A dry run does not create the namespace, so the namespaced objects need it to exist.
			ns := values["namespace"]
			if !exists(t, "namespace", ns) {
				if _, err := cp.Kubectl(ctx, "create", "namespace", ns); err != nil {
					t.Fatal(err)
				}
				// Wait until it is gone: the dev and prod tests create objects in the same namespaces.
				t.Cleanup(func() {
					if _, err := cp.Kubectl(ctx, "delete", "namespace", ns, "--timeout=120s"); err != nil {
						t.Error(err)
					}
				})
			}
			list, err := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "List", "items": items})
			if err != nil {
				t.Fatal(err)
			}
			out, err := cp.KubectlInput(ctx, list, "apply", "--dry-run=server", "-f", "-")
			if err != nil {
				t.Fatalf("the API server refused %s's objects: %v", stack, err)
			}
			// kubectl prints one "kind[.group]/name ... (server dry run)" line per object accepted.
			accepted := map[string]bool{}
			for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				ref, _, _ := strings.Cut(line, " ")
				kind, name, _ := strings.Cut(ref, "/")
				kind, _, _ = strings.Cut(kind, ".")
				if strings.HasSuffix(line, "(server dry run)") {
					accepted[kind+"*/"+name] = true
				}
			}
			for _, name := range names {
				if !accepted[name] {
					t.Errorf("dry run did not accept %s:\n%s", name, out)
				}
			}
		})
	}
}
