//go:build e2e

package realnode

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/loklak/loklak-dumps/testbed/dockerhub"
	"github.com/loklak/loklak-dumps/testbed/e2e/e2etest"
	"github.com/loklak/loklak-dumps/testbed/e2e/podwatch"
	"github.com/loklak/loklak-dumps/testbed/gcp"
	"github.com/loklak/loklak-dumps/testbed/gke"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
)

// startDelay is the loklak stand-in's start delay (LOKLAK_STANDIN_START_DELAY's default, testbed/loklak):
// /api/status.json answers only after it, as loklak's only once the JVM is up.
const startDelay = 5 * time.Second

// TestTheSeedsCheckOnARealNode is the 2017 write-up's proof of persistence, run for real with the committed
// dev stack: loklak writes dumps onto the stack's disk, /dump/ lists them, and after an image update, a
// `pulumi destroy --exclude-protected` plus `up`, a growth of the disk and a restore from a snapshot, the
// files are still there with the same bytes (SHA-256 of what /dump/NAME serves). On the way it checks what
// the pod runs with (capabilities, no_new_privs, seccomp, no token), that the Service has no ready
// endpoint before /api/status.json answers, and that Recreate stops the old container before the new one
// mounts the disk.
func TestTheSeedsCheckOnARealNode(t *testing.T) {
	ctx := context.Background()
	d := newDriver(t)
	stack, err := d.CommittedStack(ctx, "dev", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if out, err := d.CLI(ctx, "destroy", "--stack", "dev", "--yes", "--non-interactive", "--exclude-protected"); err != nil {
			t.Errorf("clean-up: %v\n%s", err, out)
		}
	})
	// Pulumi.yaml pins Docker Hub's rclone by its digest, which no image here has: the same tag.
	if err := stack.SetConfig(ctx, "archiverImage", auto.ConfigValue{Value: dockerhub.RcloneRef}); err != nil {
		t.Fatal(err)
	}
	gce, err := gcp.Open(gceDir)
	if err != nil {
		t.Fatal(err)
	}
	const ns = "loklak-dev"
	step := func(name string, f func(t *testing.T)) {
		if !t.Run(name, f) {
			t.FailNow()
		}
	}
	up := func(t *testing.T) {
		t.Helper()
		if _, err := stack.Up(ctx, optup.ProgressStreams(testLog{T: t})); err != nil {
			t.Fatal(err)
		}
	}
	setAndUp := func(t *testing.T, key, value string) {
		t.Helper()
		if err := stack.SetConfig(ctx, key, auto.ConfigValue{Value: value}); err != nil {
			t.Fatal(err)
		}
		up(t)
	}
	var (
		pod        loklakPod
		before     dumpFiles
		open       string // today's dump, the one loklak appends to
		openBytes  string
		closedName = "messages_20170823_60153342.txt.gz" // from the 2017 listing in ../shared/seed
		closedBody = []byte("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03an earlier day's dump, closed and gzipped\n")
	)
	// remember records what /dump/ serves now: every file's hash, and the open dump's bytes.
	remember := func(t *testing.T) {
		t.Helper()
		before = dumps(t, ns)
		open = ""
		for name := range before {
			if strings.HasSuffix(name, ".txt") {
				open = name
			}
		}
		if open == "" {
			t.Fatalf("no open dump (messages_<today>_*.txt) listed at /dump/: %v", keys(before))
		}
		openBytes = serviceGet(t, ns, "/dump/"+open)
	}

	step("up: loklak runs on the real node, on the disk, and /dump/ lists what it writes", func(t *testing.T) {
		up(t)
		pod = readyPod(t, ns, "")
		if pod.Node != gke.RealNodeName {
			t.Fatalf("loklak runs on %q, want the real node %q", pod.Node, gke.RealNodeName)
		}
		disk, err := gce.GetDisk(gcp.DiskPath(project, zone, "loklak-dev-data"))
		if err != nil {
			t.Fatal(err)
		}
		if want := gcp.APIBase + gcp.InstancePath(project, zone, pod.Node); !slices.Contains(disk.Users, want) {
			t.Errorf("the disk's users = %v, want the node's instance %s (attached through the VolumeAttachment)", disk.Users, want)
		}
		pid := pod.pid(t)
		size, source := dataFilesystem(t, pid)
		if !strings.Contains(source, "/dev/loop") || !strings.HasPrefix(source, "ext4") {
			t.Errorf("%s is mounted from %q, want the disk's ext4 on a loop device", dataPath, source)
		}
		if gib := float64(size) / (1 << 30); gib < 9 || gib > 10 {
			t.Errorf("the filesystem at %s is %.2f GiB, want about the 10 GB disk", dataPath, gib)
		}
		plantClosedDump(t, pid, closedName, closedBody)
		waitUntil(t, "loklak to write messages", func() bool {
			return len(serviceGet(t, ns, "/dump/")) > 0 && len(listedDumps(t, ns)) >= 2
		})
		remember(t)
		if before[closedName] != sha(string(closedBody)) {
			t.Errorf("/dump/%s does not serve the bytes written to the disk", closedName)
		}
		if !regexp.MustCompile(`^messages_\d{8}_\d{8}\.txt$`).MatchString(open) {
			t.Errorf("open dump %q is not named as loklak names it", open)
		}
	})

	step("least privilege, as the kernel sees loklak's process", func(t *testing.T) {
		st := procStatus(t, pod.pid(t))
		want(t, "CapEff", st["CapEff"], "0000000000000000")
		want(t, "CapPrm", st["CapPrm"], "0000000000000000")
		want(t, "NoNewPrivs", st["NoNewPrivs"], "1")
		want(t, "Seccomp (2: a filter)", st["Seccomp"], "2")
		for _, m := range mountsOf(t, pod.pid(t)) {
			if strings.Contains(m, "serviceaccount") {
				t.Errorf("a service-account token is mounted at %s", m)
			}
		}
	})

	step("readiness: no ready endpoint until /api/status.json answers", func(t *testing.T) {
		if wait := pod.Ready.Sub(pod.Started); wait < startDelay {
			t.Errorf("the pod was Ready %v after its container started, before loklak's %v start delay", wait, startDelay)
		}
		waitUntil(t, "the Service's endpoint to be the ready pod", func() bool { return readyEndpoints(t, ns) == pod.Name })
	})

	v2, err := crane.Digest(cp.Registry+"/loklak/loklak_server:standin-v2", crane.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	step("an image update keeps every byte, and Recreate stops the old container first", func(t *testing.T) {
		old := pod
		oldPID := old.pid(t)
		// Every container start and stop, as the kubelet reports it, event by event.
		watch, err := podwatch.Start(tools.Path("kubectl"), cp.Kubeconfig, podLabel, []string{ns}, podwatch.ContainerRunning)
		if err != nil {
			t.Fatal(err)
		}
		// Pinned by digest, as the prod stack's comment advises: a real pull of another image.
		if err := stack.SetConfig(ctx, "image", auto.ConfigValue{Value: "loklak/loklak_server@" + v2}); err != nil {
			t.Fatal(err)
		}
		up(t)
		pod = readyPod(t, ns, old.Name)
		waitUntil(t, "the old pod to be gone", func() bool { return !podExists(t, ns, old.Name) })
		most, seen, err := watch.Stop()
		if err != nil {
			t.Fatal(err)
		}
		if most != 1 || len(seen) != 2 {
			t.Errorf("loklak containers running at once during the update: at most %d (pods %v); Recreate allows 1", most, seen)
		}
		if pod.ImageID == old.ImageID || !strings.HasSuffix(pod.ImageID, v2) {
			t.Errorf("the new pod runs image %s, want the v2 digest %s (was %s)", pod.ImageID, v2, old.ImageID)
		}
		if gke.ProcessRunning(oldPID) {
			t.Errorf("the old loklak process %d still runs beside the new pod", oldPID)
		}
		wantKept(t, ns, before, open, openBytes)
		waitUntil(t, "the new pod to append to the open dump", func() bool {
			return len(serviceGet(t, ns, "/dump/"+open)) > len(openBytes)
		})
		remember(t)
	})

	step("pulumi destroy --exclude-protected and up keep every byte", func(t *testing.T) {
		// As the README says it, on the command line.
		if out, err := d.CLI(ctx, "destroy", "--stack", "dev", "--yes", "--non-interactive", "--exclude-protected"); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if _, err := gce.GetDisk(gcp.DiskPath(project, zone, "loklak-dev-data")); err != nil {
			t.Fatalf("the disk is gone after destroy --exclude-protected: %v", err)
		}
		old := pod
		up(t)
		pod = readyPod(t, ns, old.Name)
		wantKept(t, ns, before, open, openBytes)
		remember(t)
	})

	step("growth: diskSizeGb 10 -> 12, the pod's filesystem is bigger and the files intact", func(t *testing.T) {
		if err := stack.SetConfig(ctx, "diskSizeGb", auto.ConfigValue{Value: "12"}); err != nil {
			t.Fatal(err)
		}
		up(t)
		// GKE grows a mounted ext4 online (NodeExpandVolume, resize2fs). Root here lacks CAP_SYS_RESOURCE,
		// so the CSI stand-in grows it when the volume is next staged (testbed/csi/README.md): after the
		// node has let go of it: replicas 0, up, then 1, up (README, "When the dumps disk fills up"), a restart with the disk
		// released.
		old := pod
		setAndUp(t, "replicas", "0")
		waitUntil(t, "the node to release the disk", func() bool { return volumesInUse(t) == "" })
		setAndUp(t, "replicas", "1")
		pod = readyPod(t, ns, old.Name)
		size, _ := dataFilesystem(t, pod.pid(t))
		if gib := float64(size) / (1 << 30); gib < 11 || gib > 12 {
			t.Errorf("the filesystem at %s is %.2f GiB after the growth, want about 12", dataPath, gib)
		}
		wantKept(t, ns, before, open, openBytes)
	})

	step("restore: a snapshot at T, more dumps, the restore runbook: /dump/ is exactly T's", func(t *testing.T) {
		// T: loklak stops writing (dumpWriteEnabled false), so what /dump/ serves is all there is, and the
		// kernel's caches are written to the disk's image before the snapshot copies it.
		if err := stack.SetConfig(ctx, "dumpWriteEnabled", auto.ConfigValue{Value: "false"}); err != nil {
			t.Fatal(err)
		}
		old := pod
		up(t)
		pod = readyPod(t, ns, old.Name)
		atT := dumps(t, ns)
		syscall.Sync()
		if _, err := gce.CreateSnapshot(gcp.DiskPath(project, zone, "loklak-dev-data"), "dumps-at-t", nil); err != nil {
			t.Fatal(err)
		}
		// After T: writing again; the open dump grows past T.
		if err := stack.SetConfig(ctx, "dumpWriteEnabled", auto.ConfigValue{Value: "true"}); err != nil {
			t.Fatal(err)
		}
		old = pod
		up(t)
		pod = readyPod(t, ns, old.Name)
		waitUntil(t, "dumps written after T", func() bool { return dumps(t, ns)[open] != atT[open] })

		// docs/restore.md: the new disk from the snapshot (writing off, so the restored files stay T's).
		for key, value := range map[string]string{"diskName": "loklak-dev-restored", "diskSourceSnapshot": "dumps-at-t", "dumpWriteEnabled": "false"} {
			if err := stack.SetConfig(ctx, key, auto.ConfigValue{Value: value}); err != nil {
				t.Fatal(err)
			}
		}
		if out, err := d.Shell(ctx, `pulumi state unprotect "$(pulumi stack output diskUrn)" --yes`); err != nil {
			t.Fatalf("pulumi state unprotect: %v\n%s", err, out)
		}
		old = pod
		up(t)
		pod = readyPod(t, ns, old.Name)
		_, source := dataFilesystem(t, pod.pid(t))
		if !strings.Contains(source, "/dev/loop") {
			t.Errorf("the restored pod's data is mounted from %q", source)
		}
		got := dumps(t, ns)
		if fmt.Sprint(keys(got)) != fmt.Sprint(keys(atT)) {
			t.Errorf("the restored /dump/ lists %v, want T's %v", keys(got), keys(atT))
		}
		for name, hash := range atT {
			if got[name] != hash {
				t.Errorf("restored %s: sha256 %s, want T's %s", name, got[name], hash)
			}
		}
		disk, err := gce.GetDisk(gcp.DiskPath(project, zone, "loklak-dev-restored"))
		if err != nil {
			t.Fatal(err)
		}
		if want := gcp.APIBase + gcp.InstancePath(project, zone, pod.Node); !slices.Contains(disk.Users, want) {
			t.Errorf("the restored disk's users = %v, want %s", disk.Users, want)
		}
	})
}

// podExists reports whether the pod is still there (a pod being deleted is).
func podExists(t *testing.T, ns, name string) bool {
	t.Helper()
	out, err := cp.Kubectl(context.Background(), "-n", ns, "get", "pod", name, "--ignore-not-found", "-o", "name")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out)) != ""
}

// volumesInUse is the real node's status.volumesInUse: the volumes its kubelet has mounted or is mounting.
func volumesInUse(t *testing.T) string {
	t.Helper()
	out, err := cp.Kubectl(context.Background(), "get", "node", gke.RealNodeName, "-o", "jsonpath={.status.volumesInUse}")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// readyEndpoints lists the pods behind the Service's ready endpoints (EndpointSlices), space-separated.
func readyEndpoints(t *testing.T, ns string) string {
	t.Helper()
	out, err := cp.Kubectl(context.Background(), "-n", ns, "get", "endpointslices", "-l", "kubernetes.io/service-name="+serverName,
		"-o", `jsonpath={range .items[*].endpoints[?(@.conditions.ready==true)]}{.targetRef.name} {end}`)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

func want[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	e2etest.Want(t, what, got, want)
}

// testLog shows the engine's progress in the test's log.
type testLog = e2etest.Log
