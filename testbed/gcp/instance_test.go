package gcp

import (
	"slices"
	"testing"
)

func TestAttachDiskRecordsUsersAndRefusesAsTheAPI(t *testing.T) {
	c, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	nodeA, err := c.PutInstance(Instance{Name: "node-a", Project: "p1", Zone: "us-central1-a"})
	if err != nil {
		t.Fatal(err)
	}
	nodeA2, err := c.PutInstance(Instance{Name: "node-a2", Project: "p1", Zone: "us-central1-a"})
	if err != nil {
		t.Fatal(err)
	}
	nodeB, err := c.PutInstance(Instance{Name: "node-b", Project: "p1", Zone: "us-central1-b"})
	if err != nil {
		t.Fatal(err)
	}
	disk, err := c.InsertDisk(Disk{Name: "data", Project: "p1", Zone: "us-central1-a", SizeGB: 10, Type: "pd-standard"})
	if err != nil {
		t.Fatal(err)
	}
	regional, err := c.InsertDisk(Disk{Name: "both", Project: "p1", Region: "us-central1", SizeGB: 200, Type: "pd-standard",
		ReplicaZones: []string{APIBase + "projects/p1/zones/us-central1-a", APIBase + "projects/p1/zones/us-central1-c"}})
	if err != nil {
		t.Fatal(err)
	}
	apiError := func(err error, code int, reason, message string) {
		t.Helper()
		want := (&APIError{Code: code, Reason: reason, Message: message}).Error()
		if err == nil || err.Error() != want {
			t.Errorf("error %v\nwant       %s", err, want)
		}
	}

	if err := c.AttachDisk(nodeA.Path(), disk.Path(), ReadWrite); err != nil {
		t.Fatal(err)
	}
	got, _ := c.GetDisk(disk.Path())
	if !slices.Equal(got.Users, []string{nodeA.SelfLink()}) {
		t.Errorf("users after the attach: %v", got.Users)
	}
	inst, _ := c.GetInstance(nodeA.Path())
	if a, ok := inst.Attached(disk.Path()); !ok || a.Mode != ReadWrite || a.DeviceName != "data" {
		t.Errorf("the instance's disks after the attach: %+v", inst.Disks)
	}

	apiError(c.AttachDisk(nodeA2.Path(), disk.Path(), ReadWrite), 400, "resourceInUseByAnotherResource",
		"The disk resource 'projects/p1/zones/us-central1-a/disks/data' is already being used by 'projects/p1/zones/us-central1-a/instances/node-a'")
	apiError(c.AttachDisk(nodeA2.Path(), disk.Path(), ReadOnly), 400, "resourceInUseByAnotherResource",
		"The disk resource 'projects/p1/zones/us-central1-a/disks/data' is already being used by 'projects/p1/zones/us-central1-a/instances/node-a'")
	apiError(c.AttachDisk(nodeA.Path(), disk.Path(), ReadWrite), 400, "resourceInUseByAnotherResource",
		"The disk resource 'projects/p1/zones/us-central1-a/disks/data' is already being used by 'projects/p1/zones/us-central1-a/instances/node-a'")
	apiError(c.AttachDisk(nodeB.Path(), disk.Path(), ReadWrite), 400, "invalid",
		"Invalid value for field 'resource.source': 'https://www.googleapis.com/compute/v1/projects/p1/zones/us-central1-a/disks/data'. Disk must be in the same zone as the instance.")
	apiError(c.AttachDisk(nodeB.Path(), regional.Path(), ReadWrite), 400, "invalid",
		"Invalid value for field 'resource.source': 'https://www.googleapis.com/compute/v1/projects/p1/regions/us-central1/disks/both'. Disk must be in the same zone as the instance.")
	apiError(c.AttachDisk(InstancePath("p1", "us-central1-a", "gone"), disk.Path(), ReadWrite), 404, "notFound",
		"The resource 'projects/p1/zones/us-central1-a/instances/gone' was not found")
	apiError(c.AttachDisk(nodeA.Path(), DiskPath("p1", "us-central1-a", "gone"), ReadWrite), 404, "notFound",
		"The resource 'projects/p1/zones/us-central1-a/disks/gone' was not found")

	// Detach clears both sides; then read-only attachments may share the disk, and a read-write one may not join.
	if err := c.DetachDisk(disk.Path(), nodeA.SelfLink()); err != nil {
		t.Fatal(err)
	}
	if inst, _ := c.GetInstance(nodeA.Path()); len(inst.Disks) != 0 {
		t.Errorf("the instance still lists %+v", inst.Disks)
	}
	for _, n := range []Instance{nodeA, nodeA2} {
		if err := c.AttachDisk(n.Path(), disk.Path(), ReadOnly); err != nil {
			t.Fatalf("read-only attach to %s: %v", n.Name, err)
		}
	}
	apiError(c.AttachDisk(InstancePath("p1", "us-central1-a", "node-a3"), disk.Path(), ReadWrite), 404, "notFound",
		"The resource 'projects/p1/zones/us-central1-a/instances/node-a3' was not found")
	nodeA3, _ := c.PutInstance(Instance{Name: "node-a3", Project: "p1", Zone: "us-central1-a"})
	apiError(c.AttachDisk(nodeA3.Path(), disk.Path(), ReadWrite), 400, "resourceInUseByAnotherResource",
		"The disk resource 'projects/p1/zones/us-central1-a/disks/data' is already being used by 'projects/p1/zones/us-central1-a/instances/node-a'")

	// A regional disk attaches in either replica zone.
	if err := c.AttachDisk(nodeA.Path(), regional.Path(), ReadWrite); err != nil {
		t.Errorf("regional disk in its replica zone: %v", err)
	}
}
