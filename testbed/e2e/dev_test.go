//go:build e2e

package e2e

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/loklak/loklak-dumps/testbed/gcp"
	"github.com/loklak/loklak-dumps/testbed/harness"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
)

// The dev stack as committed (Pulumi.dev.yaml byte for byte), on the real CLI, engine and Kubernetes
// provider, with Compute Engine simulated by the stand-in GCP plugin (gcestandin). The cluster
// connection is the only thing the test supplies: the ambient KUBECONFIG names the loopback cluster.
func TestDevStackAsCommitted(t *testing.T) {
	const (
		project = "loklak-server"
		diskNm  = "loklak-dev-data"
		ns      = "loklak-dev"
		pv      = "loklak-dev-dump"
	)
	ctx := context.Background()
	d := newDriver(t)
	gce := openGCE(t, d)
	stack, err := d.CommittedStack(ctx, "dev", nil)
	if err != nil {
		t.Fatal(err)
	}
	handle := gcp.DiskPath(project, zone, diskNm)
	var disk gcp.Disk
	var pvUID, pvcUID string
	step := stepper(t)

	step("up from empty creates the disk, then the chain on it", func(t *testing.T) {
		res, err := stack.Up(ctx, optup.ProgressStreams(testLog{T: t}))
		if err != nil {
			t.Fatal(err)
		}
		disk = simDisk(t, gce, project, diskNm)
		want(t, "disk size", disk.SizeGB, 10)
		want(t, "disk type", disk.Type, "pd-standard")
		wantDeep(t, "disk labels", disk.Labels, map[string]string{"app": "loklak", "env": "dev"})
		want(t, "output volumeHandle", res.Outputs["volumeHandle"].Value, any(handle))
		want(t, "output diskId", res.Outputs["diskId"].Value, any(handle))
		p := kubectlJSON(t, "get", "pv", pv)
		want(t, "PV handle names the simulated disk", p.str("spec.csi.volumeHandle"), handle)
		want(t, "PV capacity", p.str("spec.capacity.storage"), "10Gi")
		want(t, "PV phase", p.str("status.phase"), "Bound")
		c := kubectlJSON(t, "-n", ns, "get", "pvc", "dump")
		want(t, "PVC phase", c.str("status.phase"), "Bound")
		want(t, "PV claimRef.uid is our PVC", p.str("spec.claimRef.uid"), c.str("metadata.uid"))
		pvUID, pvcUID = p.str("metadata.uid"), c.str("metadata.uid")
		dep := kubectlJSON(t, "-n", ns, "get", "deployment", "loklak-server")
		want(t, "Deployment available", dep.get("status.availableReplicas"), any(float64(1)))
		want(t, "protected in the state", protectedInState(t, stack, "gcp:compute/disk:Disk"), true)
	})

	step("a second preview plans nothing", func(t *testing.T) {
		wantSteps(t, previewChanges(t, stack), nil)
	})

	step("another kubeconfig for the same cluster replaces nothing", func(t *testing.T) {
		stored, err := os.ReadFile(cp.Kubeconfig)
		if err != nil {
			t.Fatal(err)
		}
		// The same cluster under another address, as after a GKE IP rotation: the serving certificate
		// names both. Without clusterIdentifier the provider would be replaced, and every object with it.
		rotated := strings.Replace(string(stored), "https://127.0.0.1:", "https://localhost:", 1)
		providerOnly := []string{"update pulumi:providers:kubernetes::cluster"}
		for _, change := range []struct {
			what  string
			apply func() error
		}{
			{"stored content instead of the ambient file", func() error {
				return stack.SetConfig(ctx, "kubeconfig", auto.ConfigValue{Value: string(stored), Secret: true})
			}},
			{"a new server address", func() error {
				return stack.SetConfig(ctx, "kubeconfig", auto.ConfigValue{Value: rotated, Secret: true})
			}},
			{"back to the ambient file", func() error { return stack.RemoveConfig(ctx, "kubeconfig") }},
		} {
			if err := change.apply(); err != nil {
				t.Fatal(err)
			}
			wantSteps(t, previewChanges(t, stack), providerOnly)
			res, err := stack.Up(ctx)
			if err != nil {
				t.Fatalf("%s: %v", change.what, err)
			}
			if c := *res.Summary.ResourceChanges; c["replace"] != 0 || c["create"] != 0 || c["delete"] != 0 {
				t.Errorf("%s: up changed %v", change.what, c)
			}
		}
		assertStorageKept(t, ns, pvUID, pvcUID)
	})

	step("growing diskSizeGb resizes the disk, the PV and the claim in place", func(t *testing.T) {
		setConfig(t, stack, "diskSizeGb", "20")
		wantSteps(t, previewChanges(t, stack), []string{
			"update gcp:compute/disk:Disk::dump-disk",
			"update kubernetes:core/v1:PersistentVolume::dump",
			"update kubernetes:core/v1:PersistentVolumeClaim::dump",
		})
		calls := callCount(t, gce)
		if _, err := stack.Up(ctx, optup.ProgressStreams(testLog{T: t})); err != nil {
			t.Fatal(err)
		}
		grown := simDisk(t, gce, project, diskNm)
		want(t, "disk size", grown.SizeGB, 20)
		want(t, "disk ID (recreated?)", grown.ID, disk.ID)
		wantCalls(t, gce, calls, []string{"POST " + handle + "/resize"})
		assertStorageKept(t, ns, pvUID, pvcUID)
		want(t, "PV capacity", kubectlJSON(t, "get", "pv", pv).str("spec.capacity.storage"), "20Gi")
		want(t, "PVC request", kubectlJSON(t, "-n", ns, "get", "pvc", "dump").str("spec.resources.requests.storage"), "20Gi")
	})

	for _, bad := range []struct{ what, key, value, restore, says string }{
		// The program refuses a shrink itself, naming the volume's size: in external mode no protect
		// would stop it (TestExternalDiskSizeIsRefusedBeforeAnythingChanges).
		{"shrinking the disk", "diskSizeGb", "10", "20", "at least 20: PersistentVolume loklak-dev-dump on this disk holds 20Gi"},
		// The engine refuses to replace a protected resource while it plans the disk's step.
		{"renaming the disk", "diskName", "loklak-dev-data-2", diskNm, "marked for protection"},
	} {
		step(bad.what+" fails before anything changes", func(t *testing.T) {
			setConfig(t, stack, bad.key, bad.value)
			calls := callCount(t, gce)
			var out strings.Builder
			_, err := stack.Up(ctx, optup.ProgressStreams(&out))
			if err == nil {
				t.Fatalf("up accepted %s=%s", bad.key, bad.value)
			}
			msg := out.String() + err.Error()
			if !strings.Contains(msg, bad.says) {
				t.Errorf("the user does not see %q:\n%s", bad.says, msg)
			}
			t.Logf("the user sees: %s", lineWith(msg, bad.says))
			wantCalls(t, gce, calls, nil) // reads only: no disk created, resized or deleted
			want(t, "disk size", simDisk(t, gce, project, diskNm).SizeGB, 20)
			disks, err := gce.Disks(project)
			if err != nil {
				t.Fatal(err)
			}
			want(t, "disks in the project", len(disks), 1)
			assertStorageKept(t, ns, pvUID, pvcUID)
			want(t, "PV capacity", kubectlJSON(t, "get", "pv", pv).str("spec.capacity.storage"), "20Gi")
			setConfig(t, stack, bad.key, bad.restore)
		})
	}

	step("destroy fails on the protected disk and deletes no storage", func(t *testing.T) {
		out, err := d.CLI(ctx, "destroy", "--stack", "dev", "--yes", "--non-interactive")
		if err == nil {
			t.Fatalf("destroy of a protected disk succeeded:\n%s", out)
		}
		if !strings.Contains(out, "protected") {
			t.Errorf("the user is not told the disk is protected:\n%s", out)
		}
		t.Logf("the CLI says: %s", lineWith(out, "protected"))
		simDisk(t, gce, project, diskNm)
		assertStorageKept(t, ns, pvUID, pvcUID)
	})

	step("destroy --exclude-protected keeps the disk and removes the rest", func(t *testing.T) {
		if out, err := d.CLI(ctx, "destroy", "--stack", "dev", "--yes", "--non-interactive", "--exclude-protected"); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		want(t, "disk ID", simDisk(t, gce, project, diskNm).ID, disk.ID)
		want(t, "disk still in the state", protectedInState(t, stack, "gcp:compute/disk:Disk"), true)
		for _, obj := range [][]string{{"pv", pv}, {"namespace", ns}} {
			if exists(t, obj...) {
				t.Errorf("%v survived destroy --exclude-protected", obj)
			}
		}
	})

	step("with diskProtect false, destroy leaves the disk in the project (retainOnDelete)", func(t *testing.T) {
		setConfig(t, stack, "diskProtect", "false")
		if _, err := stack.Up(ctx, optup.ProgressStreams(testLog{T: t})); err != nil {
			t.Fatal(err)
		}
		want(t, "PV handle after redeploy", kubectlJSON(t, "get", "pv", pv).str("spec.csi.volumeHandle"), handle)
		calls := callCount(t, gce)
		// --exclude-protected: the archive's bucket stays protected (docs/archive.md), the disk does not.
		if out, err := d.CLI(ctx, "destroy", "--stack", "dev", "--yes", "--non-interactive", "--exclude-protected"); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		want(t, "disk ID", simDisk(t, gce, project, diskNm).ID, disk.ID)
		all, err := gce.Calls()
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range all[calls:] {
			if strings.HasPrefix(c.Path, handle) && c.Method != "GET" {
				t.Errorf("the provider was asked to change the disk it lets go: %s %s", c.Method, c.Path)
			}
		}
		wantDeep(t, "state after destroy", stateTypes(t, stack), []string{"loklak-dumps:storage:DumpArchive", "gcp:storage/bucket:Bucket"})
	})
}

// lineWith returns the first line of text that contains substr.
func lineWith(text, substr string) string {
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, substr) {
			return strings.TrimSpace(line)
		}
	}
	return ""
}

// stepper returns a function that runs a subtest and stops the test at the first failing step, for
// tests whose steps build on each other.
func stepper(t *testing.T) func(string, func(*testing.T)) {
	return func(name string, f func(*testing.T)) {
		if !t.Run(name, f) {
			t.FailNow()
		}
	}
}

// openGCE opens the simulated Compute Engine project the driver's stand-in plugin works on.
func openGCE(t *testing.T, d harness.Driver) *gcp.Compute {
	t.Helper()
	gce, err := gcp.Open(d.GCEDir)
	if err != nil {
		t.Fatal(err)
	}
	return gce
}

func simDisk(t *testing.T, gce *gcp.Compute, project, name string) gcp.Disk {
	t.Helper()
	disks, err := gce.Disks(project)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range disks {
		if d.Name == name {
			return d
		}
	}
	t.Fatalf("disk %s is not in the simulated project (it holds %v)", name, disks)
	return gcp.Disk{}
}

func callCount(t *testing.T, gce *gcp.Compute) int {
	t.Helper()
	calls, err := gce.Calls()
	if err != nil {
		t.Fatal(err)
	}
	return len(calls)
}

// wantCalls checks the Compute API calls made since the first `since`, other than reads, are exactly want
// ("METHOD path").
func wantCalls(t *testing.T, gce *gcp.Compute, since int, want []string) {
	t.Helper()
	wantCallsUnder(t, gce, since, "", want)
}

// wantCallsUnder is wantCalls for the calls whose path starts with prefix ("projects/": Compute Engine's;
// "": every call).
func wantCallsUnder(t *testing.T, gce *gcp.Compute, since int, prefix string, want []string) {
	t.Helper()
	calls, err := gce.Calls()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range calls[since:] {
		// getIamPolicy is a read, sent as a POST (gcs rules §4).
		if c.Method != "GET" && !strings.HasSuffix(strings.Split(c.Path, "?")[0], ":getIamPolicy") && strings.HasPrefix(c.Path, prefix) {
			got = append(got, c.Method+" "+c.Path)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("API calls under %s = %q, want %q", prefix, got, want)
	}
}

func setConfig(t *testing.T, stack auto.Stack, key, value string) {
	t.Helper()
	if err := stack.SetConfig(context.Background(), key, auto.ConfigValue{Value: value}); err != nil {
		t.Fatal(err)
	}
}

// previewChanges previews and returns the planned changes, as changed() spells them.
func previewChanges(t *testing.T, stack auto.Stack) []string {
	t.Helper()
	var out strings.Builder
	steps, err := harness.PreviewSteps(context.Background(), stack, optpreview.ProgressStreams(&out), optpreview.ErrorProgressStreams(&out))
	if err != nil {
		t.Fatalf("preview: %v\n%s", err, out.String())
	}
	return changed(steps)
}

func wantSteps(t *testing.T, got, want []string) {
	t.Helper()
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("planned changes = %q, want %q", got, want)
	}
}
