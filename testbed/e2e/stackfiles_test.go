//go:build e2e

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loklak/loklak-dumps/testbed/harness"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
)

// `pulumi preview --stack NAME` with each committed stack file, as a user runs it on a fresh clone with
// the ambient kubeconfig: the real CLI's stack-config validation passes and the program runs.
func TestEveryCommittedStackPreviews(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(repoDir(t), "Pulumi.*.yaml"))
	if err != nil || len(files) < 3 {
		t.Fatalf("stack files: %v %v", files, err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "Pulumi."), ".yaml")
		t.Run(name, func(t *testing.T) {
			d := newDriver(t)
			// prod adopts data-dump-disk and its static address, and the preview reads both: they must exist.
			gce := openGCE(t, d)
			putProdDisk(t, gce, 100)
			putProdAddress(t, gce)
			// prod only labels its namespace (createNamespace: false), and the program refuses one that is
			// missing, as on a fresh cluster.
			ensureNamespace(t, "web")
			stack, err := d.CommittedStack(context.Background(), name, nil)
			if err != nil {
				t.Fatal(err)
			}
			if planned := previewChanges(t, stack); len(planned) < 8 {
				t.Errorf("the preview of %s plans only %q", name, planned)
			}
		})
	}
}

// The same path refuses what the CLI refuses, before the program runs: proof that the validation above
// is the CLI's own (a stack file without the required image).
func TestTheCLIValidatesStackConfig(t *testing.T) {
	repo := t.TempDir()
	for _, f := range []string{"Pulumi.yaml", "Pulumi.dev.yaml"} {
		data, err := os.ReadFile(filepath.Join(repoDir(t), f))
		if err != nil {
			t.Fatal(err)
		}
		if f == "Pulumi.dev.yaml" {
			var kept []string
			for _, line := range strings.Split(string(data), "\n") {
				if !strings.HasPrefix(line, "  loklak-dumps:image:") {
					kept = append(kept, line)
				}
			}
			data = []byte(strings.Join(kept, "\n"))
		}
		if err := os.WriteFile(filepath.Join(repo, f), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	d := newDriver(t)
	d.RepoDir = repo
	stack, err := d.CommittedStack(context.Background(), "dev", nil)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	_, err = harness.PreviewSteps(context.Background(), stack, optpreview.ProgressStreams(&out), optpreview.ErrorProgressStreams(&out))
	if err == nil || !strings.Contains(out.String()+err.Error(), "Stack 'dev' is missing configuration value 'image'") {
		t.Errorf("the CLI did not refuse a stack without image: %v\n%s", err, out.String())
	}
}

// A stack without a kubeconfig of its own, run by a driver without an ambient one, fails: it does not
// find the developer's ~/.kube/config, even when that file names a reachable cluster (here, the loopback
// one, put where client-go would look if KUBECONFIG were unset).
func TestNoFallbackToTheDevelopersKubeconfig(t *testing.T) {
	home := t.TempDir()
	stored, err := os.ReadFile(cp.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(home, ".kube"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".kube", "config"), stored, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOME", home)
	d := newDriver(t)
	d.AmbientKubeconfig = ""
	stack, err := d.Stack(context.Background(), "no-fallback", localValues(t, map[string]string{"namespace": "no-fallback"}), nil)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	_, err = stack.Up(context.Background(), optup.ProgressStreams(&out))
	if err == nil {
		t.Fatal("up found a cluster without any kubeconfig of its own")
	}
	if exists(t, "namespace", "no-fallback") {
		t.Errorf("the stack reached the cluster named only by ~/.kube/config")
	}
	t.Logf("the engine says: %s", lineWith(out.String(), "error"))
}
