package gcp

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Instance is a VM as far as its disks are concerned: a GKE node, in the PD CSI driver's words the node
// ID projects/P/zones/Z/instances/N. The simulated project knows only the instances a test or the CSI
// plugin (testbed/csi, for its node) puts there.
type Instance struct {
	ID                string         `json:"id"`
	Name              string         `json:"name"`
	Project           string         `json:"project"`
	Zone              string         `json:"zone"`
	CreationTimestamp string         `json:"creationTimestamp"`
	Disks             []AttachedDisk `json:"disks,omitempty"`
}

// AttachedDisk is one entry of an instance's disks, as instances.get shows it.
type AttachedDisk struct {
	DeviceName string `json:"deviceName"`
	// Source is the disk's v1 URL.
	Source string `json:"source"`
	// Mode is READ_WRITE or READ_ONLY.
	Mode string `json:"mode"`
}

// Attachment modes of instances.attachDisk.
const (
	ReadWrite = "READ_WRITE"
	ReadOnly  = "READ_ONLY"
)

// InstancePath is projects/P/zones/Z/instances/N, the PD CSI driver's node ID.
func InstancePath(project, zone, name string) string {
	return fmt.Sprintf("projects/%s/zones/%s/instances/%s", project, zone, name)
}

// Path is the instance's relative link.
func (i Instance) Path() string { return InstancePath(i.Project, i.Zone, i.Name) }

// SelfLink is the instance's v1 URL, the form a disk's users take.
func (i Instance) SelfLink() string { return APIBase + i.Path() }

// Attached returns the instance's entry for the disk at path (its ID), if the disk is attached.
func (i Instance) Attached(diskPath string) (AttachedDisk, bool) {
	for _, a := range i.Disks {
		if a.Source == APIBase+diskPath {
			return a, true
		}
	}
	return AttachedDisk{}, false
}

// PutInstance stores an instance as it is, without an API call: a VM that exists before the test, as a
// GKE node pool's do. Missing ID and timestamp are filled in.
func (c *Compute) PutInstance(i Instance) (Instance, error) {
	defer c.lock()()
	if i.ID == "" {
		i.ID = c.newID()
	}
	if i.CreationTimestamp == "" {
		i.CreationTimestamp = c.now().UTC().Format(time.RFC3339)
	}
	return i, c.store(i.Path(), i)
}

// EnsureInstance puts the instance if the project lacks it and returns the stored one, without an API
// call: how the CSI plugin makes its node a VM of the project. An instance already there keeps its disks.
func (c *Compute) EnsureInstance(i Instance) (Instance, error) {
	defer c.lock()()
	if stored, err := load[Instance](c, "instance", i.Path()); err == nil {
		return stored, nil
	} else if !IsNotFound(err) {
		return Instance{}, err
	}
	i.ID = c.newID()
	i.CreationTimestamp = c.now().UTC().Format(time.RFC3339)
	return i, c.store(i.Path(), i)
}

// GetInstance returns the instance at path (projects/P/zones/Z/instances/N), or a 404 APIError.
func (c *Compute) GetInstance(path string) (Instance, error) {
	defer c.lock()()
	if err := c.record("GET", path, nil); err != nil {
		return Instance{}, err
	}
	return load[Instance](c, "instance", path)
}

// AttachDisk attaches the disk at diskPath to the instance at instancePath (instances.attachDisk) in mode
// READ_WRITE or READ_ONLY, and adds the instance to the disk's users, as Compute Engine does. It refuses as
// the API does:
//   - a missing instance or disk: 404 notFound;
//   - a disk outside the instance's zone (for a regional disk: neither replica zone is the instance's):
//     400 invalid, "Invalid value for field 'resource.source': '<disk URL>'. Disk must be in the same zone
//     as the instance." (the API's words, quoted in GoogleCloudPlatform/google-cloud-powershell#237; for a
//     regional disk the wording is assumed to be the same);
//   - a disk attached elsewhere when either attachment would be read-write, or already attached to this
//     instance: 400 resourceInUseByAnotherResource, "The disk resource '<disk>' is already being used by
//     '<instance>'" (hashicorp/terraform#23698 quotes it whole; cloudfoundry/bosh-google-cpi-release#280
//     shows it for a disk already on the same VM). Only read-only attachments may share a disk.
func (c *Compute) AttachDisk(instancePath, diskPath, mode string) error {
	defer c.lock()()
	if mode != ReadWrite && mode != ReadOnly {
		return invalid("Invalid value for field 'resource.mode': '%s'. Must be READ_WRITE or READ_ONLY", mode)
	}
	if err := c.record("POST", instancePath+"/attachDisk", map[string]any{"source": APIBase + diskPath, "mode": mode}); err != nil {
		return err
	}
	inst, err := load[Instance](c, "instance", instancePath)
	if err != nil {
		return err
	}
	d, err := load[Disk](c, "disk", diskPath)
	if err != nil {
		return err
	}
	inZone := d.Zone == inst.Zone
	if d.Regional() {
		inZone = slices.ContainsFunc(d.ReplicaZones, func(z string) bool { return lastSegment(z) == inst.Zone })
	}
	if !inZone {
		return invalid("Invalid value for field 'resource.source': '%s'. Disk must be in the same zone as the instance.", d.SelfLink())
	}
	for _, user := range d.Users {
		userMode := ReadWrite // a user put without an instance document is taken as read-write
		if other, err := load[Instance](c, "instance", strings.TrimPrefix(user, APIBase)); err == nil {
			if a, ok := other.Attached(diskPath); ok {
				userMode = a.Mode
			}
		}
		if user == inst.SelfLink() || userMode == ReadWrite || mode == ReadWrite {
			return &APIError{Code: 400, Reason: "resourceInUseByAnotherResource",
				Message: fmt.Sprintf("The disk resource '%s' is already being used by '%s'", diskPath, strings.TrimPrefix(user, APIBase))}
		}
	}
	inst.Disks = append(inst.Disks, AttachedDisk{DeviceName: d.Name, Source: d.SelfLink(), Mode: mode})
	d.Users = append(d.Users, inst.SelfLink())
	if err := c.store(diskPath, d); err != nil {
		return err
	}
	return c.store(instancePath, inst)
}

// detachFromInstance removes the disk from the instance's document, if the instance has one.
func (c *Compute) detachFromInstance(instance, diskPath string) error {
	path := strings.TrimPrefix(instance, APIBase)
	inst, err := load[Instance](c, "instance", path)
	if IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	n := len(inst.Disks)
	inst.Disks = slices.DeleteFunc(inst.Disks, func(a AttachedDisk) bool { return a.Source == APIBase+diskPath })
	if len(inst.Disks) == n {
		return nil
	}
	return c.store(path, inst)
}
