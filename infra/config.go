package infra

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"slices"
)

// The stack's configuration as typed values. configparse.go reads them from the engine's config and checks
// them (ParseConfig); everything else in the package takes a Config that has passed those checks.

// DiskMode says who owns the Compute Engine disk that holds the dumps.
type DiskMode string

const (
	// DiskCreate makes a new disk and manages it.
	DiskCreate DiskMode = "create"
	// DiskAdopt imports an existing disk (prod's data-dump-disk) and manages it from then on; never recreated.
	DiskAdopt DiskMode = "adopt"
	// DiskExternal uses a disk managed elsewhere: no GCP resource is declared, only its handle is used.
	DiskExternal DiskMode = "external"
)

// Managed reports whether the stack declares the disk as a GCP resource.
func (m DiskMode) Managed() bool { return m == DiskCreate || m == DiskAdopt }

// Config is the whole stack configuration. ParseConfig returns one only when every value is valid, and the
// program builds its resources only from such a Config.
type Config struct {
	GCPProject string
	Zone       string
	Region     string // derived from Zone; the region key, when set, must agree
	Disk       DiskConfig
	Snapshots  SnapshotConfig
	Kube       KubeConfig
	Namespace  NamespaceConfig
	Server     ServerConfig
	Service    ServiceConfig
	Address    AddressConfig
	Alert      AlertConfig
	Archive    ArchiveConfig
	Rotation   RotationConfig
}

// RotationConfig is the daily restart of loklak that closes its dump file (rotation.go). loklak picks
// its dump file once, when it starts, and gzips the older ones only at its next start on a later GMT
// day; without a restart a file never closes.
type RotationConfig struct {
	// Enabled declares the CronJob; off, a dump file closes only when loklak happens to restart.
	Enabled bool
	// HourUTC is the hour (0 to 23, UTC, on the minute 0) of the daily restart.
	HourUTC int
	// Image runs kubectl: the official registry.k8s.io/kubectl image, pinned.
	Image string
}

// AlertConfig is the optional Cloud Monitoring alert on how full the dumps volume is: loklak stops
// writing dumps when the disk is full, and says so nowhere a person looks.
type AlertConfig struct {
	// Percent is the utilization above which the alert fires, 1 to 99; 0 declares no alert.
	Percent int
	// Channels are the notification channels it notifies: projects/P/notificationChannels/ID.
	Channels []string
}

// Enabled reports whether the stack declares the alert.
func (a AlertConfig) Enabled() bool { return a.Percent > 0 }

// ArchiveConfig is the optional Cloud Storage archive of closed dump files (archive.go): a bucket the
// archiver sidecar copies loklak's gzipped days into, verified by MD5, and optionally prunes from the disk.
type ArchiveConfig struct {
	// Bucket is the bucket's globally unique name; empty declares no archive.
	Bucket string
	// Location is the bucket's location as given (a region such as us-central1, or a multi- or
	// dual-region such as US or NAM4); the stack's region when the key is empty.
	Location string
	// ArchiverEnabled runs the archiver sidecar. Off, the bucket stays (protected, with every object),
	// and the sidecar, its Google service account and its grants go.
	ArchiverEnabled bool
	// ArchiverImage is the sidecar's image: rclone, pinned by tag or digest.
	ArchiverImage string
	// MinAgeMinutes is how long a closed dump file (.txt.gz) must be unmodified before it is copied, so a
	// file loklak is still gzipping is never taken.
	MinAgeMinutes int
	// IntervalSeconds is the pause between two rounds of the archiver (and so its retry delay).
	IntervalSeconds int
	// PruneAfterDays removes a closed dump file from the disk once it is that many days old and the
	// bucket holds it with the same MD5 (rclone move); 0 keeps every file on the disk.
	PruneAfterDays int
	// ColdStorageClass is the class objects move to ColdAfterDays after their creation; 0 days: never.
	ColdStorageClass string
	ColdAfterDays    int
	// RetentionDays is the bucket's retention policy (objects cannot be deleted or replaced before that
	// age), never locked by the program; 0 declares none.
	RetentionDays int
	// SoftDeleteDays is how long Cloud Storage keeps a deleted object restorable (billed as storage);
	// 0 turns soft delete off.
	SoftDeleteDays int
	// Public grants allUsers roles/storage.objectViewer: anyone can list and download the dumps.
	Public bool
	// PublicAccessPrevention is the bucket's "enforced" or "inherited"; Public needs "inherited".
	PublicAccessPrevention string
	// Endpoint is the Cloud Storage JSON API endpoint the archiver uses, without credentials; empty is
	// Google's, with the pod's Workload Identity. Set only for an emulator.
	Endpoint string
}

// Enabled reports whether the stack declares the archive bucket.
func (a ArchiveConfig) Enabled() bool { return a.Bucket != "" }

// Prunes reports whether the archiver removes archived files from the disk.
func (a ArchiveConfig) Prunes() bool { return a.Copying() && a.PruneAfterDays > 0 }

// Copying reports whether the archiver sidecar runs (and with it its account and grants).
func (a ArchiveConfig) Copying() bool { return a.Enabled() && a.ArchiverEnabled }

// DiskConfig describes the Compute Engine persistent disk that holds /loklak_server/data.
type DiskConfig struct {
	Mode   DiskMode
	Name   string
	SizeGB int
	Type   string
	Labels map[string]string
	// Protect makes the engine refuse to delete or replace the disk.
	Protect bool
	// RetainOnDelete keeps the disk in GCP when the stack deletes it (destroy, or protect turned off).
	RetainOnDelete bool
	// ReplicaZones, when set, are the two zones of a regional disk, replicated synchronously in both;
	// empty for a zonal disk in the stack's zone.
	ReplicaZones []string
	// SourceSnapshot, when set, is the snapshot the disk is made from, as projects/P/global/snapshots/N.
	SourceSnapshot string
	// RecreateBlank lets the stack create its disk again, empty, when the disk its PersistentVolume names
	// is gone from Compute Engine. Off, such an up is refused (CheckAgainstCluster).
	RecreateBlank bool
}

// Regional reports whether the disk is a regional persistent disk.
func (d DiskConfig) Regional() bool { return len(d.ReplicaZones) > 0 }

// Restored reports whether the disk is made from a snapshot.
func (d DiskConfig) Restored() bool { return d.SourceSnapshot != "" }

// originTag sets the logical names of a disk made from a snapshot apart from those of the disk it
// replaces: "" for a blank disk, "-" and a short hash of the snapshot otherwise. A restore is then a new
// disk beside the old one, never a replacement of it in place.
func (d DiskConfig) originTag() string {
	if !d.Restored() {
		return ""
	}
	return "-" + shortHash(d.SourceSnapshot)
}

// VolumeTag sets the Kubernetes objects of one disk (StorageClass, PersistentVolume, claim) apart from
// those of another. A blank zonal disk has none: it keeps the names every stack had before regional disks
// and restores (<namespace>-dump, dump). Any other disk gets "-" and a short hash of its handle and
// snapshot: moving to another disk then creates its volume and claim beside the old ones, restarts
// loklak onto them, and only then deletes the old ones, which nothing uses any more. Reusing the names
// would mean replacing a PV and a claim that a running pod holds, which Kubernetes never lets finish.
func (c Config) VolumeTag() string {
	if !c.Disk.Regional() && !c.Disk.Restored() {
		return ""
	}
	handle := DumpDiskArgs{Project: c.GCPProject, Zone: c.Zone, Region: c.Region, Disk: c.Disk}.handle()
	return "-" + shortHash(handle+"@"+c.Disk.SourceSnapshot)
}

// VolumeName is the stack's StorageClass and PersistentVolume name: <namespace>-dump, then VolumeTag.
func (c Config) VolumeName() string { return volumeName(c.Namespace.Name, c.VolumeTag()) }

// VolumeHandle is the disk's ID as the PD CSI driver (the PV's volumeHandle) and the GCP provider spell
// it: projects/P/zones/Z/disks/N, or projects/P/regions/R/disks/N for a regional disk.
func (c Config) VolumeHandle() string {
	return DumpDiskArgs{Project: c.GCPProject, Zone: c.Zone, Region: c.Region, Disk: c.Disk}.handle()
}

// shortHash is 8 hex digits of s's SHA-256: short enough for names, enough to tell a stack's disks apart.
func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:4])
}

// snapshotPolicySuffix makes the snapshot schedule's name from the disk's.
const snapshotPolicySuffix = "-snapshots"

// SnapshotPolicyName is the name of the disk's snapshot schedule (a Compute Engine resource policy).
func (d DiskConfig) SnapshotPolicyName() string { return d.Name + snapshotPolicySuffix }

// SnapshotConfig is the optional snapshot schedule attached to a managed disk.
type SnapshotConfig struct {
	Schedule      string // none, hourly, daily, weekly
	StartTime     string // HH:00, UTC
	HoursInCycle  int    // hourly only
	DayOfWeek     string // weekly only
	RetentionDays int
}

// Enabled reports whether a snapshot schedule is declared.
func (s SnapshotConfig) Enabled() bool { return s.Schedule != "none" }

// KubeConfig selects the cluster the explicit Kubernetes provider talks to.
type KubeConfig struct {
	// Kubeconfig is kubeconfig content or a path; empty means the ambient KUBECONFIG or ~/.kube/config,
	// as kubectl reads it. The provider receives it as a secret.
	Kubeconfig string
	Context    string
	// ClusterIdentifier is the only provider input whose change replaces the provider, and with it every
	// Kubernetes object of the stack. Without it, pulumi-kubernetes replaces the provider whenever the
	// kubeconfig's server or CA changes (GKE credential or IP rotation, or moving between stored content
	// and the ambient file), which would delete and recreate the PV, the claim and the Deployment.
	ClusterIdentifier string
}

// NamespaceConfig names the namespace of the loklak objects and says whether the stack owns it.
type NamespaceConfig struct {
	Name   string
	Create bool
}

// ServerConfig describes the loklak_server container.
type ServerConfig struct {
	Image         string
	Replicas      int
	HTTPPort      int
	JavaHeap      string
	CPURequest    string
	CPULimit      string
	MemoryRequest string
	MemoryLimit   string
	// EphemeralStorageRequest and EphemeralStorageLimit bound the container's writable layer and logs
	// (the dumps are on the disk, not here), so a runaway log cannot get its node's neighbors evicted.
	EphemeralStorageRequest string
	EphemeralStorageLimit   string
	StartupTimeoutSeconds   int
	DumpWriteEnabled        bool
}

// ServiceConfig describes the Service that exposes loklak's HTTP port (and with it /dump/).
type ServiceConfig struct {
	Type string
	Port int
}

// AddressMode says whether the Service's load balancer has a static address, and who made it.
type AddressMode string

const (
	// AddressNone leaves the load balancer an ephemeral address, which changes whenever the Service is
	// recreated.
	AddressNone AddressMode = "none"
	// AddressCreate reserves a static external address and manages it.
	AddressCreate AddressMode = "create"
	// AddressAdopt imports an existing static address (the 2017 one, promoted to static) and manages it.
	AddressAdopt AddressMode = "adopt"
)

// AddressConfig is the optional static address of the LoadBalancer Service that serves /dump/.
type AddressConfig struct {
	Mode AddressMode
	Name string
}

// Keys are the project's config keys with the type Pulumi.yaml declares for each. ParseConfig reads
// exactly these, and a test checks Pulumi.yaml declares exactly these.
var Keys = map[string]string{
	"gcpProject":                    "string",
	"zone":                          "string",
	"region":                        "string",
	"diskMode":                      "string",
	"diskName":                      "string",
	"diskSizeGb":                    "integer",
	"diskType":                      "string",
	"diskLabels":                    "array",
	"diskReplicaZones":              "array",
	"diskSourceSnapshot":            "string",
	"diskProtect":                   "boolean",
	"diskRetainOnDelete":            "boolean",
	"diskRecreateBlank":             "boolean",
	"snapshotSchedule":              "string",
	"snapshotStartTime":             "string",
	"snapshotHoursInCycle":          "integer",
	"snapshotDayOfWeek":             "string",
	"snapshotRetentionDays":         "integer",
	"kubeconfig":                    "string",
	"kubeContext":                   "string",
	"clusterIdentifier":             "string",
	"namespace":                     "string",
	"createNamespace":               "boolean",
	"image":                         "string",
	"replicas":                      "integer",
	"httpPort":                      "integer",
	"javaHeap":                      "string",
	"cpuRequest":                    "string",
	"cpuLimit":                      "string",
	"memoryRequest":                 "string",
	"memoryLimit":                   "string",
	"ephemeralStorageRequest":       "string",
	"ephemeralStorageLimit":         "string",
	"startupTimeoutSeconds":         "integer",
	"dumpWriteEnabled":              "boolean",
	"serviceType":                   "string",
	"servicePort":                   "integer",
	"addressMode":                   "string",
	"addressName":                   "string",
	"volumeAlertPercent":            "integer",
	"volumeAlertChannels":           "string",
	"archiveBucket":                 "string",
	"archiveLocation":               "string",
	"archiverEnabled":               "boolean",
	"archiverImage":                 "string",
	"archiveMinAgeMinutes":          "integer",
	"archiveIntervalSeconds":        "integer",
	"archivePruneAfterDays":         "integer",
	"archiveColdStorageClass":       "string",
	"archiveColdAfterDays":          "integer",
	"archiveRetentionDays":          "integer",
	"archiveSoftDeleteDays":         "integer",
	"archivePublic":                 "boolean",
	"archivePublicAccessPrevention": "string",
	"archiveEndpoint":               "string",
	"dumpRotationEnabled":           "boolean",
	"dumpRotationHourUtc":           "integer",
	"dumpRotationImage":             "string",
}

// SortedKeys returns the config keys in a stable order (for docs and tests).
func SortedKeys() []string {
	return slices.Sorted(maps.Keys(Keys))
}
