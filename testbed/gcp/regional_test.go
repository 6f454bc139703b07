package gcp

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/common/tokens"
)

func regionDiskInputs(size int, zones ...any) map[string]any {
	return map[string]any{"name": "data", "project": "p1", "region": "us-central1", "replicaZones": zones, "size": size, "type": "pd-standard"}
}

// A RegionDisk is created in its region with its two replica zones, which the state holds as v1 URLs
// (rules §0, §2); its ID is the regional path.
func TestRegionDiskCreate(t *testing.T) {
	f := newFixture(t)
	id, _, state := f.create(RegionDiskType, "dump-disk", regionDiskInputs(200, "us-central1-a", "us-central1-f"))
	if id != "projects/p1/regions/us-central1/disks/data" {
		t.Errorf("ID = %q", id)
	}
	wantZones := []any{APIBase + "projects/p1/zones/us-central1-a", APIBase + "projects/p1/zones/us-central1-f"}
	if got := state["replicaZones"].Mappable(); !reflect.DeepEqual(got, wantZones) {
		t.Errorf("replicaZones = %v, want %v", got, wantZones)
	}
	if _, ok := state["diskId"]; ok {
		t.Error("a RegionDisk has no diskId output (rules §2)")
	}
	d, err := f.compute.GetDisk(string(id))
	if err != nil {
		t.Fatal(err)
	}
	if !d.Regional() || d.SizeGB != 200 || d.SelfLink() != APIBase+string(id) {
		t.Errorf("disk in the project = %+v", d)
	}
	if disks, _ := f.compute.Disks("p1"); len(disks) != 1 || disks[0].Path() != string(id) {
		t.Errorf("Disks lists %+v", disks)
	}
}

// What Compute Engine refuses of a regional disk (rules §7), and the provider's own check of replicaZones.
func TestRegionDiskChecksLikeTheAPI(t *testing.T) {
	f := newFixture(t)
	create := func(in map[string]any) error {
		checked := f.check(RegionDiskType, "dump-disk", nil, props(in))
		_, err := f.p.Create(context.Background(), plugin.CreateRequest{URN: urn(RegionDiskType, "dump-disk"), Type: tokens.Type(RegionDiskType), Properties: checked})
		return err
	}
	for what, tc := range map[string]struct {
		in   map[string]any
		want string
	}{
		"pd-standard below 200 GB": {regionDiskInputs(199, "us-central1-a", "us-central1-b"), "outside the range 200 GB to 65536 GB"},
		"a zone of another region": {regionDiskInputs(200, "us-central1-a", "us-east1-b"), "must be in the disk's region us-central1"},
		"the same zone twice":      {regionDiskInputs(200, "us-central1-a", "us-central1-a"), "two distinct replica zones"},
	} {
		if err := create(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", what, err, tc.want)
		}
	}
	balanced := regionDiskInputs(10, "us-central1-a", "us-central1-b")
	balanced["type"] = "pd-balanced"
	if err := create(balanced); err != nil {
		t.Errorf("a 10 GB regional pd-balanced disk: %v", err)
	}
	res, err := f.p.Check(context.Background(), plugin.CheckRequest{URN: urn(RegionDiskType, "x"), Type: tokens.Type(RegionDiskType),
		News: props(regionDiskInputs(200, "us-central1-a")), RandomSeed: []byte("seed")})
	if err != nil || len(res.Failures) != 1 || res.Failures[0].Property != "replicaZones" {
		t.Errorf("one replica zone: check failures %v, %v", res.Failures, err)
	}
}

// Only labels and size change a RegionDisk in place; everything else, replica zones included, replaces
// it (rules §2). Zones given as names and held as URLs are the same zones.
func TestRegionDiskDiff(t *testing.T) {
	f := newFixture(t)
	id, inputs, state := f.create(RegionDiskType, "dump-disk", regionDiskInputs(200, "us-central1-a", "us-central1-b"))
	for what, tc := range map[string]struct {
		news     map[string]any
		replaces []string
		changed  []string
	}{
		"grow":           {regionDiskInputs(300, "us-central1-a", "us-central1-b"), nil, []string{"size"}},
		"another zone":   {regionDiskInputs(200, "us-central1-a", "us-central1-c"), []string{"replicaZones"}, []string{"replicaZones"}},
		"zones as links": {regionDiskInputs(200, APIBase+"projects/p1/zones/us-central1-a", "us-central1-b"), nil, nil},
	} {
		d := f.diff(RegionDiskType, "dump-disk", id, inputs, state, tc.news)
		if got := replaceKeys(d); !slices.Equal(got, tc.replaces) {
			t.Errorf("%s: replaces %v, want %v", what, got, tc.replaces)
		}
		if got := changedKeys(d); !slices.Equal(got, tc.changed) {
			t.Errorf("%s: changes %v, want %v", what, got, tc.changed)
		}
	}
}

// A disk made from a snapshot: the snapshot must exist and fit; the disk records where it came from; a
// snapshot outlives its source disk (rules §6, §7).
func TestDiskFromASnapshot(t *testing.T) {
	f := newFixture(t)
	src, err := f.compute.PutDisk(Disk{Name: "old", Project: "p1", Zone: "us-central1-a", SizeGB: 100, Type: "pd-standard"})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := f.compute.CreateSnapshot(src.Path(), "old-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if snap.DiskSizeGB != 100 || snap.SourceDisk != src.SelfLink() {
		t.Errorf("snapshot = %+v", snap)
	}
	if err := f.compute.DeleteDisk(src.Path()); err != nil {
		t.Fatal(err)
	}
	if _, err := f.compute.GetSnapshot("p1", "old-1"); err != nil {
		t.Errorf("the snapshot went with its disk: %v", err)
	}

	create := func(typ string, in map[string]any) (resource.ID, resource.PropertyMap, error) {
		checked := f.check(typ, "dump-disk", nil, props(in))
		res, err := f.p.Create(context.Background(), plugin.CreateRequest{URN: urn(typ, "dump-disk"), Type: tokens.Type(typ), Properties: checked})
		return res.ID, res.Properties, err
	}
	in := regionDiskInputs(200, "us-central1-b", "us-central1-c")
	in["snapshot"] = "projects/p1/global/snapshots/old-1"
	id, state, err := create(RegionDiskType, in)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := f.compute.GetDisk(string(id))
	if d.SourceSnapshot != APIBase+"projects/p1/global/snapshots/old-1" || d.SourceSnapshotID != snap.ID {
		t.Errorf("restored disk = %+v", d)
	}
	if state["sourceSnapshotId"].StringValue() != snap.ID || state["snapshot"].StringValue() != APIBase+"projects/p1/global/snapshots/old-1" {
		t.Errorf("state = %v", state)
	}

	small := diskInputs(50, nil)
	small["snapshot"] = "old-1"
	if _, _, err := create(DiskType, small); err == nil || !strings.Contains(err.Error(), "smaller than the snapshot's 100 GB") {
		t.Errorf("a disk smaller than its snapshot: %v", err)
	}
	missing := diskInputs(100, nil)
	missing["snapshot"] = "nothing-here"
	if _, _, err := create(DiskType, missing); !IsNotFound(err) || !strings.Contains(err.Error(), "projects/p1/global/snapshots/nothing-here") {
		t.Errorf("a disk from a snapshot that does not exist: %v", err)
	}
	// The same snapshot as a name and as a link is no change; another snapshot replaces the disk.
	id2, inputs, state2 := f.create(DiskType, "dump-disk", map[string]any{"name": "data", "project": "p1", "zone": "us-central1-a", "size": 100, "snapshot": "old-1"})
	if d := f.diff(DiskType, "dump-disk", id2, inputs, state2, map[string]any{"name": "data", "project": "p1", "zone": "us-central1-a", "size": 100, "snapshot": "projects/p1/global/snapshots/old-1"}); len(d.ChangedKeys) != 0 {
		t.Errorf("the same snapshot as a link changes %v", d.ChangedKeys)
	}
	if d := f.diff(DiskType, "dump-disk", id2, inputs, state2, map[string]any{"name": "data", "project": "p1", "zone": "us-central1-a", "size": 100, "snapshot": "old-2"}); !slices.Equal(replaceKeys(d), []string{"snapshot"}) {
		t.Errorf("another snapshot: replaces %v, want [snapshot]", replaceKeys(d))
	}
}

// The regional attachment adds the policy to the regional disk by its region (rules §4) and removes it on
// delete.
func TestRegionAttachment(t *testing.T) {
	f := newFixture(t)
	diskID, _, _ := f.create(RegionDiskType, "dump-disk", regionDiskInputs(200, "us-central1-a", "us-central1-b"))
	if _, err := f.compute.InsertResourcePolicy(ResourcePolicy{Name: "data-snapshots", Project: "p1", Region: "us-central1"}); err != nil {
		t.Fatal(err)
	}
	id, _, _ := f.create(RegionAttachmentType, "snapshot-schedule", map[string]any{"disk": "data", "name": "data-snapshots", "project": "p1", "region": "us-central1"})
	if id != "p1/us-central1/data/data-snapshots" {
		t.Errorf("ID = %q", id)
	}
	d, _ := f.compute.GetDisk(string(diskID))
	if !slices.Equal(d.ResourcePolicies, []string{APIBase + "projects/p1/regions/us-central1/resourcePolicies/data-snapshots"}) {
		t.Errorf("policies = %v", d.ResourcePolicies)
	}
	if _, err := f.p.Delete(context.Background(), plugin.DeleteRequest{URN: urn(RegionAttachmentType, "snapshot-schedule"), Type: tokens.Type(RegionAttachmentType), ID: id}); err != nil {
		t.Fatal(err)
	}
	if d, _ := f.compute.GetDisk(string(diskID)); len(d.ResourcePolicies) != 0 {
		t.Errorf("policies after delete = %v", d.ResourcePolicies)
	}
}
