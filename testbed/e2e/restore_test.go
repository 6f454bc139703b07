//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/loklak/loklak-dumps/testbed/gcp"
	"github.com/loklak/loklak-dumps/testbed/gke"
	"github.com/loklak/loklak-dumps/testbed/harness"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
)

// tagged matches the tag that sets a restored or regional disk's resources apart (a short hash).
var tagged = regexp.MustCompile(`-[0-9a-f]{8}$`)

// untag spells planned changes with "<tag>" for the tag, so a test can state them without the hash.
func untag(steps []string) []string {
	out := make([]string, len(steps))
	for i, s := range steps {
		out[i] = tagged.ReplaceAllString(s, "-<tag>")
	}
	slices.Sort(out)
	return out
}

// wantNoCallOn checks that no Compute API call since the first `since` touched the disk at path (a
// restore must leave the old disk alone: its zone may be down).
func wantNoCallOn(t *testing.T, gce *gcp.Compute, since int, path string) {
	t.Helper()
	calls, err := gce.Calls()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range calls[since:] {
		if c.Path == path || strings.HasPrefix(c.Path, path+"/") {
			t.Errorf("the restore called %s %s on the old disk", c.Method, c.Path)
		}
	}
}

// movePlan is what a restore of a zonal disk with a daily schedule plans, the new disk and its attachment
// being of the types given: creates for the new disk and its objects, the Deployment moved, deletes for
// the old ones; nothing replaced.
func movePlan(diskType, attachmentType string) []string {
	return []string{
		"create " + diskType + "::dump-disk-<tag>",
		"create " + attachmentType + "::snapshot-schedule-<tag>",
		"create gcp:compute/resourcePolicy:ResourcePolicy::snapshot-schedule-<tag>",
		"create kubernetes:core/v1:PersistentVolume::dump-<tag>",
		"create kubernetes:core/v1:PersistentVolumeClaim::dump-<tag>",
		"create kubernetes:storage.k8s.io/v1:StorageClass::dump-<tag>",
		"delete gcp:compute/disk:Disk::dump-disk",
		"delete gcp:compute/diskResourcePolicyAttachment:DiskResourcePolicyAttachment::snapshot-schedule",
		"delete gcp:compute/resourcePolicy:ResourcePolicy::snapshot-schedule",
		"delete kubernetes:core/v1:PersistentVolume::dump",
		"delete kubernetes:core/v1:PersistentVolumeClaim::dump",
		"delete kubernetes:storage.k8s.io/v1:StorageClass::dump",
		"update kubernetes:apps/v1:Deployment::loklak-server",
	}
}

// devOnStandIn is the committed dev stack on a driver of its own, with overrides set as `pulumi config
// set` would, and a clean-up that destroys all but the protected disk.
func devOnStandIn(t *testing.T, overrides map[string]string) (harness.Driver, *gcp.Compute, auto.Stack) {
	t.Helper()
	ctx := context.Background()
	d := newDriver(t)
	gce := openGCE(t, d)
	stack, err := d.CommittedStack(ctx, "dev", nil)
	if err != nil {
		t.Fatal(err)
	}
	for key, value := range overrides {
		setConfig(t, stack, key, value)
	}
	t.Cleanup(func() {
		if out, err := d.CLI(ctx, "destroy", "--stack", "dev", "--yes", "--non-interactive", "--exclude-protected"); err != nil {
			t.Errorf("clean-up: %v\n%s", err, out)
		}
	})
	return d, gce, stack
}

// setReplicaZones sets diskReplicaZones as the array Pulumi.yaml declares, as
// `pulumi config set --path 'diskReplicaZones[0]' ZONE` does.
func setReplicaZones(t *testing.T, stack auto.Stack, zones ...string) {
	t.Helper()
	for i, z := range zones {
		key := fmt.Sprintf("diskReplicaZones[%d]", i)
		if err := stack.SetConfigWithOptions(context.Background(), key, auto.ConfigValue{Value: z}, &auto.ConfigOptions{Path: true}); err != nil {
			t.Fatal(err)
		}
	}
}

// loseZoneA moves the suite's nodes out of zone A: a node in zoneB first, then the zone-A node goes, as
// after a zone outage once GKE removed the unreachable node. The clean-up puts the zone-A node back and
// removes the other.
func loseZoneA(t *testing.T, nodeB, zoneB string) {
	t.Helper()
	ctx := context.Background()
	t.Cleanup(func() {
		if err := cp.AddNode(ctx, gke.NodeName, zone); err != nil {
			t.Error(err)
		}
		if _, err := cp.Kubectl(ctx, "delete", "node", nodeB, "--ignore-not-found"); err != nil {
			t.Error(err)
		}
	})
	if err := cp.AddNode(ctx, nodeB, zoneB); err != nil {
		t.Fatal(err)
	}
	if _, err := cp.Kubectl(ctx, "delete", "node", gke.NodeName); err != nil {
		t.Fatal(err)
	}
}

// A regional disk, replicated in zones a and b: when zone a goes away, the pod is rescheduled into zone b
// on the same claim, and nothing of the storage is recreated. (With a zonal disk the pod stays Pending:
// TestNodeReplacementKeepsTheClaim.)
func TestRegionalDiskFailsOverToTheOtherZone(t *testing.T) {
	const (
		project = "loklak-server"
		ns      = "regional-dev"
		zoneB   = "us-central1-b"
		nodeB   = "kwok-node-zone-b"
	)
	ctx := context.Background()
	_, gce, stack := devOnStandIn(t, map[string]string{"namespace": ns, "diskName": "regional-dev-data", "diskProtect": "false",
		"diskSizeGb": "200", "snapshotSchedule": "daily"})
	setReplicaZones(t, stack, "us-central1-a", zoneB)
	res, err := stack.Up(ctx, optup.ProgressStreams(testLog{T: t}))
	if err != nil {
		t.Fatal(err)
	}
	handle := gcp.RegionDiskPath(project, "us-central1", "regional-dev-data")
	want(t, "output volumeHandle", res.Outputs["volumeHandle"].Value, any(handle))
	disk, err := gce.GetDisk(handle)
	if err != nil {
		t.Fatalf("the regional disk is not in the simulated project: %v", err)
	}
	wantDeep(t, "replica zones", disk.ReplicaZones, []string{gcp.APIBase + "projects/loklak-server/zones/us-central1-a", gcp.APIBase + "projects/loklak-server/zones/us-central1-b"})
	wantDeep(t, "schedule on the regional disk", disk.ResourcePolicies, []string{gcp.APIBase + gcp.PolicyPath(project, "us-central1", "regional-dev-data-snapshots")})
	pvName, _ := res.Outputs["persistentVolumeName"].Value.(string)
	claimName, _ := res.Outputs["persistentVolumeClaimName"].Value.(string)
	pv := kubectlJSON(t, "get", "pv", pvName)
	want(t, "PV handle", pv.str("spec.csi.volumeHandle"), handle)
	wantDeep(t, "PV zones", pv.get("spec.nodeAffinity.required.nodeSelectorTerms.0.matchExpressions.0.values"), any([]any{"us-central1-a", "us-central1-b"}))
	want(t, "StorageClass replication", kubectlJSON(t, "get", "storageclass", pvName).str("parameters.replication-type"), "regional-pd")
	pvc := kubectlJSON(t, "-n", ns, "get", "pvc", claimName)
	want(t, "claim bound to the PV", pvc.str("spec.volumeName"), pvName)
	node, phase, _ := loklakPod(t, ns)
	want(t, "pod before the outage", node+" "+phase, gke.NodeName+" Running")

	loseZoneA(t, nodeB, zoneB)
	waitUntil(t, "the pod to run in zone b", func() bool {
		node, phase, _ := loklakPod(t, ns)
		return node == nodeB && phase == "Running"
	})
	_, _, mounted := loklakPod(t, ns)
	want(t, "claim the pod mounts in zone b", mounted, claimName)
	assertVolumeKept(t, ns, pvName, claimName, pv.str("metadata.uid"), pvc.str("metadata.uid"))
	if !strings.HasPrefix(pvName, "regional-dev-dump-") {
		t.Errorf("PV name %q: a regional disk's objects carry its tag", pvName)
	}
}

// A zonal disk whose zone is gone, restored from a snapshot into another zone: the config change plus
// `pulumi state unprotect` for the disk that leaves the stack, and one up. Before it, the preview shows
// what is created, moved and let go, and refuses while the old disk is protected. After it, loklak runs
// in the other zone on a claim bound to the new disk, nothing was called on the old disk (its zone is
// down), and the old disk is still in the project, out of the stack, with its schedule.
func TestRestoreIntoAnotherZone(t *testing.T) {
	const (
		project  = "loklak-server"
		ns       = "restore-dev"
		zoneB    = "us-central1-b"
		nodeB    = "kwok-node-restore-b"
		snapshot = "restore-a-20261130"
	)
	ctx := context.Background()
	d, gce, stack := devOnStandIn(t, map[string]string{"namespace": ns, "diskName": "restore-a", "snapshotSchedule": "daily"})
	step := stepper(t)
	var old gcp.Disk
	var oldPolicy string
	outer := t // the zone stays lost for the rest of the test

	step("up on disk A in zone a", func(t *testing.T) {
		if _, err := stack.Up(ctx, optup.ProgressStreams(testLog{T: t})); err != nil {
			t.Fatal(err)
		}
		old = simDisk(t, gce, project, "restore-a")
		oldPolicy = gcp.APIBase + gcp.PolicyPath(project, "us-central1", "restore-a-snapshots")
		wantDeep(t, "schedule on A", old.ResourcePolicies, []string{oldPolicy})
		node, phase, claim := loklakPod(t, ns)
		want(t, "pod", node+" "+phase+" "+claim, gke.NodeName+" Running dump")
	})

	step("a snapshot of A, then zone a goes away: the pod waits, Pending", func(t *testing.T) {
		if _, err := gce.CreateSnapshot(old.Path(), snapshot, nil); err != nil {
			t.Fatal(err)
		}
		loseZoneA(outer, nodeB, zoneB)
		waitUntil(t, "the pod to be Pending", func() bool {
			node, phase, _ := loklakPod(t, ns)
			return node == "" && phase == "Pending"
		})
	})

	for key, value := range map[string]string{"diskName": "restore-b", "zone": zoneB, "diskSourceSnapshot": snapshot} {
		setConfig(t, stack, key, value)
	}

	step("while A is protected, the preview refuses to let it go", func(t *testing.T) {
		var out strings.Builder
		_, err := harness.PreviewSteps(ctx, stack, optpreview.ProgressStreams(&out), optpreview.ErrorProgressStreams(&out))
		if err == nil {
			t.Fatal("the preview let a protected disk leave the stack")
		}
		for _, says := range []string{"cannot be deleted", "because it is protected", "pulumi state unprotect"} {
			if !strings.Contains(out.String()+err.Error(), says) {
				t.Errorf("the preview does not say %q:\n%s", says, out.String())
			}
		}
	})

	step("pulumi state unprotect, the one command", func(t *testing.T) {
		out, err := d.Shell(ctx, `pulumi state unprotect "$(pulumi stack output diskUrn)" --yes`)
		if err != nil {
			t.Fatal(err)
		}
		t.Log(out)
		want(t, "A protected in the state", protectedInState(t, stack, "gcp:compute/disk:Disk"), false)
	})

	step("the preview shows what is created, moved and let go", func(t *testing.T) {
		wantSteps(t, untag(previewChanges(t, stack)), movePlan("gcp:compute/disk:Disk", "gcp:compute/diskResourcePolicyAttachment:DiskResourcePolicyAttachment"))
	})

	step("one up: loklak runs in zone b on the disk made from the snapshot", func(t *testing.T) {
		calls := callCount(t, gce)
		res, err := stack.Up(ctx, optup.ProgressStreams(testLog{T: t}))
		if err != nil {
			t.Fatal(err)
		}
		restored := simDisk(t, gce, project, "restore-b")
		want(t, "B's zone", restored.Zone, zoneB)
		want(t, "B's source", restored.SourceSnapshot, gcp.APIBase+gcp.SnapshotPath(project, snapshot))
		wantDeep(t, "schedule on B", restored.ResourcePolicies, []string{gcp.APIBase + gcp.PolicyPath(project, "us-central1", "restore-b-snapshots")})
		wantNoCallOn(t, gce, calls, old.Path())
		kept := simDisk(t, gce, project, "restore-a")
		want(t, "A still in the project", kept.ID, old.ID)
		wantDeep(t, "A keeps its schedule", kept.ResourcePolicies, []string{oldPolicy})

		pvName, _ := res.Outputs["persistentVolumeName"].Value.(string)
		claimName, _ := res.Outputs["persistentVolumeClaimName"].Value.(string)
		want(t, "PV handle", kubectlJSON(t, "get", "pv", pvName).str("spec.csi.volumeHandle"), restored.Path())
		want(t, "claim bound to the new PV", kubectlJSON(t, "-n", ns, "get", "pvc", claimName).str("spec.volumeName"), pvName)
		waitUntil(t, "the pod to run in zone b", func() bool {
			node, phase, claim := loklakPod(t, ns)
			return node == nodeB && phase == "Running" && claim == claimName
		})
		for _, gone := range [][]string{{"-n", ns, "pvc", "dump"}, {"pv", ns + "-dump"}, {"storageclass", ns + "-dump"}} {
			if exists(t, gone...) {
				t.Errorf("%v outlived the restore", gone)
			}
		}
		var disks []string
		for _, r := range stateResources(t, stack) {
			if r.Type == "gcp:compute/disk:Disk" {
				disks = append(disks, fmt.Sprintf("%s protect=%v", r.ID, r.Protect))
			}
		}
		wantDeep(t, "disks in the state", disks, []string{restored.Path() + " protect=true"})
	})

	step("a second preview plans nothing", func(t *testing.T) {
		wantSteps(t, previewChanges(t, stack), nil)
	})
}

// docs/restore.md, command by command, on the committed prod stack: prod's zonal data-dump-disk (adopted,
// daily schedule) moves onto a regional disk made from its snapshot. Fails if the runbook holds a command
// this test does not run, or the test runs one the runbook lost.
func TestZonalToRegionalRunbook(t *testing.T) {
	const (
		snapshot = "data-dump-disk-to-regional"
		newDisk  = "data-dump-disk-regional"
	)
	ctx := context.Background()
	ensureNamespace(t, "web")
	d, gce, old, stack := prodOnDisk(t, 100)
	t.Cleanup(func() {
		if out, err := d.CLI(ctx, "destroy", "--stack", "prod", "--yes", "--non-interactive", "--exclude-protected"); err != nil {
			t.Errorf("clean-up: %v\n%s", err, out)
		}
	})
	if _, err := stack.Up(ctx, optup.ProgressStreams(testLog{T: t})); err != nil {
		t.Fatal(err)
	}
	// What the daily schedule would have taken by now.
	scheduled, err := gce.CreateSnapshot(prodHandle, "data-dump-disk-us-central1-a-20261130030000", nil)
	if err != nil {
		t.Fatal(err)
	}
	oldPolicy := gcp.APIBase + gcp.PolicyPath(prodProject, "us-central1", "data-dump-disk-snapshots")
	newHandle := gcp.RegionDiskPath(prodProject, "us-central1", newDisk)
	shell := func(t *testing.T, command string) string {
		t.Helper()
		out, err := d.Shell(ctx, command)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(out)
	}
	var upCalls int

	run := map[string]func(t *testing.T, command string){
		// gcloud cannot run here: the same listing comes from the simulated project.
		`gcloud compute snapshots list --filter="sourceDisk~/disks/data-dump-disk$" --sort-by=~creationTimestamp --format="table(name,creationTimestamp,diskSizeGb,status)"`: func(t *testing.T, _ string) {
			snaps, err := gce.Snapshots(prodProject)
			if err != nil {
				t.Fatal(err)
			}
			var ofTheDisk []string
			for _, s := range snaps {
				if strings.HasSuffix(s.SourceDisk, "/disks/"+prodDisk) {
					ofTheDisk = append(ofTheDisk, fmt.Sprintf("%s %d", s.Name, s.DiskSizeGB))
				}
			}
			wantDeep(t, "snapshots of the disk", ofTheDisk, []string{scheduled.Name + " 100"})
		},
		"pulumi config set replicas 0": func(t *testing.T, c string) { shell(t, c) },
		"pulumi up --yes": func(t *testing.T, _ string) {
			if _, err := stack.Up(ctx, optup.ProgressStreams(testLog{T: t})); err != nil {
				t.Fatal(err)
			}
			want(t, "replicas", kubectlJSON(t, "-n", "web", "get", "deployment", "loklak-server").get("status.replicas"), nil)
		},
		"gcloud compute snapshots create data-dump-disk-to-regional --source-disk data-dump-disk --source-disk-zone us-central1-a": func(t *testing.T, _ string) {
			if _, err := gce.CreateSnapshot(prodHandle, snapshot, nil); err != nil {
				t.Fatal(err)
			}
		},
		"pulumi config set diskMode create":                               func(t *testing.T, c string) { shell(t, c) },
		"pulumi config set diskName data-dump-disk-regional":              func(t *testing.T, c string) { shell(t, c) },
		"pulumi config set diskSourceSnapshot data-dump-disk-to-regional": func(t *testing.T, c string) { shell(t, c) },
		"pulumi config set diskSizeGb 200":                                func(t *testing.T, c string) { shell(t, c) },
		"pulumi config set --path 'diskReplicaZones[0]' us-central1-a":    func(t *testing.T, c string) { shell(t, c) },
		"pulumi config set --path 'diskReplicaZones[1]' us-central1-b":    func(t *testing.T, c string) { shell(t, c) },
		"pulumi config set replicas 1":                                    func(t *testing.T, c string) { shell(t, c) },
		`pulumi state unprotect "$(pulumi stack output diskUrn)" --yes`: func(t *testing.T, c string) {
			shell(t, c)
			want(t, "old disk protected in the state", protectedInState(t, stack, "gcp:compute/disk:Disk"), false)
		},
		"pulumi preview --diff": func(t *testing.T, _ string) {
			wantSteps(t, untag(previewChanges(t, stack)), movePlan("gcp:compute/regionDisk:RegionDisk", "gcp:compute/regionDiskResourcePolicyAttachment:RegionDiskResourcePolicyAttachment"))
		},
		"pulumi up --yes#2": func(t *testing.T, _ string) {
			upCalls = callCount(t, gce)
			if _, err := stack.Up(ctx, optup.ProgressStreams(testLog{T: t})); err != nil {
				t.Fatal(err)
			}
			restored, err := gce.GetDisk(newHandle)
			if err != nil {
				t.Fatalf("the regional disk: %v", err)
			}
			want(t, "new disk's source", restored.SourceSnapshot, gcp.APIBase+gcp.SnapshotPath(prodProject, snapshot))
			want(t, "new disk's size", restored.SizeGB, 200)
			wantDeep(t, "new disk's schedule", restored.ResourcePolicies, []string{gcp.APIBase + gcp.PolicyPath(prodProject, "us-central1", newDisk+"-snapshots")})
			wantNoCallOn(t, gce, upCalls, prodHandle)
			kept := simDisk(t, gce, prodProject, prodDisk)
			want(t, "old disk still in the project", kept.ID, old.ID)
			wantDeep(t, "old disk keeps its schedule", kept.ResourcePolicies, []string{oldPolicy})
			want(t, "new disk protected in the state", protectedInState(t, stack, "gcp:compute/regionDisk:RegionDisk"), true)
			want(t, "old disk in the state", slices.Contains(stateTypes(t, stack), "gcp:compute/disk:Disk"), false)
			waitUntil(t, "loklak to run on the new claim", func() bool {
				_, phase, claim := loklakPod(t, "web")
				return phase == "Running" && strings.HasPrefix(claim, "dump-")
			})
		},
		`kubectl get pv "$(pulumi stack output persistentVolumeName)" -o jsonpath='{.spec.csi.volumeHandle}'`: func(t *testing.T, c string) {
			want(t, c, shell(t, c), newHandle)
		},
		`kubectl -n web get pvc "$(pulumi stack output persistentVolumeClaimName)" -o jsonpath='{.spec.volumeName} {.status.phase}'`: func(t *testing.T, c string) {
			want(t, c, shell(t, c), shell(t, "pulumi stack output persistentVolumeName")+" Bound")
		},
		`curl -s "$(pulumi stack output dumpUrl)" | head`: func(t *testing.T, _ string) {
			t.Log("not run: kwok runs no containers, so nothing serves /dump/ (docs/restore.md says so)")
		},
		"gcloud compute disks delete data-dump-disk --zone us-central1-a": func(t *testing.T, _ string) {
			if err := gce.DeleteDisk(prodHandle); err != nil {
				t.Fatal(err)
			}
		},
		"gcloud compute resource-policies delete data-dump-disk-snapshots --region us-central1": func(t *testing.T, _ string) {
			if err := gce.DeleteResourcePolicy(prodProject, "us-central1", "data-dump-disk-snapshots"); err != nil {
				t.Fatal(err)
			}
			if _, err := gce.GetSnapshot(prodProject, scheduled.Name); err != nil {
				t.Errorf("the scheduled snapshot went with its disk: %v", err)
			}
			wantSteps(t, previewChanges(t, stack), nil)
		},
	}

	seen := map[string]int{}
	for i, command := range runbookCommands(t, filepath.Join(repoDir(t), "docs", "restore.md")) {
		key := command
		if seen[command]++; seen[command] > 1 {
			key = fmt.Sprintf("%s#%d", command, seen[command])
		}
		f, ok := run[key]
		if !ok {
			t.Fatalf("docs/restore.md runs %q, which this test does not: run it here or take it out", key)
		}
		delete(run, key)
		if !t.Run(fmt.Sprintf("%d %s", i+1, command), func(t *testing.T) { f(t, command) }) {
			t.FailNow()
		}
	}
	for command := range run {
		t.Errorf("the test runs %q, which docs/restore.md no longer has", command)
	}
}

// Setting diskReplicaZones on a stack with a zonal disk, without a snapshot, declares a new, empty disk.
// The regional disk aliases the zonal one, so the engine sees one disk replaced, which protect refuses
// before any change, even in an up without a preview (the Automation API's); as a new resource beside
// the old, the engine would have moved loklak onto the empty disk before the protected delete failed.
func TestReplicationChangeWithoutASnapshotIsRefused(t *testing.T) {
	const ns = "replication-dev"
	ctx := context.Background()
	_, gce, stack := devOnStandIn(t, map[string]string{"namespace": ns, "diskName": "replication-dev-data", "snapshotSchedule": "daily"})
	if _, err := stack.Up(ctx, optup.ProgressStreams(testLog{T: t})); err != nil {
		t.Fatal(err)
	}
	pv := kubectlJSON(t, "get", "pv", ns+"-dump")
	pvc := kubectlJSON(t, "-n", ns, "get", "pvc", "dump")

	setConfig(t, stack, "diskSizeGb", "200")
	setReplicaZones(t, stack, "us-central1-a", "us-central1-b")
	calls := callCount(t, gce)
	var out strings.Builder
	_, err := stack.Up(ctx, optup.ProgressStreams(&out))
	if err == nil {
		t.Fatal("up turned a protected zonal disk into a new, empty regional one")
	}
	if says := out.String() + err.Error(); !strings.Contains(says, "marked for protection") {
		t.Errorf("up does not say why it failed:\n%s", says)
	}
	wantCalls(t, gce, calls, nil)
	if disks, err := gce.Disks("loklak-server"); err != nil || len(disks) != 1 || disks[0].Regional() {
		t.Errorf("disks in the project: %+v (%v), want only the zonal one", disks, err)
	}
	assertStorageKept(t, ns, pv.str("metadata.uid"), pvc.str("metadata.uid"))
	_, _, claim := loklakPod(t, ns)
	want(t, "claim loklak mounts", claim, "dump")
	setConfig(t, stack, "diskSizeGb", "10")
	if err := stack.RemoveConfig(ctx, "diskReplicaZones"); err != nil {
		t.Fatal(err)
	}
	wantSteps(t, previewChanges(t, stack), nil)
}
