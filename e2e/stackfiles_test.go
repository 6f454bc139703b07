//go:build e2e

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loklak/loklak-dumps/gcestandin"
	"github.com/loklak/loklak-dumps/harness"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"
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
			// prod adopts data-dump-disk, and the preview reads it: it must exist.
			if _, err := openGCE(t, d).PutDisk(gcestandin.Disk{Name: prodDisk, Project: prodProject, Zone: zone, SizeGB: 100, Type: "pd-standard"}); err != nil {
				t.Fatal(err)
			}
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
