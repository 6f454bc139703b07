//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/loklak/loklak-dumps/internal/stackconfig"
	"github.com/loklak/loklak-dumps/testbed/gcp"
	"github.com/loklak/loklak-dumps/testbed/gke"
	"github.com/loklak/loklak-dumps/testbed/harness"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
)

const (
	prodProject = "loklak-server"
	prodDisk    = "data-dump-disk"
	prodHandle  = "projects/loklak-server/zones/us-central1-a/disks/data-dump-disk"
)

// The prod stack as committed, migrating what 2017 left: the test follows docs/migration.md command by
// command, and fails if the runbook holds a command it does not run.
func TestProdMigrationRunbook(t *testing.T) {
	ctx := context.Background()
	d := newDriver(t)
	gce := openGCE(t, d)
	old := setUp2017(t, gce)
	var stack auto.Stack
	var previewed []string
	var address string // the 2017 load balancer's, which prod must keep

	run := map[string]func(t *testing.T, command string){
		// gcloud cannot run here: the same facts come from the simulated project.
		"gcloud compute disks describe data-dump-disk --zone us-central1-a --format='value(sizeGb,type.basename(),labels)'": func(t *testing.T, _ string) {
			_, values, err := stackconfig.Load(repoDir(t), "prod")
			if err != nil {
				t.Fatal(err)
			}
			disk := simDisk(t, gce, prodProject, prodDisk)
			want(t, "diskSizeGb in Pulumi.prod.yaml vs the disk", values["diskSizeGb"], strconv.Itoa(disk.SizeGB))
			want(t, "diskType in Pulumi.prod.yaml vs the disk", values["diskType"], disk.Type)
			want(t, "diskLabels in Pulumi.prod.yaml vs the disk", values["diskLabels"], "[]")
			want(t, "labels on the disk", len(disk.Labels), 0)
		},
		"gcloud compute disks snapshot data-dump-disk --zone us-central1-a --snapshot-names data-dump-disk-before-pulumi": func(t *testing.T, _ string) {
			snap, err := gce.CreateSnapshot(prodHandle, "data-dump-disk-before-pulumi", nil)
			if err != nil {
				t.Fatal(err)
			}
			want(t, "snapshot size", snap.DiskSizeGB, 100)
		},
		"kubectl get pv dump -o jsonpath='{.spec.persistentVolumeReclaimPolicy}'": kubectlPrints("Retain"),
		"kubectl get pv dump -o jsonpath='{.spec.gcePersistentDisk.fsType}'":      kubectlPrints("ext4"),
		"kubectl get pv dump -o jsonpath='{.spec.gcePersistentDisk.partition}'":   kubectlPrints(""),
		"kubectl -n web delete deployment server --cascade=foreground": func(t *testing.T, c string) {
			kubectlPrints(`deployment.apps "server" deleted`)(t, c)
			if pods := kubectlJSON(t, "-n", "web", "get", "pods", "-l", "app=server"); len(pods.get("items").([]any)) != 0 {
				t.Errorf("the 2017 pod outlived its Deployment's deletion")
			}
		},
		"kubectl -n web get service server -o jsonpath='{.status.loadBalancer.ingress[0].ip}'": func(t *testing.T, c string) {
			address = kubectlJSON(t, "-n", "web", "get", "service", "server").str("status.loadBalancer.ingress.0.ip")
			if !strings.HasPrefix(address, gke.EphemeralAddressPrefix) {
				t.Fatalf("the 2017 load balancer has no address: %q", address)
			}
			kubectlPrints(address)(t, c)
		},
		"gcloud compute addresses create loklak-dumps --addresses <the address printed above> --region us-central1": func(t *testing.T, _ string) {
			if _, err := gce.PutAddress(gcp.Address{Name: "loklak-dumps", Project: prodProject, Region: "us-central1",
				Address: address, AddressType: "EXTERNAL", NetworkTier: "PREMIUM"}); err != nil {
				t.Fatal(err)
			}
		},
		"kubectl -n web delete service server": kubectlPrints(`service "server" deleted`),
		"kubectl -n web delete pvc dump":       kubectlPrints(`persistentvolumeclaim "dump" deleted`),
		"kubectl delete pv dump":               kubectlPrints(`persistentvolume "dump" deleted`),
		`kubectl get volumeattachments -o jsonpath='{.items[?(@.spec.source.persistentVolumeName=="dump")].metadata.name}'`: kubectlPrints(""),
		"gcloud compute disks describe data-dump-disk --zone us-central1-a --format='value(users)'": func(t *testing.T, _ string) {
			want(t, "users of the disk", len(simDisk(t, gce, prodProject, prodDisk).Users), 0)
		},
		"pulumi stack select --create prod": func(t *testing.T, _ string) {
			var err error
			if stack, err = d.CommittedStack(ctx, "prod", nil); err != nil {
				t.Fatal(err)
			}
		},
		"pulumi preview --diff": func(t *testing.T, _ string) {
			previewed = previewChanges(t, stack)
			var adopted []string
			for _, s := range previewed {
				if strings.HasSuffix(s, " gcp:compute/disk:Disk::dump-disk") || strings.HasSuffix(s, " gcp:compute/address:Address::address") {
					adopted = append(adopted, s)
				} else if !strings.HasPrefix(s, "create ") {
					t.Errorf("the preview plans %q; want only creates besides the imports", s)
				}
			}
			wantDeep(t, "the disk's and the address's steps", adopted,
				[]string{"import gcp:compute/address:Address::address", "import gcp:compute/disk:Disk::dump-disk"})
		},
		"pulumi up --yes": func(t *testing.T, _ string) {
			calls := callCount(t, gce)
			if _, err := stack.Up(ctx, optup.ProgressStreams(testLog{T: t})); err != nil {
				t.Fatal(err)
			}
			disk := simDisk(t, gce, prodProject, prodDisk)
			want(t, "disk ID (recreated?)", disk.ID, old.ID)
			want(t, "disk created", disk.CreationTimestamp, old.CreationTimestamp)
			want(t, "disk size", disk.SizeGB, 100)
			policy := "projects/loklak-server/regions/us-central1/resourcePolicies/data-dump-disk-snapshots"
			wantDeep(t, "policies on the disk", disk.ResourcePolicies, []string{gcp.APIBase + policy})
			wantCallsUnder(t, gce, calls, "projects/", []string{
				"POST projects/loklak-server/regions/us-central1/resourcePolicies",
				"POST " + prodHandle + "/addResourcePolicies",
			})
			// Prod's archive: a new bucket, the archiver's two roles on it and nothing else.
			wantCallsUnder(t, gce, calls, "storage/v1/b?", []string{"POST storage/v1/b?project=loklak-server"})
			grants, err := gce.GetBucketIAMPolicy("loklak-server-dumps")
			if err != nil {
				t.Fatal(err)
			}
			var roles []string
			for _, b := range grants.Bindings {
				roles = append(roles, b.Role)
			}
			slices.Sort(roles)
			wantDeep(t, "roles on prod's archive bucket", roles, []string{"roles/storage.objectCreator", "roles/storage.objectViewer"})
			want(t, "disk protected in the state", protectedInState(t, stack, "gcp:compute/disk:Disk"), true)
		},
		"kubectl -n web get pvc dump -o jsonpath='{.spec.volumeName} {.status.phase}'": kubectlPrints("web-dump Bound"),
		"kubectl get pv web-dump -o jsonpath='{.spec.csi.volumeHandle}'":               kubectlPrints(prodHandle),
		"kubectl -n web get service loklak-server -o jsonpath='{.status.loadBalancer.ingress[0].ip}'": func(t *testing.T, c string) {
			kubectlPrints(address)(t, c)
		},
	}

	for i, command := range runbookCommands(t, filepath.Join(repoDir(t), "docs", "migration.md")) {
		f, ok := run[command]
		if !ok {
			t.Fatalf("docs/migration.md runs %q, which this test does not: run it here or take it out", command)
		}
		delete(run, command)
		if !t.Run(strconv.Itoa(i+1)+" "+command, func(t *testing.T) { f(t, command) }) {
			t.FailNow()
		}
	}
	for command := range run {
		t.Errorf("the test runs %q, which docs/migration.md no longer has", command)
	}

	t.Run("loklak runs on the old disk; the 2017 objects are gone", func(t *testing.T) {
		pods := kubectlJSON(t, "-n", "web", "get", "pods", "-l", "app.kubernetes.io/name=loklak-server")
		want(t, "pods", len(pods.get("items").([]any)), 1)
		want(t, "pod phase", pods.str("items.0.status.phase"), "Running")
		want(t, "pod claim", pods.str("items.0.spec.volumes.0.persistentVolumeClaim.claimName"), "dump")
		want(t, "pod mount", pods.str("items.0.spec.containers.0.volumeMounts.0.mountPath"), "/loklak_server/data")
		for _, gone := range [][]string{{"-n", "web", "deployment", "server"}, {"pv", "dump"}, {"-n", "web", "service", "server"}} {
			if exists(t, gone...) {
				t.Errorf("%v is still there", gone)
			}
		}
		// web is not the stack's, yet it enforces Pod Security like an owned namespace.
		labels, _ := kubectlJSON(t, "get", "namespace", "web").get("metadata.labels").(map[string]any)
		want(t, "Pod Security enforce on web", labels["pod-security.kubernetes.io/enforce"], any("baseline"))
		_, err := cp.Kubectl(ctx, "-n", "web", "run", "privileged", "--image=busybox:1.36", "--privileged", "--dry-run=server")
		if err == nil || !strings.Contains(err.Error(), `violates PodSecurity "baseline`) {
			t.Errorf("a privileged pod was not refused in web: %v", err)
		}
		svc := kubectlJSON(t, "-n", "web", "get", "service", "loklak-server")
		want(t, "Service type", svc.str("spec.type"), "LoadBalancer")
		outputs, err := stack.Outputs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want(t, "dumpUrl (the 2017 address)", outputs["dumpUrl"].Value, any("http://"+address+":80/dump/"))
		want(t, "address protected in the state", protectedInState(t, stack, "gcp:compute/address:Address"), true)
		want(t, "diskId", outputs["diskId"].Value, any(prodHandle))
		// The daily dump rotation lives beside loklak in web.
		want(t, "dumpRotationCronJob", outputs["dumpRotationCronJob"].Value, any(rotation))
		want(t, "rotation's Deployment", kubectlJSON(t, "-n", "web", "get", "role", rotation).str("rules.0.resourceNames.0"), "loklak-server")
		wantDeep(t, "loklak's pod's containers", podTemplateContainers(t, "web"), []string{"loklak", "archiver"})
	})

	t.Run("a second preview plans nothing: the import is not repeated", func(t *testing.T) {
		wantSteps(t, previewChanges(t, stack), nil)
	})

	t.Run("a retention change replaces the schedule and its attachment, never the disk", func(t *testing.T) {
		setConfig(t, stack, "snapshotRetentionDays", "7")
		replaced := map[string]bool{}
		for _, s := range previewChanges(t, stack) {
			op, resource, _ := strings.Cut(s, " ")
			if !strings.HasSuffix(resource, "::snapshot-schedule") {
				t.Errorf("a retention change plans %q", s)
			}
			replaced[resource] = replaced[resource] || op == "replace"
		}
		for _, r := range []string{"gcp:compute/resourcePolicy:ResourcePolicy::snapshot-schedule",
			"gcp:compute/diskResourcePolicyAttachment:DiskResourcePolicyAttachment::snapshot-schedule"} {
			if !replaced[r] {
				t.Errorf("%s is not replaced (planned: %v)", r, replaced)
			}
		}
		calls := callCount(t, gce)
		if _, err := stack.Up(ctx, optup.ProgressStreams(testLog{T: t})); err != nil {
			t.Fatal(err)
		}
		// Detach, delete, create, attach: never a PATCH (which Compute Engine would refuse with
		// snapshotProperties), and never two schedules on the disk.
		policy := "projects/loklak-server/regions/us-central1/resourcePolicies/data-dump-disk-snapshots"
		wantCalls(t, gce, calls, []string{
			"POST " + prodHandle + "/removeResourcePolicies",
			"DELETE " + policy,
			"POST projects/loklak-server/regions/us-central1/resourcePolicies",
			"POST " + prodHandle + "/addResourcePolicies",
		})
		disk := simDisk(t, gce, prodProject, prodDisk)
		want(t, "disk ID", disk.ID, old.ID)
		wantDeep(t, "policies on the disk", disk.ResourcePolicies, []string{gcp.APIBase + policy})
		rp, err := gce.GetResourcePolicy(prodProject, "us-central1", "data-dump-disk-snapshots")
		if err != nil {
			t.Fatal(err)
		}
		want(t, "retention", rp.SnapshotSchedulePolicy["retentionPolicy"].(map[string]any)["maxRetentionDays"], any(float64(7)))
		wantSteps(t, previewChanges(t, stack), nil)
	})

	t.Run("destroy --exclude-protected leaves the disk and namespace web", func(t *testing.T) {
		if out, err := d.CLI(ctx, "destroy", "--stack", "prod", "--yes", "--non-interactive", "--exclude-protected"); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		want(t, "disk ID", simDisk(t, gce, prodProject, prodDisk).ID, old.ID)
		if !exists(t, "namespace", "web") {
			t.Fatalf("namespace web, which prod does not own, was deleted")
		}
		labels, _ := kubectlJSON(t, "get", "namespace", "web").get("metadata.labels").(map[string]any)
		for key := range labels {
			if strings.HasPrefix(key, "pod-security.kubernetes.io/") {
				t.Errorf("the stack's label %s outlived its destroy", key)
			}
		}
		if !exists(t, "-n", "web", "configmap", "not-loklak") {
			t.Errorf("someone else's object in web went with the destroy")
		}
		if exists(t, "pv", "web-dump") {
			t.Errorf("PV web-dump survived the destroy")
		}
		// web stays, so nothing deletes the stack's objects in it but the destroy itself.
		for _, obj := range [][]string{{"deployment", "loklak-server"}, {"serviceaccount", "loklak-server"},
			{"cronjob", rotation}, {"rolebinding", rotation}, {"role", rotation}, {"serviceaccount", rotation}} {
			if exists(t, append([]string{"-n", "web"}, obj...)...) {
				t.Errorf("%v in web survived the destroy", obj)
			}
		}
	})
}

// setUp2017 puts into the simulated project and the cluster what the 2017 setup left, and waits until
// the old loklak runs on its claim.
func setUp2017(t *testing.T, gce *gcp.Compute) gcp.Disk {
	t.Helper()
	ctx := context.Background()
	disk := putProdDisk(t, gce, 100)
	manifest, err := os.ReadFile(filepath.Join("testdata", "prod-2017.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cp.KubectlInput(ctx, manifest, "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	if _, err := cp.Kubectl(ctx, "-n", "web", "create", "configmap", "not-loklak", "--from-literal=owner=someone-else"); err != nil {
		t.Fatal(err)
	}
	if _, err := cp.Kubectl(ctx, "-n", "web", "wait", "--for=jsonpath={.status.phase}=Bound", "pvc/dump", "--timeout=60s"); err != nil {
		t.Fatal(err)
	}
	if _, err := cp.Kubectl(ctx, "-n", "web", "rollout", "status", "deployment/server", "--timeout=60s"); err != nil {
		t.Fatal(err)
	}
	return disk
}

// kubectlPrints runs a runbook's kubectl command literally (bash, the loopback kubeconfig, this
// toolchain's kubectl) and checks what it prints.
func kubectlPrints(want string) func(t *testing.T, command string) {
	return func(t *testing.T, command string) {
		t.Helper()
		cmd := exec.Command("bash", "-c", command)
		cmd.Env = append(os.Environ(), "KUBECONFIG="+cp.Kubeconfig, "PATH="+tools.PathEnv())
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", command, err, out)
		}
		if got := strings.TrimSpace(string(out)); got != want {
			t.Errorf("%s printed %q, want %q", command, got, want)
		}
	}
}

// runbookCommands returns the commands of a runbook: every line of its ```sh blocks that is not a
// comment.
func runbookCommands(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	var commands []string
	inBlock := false
	lines := bufio.NewScanner(f)
	for lines.Scan() {
		line := strings.TrimSpace(lines.Text())
		switch {
		case line == "```sh":
			inBlock = true
		case line == "```":
			inBlock = false
		case inBlock && line != "" && !strings.HasPrefix(line, "#"):
			commands = append(commands, line)
		}
	}
	if err := lines.Err(); err != nil {
		t.Fatal(err)
	}
	return commands
}

// What the engine does when the disk Pulumi.prod.yaml declares is not the disk that exists: an import is
// not all-or-nothing (docs/migration.md, step 1).
func TestImportOfADifferentDisk(t *testing.T) {
	ctx := context.Background()
	ensureNamespace(t, "web")

	t.Run("a larger real disk: the import would replace it, so up fails and changes nothing", func(t *testing.T) {
		_, gce, real, stack := prodOnDisk(t, 120)
		var preview strings.Builder
		steps, err := harness.PreviewSteps(ctx, stack, optpreview.ProgressStreams(&preview))
		if err == nil {
			t.Errorf("the preview passed, planning %q", changed(steps))
		}
		for _, says := range []string{"previously-imported resources that still specify an ID may not be replaced", "marked for protection", "size: {120} => {100}"} {
			if !strings.Contains(preview.String(), says) {
				t.Errorf("the preview does not say %q:\n%s", says, preview.String())
			}
		}
		calls := callCount(t, gce)
		var out strings.Builder
		_, err = stack.Up(ctx, optup.ProgressStreams(&out))
		if err == nil {
			t.Fatalf("up imported a 120 GiB disk declared as 100 GiB")
		}
		if says := out.String() + err.Error(); !strings.Contains(says, "marked for protection") {
			t.Errorf("up does not say why it failed:\n%s", says)
		}
		wantCalls(t, gce, calls, nil)
		after := simDisk(t, gce, prodProject, prodDisk)
		want(t, "disk size", after.SizeGB, 120)
		want(t, "disk ID", after.ID, real.ID)
		if exists(t, "pv", "web-dump") {
			t.Errorf("the Kubernetes side was created on a failed import")
		}
	})

	t.Run("a smaller, unlabelled real disk: import, then grow it and label it in the same up", func(t *testing.T) {
		d, gce, real, stack := prodOnDisk(t, 90)
		if err := stack.SetConfigWithOptions(ctx, "diskLabels[0]", auto.ConfigValue{Value: "app=loklak"}, &auto.ConfigOptions{Path: true}); err != nil {
			t.Fatal(err)
		}
		var disk []string
		for _, s := range previewChanges(t, stack) {
			if strings.HasSuffix(s, "gcp:compute/disk:Disk::dump-disk") {
				disk = append(disk, s)
			}
		}
		wantDeep(t, "the disk's planned steps", disk, []string{"import gcp:compute/disk:Disk::dump-disk", "update gcp:compute/disk:Disk::dump-disk"})
		calls := callCount(t, gce)
		if _, err := stack.Up(ctx, optup.ProgressStreams(testLog{T: t})); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if out, err := d.CLI(ctx, "destroy", "--stack", "prod", "--yes", "--non-interactive", "--exclude-protected"); err != nil {
				t.Errorf("clean-up: %v\n%s", err, out)
			}
		})
		after := simDisk(t, gce, prodProject, prodDisk)
		want(t, "disk ID", after.ID, real.ID)
		want(t, "disk size (grown, for good)", after.SizeGB, 100)
		wantDeep(t, "disk labels (written)", after.Labels, map[string]string{"app": "loklak"})
		wantCallsUnder(t, gce, calls, "projects/", []string{ // Compute Engine's; prod's archive is created beside
			"POST " + prodHandle + "/setLabels",
			"POST " + prodHandle + "/resize",
			"POST projects/loklak-server/regions/us-central1/resourcePolicies",
			"POST " + prodHandle + "/addResourcePolicies",
		})
	})
}

// prodOnDisk makes a simulated project holding an unlabelled pd-standard data-dump-disk of sizeGB and the
// static address prod adopts, and the prod stack as committed, on a driver of its own.
func prodOnDisk(t *testing.T, sizeGB int) (harness.Driver, *gcp.Compute, gcp.Disk, auto.Stack) {
	t.Helper()
	d := newDriver(t)
	gce := openGCE(t, d)
	disk := putProdDisk(t, gce, sizeGB)
	putProdAddress(t, gce)
	stack, err := d.CommittedStack(context.Background(), "prod", nil)
	if err != nil {
		t.Fatal(err)
	}
	return d, gce, disk, stack
}

// putProdDisk puts an unlabelled pd-standard data-dump-disk of sizeGB into the simulated project, as the
// 2017 setup left it (100 GiB).
func putProdDisk(t *testing.T, gce *gcp.Compute, sizeGB int) gcp.Disk {
	t.Helper()
	disk, err := gce.PutDisk(gcp.Disk{Name: prodDisk, Project: prodProject, Zone: zone, SizeGB: sizeGB, Type: "pd-standard"})
	if err != nil {
		t.Fatal(err)
	}
	return disk
}

// putProdAddress puts the static address prod adopts into the simulated project, as docs/migration.md
// leaves it (the 2017 load balancer's, promoted).
func putProdAddress(t *testing.T, gce *gcp.Compute) {
	t.Helper()
	if _, err := gce.PutAddress(gcp.Address{Name: "loklak-dumps", Project: prodProject, Region: "us-central1",
		Address: "198.51.100.77", AddressType: "EXTERNAL", NetworkTier: "PREMIUM"}); err != nil {
		t.Fatal(err)
	}
}

// ensureNamespace creates a namespace the stack does not own, if it is missing.
func ensureNamespace(t *testing.T, name string) {
	t.Helper()
	manifest := `{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "` + name + `"}}`
	if _, err := cp.KubectlInput(context.Background(), []byte(manifest), "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
}
