package csi

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/loklak/loklak-dumps/testbed/gcp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// mountVolume walks a volume through what a kubelet and an attacher do for a pod: attach, stage, publish.
// It returns the pod's path; unmount undoes it all.
func mountVolume(t *testing.T, p plugin, volumeID, name string) (target string) {
	t.Helper()
	staging := filepath.Join(p.dir, "staging-"+name)
	target = filepath.Join(p.dir, "pods", name, "mount")
	if _, err := p.controller().ControllerPublishVolume(bg, &csi.ControllerPublishVolumeRequest{
		VolumeId: volumeID, NodeId: p.driver.NodeID(), VolumeCapability: mountCapability()}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.node().NodeStageVolume(bg, &csi.NodeStageVolumeRequest{
		VolumeId: volumeID, StagingTargetPath: staging, VolumeCapability: mountCapability()}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.node().NodePublishVolume(bg, &csi.NodePublishVolumeRequest{
		VolumeId: volumeID, StagingTargetPath: staging, TargetPath: target, VolumeCapability: mountCapability()}); err != nil {
		t.Fatal(err)
	}
	return target
}

func unmountVolume(t *testing.T, p plugin, volumeID, name string) {
	t.Helper()
	staging := filepath.Join(p.dir, "staging-"+name)
	target := filepath.Join(p.dir, "pods", name, "mount")
	if _, err := p.node().NodeUnpublishVolume(bg, &csi.NodeUnpublishVolumeRequest{VolumeId: volumeID, TargetPath: target}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.node().NodeUnstageVolume(bg, &csi.NodeUnstageVolumeRequest{VolumeId: volumeID, StagingTargetPath: staging}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.controller().ControllerUnpublishVolume(bg, &csi.ControllerUnpublishVolumeRequest{VolumeId: volumeID, NodeId: p.driver.NodeID()}); err != nil {
		t.Fatal(err)
	}
}

func fsTotal(t *testing.T, p plugin, volumeID, path string) int64 {
	t.Helper()
	st, err := p.node().NodeGetVolumeStats(bg, &csi.NodeGetVolumeStatsRequest{VolumeId: volumeID, VolumePath: path})
	if err != nil {
		t.Fatal(err)
	}
	return st.GetUsage()[0].GetTotal()
}

// TestAPodsFilesLandInTheDisk: what a pod writes under its volume is in the disk's bytes after the volume
// is let go; a snapshot carries it to a larger disk, whose filesystem the node grows when it stages it; a
// disk grown while in use is grown by NodeExpandVolume where the kernel allows it, else at the next stage.
func TestAPodsFilesLandInTheDisk(t *testing.T) {
	needRoot(t)
	p := startPlugin(t)
	c := p.compute
	disk, err := c.InsertDisk(gcp.Disk{Name: "data-dump-disk", Project: testProject, Zone: testZone, SizeGB: 10, Type: "pd-standard"})
	if err != nil {
		t.Fatal(err)
	}
	target := mountVolume(t, p, disk.Path(), "server")
	if err := os.MkdirAll(filepath.Join(target, "dump", "own"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(target, "dump", "own", "messages_20170101_00000001.txt"), []byte("a tweet\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	unmountVolume(t, p, disk.Path(), "server")

	image := absImage(c.DiskImage(disk.Path()))
	if devs, _ := loopsOf(image); len(devs) != 0 {
		t.Errorf("loop devices left on the disk after unstaging: %v", devs)
	}
	if d, _ := c.GetDisk(disk.Path()); len(d.Users) != 0 {
		t.Errorf("users after the detach: %v", d.Users)
	}
	out, err := exec.Command("debugfs", "-R", "cat /dump/own/messages_20170101_00000001.txt", image).Output()
	if err != nil || string(out) != "a tweet\n" {
		t.Errorf("the disk's image holds %q (%v), want the pod's file", out, err)
	}

	// A larger disk from a snapshot: the node grows its filesystem when it stages it.
	if _, err := c.CreateSnapshot(disk.Path(), "data-dump-disk-1", nil); err != nil {
		t.Fatal(err)
	}
	restored, err := c.InsertDisk(gcp.Disk{Name: "restored", Project: testProject, Zone: testZone, SizeGB: 20, Type: "pd-standard",
		SourceSnapshot: gcp.SnapshotPath(testProject, "data-dump-disk-1")})
	if err != nil {
		t.Fatal(err)
	}
	target = mountVolume(t, p, restored.Path(), "restored")
	if got, err := os.ReadFile(filepath.Join(target, "dump", "own", "messages_20170101_00000001.txt")); err != nil || string(got) != "a tweet\n" {
		t.Errorf("the restored disk holds %q (%v)", got, err)
	}
	if total := fsTotal(t, p, restored.Path(), target); total < 19<<30 {
		t.Errorf("restored filesystem is %d bytes; the node should have grown it to the 20 GiB disk", total)
	}

	// Grown while in use.
	if _, err := p.controller().ControllerExpandVolume(bg, &csi.ControllerExpandVolumeRequest{
		VolumeId: restored.Path(), CapacityRange: &csi.CapacityRange{RequiredBytes: 30 << 30}}); err != nil {
		t.Fatal(err)
	}
	_, err = p.node().NodeExpandVolume(bg, &csi.NodeExpandVolumeRequest{VolumeId: restored.Path(), VolumePath: target,
		CapacityRange: &csi.CapacityRange{RequiredBytes: 30 << 30}})
	if hasCapSysResource() {
		if err != nil {
			t.Fatalf("NodeExpandVolume with CAP_SYS_RESOURCE: %v", err)
		}
	} else if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("NodeExpandVolume without CAP_SYS_RESOURCE: %v; want FailedPrecondition", err)
	} else {
		t.Logf("online grow refused here, as expected: %v", status.Convert(err).Message())
		unmountVolume(t, p, restored.Path(), "restored")
		target = mountVolume(t, p, restored.Path(), "restored")
	}
	if total := fsTotal(t, p, restored.Path(), target); total < 29<<30 {
		t.Errorf("filesystem is %d bytes after growing the disk to 30 GiB", total)
	}
	unmountVolume(t, p, restored.Path(), "restored")
}

// TestStagingNeedsTheAttach: a node cannot stage a disk that is not attached to its instance, and says
// what attaches it.
func TestStagingNeedsTheAttach(t *testing.T) {
	needRoot(t)
	p := startPlugin(t)
	disk, err := p.compute.InsertDisk(gcp.Disk{Name: "data", Project: testProject, Zone: testZone, SizeGB: 10, Type: "pd-standard"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.node().NodeStageVolume(bg, &csi.NodeStageVolumeRequest{
		VolumeId: disk.Path(), StagingTargetPath: filepath.Join(p.dir, "staging"), VolumeCapability: mountCapability()})
	want := "Error when getting device path: disk projects/p1/zones/us-central1-a/disks/data is not attached to instance " +
		"projects/p1/zones/us-central1-a/instances/node-1 (ControllerPublishVolume attaches it: is an attacher acting on this driver's VolumeAttachments?)"
	if st := status.Convert(err); st.Code() != codes.Internal || st.Message() != want {
		t.Errorf("NodeStageVolume of a detached disk: %v %q", st.Code(), st.Message())
	}
	if devs, _ := loopsOf(absImage(p.compute.DiskImage(disk.Path()))); len(devs) != 0 {
		t.Errorf("a refused stage left loop devices: %v", devs)
	}
}
