package csi

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/loklak/loklak-dumps/testbed/gcp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	mount "k8s.io/mount-utils"
)

// The node service. Its steps and messages are the PD CSI driver's (pkg/gce-pd-csi-driver/node.go); where
// the driver finds the attached disk under /dev/disk/by-id, this one sets up a loop device on the disk's
// image, and releases it when the volume is unstaged.

// NodeGetCapabilities: staging, expansion and volume stats, as the PD CSI driver.
func (d *Driver) NodeGetCapabilities(context.Context, *csi.NodeGetCapabilitiesRequest) (*csi.NodeGetCapabilitiesResponse, error) {
	var caps []*csi.NodeServiceCapability
	for _, t := range []csi.NodeServiceCapability_RPC_Type{
		csi.NodeServiceCapability_RPC_STAGE_UNSTAGE_VOLUME,
		csi.NodeServiceCapability_RPC_EXPAND_VOLUME,
		csi.NodeServiceCapability_RPC_GET_VOLUME_STATS,
	} {
		caps = append(caps, &csi.NodeServiceCapability{Type: &csi.NodeServiceCapability_Rpc{Rpc: &csi.NodeServiceCapability_RPC{Type: t}}})
	}
	return &csi.NodeGetCapabilitiesResponse{Capabilities: caps}, nil
}

// NodeGetInfo: the instance as node ID, the attach limit, and the node's zone under topology.gke.io/zone.
func (d *Driver) NodeGetInfo(context.Context, *csi.NodeGetInfoRequest) (*csi.NodeGetInfoResponse, error) {
	return &csi.NodeGetInfoResponse{
		NodeId:             d.NodeID(),
		MaxVolumesPerNode:  maxVolumesPerNode,
		AccessibleTopology: &csi.Topology{Segments: map[string]string{TopologyKey: d.cfg.Zone}},
	}, nil
}

func (d *Driver) image(v volume) string { return absImage(d.cfg.Compute.DiskImage(v.Path())) }

// mountedFrom returns the device mounted at path, or "" if path is not a mount point.
func (d *Driver) mountedFrom(path string) (string, error) {
	isMnt, err := d.mounter.IsMountPoint(path)
	if os.IsNotExist(err) || (err == nil && !isMnt) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	dev, _, err := mount.GetDeviceNameFromMount(d.mounter, path)
	return dev, err
}

// NodeStageVolume finds the disk attached to this node's instance, sets up a loop device on its image,
// grows the filesystem if the disk is larger (resize2fs, as the PD CSI driver does at every stage,
// kubernetes/kubernetes#94929), then checks it and mounts it at the staging path (mount-utils'
// FormatAndMount, which would format a blank disk as the driver does).
//
// The driver grows the filesystem after mounting it (online). That needs CAP_SYS_RESOURCE in the kernel's
// EXT4_IOC_RESIZE_FS, which root lacks on the machines this runs on, so the stand-in grows it before
// mounting (offline: e2fsck -f, then resize2fs): the same filesystem in the end.
func (d *Driver) NodeStageVolume(ctx context.Context, req *csi.NodeStageVolumeRequest) (*csi.NodeStageVolumeResponse, error) {
	staging, vc := req.GetStagingTargetPath(), req.GetVolumeCapability()
	switch {
	case req.GetVolumeId() == "":
		return nil, status.Error(codes.InvalidArgument, "NodeStageVolume Volume ID must be provided")
	case staging == "":
		return nil, status.Error(codes.InvalidArgument, "NodeStageVolume Staging Target Path must be provided")
	case vc == nil:
		return nil, status.Error(codes.InvalidArgument, "NodeStageVolume Volume Capability must be provided")
	}
	v, release, err := d.lockVolume("NodeStageVolume", req.GetVolumeId(), vc)
	if err != nil {
		return nil, err
	}
	defer release()

	// Part 1: the device. On GCE it appears once ControllerPublishVolume attached the disk; here the
	// instance's disks in the simulated project say whether it is attached.
	instance, err := d.cfg.Compute.GetInstance(d.NodeID())
	if err != nil {
		return nil, status.Errorf(codes.Internal, "Error when getting device path: %v", err)
	}
	attached, ok := instance.Attached(v.Path())
	if !ok {
		return nil, status.Errorf(codes.Internal, "Error when getting device path: disk %s is not attached to instance %s "+
			"(ControllerPublishVolume attaches it: is an attacher acting on this driver's VolumeAttachments?)", v.Path(), d.NodeID())
	}
	ro := readOnly(vc) || attached.Mode == gcp.ReadOnly
	image := d.image(v)

	// Part 2: already staged here?
	if dev, err := d.mountedFrom(staging); err != nil {
		return nil, status.Errorf(codes.Internal, "NodeStageVolume checking %s: %v", staging, err)
	} else if dev != "" {
		mine, err := backs(dev, image)
		if err != nil {
			return nil, status.Errorf(codes.Internal, "NodeStageVolume checking %s: %v", staging, err)
		}
		if !mine {
			return nil, status.Errorf(codes.AlreadyExists, "NodeStageVolume staging path %s already holds %s, not volume %s", staging, dev, req.GetVolumeId())
		}
		return &csi.NodeStageVolumeResponse{}, nil
	}
	dev, created, err := attachLoop(image, ro)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "Error when getting device path: %v", err)
	}
	undo := func() {
		if created {
			if err := detachLoop(dev); err != nil {
				d.logf("NodeStageVolume: releasing %s after a failure: %v", dev, err)
			}
		}
	}
	if err := os.MkdirAll(staging, 0o750); err != nil {
		undo()
		return nil, status.Errorf(codes.Internal, "mkdir failed on disk %s (%v)", staging, err)
	}

	// Part 3: grow the filesystem to the disk, before mounting (see above), unless the device is mounted
	// elsewhere already (e2fsck and an offline resize2fs must not touch a mounted filesystem).
	inUse, err := d.mountedAnywhere(dev)
	if err != nil {
		undo()
		return nil, status.Errorf(codes.Internal, "NodeStageVolume checking %s: %v", dev, err)
	}
	if !ro && !inUse {
		if err := d.growOffline(dev, staging); err != nil {
			undo()
			return nil, status.Errorf(codes.Internal, "error when resizing volume %s from device '%s' at path '%s': %v", v.key(), dev, staging, err)
		}
	}

	// Part 4: mount, as ext4 unless the capability names another filesystem.
	fstype, options := "ext4", []string{}
	if m := vc.GetMount(); m != nil {
		if m.GetFsType() != "" {
			fstype = m.GetFsType()
		}
		options = append(options, m.GetMountFlags()...)
	}
	if ro {
		options = append(options, "ro")
	}
	if err := d.mounter.FormatAndMount(dev, staging, fstype, options); err != nil {
		undo()
		return nil, status.Errorf(codes.Internal, "Failed to format and mount device from (%q) to (%q) with fstype (%q) and options (%q): %v",
			dev, staging, fstype, options, err)
	}

	d.logf("staged %s: %s on %s at %s", req.GetVolumeId(), image, dev, staging)
	return &csi.NodeStageVolumeResponse{}, nil
}

// mountedAnywhere reports whether dev is mounted at any path.
func (d *Driver) mountedAnywhere(dev string) (bool, error) {
	mounts, err := d.mounter.List()
	if err != nil {
		return false, err
	}
	for _, m := range mounts {
		if m.Device == dev {
			return true, nil
		}
	}
	return false, nil
}

// growOffline grows the unmounted filesystem on dev to the device's size if it is smaller: resize2fs wants
// a freshly checked filesystem (e2fsck -f) before it grows one offline.
func (d *Driver) growOffline(dev, staging string) error {
	need, err := d.needGrow(dev)
	if err != nil || !need {
		return err
	}
	resizer := mount.NewResizeFs(d.mounter.Exec)
	out, err := d.mounter.Exec.Command("e2fsck", "-f", "-p", dev).CombinedOutput()
	if code := exitCode(err); code > 1 { // 1: errors corrected
		return fmt.Errorf("e2fsck -f -p %s: %w: %s", dev, err, out)
	}
	if _, err := resizer.Resize(dev, staging); err != nil {
		return err
	}
	d.logf("grew the filesystem on %s to the disk", dev)
	return nil
}

// needGrow reports whether dev is larger than its ext filesystem by more than a block (mount-utils leaves
// that decision for ext4 to resize2fs, which an offline grow must not run for nothing: it wants e2fsck -f).
func (d *Driver) needGrow(dev string) (bool, error) {
	out, err := d.mounter.Exec.Command("dumpe2fs", "-h", dev).Output()
	if err != nil {
		return false, fmt.Errorf("dumpe2fs -h %s: %w", dev, err)
	}
	var blocks, blockSize int64
	for _, line := range strings.Split(string(out), "\n") {
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch name {
		case "Block count":
			blocks, err = strconv.ParseInt(strings.TrimSpace(value), 10, 64)
		case "Block size":
			blockSize, err = strconv.ParseInt(strings.TrimSpace(value), 10, 64)
		}
		if err != nil {
			return false, fmt.Errorf("dumpe2fs -h %s: %q: %w", dev, line, err)
		}
	}
	if blocks == 0 || blockSize == 0 {
		return false, fmt.Errorf("dumpe2fs -h %s: no block count or size in %q", dev, out)
	}
	size, err := deviceSize(dev)
	if err != nil {
		return false, err
	}
	return size > (blocks+1)*blockSize, nil
}

func exitCode(err error) int {
	var exit interface{ ExitStatus() int }
	if errors.As(err, &exit) {
		return exit.ExitStatus()
	}
	if err != nil {
		return -1
	}
	return 0
}

// hasCapSysResource reports whether this process holds CAP_SYS_RESOURCE (bit 24 of CapEff), which an
// online ext4 resize needs.
func hasCapSysResource() bool {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if hex, ok := strings.CutPrefix(line, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
			return err == nil && caps&(1<<24) != 0
		}
	}
	return false
}

// NodeUnstageVolume unmounts the staging path (and removes it, as the PD CSI driver's cleanup does), then
// releases the volume's loop device unless something still mounts it. A staging path that holds another
// volume is left alone: this volume is not staged there.
func (d *Driver) NodeUnstageVolume(ctx context.Context, req *csi.NodeUnstageVolumeRequest) (*csi.NodeUnstageVolumeResponse, error) {
	staging := req.GetStagingTargetPath()
	switch {
	case req.GetVolumeId() == "":
		return nil, status.Error(codes.InvalidArgument, "NodeUnstageVolume Volume ID must be provided")
	case staging == "":
		return nil, status.Error(codes.InvalidArgument, "NodeUnstageVolume Staging Target Path must be provided")
	}
	v, err := parseVolumeID(req.GetVolumeId())
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "NodeUnstageVolume Volume ID is invalid: %v", err)
	}
	release, err := d.locks.acquire(req.GetVolumeId())
	if err != nil {
		return nil, err
	}
	defer release()
	image := d.image(v)
	dev, err := d.mountedFrom(staging)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "NodeUnstageVolume failed: %v\nUnmounting arguments: %s\n", err, staging)
	}
	mine := dev == ""
	if dev != "" {
		if mine, err = backs(dev, image); err != nil {
			return nil, status.Errorf(codes.Internal, "NodeUnstageVolume failed: %v", err)
		}
	}
	if mine {
		if err := mount.CleanupMountPoint(staging, d.mounter, true); err != nil {
			return nil, status.Errorf(codes.Internal, "NodeUnstageVolume failed: %v\nUnmounting arguments: %s\n", err, staging)
		}
	}
	devs, err := loopsOf(image)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "NodeUnstageVolume for volume %s failed: %v", req.GetVolumeId(), err)
	}
	mounts, err := d.mounter.List()
	if err != nil {
		return nil, status.Errorf(codes.Internal, "NodeUnstageVolume for volume %s failed: %v", req.GetVolumeId(), err)
	}
	for _, loop := range devs {
		for _, m := range mounts {
			if m.Device == loop {
				return nil, status.Errorf(codes.Internal, "NodeUnstageVolume for volume %s failed: device %s is still in use (mounted at %s)",
					req.GetVolumeId(), loop, m.Path)
			}
		}
		if err := detachLoop(loop); err != nil {
			return nil, status.Errorf(codes.Internal, "NodeUnstageVolume for volume %s failed: %v", req.GetVolumeId(), err)
		}
		d.logf("unstaged %s: released %s", req.GetVolumeId(), loop)
	}
	return &csi.NodeUnstageVolumeResponse{}, nil
}

// NodePublishVolume bind-mounts the staging path at the target path (read-only if asked). The staging path
// must hold this volume: a bind of an empty directory would put the pod's files on the node's own disk.
func (d *Driver) NodePublishVolume(ctx context.Context, req *csi.NodePublishVolumeRequest) (*csi.NodePublishVolumeResponse, error) {
	target, staging, vc := req.GetTargetPath(), req.GetStagingTargetPath(), req.GetVolumeCapability()
	switch {
	case req.GetVolumeId() == "":
		return nil, status.Error(codes.InvalidArgument, "NodePublishVolume Volume ID must be provided")
	case staging == "":
		return nil, status.Error(codes.InvalidArgument, "NodePublishVolume Staging Target Path must be provided")
	case target == "":
		return nil, status.Error(codes.InvalidArgument, "NodePublishVolume Target Path must be provided")
	case vc == nil:
		return nil, status.Error(codes.InvalidArgument, "NodePublishVolume Volume Capability must be provided")
	}
	v, release, err := d.lockVolume("NodePublishVolume", req.GetVolumeId(), vc)
	if err != nil {
		return nil, err
	}
	defer release()
	if dev, err := d.mountedFrom(target); err != nil {
		return nil, status.Errorf(codes.Internal, "NodePublishVolume failed to check whether target path is a mount point: %v", err)
	} else if dev != "" {
		return &csi.NodePublishVolumeResponse{}, nil
	}
	dev, err := d.mountedFrom(staging)
	mine := false
	if err == nil && dev != "" {
		mine, err = backs(dev, d.image(v))
	}
	if err != nil {
		return nil, status.Errorf(codes.Internal, "NodePublishVolume checking %s: %v", staging, err)
	}
	if !mine {
		return nil, status.Errorf(codes.FailedPrecondition, "NodePublishVolume volume %s is not staged at %s", req.GetVolumeId(), staging)
	}
	if err := os.MkdirAll(target, 0o750); err != nil {
		return nil, status.Errorf(codes.Internal, "mkdir failed on disk %s (%v)", target, err)
	}
	fstype, options := "ext4", []string{"bind"}
	if req.GetReadonly() {
		options = append(options, "ro")
	}
	if m := vc.GetMount(); m != nil {
		if m.GetFsType() != "" {
			fstype = m.GetFsType()
		}
		options = append(options, m.GetMountFlags()...)
	}
	if err := d.mounter.Mount(staging, target, fstype, options); err != nil {
		if rmErr := os.Remove(target); rmErr != nil {
			d.logf("NodePublishVolume: removing %s after a failed mount: %v", target, rmErr)
		}
		return nil, status.Errorf(codes.Internal, "NodePublishVolume mount of disk failed: %v", err)
	}
	return &csi.NodePublishVolumeResponse{}, nil
}

// NodeUnpublishVolume unmounts the target path and removes it, as the CSI spec asks.
func (d *Driver) NodeUnpublishVolume(ctx context.Context, req *csi.NodeUnpublishVolumeRequest) (*csi.NodeUnpublishVolumeResponse, error) {
	target := req.GetTargetPath()
	switch {
	case req.GetVolumeId() == "":
		return nil, status.Error(codes.InvalidArgument, "NodeUnpublishVolume Volume ID must be provided")
	case target == "":
		return nil, status.Error(codes.InvalidArgument, "NodeUnpublishVolume Target Path must be provided")
	}
	release, err := d.locks.acquire(req.GetVolumeId())
	if err != nil {
		return nil, err
	}
	defer release()
	if err := mount.CleanupMountPoint(target, d.mounter, true); err != nil {
		return nil, status.Errorf(codes.Internal, "Unmount failed: %v\nUnmounting arguments: %s\n", err, target)
	}
	return &csi.NodeUnpublishVolumeResponse{}, nil
}

// NodeExpandVolume makes the loop device see the grown image (losetup --set-capacity; on GCE the guest
// sees the new size by itself) and grows the mounted filesystem (resize2fs, online). Where root lacks
// CAP_SYS_RESOURCE, as on the machines this runs on, the kernel refuses an online grow: the call then fails
// with FailedPrecondition and says so, and the filesystem grows at the volume's next NodeStageVolume.
func (d *Driver) NodeExpandVolume(ctx context.Context, req *csi.NodeExpandVolumeRequest) (*csi.NodeExpandVolumeResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, status.Error(codes.InvalidArgument, "volume ID must be provided")
	}
	if _, err := requestGB(req.GetCapacityRange()); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "capacity range is invalid: %v", err)
	}
	if req.GetVolumePath() == "" {
		return nil, status.Error(codes.InvalidArgument, "volume path must be provided")
	}
	v, err := parseVolumeID(req.GetVolumeId())
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "volume ID is invalid: %v", err)
	}
	if vc := req.GetVolumeCapability(); vc != nil {
		if err := validateVolumeCapability(vc); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "VolumeCapability is invalid: %v", err)
		}
	}
	release, err := d.locks.acquire(req.GetVolumeId())
	if err != nil {
		return nil, err
	}
	defer release()
	devs, err := loopsOf(d.image(v))
	if err != nil {
		return nil, status.Errorf(codes.Internal, "error when getting device path for %s: %v", req.GetVolumeId(), err)
	}
	if len(devs) == 0 {
		return nil, status.Errorf(codes.NotFound, "volume %s is not staged on this node (no device holds its disk)", req.GetVolumeId())
	}
	dev := devs[0]
	if vc := req.GetVolumeCapability(); vc != nil && readOnly(vc) {
		return &csi.NodeExpandVolumeResponse{}, nil
	}
	if err := refreshLoop(dev); err != nil {
		return nil, status.Errorf(codes.Internal, "error when getting device path for %s: %v", req.GetVolumeId(), err)
	}
	need, err := d.needGrow(dev)
	if err == nil && need {
		if !hasCapSysResource() {
			return nil, status.Errorf(codes.FailedPrecondition, "cannot grow the filesystem of volume %s online: the kernel's ext4 online resize needs "+
				"CAP_SYS_RESOURCE, which this plugin's root lacks on this machine; it grows when the volume is next staged (restart the pod)", v.key())
		}
		_, err = mount.NewResizeFs(d.mounter.Exec).Resize(dev, req.GetVolumePath())
	}
	if err != nil {
		return nil, status.Errorf(codes.Internal, "error when resizing volume %s from device '%s' at path '%s': %v", v.key(), dev, req.GetVolumePath(), err)
	}
	size, err := deviceSize(dev)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "NodeExpandVolume reading the size of %s: %v", dev, err)
	}
	if want := req.GetCapacityRange().GetRequiredBytes(); size < want {
		return nil, status.Errorf(codes.Internal, "resize requested for %v but after resize volume was size %v", want, size)
	}
	d.logf("expanded %s to %d bytes", req.GetVolumeId(), size)
	return &csi.NodeExpandVolumeResponse{CapacityBytes: size}, nil
}

// NodeGetVolumeStats reports the mounted filesystem's bytes and inodes (statfs).
func (d *Driver) NodeGetVolumeStats(ctx context.Context, req *csi.NodeGetVolumeStatsRequest) (*csi.NodeGetVolumeStatsResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, status.Error(codes.InvalidArgument, "NodeGetVolumeStats volume ID was empty")
	}
	if req.GetVolumePath() == "" {
		return nil, status.Error(codes.InvalidArgument, "NodeGetVolumeStats volume path was empty")
	}
	if _, err := os.Lstat(req.GetVolumePath()); err != nil {
		if os.IsNotExist(err) {
			return nil, status.Errorf(codes.NotFound, "path %s does not exist", req.GetVolumePath())
		}
		return nil, status.Errorf(codes.Internal, "unknown error when stat on %s: %v", req.GetVolumePath(), err)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(req.GetVolumePath(), &st); err != nil {
		return nil, status.Errorf(codes.Internal, "failed to get fs info on path %s: %v", req.GetVolumePath(), err)
	}
	bsize := st.Bsize
	return &csi.NodeGetVolumeStatsResponse{Usage: []*csi.VolumeUsage{
		{Unit: csi.VolumeUsage_BYTES, Total: int64(st.Blocks) * bsize, Available: int64(st.Bavail) * bsize, Used: int64(st.Blocks-st.Bfree) * bsize},
		{Unit: csi.VolumeUsage_INODES, Total: int64(st.Files), Available: int64(st.Ffree), Used: int64(st.Files - st.Ffree)},
	}}, nil
}

// lockVolume validates a node call's volume capability and ID, and takes the volume's lock: the steps
// NodeStageVolume and NodePublishVolume share. Errors are the gRPC statuses the PD driver returns.
func (d *Driver) lockVolume(method, id string, vc *csi.VolumeCapability) (volume, func(), error) {
	release, err := d.locks.acquire(id)
	if err != nil {
		return volume{}, nil, err
	}
	if err := validateVolumeCapability(vc); err != nil {
		release()
		return volume{}, nil, status.Errorf(codes.InvalidArgument, "VolumeCapability is invalid: %v", err)
	}
	v, err := parseVolumeID(id)
	if err != nil {
		release()
		return volume{}, nil, status.Errorf(codes.InvalidArgument, "%s Volume ID is invalid: %v", method, err)
	}
	return v, release, nil
}
