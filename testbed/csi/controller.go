package csi

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/loklak/loklak-dumps/testbed/gcp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The controller service. Its messages are the PD CSI driver's (pkg/gce-pd-csi-driver/controller.go),
// around Compute Engine's own error text where the driver passes one on.

// gib is Compute Engine's unit of disk size ("GB" in the API is 2^30 bytes; common.GbToBytes).
const gib = 1 << 30

// ControllerGetCapabilities: create/delete, attach/detach (read-only too) and expansion. Snapshots,
// cloning and listing are not offered (the stack takes snapshots through Compute Engine, not CSI).
func (d *Driver) ControllerGetCapabilities(context.Context, *csi.ControllerGetCapabilitiesRequest) (*csi.ControllerGetCapabilitiesResponse, error) {
	var caps []*csi.ControllerServiceCapability
	for _, t := range []csi.ControllerServiceCapability_RPC_Type{
		csi.ControllerServiceCapability_RPC_CREATE_DELETE_VOLUME,
		csi.ControllerServiceCapability_RPC_PUBLISH_UNPUBLISH_VOLUME,
		csi.ControllerServiceCapability_RPC_PUBLISH_READONLY,
		csi.ControllerServiceCapability_RPC_EXPAND_VOLUME,
	} {
		caps = append(caps, &csi.ControllerServiceCapability{Type: &csi.ControllerServiceCapability_Rpc{
			Rpc: &csi.ControllerServiceCapability_RPC{Type: t}}})
	}
	return &csi.ControllerGetCapabilitiesResponse{Capabilities: caps}, nil
}

// validateVolumeCapability is the PD CSI driver's check (utils.go), except that block volumes are refused:
// the stand-in attaches disks only to mount their filesystem.
func validateVolumeCapability(vc *csi.VolumeCapability) error {
	am := vc.GetAccessMode()
	if am == nil {
		return errors.New("access mode is nil")
	}
	switch am.GetMode() {
	case csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER, csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY,
		csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY, csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER:
	default:
		return fmt.Errorf("%v access mode is not supported for GCE disks", am.GetMode())
	}
	blk, mnt := vc.GetBlock(), vc.GetMount()
	switch {
	case mnt == nil && blk == nil:
		return errors.New("must specify an access type")
	case mnt != nil && blk != nil:
		return errors.New("specified both mount and block access types")
	case blk != nil:
		return errors.New("block access type is not simulated by the Compute Engine stand-in (testbed/csi); use a mount volume")
	case am.GetMode() == csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER:
		return errors.New("specified multi writer with mount access type")
	}
	return nil
}

func validateVolumeCapabilities(vcs []*csi.VolumeCapability) error {
	for _, vc := range vcs {
		if err := validateVolumeCapability(vc); err != nil {
			return err
		}
	}
	return nil
}

func readOnly(vc *csi.VolumeCapability) bool {
	m := vc.GetAccessMode().GetMode()
	return m == csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY || m == csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY
}

// requestGB is the size a capacity range asks for, in whole GiB rounded up (getRequestCapacity and
// common.BytesToGbRoundUp). Zero means no size was asked for: Compute Engine then gives the type's smallest.
func requestGB(r *csi.CapacityRange) (int, error) {
	req, limit := r.GetRequiredBytes(), r.GetLimitBytes()
	if req < 0 || limit < 0 {
		return 0, fmt.Errorf("capacity range %v has a negative size", r)
	}
	if limit > 0 && req > limit {
		return 0, fmt.Errorf("limit bytes %v is less than required bytes %v", limit, req)
	}
	if req == 0 {
		return 0, nil
	}
	gb := int((req + gib - 1) / gib)
	if limit > 0 && int64(gb)*gib > limit {
		return 0, fmt.Errorf("required bytes %v rounded up to %v GiB exceed limit bytes %v", req, gb, limit)
	}
	return gb, nil
}

// zonesFromTopology lists the topology.gke.io/zone values of preferred, then requisite, topologies.
func zonesFromTopology(req *csi.TopologyRequirement) []string {
	var zones []string
	for _, list := range [][]*csi.Topology{req.GetPreferred(), req.GetRequisite()} {
		for _, t := range list {
			if z := t.GetSegments()[TopologyKey]; z != "" && !contains(zones, z) {
				zones = append(zones, z)
			}
		}
	}
	return zones
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// CreateVolume makes a disk through Compute Engine (disks.insert), blank or from a snapshot, in the zone the
// topology prefers (the node's zone by default); StorageClass parameters `type` (default pd-standard) and
// `replication-type` (none, or regional-pd with two zones). A disk of that name that already exists is
// returned if it fits the request, as the PD CSI driver does.
func (d *Driver) CreateVolume(ctx context.Context, req *csi.CreateVolumeRequest) (*csi.CreateVolumeResponse, error) {
	if req.GetName() == "" {
		return nil, status.Error(codes.InvalidArgument, "CreateVolume Name must be provided")
	}
	if len(req.GetVolumeCapabilities()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "CreateVolume Volume capabilities must be provided")
	}
	sizeGB, err := requestGB(req.GetCapacityRange())
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "CreateVolume Request Capacity is invalid: %v", err)
	}
	if err := validateVolumeCapabilities(req.GetVolumeCapabilities()); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "VolumeCapabilities is invalid: %v", err)
	}
	diskType, regional := "pd-standard", false
	for k, v := range req.GetParameters() {
		switch strings.ToLower(k) {
		case "type":
			diskType = v
		case "replication-type":
			switch strings.ToLower(v) {
			case "none":
			case "regional-pd":
				regional = true
			default:
				return nil, status.Errorf(codes.InvalidArgument, "CreateVolume replication type '%s' is not supported", v)
			}
		default:
			if !strings.HasPrefix(k, "csi.storage.k8s.io/") {
				return nil, status.Errorf(codes.InvalidArgument, "failed to extract parameters: parameters contains invalid option %q", k)
			}
		}
	}
	zones := zonesFromTopology(req.GetAccessibilityRequirements())
	if len(zones) == 0 {
		zones = []string{d.cfg.Zone}
	}
	disk := gcp.Disk{Name: diskName(req.GetName()), Project: d.cfg.Project, SizeGB: sizeGB, Type: diskType}
	if regional {
		if len(zones) < 2 {
			return nil, status.Errorf(codes.InvalidArgument, "CreateVolume failed to pick zones for disk: need 2 zones from the topology for a regional disk, got %v", zones)
		}
		disk.Region = gcp.RegionOf(zones[0])
		for _, z := range zones[:2] {
			disk.ReplicaZones = append(disk.ReplicaZones, gcp.APIBase+fmt.Sprintf("projects/%s/zones/%s", d.cfg.Project, z))
		}
	} else {
		disk.Zone = zones[0]
	}
	if snap := req.GetVolumeContentSource().GetSnapshot(); snap != nil {
		parts := strings.Split(snap.GetSnapshotId(), "/")
		if len(parts) != 5 || parts[0] != "projects" || parts[2] != "global" || parts[3] != "snapshots" {
			return nil, status.Errorf(codes.InvalidArgument, "CreateVolume failed to get snapshot %s: Expected projects/{project}/global/snapshots/{name}", snap.GetSnapshotId())
		}
		if _, err := d.cfg.Compute.GetSnapshot(parts[1], parts[4]); err != nil {
			if gcp.IsNotFound(err) {
				return nil, status.Errorf(codes.NotFound, "CreateVolume source snapshot %s does not exist", snap.GetSnapshotId())
			}
			return nil, d.loggedError("CreateVolume failed to get snapshot "+snap.GetSnapshotId()+": ", err)
		}
		disk.SourceSnapshot = snap.GetSnapshotId()
	} else if req.GetVolumeContentSource() != nil {
		return nil, status.Error(codes.InvalidArgument, "CreateVolume: only a snapshot source is simulated")
	}

	release, err := d.locks.acquire(disk.Path())
	if err != nil {
		return nil, err
	}
	defer release()
	existing, err := d.cfg.Compute.GetDisk(disk.Path())
	switch {
	case err == nil:
		if why := incompatible(existing, disk, req.GetCapacityRange()); why != "" {
			return nil, status.Errorf(codes.AlreadyExists, "CreateVolume disk already exists with same name and is incompatible: %s", why)
		}
		return createResponse(existing, req.GetVolumeContentSource()), nil
	case !gcp.IsNotFound(err):
		return nil, d.loggedError("CreateVolume, failed to getDisk when validating: ", err)
	}
	created, err := d.cfg.Compute.InsertDisk(disk)
	if err != nil {
		return nil, d.loggedError("CreateVolume failed: ", err)
	}
	return createResponse(created, req.GetVolumeContentSource()), nil
}

// incompatible says why an existing disk does not fit a CreateVolume request (gce.ValidateExistingDisk).
func incompatible(existing, want gcp.Disk, r *csi.CapacityRange) string {
	size := int64(existing.SizeGB) * gib
	switch {
	case r.GetRequiredBytes() > 0 && size < r.GetRequiredBytes():
		return fmt.Sprintf("disk size %d is less than required bytes %d", size, r.GetRequiredBytes())
	case r.GetLimitBytes() > 0 && size > r.GetLimitBytes():
		return fmt.Sprintf("disk size %d is greater than limit bytes %d", size, r.GetLimitBytes())
	case existing.Type != want.Type:
		return fmt.Sprintf("disk type %s does not match the requested %s", existing.Type, want.Type)
	case existing.Path() != want.Path():
		return fmt.Sprintf("disk %s is not where the request puts it (%s)", existing.Path(), want.Path())
	}
	return ""
}

func createResponse(disk gcp.Disk, source *csi.VolumeContentSource) *csi.CreateVolumeResponse {
	var topology []*csi.Topology
	if disk.Regional() {
		for _, z := range disk.ReplicaZones {
			topology = append(topology, &csi.Topology{Segments: map[string]string{TopologyKey: lastSegment(z)}})
		}
	} else {
		topology = []*csi.Topology{{Segments: map[string]string{TopologyKey: disk.Zone}}}
	}
	return &csi.CreateVolumeResponse{Volume: &csi.Volume{
		VolumeId:           disk.Path(),
		CapacityBytes:      int64(disk.SizeGB) * gib,
		AccessibleTopology: topology,
		ContentSource:      source,
	}}
}

func lastSegment(s string) string { return s[strings.LastIndexByte(s, '/')+1:] }

// DeleteVolume deletes the disk; a malformed ID or a missing disk is already deleted, as the CSI spec and
// the PD CSI driver have it. Compute Engine refuses while an instance uses the disk.
func (d *Driver) DeleteVolume(ctx context.Context, req *csi.DeleteVolumeRequest) (*csi.DeleteVolumeResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, status.Error(codes.InvalidArgument, "DeleteVolume Volume ID must be provided")
	}
	v, err := parseVolumeID(req.GetVolumeId())
	if err != nil {
		return &csi.DeleteVolumeResponse{}, nil
	}
	release, err := d.locks.acquire(req.GetVolumeId())
	if err != nil {
		return nil, err
	}
	defer release()
	if err := d.cfg.Compute.DeleteDisk(v.Path()); err != nil && !gcp.IsNotFound(err) {
		return nil, d.loggedError("Failed to delete disk: ", err)
	}
	return &csi.DeleteVolumeResponse{}, nil
}

// ControllerPublishVolume attaches the disk to the node's instance (instances.attachDisk through
// gcp.Compute.AttachDisk), as the PD CSI driver's executeControllerPublishVolume does: the disk must exist
// (NotFound), the instance must exist (NotFound), an attachment to this instance already there is success
// if its mode matches (AlreadyExists otherwise), and Compute Engine's refusals come back under the code the
// driver gives them: a disk in use read-write elsewhere, or one outside the instance's zone, is
// InvalidArgument with "Failed to Attach: failed cloud service attach disk call: googleapi: Error 400: ...".
func (d *Driver) ControllerPublishVolume(ctx context.Context, req *csi.ControllerPublishVolumeRequest) (*csi.ControllerPublishVolumeResponse, error) {
	switch {
	case req.GetVolumeId() == "":
		return nil, status.Error(codes.InvalidArgument, "ControllerPublishVolume Volume ID must be provided")
	case req.GetNodeId() == "":
		return nil, status.Error(codes.InvalidArgument, "ControllerPublishVolume Node ID must be provided")
	case req.GetVolumeCapability() == nil:
		return nil, status.Error(codes.InvalidArgument, "ControllerPublishVolume Volume capability must be provided")
	}
	v, err := parseVolumeID(req.GetVolumeId())
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "ControllerPublishVolume volume ID is invalid: %v", err)
	}
	if err := validateVolumeCapability(req.GetVolumeCapability()); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "VolumeCapabilities is invalid: %v", err)
	}
	instancePath, _, err := parseNodeID(req.GetNodeId())
	if err != nil {
		return nil, status.Errorf(codes.NotFound, "could not split nodeID: %v", err)
	}
	release, err := d.locks.acquire(req.GetNodeId() + "/" + req.GetVolumeId())
	if err != nil {
		return nil, err
	}
	defer release()

	if _, err := d.cfg.Compute.GetDisk(v.Path()); err != nil {
		if gcp.IsNotFound(err) {
			return nil, status.Errorf(codes.NotFound, "Could not find disk %v: %v", v.key(), err)
		}
		return nil, d.loggedError("Failed to getDisk: ", err)
	}
	instance, err := d.cfg.Compute.GetInstance(instancePath)
	if err != nil {
		if gcp.IsNotFound(err) {
			return nil, status.Errorf(codes.NotFound, "Could not find instance %v: %v", req.GetNodeId(), err)
		}
		return nil, d.loggedError("Failed to get instance: ", err)
	}
	mode := gcp.ReadWrite
	if req.GetReadonly() {
		mode = gcp.ReadOnly
	}
	resp := &csi.ControllerPublishVolumeResponse{PublishContext: map[string]string{}}
	if a, ok := instance.Attached(v.Path()); ok {
		if a.Mode != mode {
			return nil, status.Errorf(codes.AlreadyExists, "Disk %v already published to node %v but incompatible: disk mode does not match. Got %v. Want %v",
				v.Name, req.GetNodeId(), a.Mode, mode)
		}
		return resp, nil
	}
	if err := d.cfg.Compute.AttachDisk(instancePath, v.Path(), mode); err != nil {
		return nil, d.loggedError("Failed to Attach: ", fmt.Errorf("failed cloud service attach disk call: %w", err))
	}
	d.logf("attached %s to %s (%s)", v.Path(), instancePath, mode)
	return resp, nil
}

// ControllerUnpublishVolume detaches the disk from the node's instance; a missing disk, a missing instance
// or a disk not attached there is already unpublished.
func (d *Driver) ControllerUnpublishVolume(ctx context.Context, req *csi.ControllerUnpublishVolumeRequest) (*csi.ControllerUnpublishVolumeResponse, error) {
	switch {
	case req.GetVolumeId() == "":
		return nil, status.Error(codes.InvalidArgument, "ControllerUnpublishVolume Volume ID must be provided")
	case req.GetNodeId() == "":
		return nil, status.Error(codes.InvalidArgument, "ControllerUnpublishVolume Node ID must be provided")
	}
	v, err := parseVolumeID(req.GetVolumeId())
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "ControllerUnpublishVolume Volume ID is invalid: %v", err)
	}
	instancePath, _, err := parseNodeID(req.GetNodeId())
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "could not split nodeID: %v", err)
	}
	release, err := d.locks.acquire(req.GetNodeId() + "/" + req.GetVolumeId())
	if err != nil {
		return nil, err
	}
	defer release()
	instance, err := d.cfg.Compute.GetInstance(instancePath)
	if gcp.IsNotFound(err) {
		return &csi.ControllerUnpublishVolumeResponse{}, nil
	} else if err != nil {
		return nil, d.loggedError("error getting instance: ", err)
	}
	if _, ok := instance.Attached(v.Path()); !ok {
		return &csi.ControllerUnpublishVolumeResponse{}, nil
	}
	if err := d.cfg.Compute.DetachDisk(v.Path(), instance.SelfLink()); err != nil && !gcp.IsNotFound(err) {
		return nil, d.loggedError("Failed to detach: ", err)
	}
	d.logf("detached %s from %s", v.Path(), instancePath)
	return &csi.ControllerUnpublishVolumeResponse{}, nil
}

// ValidateVolumeCapabilities confirms the capabilities a PD disk supports, for a disk that exists.
func (d *Driver) ValidateVolumeCapabilities(ctx context.Context, req *csi.ValidateVolumeCapabilitiesRequest) (*csi.ValidateVolumeCapabilitiesResponse, error) {
	if len(req.GetVolumeCapabilities()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "Volume Capabilities must be provided")
	}
	if req.GetVolumeId() == "" {
		return nil, status.Error(codes.InvalidArgument, "Volume ID must be provided")
	}
	v, err := parseVolumeID(req.GetVolumeId())
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "Volume ID is invalid: %v", err)
	}
	if _, err := d.cfg.Compute.GetDisk(v.Path()); err != nil {
		if gcp.IsNotFound(err) {
			return nil, status.Errorf(codes.NotFound, "Could not find disk %v: %v", v.Name, err)
		}
		return nil, d.loggedError("Failed to getDisk: ", err)
	}
	if err := validateVolumeCapabilities(req.GetVolumeCapabilities()); err != nil {
		return &csi.ValidateVolumeCapabilitiesResponse{Message: fmt.Sprintf("VolumeCapabilities not valid: %v", err)}, nil
	}
	return &csi.ValidateVolumeCapabilitiesResponse{Confirmed: &csi.ValidateVolumeCapabilitiesResponse_Confirmed{
		VolumeContext: req.GetVolumeContext(), VolumeCapabilities: req.GetVolumeCapabilities(), Parameters: req.GetParameters()}}, nil
}

// ControllerExpandVolume grows the disk through Compute Engine (disks.resize, which also grows its image);
// a disk already as large succeeds as it is. The node then grows the filesystem.
func (d *Driver) ControllerExpandVolume(ctx context.Context, req *csi.ControllerExpandVolumeRequest) (*csi.ControllerExpandVolumeResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, status.Error(codes.InvalidArgument, "ControllerExpandVolume volume ID must be provided")
	}
	if req.GetCapacityRange() == nil {
		return nil, status.Error(codes.InvalidArgument, "ControllerExpandVolume capacity range must be provided")
	}
	sizeGB, err := requestGB(req.GetCapacityRange())
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "ControllerExpandVolume capacity range is invalid: %v", err)
	}
	v, err := parseVolumeID(req.GetVolumeId())
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "ControllerExpandVolume Volume ID is invalid: %v", err)
	}
	release, err := d.locks.acquire(req.GetVolumeId())
	if err != nil {
		return nil, err
	}
	defer release()
	disk, err := d.cfg.Compute.GetDisk(v.Path())
	if err != nil {
		if gcp.IsNotFound(err) {
			return nil, status.Errorf(codes.NotFound, "ControllerExpandVolume could not find volume with ID %v: %v", req.GetVolumeId(), err)
		}
		return nil, d.loggedError("ControllerExpandVolume failed to resize disk: ", err)
	}
	if disk.SizeGB < sizeGB {
		if disk, err = d.cfg.Compute.ResizeDisk(v.Path(), sizeGB); err != nil {
			return nil, d.loggedError("ControllerExpandVolume failed to resize disk: ", err)
		}
	}
	return &csi.ControllerExpandVolumeResponse{CapacityBytes: int64(disk.SizeGB) * gib, NodeExpansionRequired: true}, nil
}
