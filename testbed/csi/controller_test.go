package csi

import (
	"slices"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/loklak/loklak-dumps/testbed/gcp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestControllerPublishRefusesAsGKE checks the three refusals a GKE user meets when a pod's disk cannot be
// attached to its node, with the code and the message the PD CSI driver gives (controller.go,
// executeControllerPublishVolume) around Compute Engine's own words (testbed/gcp instance.go): the disk is
// missing, the disk is in another zone than the node, the disk is attached read-write to another node.
// None changes the disk's users. The controller needs no root.
func TestControllerPublishRefusesAsGKE(t *testing.T) {
	p := startPlugin(t)
	c := p.compute
	other, err := c.PutInstance(gcp.Instance{Name: "node-2", Project: testProject, Zone: testZone})
	if err != nil {
		t.Fatal(err)
	}
	used, err := c.InsertDisk(gcp.Disk{Name: "data", Project: testProject, Zone: testZone, SizeGB: 10, Type: "pd-standard"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AttachDisk(other.Path(), used.Path(), gcp.ReadWrite); err != nil {
		t.Fatal(err)
	}
	elsewhere, err := c.InsertDisk(gcp.Disk{Name: "data-b", Project: testProject, Zone: "us-central1-b", SizeGB: 10, Type: "pd-standard"})
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name    string
		volume  string
		code    codes.Code
		message string
	}{
		{"missing disk", gcp.DiskPath(testProject, testZone, "missing"), codes.NotFound,
			`Could not find disk Key{"missing", zone: "us-central1-a"}: googleapi: Error 404: ` +
				`The resource 'projects/p1/zones/us-central1-a/disks/missing' was not found, notFound`},
		{"disk in another zone", elsewhere.Path(), codes.InvalidArgument,
			"Failed to Attach: failed cloud service attach disk call: googleapi: Error 400: Invalid value for field 'resource.source': " +
				"'https://www.googleapis.com/compute/v1/projects/p1/zones/us-central1-b/disks/data-b'. Disk must be in the same zone as the instance., invalid"},
		{"disk attached read-write elsewhere", used.Path(), codes.InvalidArgument,
			"Failed to Attach: failed cloud service attach disk call: googleapi: Error 400: The disk resource " +
				"'projects/p1/zones/us-central1-a/disks/data' is already being used by 'projects/p1/zones/us-central1-a/instances/node-2', resourceInUseByAnotherResource"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := c.GetDisk(tc.volume)
			_, err := p.controller().ControllerPublishVolume(bg, &csi.ControllerPublishVolumeRequest{
				VolumeId: tc.volume, NodeId: p.driver.NodeID(), VolumeCapability: mountCapability()})
			st, _ := status.FromError(err)
			if st.Code() != tc.code || st.Message() != tc.message {
				t.Errorf("ControllerPublishVolume: code %v, message\n%s\nwant %v,\n%s", st.Code(), st.Message(), tc.code, tc.message)
			}
			if after, _ := c.GetDisk(tc.volume); !slices.Equal(before.Users, after.Users) {
				t.Errorf("the refusal changed the disk's users from %v to %v", before.Users, after.Users)
			}
		})
	}

	// Once the other node lets go, the disk attaches here, and its users say so.
	if _, err := p.controller().ControllerUnpublishVolume(bg, &csi.ControllerUnpublishVolumeRequest{VolumeId: used.Path(), NodeId: other.Path()}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.controller().ControllerPublishVolume(bg, &csi.ControllerPublishVolumeRequest{
		VolumeId: used.Path(), NodeId: p.driver.NodeID(), VolumeCapability: mountCapability()}); err != nil {
		t.Fatal(err)
	}
	if d, _ := c.GetDisk(used.Path()); !slices.Equal(d.Users, []string{gcp.APIBase + p.driver.NodeID()}) {
		t.Errorf("users after the attach: %v", d.Users)
	}
}

func TestDiskNamesFromCSINames(t *testing.T) {
	for _, tc := range []struct{ name, want string }{
		{"pvc-0a1b2c3d-4e5f-6789-abcd-ef0123456789", "pvc-0a1b2c3d-4e5f-6789-abcd-ef0123456789"}, // external-provisioner's: unchanged
		{"data-dump-disk", "data-dump-disk"},
	} {
		if got := diskName(tc.name); got != tc.want {
			t.Errorf("diskName(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
	seen := map[string]string{}
	for _, name := range []string{"sanity-controller-create-twice-8A3F0C12-9D2E4B77", "sanity-controller-create-twice-8a3f0c12-9d2e4b77",
		"1-starts-with-a-digit", "Has_Underscores", "x" + strings.Repeat("a", 127)} {
		got := diskName(name)
		if !diskNameRE.MatchString(got) {
			t.Errorf("diskName(%q) = %q: not a Compute Engine name", name, got)
		}
		if prev, ok := seen[got]; ok {
			t.Errorf("diskName(%q) = diskName(%q) = %q", name, prev, got)
		}
		seen[got] = name
	}
}
