// Package csi is the testbed's Compute Engine PD CSI driver: a CSI plugin named pd.csi.storage.gke.io
// that serves the Identity, Controller and Node services for the disks of a simulated Compute Engine
// project (testbed/gcp), so that a real kubelet can mount a PersistentVolume of the stack's with its
// `fsType: ext4`, and a pod's files land in the disk's bytes.
//
// It follows kubernetes-sigs/gcp-compute-persistent-disk-csi-driver (pkg/gce-pd-csi-driver, read at
// b560165c, 2026-08) where that is observable: volume IDs projects/P/zones/Z/disks/N and
// projects/P/regions/R/disks/N, node IDs projects/P/zones/Z/instances/N, the topology key
// topology.gke.io/zone, its gRPC codes and messages, and its node steps (the disk's filesystem is checked,
// mounted at the staging path and grown with resize2fs there; the pod's path is a bind mount of it).
// What stands in for Google Cloud:
//
//   - ControllerPublishVolume attaches the disk to the node's instance through gcp.Compute.AttachDisk,
//     which records it in the disk's users and refuses as Compute Engine does.
//   - The node's "attached device" is a loop device on the disk's image (gcp.Compute.DiskImage), set up at
//     NodeStageVolume and released at NodeUnstageVolume. Nothing is kept in memory: what is staged is
//     what the kernel says (loop devices and mounts), so the plugin may restart.
//
// It is test infrastructure: testbed/cmd/csi-gce-standin serves it, and the node service needs root.
package csi

import (
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"sync"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/loklak/loklak-dumps/testbed/gcp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	mount "k8s.io/mount-utils"
	utilexec "k8s.io/utils/exec"
)

// DriverName is the PD CSI driver's name (infra.CSIDriver).
const DriverName = "pd.csi.storage.gke.io"

// TopologyKey is the only topology key the PD CSI driver reports on a node (infra.ZoneTopologyKey).
const TopologyKey = "topology.gke.io/zone"

// maxVolumesPerNode is the PD CSI driver's attach limit for most machine types (volumeLimitBig).
const maxVolumesPerNode = 127

// requiredTools are the programs the node service runs, itself or through mount-utils: losetup, blkid,
// blockdev and fsck from util-linux, mount and umount from mount, and e2fsck, dumpe2fs, resize2fs and
// mkfs.ext4 from e2fsprogs.
var requiredTools = []string{"losetup", "blkid", "blockdev", "fsck", "mount", "umount", "e2fsck", "dumpe2fs", "resize2fs", "mkfs.ext4"}

// Config says which simulated project the plugin serves and which instance it runs on.
type Config struct {
	// Compute is the simulated project (gcp.Open of the directory in LOKLAK_GCE_STANDIN_DIR).
	Compute *gcp.Compute
	// Project, Zone and Instance name the node: the Compute Engine VM this plugin's node service runs on.
	// Its node ID is projects/Project/zones/Zone/instances/Instance; CreateVolume makes disks in Project,
	// in Zone unless the request's topology says otherwise.
	Project, Zone, Instance string
	// Version is the vendor version GetPluginInfo reports.
	Version string
	// Logf, if set, receives one line per call that fails and per change the node makes.
	Logf func(format string, args ...any)
}

// Driver implements the CSI Identity, Controller and Node services.
type Driver struct {
	csi.UnimplementedIdentityServer
	csi.UnimplementedControllerServer
	csi.UnimplementedNodeServer

	cfg     Config
	mounter *mount.SafeFormatAndMount
	locks   volumeLocks
}

// NewDriver checks the configuration and records the node's instance in the simulated project (a GKE node
// is a VM of the project before any disk is attached to it). It does not need root; the node calls do.
func NewDriver(cfg Config) (*Driver, error) {
	if cfg.Compute == nil {
		return nil, errors.New("csi: no simulated project (gcp.Compute)")
	}
	for name, v := range map[string]string{"project": cfg.Project, "zone": cfg.Zone, "instance": cfg.Instance} {
		if v == "" || strings.Contains(v, "/") {
			return nil, fmt.Errorf("csi: the node's %s %q must be a non-empty name", name, v)
		}
	}
	if cfg.Version == "" {
		cfg.Version = "0.0.0-standin"
	}
	if _, err := cfg.Compute.EnsureInstance(gcp.Instance{Name: cfg.Instance, Project: cfg.Project, Zone: cfg.Zone}); err != nil {
		return nil, fmt.Errorf("csi: recording the node's instance: %w", err)
	}
	return &Driver{
		cfg:     cfg,
		mounter: mount.NewSafeFormatAndMount(mount.NewWithoutSystemd(""), utilexec.New()),
		locks:   volumeLocks{held: map[string]bool{}},
	}, nil
}

// CheckNodeTools reports the programs the node service needs that PATH lacks.
func CheckNodeTools() error {
	var missing []string
	for _, t := range requiredTools {
		if _, err := exec.LookPath(t); err != nil {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("csi: the node service needs %s in PATH (util-linux, mount, e2fsprogs; /usr/sbin and /sbin hold most of them)",
			strings.Join(missing, ", "))
	}
	return nil
}

// NodeID is the node's ID as the PD CSI driver spells it: projects/P/zones/Z/instances/N.
func (d *Driver) NodeID() string { return gcp.InstancePath(d.cfg.Project, d.cfg.Zone, d.cfg.Instance) }

func (d *Driver) logf(format string, args ...any) {
	if d.cfg.Logf != nil {
		d.cfg.Logf(format, args...)
	}
}

// volumeLocks refuses a second operation on a volume while one runs, as the PD CSI driver does
// (common.VolumeLocks; the CO retries on Aborted).
type volumeLocks struct {
	mu   sync.Mutex
	held map[string]bool
}

func (l *volumeLocks) acquire(id string) (release func(), err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held[id] {
		// constants.VolumeOperationAlreadyExistsFmt
		return nil, status.Errorf(codes.Aborted, "An operation with the given Volume ID %s already exists", id)
	}
	l.held[id] = true
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		delete(l.held, id)
	}, nil
}

// volume is a parsed volume ID.
type volume struct {
	Project string
	// Zone is set for a zonal disk, Region for a regional one.
	Zone, Region string
	Name         string
}

func (v volume) Path() string {
	if v.Region != "" {
		return gcp.RegionDiskPath(v.Project, v.Region, v.Name)
	}
	return gcp.DiskPath(v.Project, v.Zone, v.Name)
}

// key prints the volume as the PD CSI driver's messages do (meta.Key.String of k8s-cloud-provider).
func (v volume) key() string {
	if v.Region != "" {
		return fmt.Sprintf("Key{%q, region: %q}", v.Name, v.Region)
	}
	return fmt.Sprintf("Key{%q, zone: %q}", v.Name, v.Zone)
}

// parseVolumeID reads projects/P/zones/Z/disks/N or projects/P/regions/R/disks/N, with the PD CSI driver's
// error text (common.VolumeIDToKey).
func parseVolumeID(id string) (volume, error) {
	parts := strings.Split(id, "/")
	if len(parts) != 6 || parts[0] != "projects" || parts[4] != "disks" || parts[1] == "" || parts[3] == "" || parts[5] == "" {
		return volume{}, fmt.Errorf("failed to get id components. Expected projects/{project}/zones/{zone}/disks/{name}. Got: %s", id)
	}
	switch parts[2] {
	case "zones":
		return volume{Project: parts[1], Zone: parts[3], Name: parts[5]}, nil
	case "regions":
		return volume{Project: parts[1], Region: parts[3], Name: parts[5]}, nil
	}
	return volume{}, fmt.Errorf("could not get id components, expected either zones or regions, got: %v", parts[2])
}

// parseNodeID reads projects/P/zones/Z/instances/N (common.NodeIDToZoneAndName).
func parseNodeID(id string) (path string, zone string, err error) {
	parts := strings.Split(id, "/")
	if len(parts) != 6 || parts[0] != "projects" || parts[2] != "zones" || parts[4] != "instances" {
		return "", "", fmt.Errorf("failed to get id components. expected projects/{project}/zones/{zone}/instances/{name}. Got: %s", id)
	}
	return id, parts[3], nil
}

// diskNameRE is Compute Engine's resource name syntax.
var diskNameRE = regexp.MustCompile(`^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$`)

// diskName is the disk a CreateVolume name makes. The PD CSI driver passes the name to Compute Engine
// unchanged; the names external-provisioner gives (pvc-<uid>) are valid disk names and stay unchanged
// here too. Compute Engine would refuse any other name (CSI allows 128 characters of any case; csi-sanity
// sends such names), so those map to a valid name of their own: lower-cased, other characters as '-',
// cut to fit, and a hash of the whole name appended so that two names never meet.
func diskName(name string) string {
	if diskNameRE.MatchString(name) {
		return name
	}
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	s := b.String()
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		s = "v-" + s
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(name)) // a hash.Hash never fails to write
	suffix := fmt.Sprintf("-%08x", h.Sum32())
	if len(s) > 63-len(suffix) {
		s = s[:63-len(suffix)]
	}
	return strings.TrimRight(s, "-") + suffix
}

// codeFor maps a Compute Engine error to the gRPC code the PD CSI driver gives it (common.CodeForError):
// a disk in use by another instance is the user's doing (InvalidArgument); otherwise by HTTP status.
func codeFor(err error) codes.Code {
	if strings.Contains(err.Error(), "The disk resource") && strings.Contains(err.Error(), "is already being used") {
		return codes.InvalidArgument
	}
	var ae *gcp.APIError
	if errors.As(err, &ae) {
		switch ae.Code {
		case http.StatusBadRequest:
			return codes.InvalidArgument
		case http.StatusForbidden:
			return codes.PermissionDenied
		case http.StatusNotFound:
			return codes.NotFound
		case http.StatusConflict, http.StatusPreconditionFailed:
			return codes.FailedPrecondition
		case http.StatusTooManyRequests:
			return codes.ResourceExhausted
		}
	}
	return codes.Internal
}

// loggedError is the PD CSI driver's common.LoggedError: msg and the error, under the error's code.
func (d *Driver) loggedError(msg string, err error) error {
	code := codeFor(err)
	d.logf("%v: %s%v", code, msg, err)
	return status.Error(code, msg+err.Error())
}
