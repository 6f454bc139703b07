// Package gcp is the testbed's Google Cloud: a stand-in for Google Compute Engine and for the pulumi-gcp provider's handling of
// the Compute Engine types this project declares, for tests on a machine that can neither reach Google Cloud
// nor build the real provider.
//
// It has two halves, kept apart the way the real pieces are:
//
//   - Compute (this file) simulates a Compute Engine project kept in files under one directory: zonal and
//     regional disks, snapshots, resource policies and addresses as JSON documents shaped like the Compute
//     API's, with the checks the API itself makes (name syntax, size limits by type and replication, replica
//     zones in the disk's region, a disk no smaller than its snapshot, a policy in use cannot be deleted, a
//     shrinking resize is refused, a setLabels with a stale label fingerprint is refused, the
//     snapshot-schedule PATCH bug). A test can put a disk there first, read what a stack did to it, and find
//     it after a destroy. Every call is appended to calls.log.
//   - The same project's Cloud Storage and IAM (storage.go, serviceaccount.go, iampolicy.go): buckets,
//     whose objects live in a real Cloud Storage emulator (fake-gcs-server, filesystem backend, under the
//     project's gcs/: package testbed/gcs), reached at the URL in LOKLAK_GCS_STANDIN_URL when that is set
//     and run inside this process otherwise, and whose other metadata in a document beside it; service
//     accounts; and the IAM policies of both, following ../shared/notes/gcs-provider-rules.md ("gcs rules
//     §N").
//   - Provider (provider.go and one file per type) is a Pulumi resource provider that the engine loads as
//     `gcp`. Its Check, Diff, Create, Read, Update and Delete follow the rules of pulumi-gcp v7.38.0 (built on
//     terraform-provider-google-beta v5.42.0) as written down, with sources, in
//     ../shared/notes/gce-provider-rules.md (beside the repository); each rule below names its section there ("rules §1").
//     Its Check, Diff and import by ID are also held to the real provider's recorded answers
//     (../shared/conformance, replayed by conformance_test.go).
//
// It is test infrastructure: testbed/cmd/pulumi-resource-gcp serves it only when LOKLAK_GCE_STANDIN_DIR names a
// simulated project, and nothing in it talks to a network except to the Cloud Storage server
// (testbed/gcs) at LOKLAK_GCS_STANDIN_URL, on this machine. Package infra never imports it.
package gcp

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"cloud.google.com/go/storage"
	"github.com/loklak/loklak-dumps/testbed/gcs"
)

// DirEnv names the environment variable that points the plugin at a simulated project directory.
const DirEnv = "LOKLAK_GCE_STANDIN_DIR"

// StorageURLEnv names the environment variable that points the plugin at the Cloud Storage server
// (testbed/gcs) serving the project's gcs/ folder: its base URL, "http://127.0.0.1:PORT". Unset, the
// plugin runs the emulator over that folder inside itself. It is the stand-in's own variable, not the
// STORAGE_EMULATOR_HOST that Cloud Storage client libraries read, so that only the stand-in follows it:
// not the engine, the other plugins or a command a test runs, and not the stand-in's unit tests when a
// developer's shell has STORAGE_EMULATOR_HOST set for another emulator.
const StorageURLEnv = "LOKLAK_GCS_STANDIN_URL"

// APIBase is the prefix of the v1 self links the provider reports (rules §0, URL normalization).
const APIBase = "https://www.googleapis.com/compute/v1/"

// Disk is a persistent disk as the Compute API describes it: zonal (Zone set) or regional (Region and
// ReplicaZones set).
type Disk struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Project string `json:"project"`
	Zone    string `json:"zone,omitempty"`
	Region  string `json:"region,omitempty"`
	// ReplicaZones are a regional disk's two zones, as v1 URLs.
	ReplicaZones           []string          `json:"replicaZones,omitempty"`
	SizeGB                 int               `json:"sizeGb"`
	Type                   string            `json:"type"`
	Description            string            `json:"description,omitempty"`
	Labels                 map[string]string `json:"labels,omitempty"`
	LabelFingerprint       string            `json:"labelFingerprint"`
	PhysicalBlockSizeBytes int               `json:"physicalBlockSizeBytes"`
	CreationTimestamp      string            `json:"creationTimestamp"`
	// Users are the instances the disk is attached to, as v1 URLs.
	Users []string `json:"users,omitempty"`
	// ResourcePolicies are the attached policies, as v1 URLs.
	ResourcePolicies []string `json:"resourcePolicies,omitempty"`
	// SourceSnapshot is the v1 URL of the snapshot the disk was made from, and SourceSnapshotID its ID.
	SourceSnapshot   string `json:"sourceSnapshot,omitempty"`
	SourceSnapshotID string `json:"sourceSnapshotId,omitempty"`
}

// Regional reports whether d is a regional disk.
func (d Disk) Regional() bool { return d.Region != "" }

// Path is the disk's ID: projects/P/zones/Z/disks/N, or projects/P/regions/R/disks/N for a regional disk.
func (d Disk) Path() string {
	if d.Regional() {
		return RegionDiskPath(d.Project, d.Region, d.Name)
	}
	return DiskPath(d.Project, d.Zone, d.Name)
}

// region is where the disk's resource policies must be.
func (d Disk) region() string {
	if d.Regional() {
		return d.Region
	}
	return RegionOf(d.Zone)
}

// SelfLink is the disk's v1 URL.
func (d Disk) SelfLink() string { return APIBase + d.Path() }

// Snapshot is a global snapshot of a disk.
type Snapshot struct {
	ID                string            `json:"id"`
	Name              string            `json:"name"`
	Project           string            `json:"project"`
	SourceDisk        string            `json:"sourceDisk"` // v1 URL
	SourceDiskID      string            `json:"sourceDiskId"`
	DiskSizeGB        int               `json:"diskSizeGb"`
	Labels            map[string]string `json:"labels,omitempty"`
	CreationTimestamp string            `json:"creationTimestamp"`
}

// SnapshotPath is projects/P/global/snapshots/N.
func SnapshotPath(project, name string) string {
	return fmt.Sprintf("projects/%s/global/snapshots/%s", project, name)
}

// ResourcePolicy is a regional resource policy (only snapshot schedules are simulated).
type ResourcePolicy struct {
	ID                string `json:"id"`
	Name              string `json:"name"`
	Project           string `json:"project"`
	Region            string `json:"region"`
	Description       string `json:"description,omitempty"`
	CreationTimestamp string `json:"creationTimestamp"`
	// SnapshotSchedulePolicy is kept as the API body carried it.
	SnapshotSchedulePolicy map[string]any `json:"snapshotSchedulePolicy,omitempty"`
}

// SelfLink is the policy's v1 URL.
func (p ResourcePolicy) SelfLink() string { return APIBase + PolicyPath(p.Project, p.Region, p.Name) }

// Address is a regional static IP address.
type Address struct {
	ID                string            `json:"id"`
	Name              string            `json:"name"`
	Project           string            `json:"project"`
	Region            string            `json:"region"`
	Address           string            `json:"address"`
	AddressType       string            `json:"addressType"`
	NetworkTier       string            `json:"networkTier"`
	Description       string            `json:"description,omitempty"`
	Labels            map[string]string `json:"labels,omitempty"`
	LabelFingerprint  string            `json:"labelFingerprint"`
	CreationTimestamp string            `json:"creationTimestamp"`
	// Users are the forwarding rules that use the address, as v1 URLs.
	Users []string `json:"users,omitempty"`
}

// SelfLink is the address's v1 URL.
func (a Address) SelfLink() string { return APIBase + AddressPath(a.Project, a.Region, a.Name) }

// AddressPath is projects/P/regions/R/addresses/N.
func AddressPath(project, region, name string) string {
	return fmt.Sprintf("projects/%s/regions/%s/addresses/%s", project, region, name)
}

// DiskPath is projects/P/zones/Z/disks/N: the disk's Pulumi ID, import ID and PD CSI volume handle.
func DiskPath(project, zone, name string) string {
	return fmt.Sprintf("projects/%s/zones/%s/disks/%s", project, zone, name)
}

// RegionDiskPath is projects/P/regions/R/disks/N: a regional disk's Pulumi ID and PD CSI volume handle.
func RegionDiskPath(project, region, name string) string {
	return fmt.Sprintf("projects/%s/regions/%s/disks/%s", project, region, name)
}

// PolicyPath is projects/P/regions/R/resourcePolicies/N.
func PolicyPath(project, region, name string) string {
	return fmt.Sprintf("projects/%s/regions/%s/resourcePolicies/%s", project, region, name)
}

// RegionOf returns the region of a zone ("us-central1-a" -> "us-central1").
func RegionOf(zone string) string {
	if i := strings.LastIndexByte(zone, '-'); i > 0 {
		return zone[:i]
	}
	return zone
}

// APIError is an error answer of the simulated API, printed as the Google API client prints one.
type APIError struct {
	Code    int
	Reason  string
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("googleapi: Error %d: %s, %s", e.Code, e.Message, e.Reason)
}

// IsNotFound reports whether err is the API's 404.
func IsNotFound(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Code == 404
}

func notFound(kind, path string) error {
	return &APIError{Code: 404, Reason: "notFound", Message: fmt.Sprintf("The resource '%s' was not found", path)}
}

// Limits the API enforces and the provider does not (rules §7).
const (
	MinZonalDiskGB = 10
	MaxZonalDiskGB = 65536
	// MinRegionalStandardGB is the smallest regional pd-standard disk; regional pd-balanced and pd-ssd
	// start at MinZonalDiskGB, and every regional disk ends at MaxZonalDiskGB.
	MinRegionalStandardGB = 200
)

// nameRE is Compute Engine's resource name syntax (RFC 1035 label, at most 63 characters).
var nameRE = regexp.MustCompile(`^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$`)

var (
	zonalDiskTypes    = []string{"pd-standard", "pd-balanced", "pd-ssd", "pd-extreme"}
	regionalDiskTypes = []string{"pd-standard", "pd-balanced", "pd-ssd"}
)

// Compute is a simulated Compute Engine: every project, zone and region under one directory.
type Compute struct {
	Dir string
	// StorageURL is the base URL of the Cloud Storage server (testbed/gcs) serving Dir's GCSDir, from
	// StorageURLEnv in Open; empty, the emulator runs inside this process (storage.go). Set it before
	// the first Cloud Storage call.
	StorageURL string
	mu         sync.Mutex
	now        func() time.Time
	// gcs is the client of the Cloud Storage emulator, and local the emulator when it runs in this
	// process; both are made on first use (storage.go).
	gcs   *storage.Client
	local *gcs.Local
}

// lock serializes the calls that read and change the project: within this process (mu), and across the
// processes that share the directory (an flock on its .lock file): the provider plugin the engine runs, the
// CSI plugin (testbed/csi) that attaches disks for a kubelet, and the test itself. It returns the unlock.
func (c *Compute) lock() func() {
	c.mu.Lock()
	f, err := os.OpenFile(filepath.Join(c.Dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return c.mu.Unlock // the directory is gone: every call will fail on its own
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	return func() {
		_ = f.Close() // closing the descriptor releases the flock
		c.mu.Unlock()
	}
}

// Open returns the simulated Compute Engine kept in dir, creating the directory if needed. Its Cloud
// Storage is the server at $LOKLAK_GCS_STANDIN_URL (StorageURLEnv) when that is set.
func Open(dir string) (*Compute, error) {
	if dir == "" {
		return nil, errors.New("gcestandin: no directory for the simulated project")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return &Compute{Dir: dir, StorageURL: os.Getenv(StorageURLEnv), now: time.Now}, nil
}

// Call is one API request, as calls.log records it.
type Call struct {
	Method string `json:"method"`
	Path   string `json:"path"`
	// Body holds the request's fields that matter to a test (size, labels, policies).
	Body map[string]any `json:"body,omitempty"`
}

// Calls returns every API request made so far, oldest first.
func (c *Compute) Calls() ([]Call, error) {
	data, err := os.ReadFile(filepath.Join(c.Dir, "calls.log"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var calls []Call
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if line == "" {
			continue
		}
		var call Call
		if err := json.Unmarshal([]byte(line), &call); err != nil {
			return nil, fmt.Errorf("calls.log: %w", err)
		}
		calls = append(calls, call)
	}
	return calls, nil
}

func (c *Compute) record(method, path string, body map[string]any) error {
	line, err := json.Marshal(Call{Method: method, Path: path, Body: body})
	if err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(c.Dir, "calls.log"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(append(line, '\n'))
	return errors.Join(err, f.Close())
}

func (c *Compute) file(path string) string {
	return filepath.Join(c.Dir, filepath.FromSlash(path)+".json")
}

func load[T any](c *Compute, kind, path string) (T, error) {
	var v T
	data, err := os.ReadFile(c.file(path))
	if errors.Is(err, os.ErrNotExist) {
		return v, notFound(kind, path)
	}
	if err != nil {
		return v, err
	}
	return v, json.Unmarshal(data, &v)
}

// loadAll reads every document whose path matches the glob (under the simulated project's directory,
// slash-separated), in file name order.
func loadAll[T any](c *Compute, glob string) ([]T, error) {
	matches, err := filepath.Glob(filepath.Join(c.Dir, filepath.FromSlash(glob)))
	if err != nil {
		return nil, err
	}
	slices.Sort(matches)
	var docs []T
	for _, m := range matches {
		data, err := os.ReadFile(m)
		if err != nil {
			return nil, err
		}
		var v T
		if err := json.Unmarshal(data, &v); err != nil {
			return nil, fmt.Errorf("%s: %w", m, err)
		}
		docs = append(docs, v)
	}
	return docs, nil
}

// store writes a document atomically, so a test reading it never sees half of it.
func (c *Compute) store(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	name := c.file(path)
	if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
		return err
	}
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}

// remove deletes documents; one already gone is no error.
func (c *Compute) remove(paths ...string) error {
	for _, path := range paths {
		if err := os.Remove(c.file(path)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

func (c *Compute) exists(path string) bool {
	_, err := os.Stat(c.file(path))
	return err == nil
}

func (c *Compute) newID() string {
	return strconv.FormatUint(uint64(c.now().UnixNano())&(1<<62-1), 10)
}

func fingerprint(labels map[string]string) string {
	keys := slices.Sorted(maps.Keys(labels))
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k + "=" + labels[k] + ";")
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(b.String())) // a hash.Hash never fails to write
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

func invalid(format string, args ...any) error {
	return &APIError{Code: 400, Reason: "invalid", Message: fmt.Sprintf(format, args...)}
}

// ---- disks --------------------------------------------------------------------------------------------------

// InsertDisk creates a disk, blank or from a snapshot, zonal or (with Region set) regional, with the API's
// own checks.
func (c *Compute) InsertDisk(d Disk) (Disk, error) {
	defer c.lock()()
	collection := fmt.Sprintf("projects/%s/zones/%s/disks", d.Project, d.Zone)
	types, minGB := zonalDiskTypes, MinZonalDiskGB
	if d.Regional() {
		collection = fmt.Sprintf("projects/%s/regions/%s/disks", d.Project, d.Region)
		types = regionalDiskTypes
		if d.Type == "pd-standard" {
			minGB = MinRegionalStandardGB
		}
	}
	body := map[string]any{"name": d.Name, "sizeGb": d.SizeGB, "type": d.Type, "labels": d.Labels, "sourceSnapshot": d.SourceSnapshot}
	if d.Regional() {
		body["replicaZones"] = d.ReplicaZones
	}
	if err := c.record("POST", collection, body); err != nil {
		return Disk{}, err
	}
	if !nameRE.MatchString(d.Name) {
		return Disk{}, invalid("Invalid value for field 'resource.name': '%s'. Must be a match of regex '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'", d.Name)
	}
	if !slices.Contains(types, d.Type) {
		return Disk{}, notFound("diskType", strings.TrimSuffix(collection, "/disks")+"/diskTypes/"+d.Type)
	}
	if d.Regional() {
		if err := checkReplicaZones(d); err != nil {
			return Disk{}, err
		}
	}
	var snap Snapshot
	if d.SourceSnapshot != "" {
		var err error
		if snap, err = load[Snapshot](c, "snapshot", strings.TrimPrefix(d.SourceSnapshot, APIBase)); err != nil {
			return Disk{}, err
		}
		if d.SizeGB == 0 {
			d.SizeGB = snap.DiskSizeGB // a disk from a snapshot without a size gets the snapshot's
		}
		if d.SizeGB < snap.DiskSizeGB {
			return Disk{}, invalid("Requested disk size %d GB is smaller than the snapshot's %d GB", d.SizeGB, snap.DiskSizeGB)
		}
		d.SourceSnapshot, d.SourceSnapshotID = APIBase+SnapshotPath(snap.Project, snap.Name), snap.ID
	}
	if d.SizeGB == 0 {
		d.SizeGB = minGB // a blank disk without a size gets the type's default
	}
	if d.SizeGB < minGB || d.SizeGB > MaxZonalDiskGB {
		return Disk{}, invalid("Disk size %d GB is outside the range %d GB to %d GB for disk type %s", d.SizeGB, minGB, MaxZonalDiskGB, d.Type)
	}
	if c.exists(d.Path()) {
		return Disk{}, &APIError{Code: 409, Reason: "alreadyExists", Message: fmt.Sprintf("The resource '%s' already exists", d.Path())}
	}
	d.ID = c.newID()
	d.CreationTimestamp = c.now().UTC().Format(time.RFC3339)
	if d.PhysicalBlockSizeBytes == 0 {
		d.PhysicalBlockSizeBytes = 4096
	}
	d.LabelFingerprint = fingerprint(d.Labels)
	// The contents first (image.go): a disk whose document exists always has bytes.
	image := c.DiskImage(d.Path())
	var err error
	if d.SourceSnapshot != "" {
		err = copyImage(c.SnapshotImage(snap.Project, snap.Name), image, d.SizeGB)
	} else {
		err = makeImage(image, d.SizeGB)
	}
	if err != nil {
		return Disk{}, err
	}
	if err := c.store(d.Path(), d); err != nil {
		return Disk{}, errors.Join(err, removeImage(image))
	}
	return d, nil
}

// checkReplicaZones is the API's check of a regional disk's zones: two distinct zones of its region.
func checkReplicaZones(d Disk) error {
	if len(d.ReplicaZones) != 2 || lastSegment(d.ReplicaZones[0]) == lastSegment(d.ReplicaZones[1]) {
		return invalid("Invalid value for field 'resource.replicaZones': %v. A regional disk needs exactly two distinct replica zones", d.ReplicaZones)
	}
	for _, z := range d.ReplicaZones {
		if RegionOf(lastSegment(z)) != d.Region {
			return invalid("Invalid value for field 'resource.replicaZones': '%s'. Replica zones must be in the disk's region %s", z, d.Region)
		}
	}
	return nil
}

// PutDisk stores a disk as it is, without an API call: how a test sets up what existed before (the 2017
// disk). Missing ID, timestamp, block size and fingerprint are filled in. A disk without contents gets a
// blank ext4 image; one that has an image keeps it (grown to the disk's size).
func (c *Compute) PutDisk(d Disk) (Disk, error) {
	defer c.lock()()
	if d.ID == "" {
		d.ID = c.newID()
	}
	if d.CreationTimestamp == "" {
		d.CreationTimestamp = c.now().UTC().Format(time.RFC3339)
	}
	if d.PhysicalBlockSizeBytes == 0 {
		d.PhysicalBlockSizeBytes = 4096
	}
	d.LabelFingerprint = fingerprint(d.Labels)
	if err := ensureImage(c.DiskImage(d.Path()), d.SizeGB); err != nil {
		return Disk{}, err
	}
	return d, c.store(d.Path(), d)
}

// GetDisk returns the disk at path (its ID, zonal or regional), or a 404 APIError.
func (c *Compute) GetDisk(path string) (Disk, error) {
	defer c.lock()()
	if err := c.record("GET", path, nil); err != nil {
		return Disk{}, err
	}
	return load[Disk](c, "disk", path)
}

// Disks lists every disk of a project, zonal ones by zone and name, then regional ones by region and name.
func (c *Compute) Disks(project string) ([]Disk, error) {
	zonal, err := loadAll[Disk](c, "projects/"+project+"/zones/*/disks/*.json")
	if err != nil {
		return nil, err
	}
	regional, err := loadAll[Disk](c, "projects/"+project+"/regions/*/disks/*.json")
	return append(zonal, regional...), err
}

// changeDisk is one API call that changes the disk at path: it records the call (METHOD url), loads the
// disk, lets change check and edit it, and stores the result. A 404 when the disk is missing, as in the API.
func (c *Compute) changeDisk(path, method, url string, body map[string]any, change func(d *Disk) error) (Disk, error) {
	defer c.lock()()
	if err := c.record(method, url, body); err != nil {
		return Disk{}, err
	}
	d, err := load[Disk](c, "disk", path)
	if err != nil {
		return Disk{}, err
	}
	if err := change(&d); err != nil {
		return Disk{}, err
	}
	return d, c.store(path, d)
}

// ResizeDisk grows a disk and its image; the API refuses to shrink one. The filesystem in the image keeps
// its size until a node grows it (resize2fs), as on a real disk.
func (c *Compute) ResizeDisk(path string, sizeGB int) (Disk, error) {
	return c.changeDisk(path, "POST", path+"/resize", map[string]any{"sizeGb": sizeGB}, func(d *Disk) error {
		if sizeGB <= d.SizeGB {
			return invalid("Requested disk size cannot be smaller than the current size (%d GB <= %d GB)", sizeGB, d.SizeGB)
		}
		if sizeGB > MaxZonalDiskGB {
			return invalid("Disk size %d GB is above the maximum of %d GB", sizeGB, MaxZonalDiskGB)
		}
		if err := growImage(c.DiskImage(path), sizeGB); err != nil {
			return err
		}
		d.SizeGB = sizeGB
		return nil
	})
}

// errStaleFingerprint is the API's answer to a setLabels whose labelFingerprint is not the resource's
// current one: its labels changed since the caller read them.
func errStaleFingerprint() error {
	return &APIError{Code: 412, Reason: "conditionNotMet", Message: "Labels fingerprint either invalid or resource labels have changed"}
}

// SetDiskLabels replaces a disk's labels; the fingerprint must be the current one, as in the API (a
// 412 conditionNotMet otherwise). The fingerprint is a hash of the labels, so any change of them, by
// anyone, changes it.
func (c *Compute) SetDiskLabels(path string, labels map[string]string, labelFingerprint string) (Disk, error) {
	return c.changeDisk(path, "POST", path+"/setLabels", map[string]any{"labels": labels}, func(d *Disk) error {
		if labelFingerprint != d.LabelFingerprint {
			return errStaleFingerprint()
		}
		d.Labels = labels
		d.LabelFingerprint = fingerprint(labels)
		return nil
	})
}

// EditDiskLabels is a hand edit of a disk's labels outside any stack, as `gcloud compute disks
// add-labels` or the console make one: it reads the disk, lets edit change its labels, and sets them with
// the fingerprint it read. The disk's labelFingerprint changes with its labels.
func (c *Compute) EditDiskLabels(path string, edit func(labels map[string]string)) (Disk, error) {
	d, err := c.GetDisk(path)
	if err != nil {
		return Disk{}, err
	}
	labels := maps.Clone(d.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	edit(labels)
	return c.SetDiskLabels(path, labels, d.LabelFingerprint)
}

// DetachDisk removes an instance (its v1 URL, as in the disk's users) from a disk's users, and the disk from
// the instance's disks if the project holds the instance (instances.detachDisk).
func (c *Compute) DetachDisk(path, instance string) error {
	_, err := c.changeDisk(path, "POST", instance+"/detachDisk", map[string]any{"disk": lastSegment(path)}, func(d *Disk) error {
		d.Users = slices.DeleteFunc(d.Users, func(u string) bool { return u == instance })
		return c.detachFromInstance(instance, path)
	})
	return err
}

// DeleteDisk deletes a disk and its contents. The API refuses while an instance uses it; the provider
// detaches first. Its snapshots keep theirs.
func (c *Compute) DeleteDisk(path string) error {
	defer c.lock()()
	if err := c.record("DELETE", path, nil); err != nil {
		return err
	}
	d, err := load[Disk](c, "disk", path)
	if err != nil {
		return err
	}
	if len(d.Users) > 0 {
		return &APIError{Code: 400, Reason: "resourceInUseByAnotherResource",
			Message: fmt.Sprintf("The disk resource '%s' is already being used by '%s'", path, strings.TrimPrefix(d.Users[0], APIBase))}
	}
	if err := os.Remove(c.file(path)); err != nil {
		return err
	}
	return removeImage(c.DiskImage(path))
}

// AddResourcePolicies attaches policies (given as projects/P/regions/R/resourcePolicies/N) to the disk at
// path. A policy must exist, in the disk's project and region.
func (c *Compute) AddResourcePolicies(path string, policies []string) (Disk, error) {
	return c.changeDisk(path, "POST", path+"/addResourcePolicies", map[string]any{"resourcePolicies": policies}, func(d *Disk) error {
		for _, p := range policies {
			if !strings.HasPrefix(p, fmt.Sprintf("projects/%s/regions/%s/resourcePolicies/", d.Project, d.region())) {
				return invalid("Resource policy '%s' must be in the same project and region as disk '%s'", p, path)
			}
			if !c.exists(p) {
				return notFound("resourcePolicy", p)
			}
			if url := APIBase + p; !slices.Contains(d.ResourcePolicies, url) {
				d.ResourcePolicies = append(d.ResourcePolicies, url)
			}
		}
		return nil
	})
}

// RemoveResourcePolicies detaches policies from the disk at path.
func (c *Compute) RemoveResourcePolicies(path string, policies []string) (Disk, error) {
	return c.changeDisk(path, "POST", path+"/removeResourcePolicies", map[string]any{"resourcePolicies": policies}, func(d *Disk) error {
		d.ResourcePolicies = slices.DeleteFunc(d.ResourcePolicies, func(u string) bool {
			return slices.Contains(policies, strings.TrimPrefix(u, APIBase))
		})
		return nil
	})
}

// ---- snapshots ----------------------------------------------------------------------------------------------

// CreateSnapshot snapshots the disk at path (disks.createSnapshot, what `gcloud compute snapshots create`
// and a snapshot schedule do). The snapshot is global: it outlives its disk and its disk's zone. It copies
// the disk's image as it is at that instant: like a real snapshot without guestFlush, it holds what has
// reached the disk, so writes a mounted filesystem still caches are not in it (sync first).
func (c *Compute) CreateSnapshot(path, name string, labels map[string]string) (Snapshot, error) {
	defer c.lock()()
	if err := c.record("POST", path+"/createSnapshot", map[string]any{"name": name, "labels": labels}); err != nil {
		return Snapshot{}, err
	}
	if !nameRE.MatchString(name) {
		return Snapshot{}, invalid("Invalid value for field 'resource.name': '%s'. Must be a match of regex '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'", name)
	}
	d, err := load[Disk](c, "disk", path)
	if err != nil {
		return Snapshot{}, err
	}
	snapPath := SnapshotPath(d.Project, name)
	if c.exists(snapPath) {
		return Snapshot{}, &APIError{Code: 409, Reason: "alreadyExists", Message: fmt.Sprintf("The resource '%s' already exists", snapPath)}
	}
	s := Snapshot{ID: c.newID(), Name: name, Project: d.Project, SourceDisk: d.SelfLink(), SourceDiskID: d.ID,
		DiskSizeGB: d.SizeGB, Labels: labels, CreationTimestamp: c.now().UTC().Format(time.RFC3339)}
	image := c.SnapshotImage(d.Project, name)
	if err := copyImage(c.DiskImage(path), image, d.SizeGB); err != nil {
		return Snapshot{}, err
	}
	if err := c.store(snapPath, s); err != nil {
		return Snapshot{}, errors.Join(err, removeImage(image))
	}
	return s, nil
}

// PutSnapshot stores a snapshot as it is, without an API call: one taken before the test (of a disk that
// may be gone). Missing ID and timestamp are filled in. A snapshot without contents gets a blank ext4 image
// of its diskSizeGb (of the smallest disk if that is unset): a snapshot of a formatted disk with no files.
func (c *Compute) PutSnapshot(s Snapshot) (Snapshot, error) {
	defer c.lock()()
	if s.ID == "" {
		s.ID = c.newID()
	}
	if s.CreationTimestamp == "" {
		s.CreationTimestamp = c.now().UTC().Format(time.RFC3339)
	}
	if err := ensureImage(c.SnapshotImage(s.Project, s.Name), max(s.DiskSizeGB, MinZonalDiskGB)); err != nil {
		return Snapshot{}, err
	}
	return s, c.store(SnapshotPath(s.Project, s.Name), s)
}

// Snapshots lists a project's snapshots, oldest first (by name within the same second).
func (c *Compute) Snapshots(project string) ([]Snapshot, error) {
	snaps, err := loadAll[Snapshot](c, "projects/"+project+"/global/snapshots/*.json")
	slices.SortStableFunc(snaps, func(a, b Snapshot) int { return strings.Compare(a.CreationTimestamp, b.CreationTimestamp) })
	return snaps, err
}

// GetSnapshot returns a snapshot, or a 404 APIError.
func (c *Compute) GetSnapshot(project, name string) (Snapshot, error) {
	defer c.lock()()
	path := SnapshotPath(project, name)
	if err := c.record("GET", path, nil); err != nil {
		return Snapshot{}, err
	}
	return load[Snapshot](c, "snapshot", path)
}

// ---- resource policies --------------------------------------------------------------------------------------

// InsertResourcePolicy creates a policy.
func (c *Compute) InsertResourcePolicy(p ResourcePolicy) (ResourcePolicy, error) {
	defer c.lock()()
	path := PolicyPath(p.Project, p.Region, p.Name)
	if err := c.record("POST", fmt.Sprintf("projects/%s/regions/%s/resourcePolicies", p.Project, p.Region),
		map[string]any{"name": p.Name, "snapshotSchedulePolicy": p.SnapshotSchedulePolicy}); err != nil {
		return ResourcePolicy{}, err
	}
	if !nameRE.MatchString(p.Name) {
		return ResourcePolicy{}, invalid("Invalid value for field 'resource.name': '%s'. Must be a match of regex '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'", p.Name)
	}
	if c.exists(path) {
		return ResourcePolicy{}, &APIError{Code: 409, Reason: "alreadyExists", Message: fmt.Sprintf("The resource '%s' already exists", path)}
	}
	p.ID = c.newID()
	p.CreationTimestamp = c.now().UTC().Format(time.RFC3339)
	return p, c.store(path, p)
}

// GetResourcePolicy returns a policy, or a 404 APIError.
func (c *Compute) GetResourcePolicy(project, region, name string) (ResourcePolicy, error) {
	defer c.lock()()
	path := PolicyPath(project, region, name)
	if err := c.record("GET", path, nil); err != nil {
		return ResourcePolicy{}, err
	}
	return load[ResourcePolicy](c, "resourcePolicy", path)
}

// PatchResourcePolicy updates a policy in place. Compute Engine refuses a PATCH whose snapshotProperties
// carries guestFlush: "Patching guest_flush field is not supported." (rules §9.1).
func (c *Compute) PatchResourcePolicy(p ResourcePolicy) (ResourcePolicy, error) {
	defer c.lock()()
	path := PolicyPath(p.Project, p.Region, p.Name)
	if err := c.record("PATCH", path, map[string]any{"snapshotSchedulePolicy": p.SnapshotSchedulePolicy}); err != nil {
		return ResourcePolicy{}, err
	}
	old, err := load[ResourcePolicy](c, "resourcePolicy", path)
	if err != nil {
		return ResourcePolicy{}, err
	}
	if props, ok := p.SnapshotSchedulePolicy["snapshotProperties"].(map[string]any); ok {
		if _, ok := props["guestFlush"]; ok {
			return ResourcePolicy{}, &APIError{Code: 400, Reason: "badRequest", Message: "Patching guest_flush field is not supported."}
		}
	}
	old.Description = p.Description
	old.SnapshotSchedulePolicy = p.SnapshotSchedulePolicy
	return old, c.store(path, old)
}

// DeleteResourcePolicy deletes a policy; the API refuses while a disk of the project has it attached.
func (c *Compute) DeleteResourcePolicy(project, region, name string) error {
	defer c.lock()()
	path := PolicyPath(project, region, name)
	if err := c.record("DELETE", path, nil); err != nil {
		return err
	}
	if !c.exists(path) {
		return notFound("resourcePolicy", path)
	}
	disks, err := c.Disks(project)
	if err != nil {
		return err
	}
	for _, d := range disks {
		if slices.Contains(d.ResourcePolicies, APIBase+path) {
			return &APIError{Code: 400, Reason: "resourceInUseByAnotherResource",
				Message: fmt.Sprintf("The resource_policy resource '%s' is already being used by '%s'", path, d.Path())}
		}
	}
	return os.Remove(c.file(path))
}

// ---- addresses ----------------------------------------------------------------------------------------------

// addressPool is where the simulated project takes external addresses from (TEST-NET-2: never routed).
const addressPool = "198.51.100."

// InsertAddress reserves an address; without one given, the API picks a free one.
func (c *Compute) InsertAddress(a Address) (Address, error) {
	defer c.lock()()
	path := AddressPath(a.Project, a.Region, a.Name)
	if err := c.record("POST", fmt.Sprintf("projects/%s/regions/%s/addresses", a.Project, a.Region),
		map[string]any{"name": a.Name, "address": a.Address, "labels": a.Labels}); err != nil {
		return Address{}, err
	}
	if c.exists(path) {
		return Address{}, &APIError{Code: 409, Reason: "alreadyExists", Message: fmt.Sprintf("The resource '%s' already exists", path)}
	}
	taken, err := c.addressesIn(a.Project, a.Region)
	if err != nil {
		return Address{}, err
	}
	if a.Address == "" {
		for i := 10; i < 255 && a.Address == ""; i++ {
			if ip := addressPool + strconv.Itoa(i); !taken[ip] {
				a.Address = ip
			}
		}
	} else if taken[a.Address] {
		return Address{}, invalid("IP address '%s' is already being used by another resource", a.Address)
	}
	a.ID = c.newID()
	a.CreationTimestamp = c.now().UTC().Format(time.RFC3339)
	a.LabelFingerprint = fingerprint(a.Labels)
	return a, c.store(path, a)
}

// PutAddress stores an address as it is, without an API call (one promoted to static before the stack).
func (c *Compute) PutAddress(a Address) (Address, error) {
	defer c.lock()()
	if a.ID == "" {
		a.ID = c.newID()
	}
	if a.CreationTimestamp == "" {
		a.CreationTimestamp = c.now().UTC().Format(time.RFC3339)
	}
	a.LabelFingerprint = fingerprint(a.Labels)
	return a, c.store(AddressPath(a.Project, a.Region, a.Name), a)
}

// GetAddress returns an address, or a 404 APIError.
func (c *Compute) GetAddress(project, region, name string) (Address, error) {
	defer c.lock()()
	path := AddressPath(project, region, name)
	if err := c.record("GET", path, nil); err != nil {
		return Address{}, err
	}
	return load[Address](c, "address", path)
}

// SetAddressLabels replaces an address's labels; the fingerprint must be the current one, as for a disk.
func (c *Compute) SetAddressLabels(project, region, name string, labels map[string]string, labelFingerprint string) (Address, error) {
	defer c.lock()()
	path := AddressPath(project, region, name)
	if err := c.record("POST", path+"/setLabels", map[string]any{"labels": labels}); err != nil {
		return Address{}, err
	}
	a, err := load[Address](c, "address", path)
	if err != nil {
		return Address{}, err
	}
	if labelFingerprint != a.LabelFingerprint {
		return Address{}, errStaleFingerprint()
	}
	a.Labels, a.LabelFingerprint = labels, fingerprint(labels)
	return a, c.store(path, a)
}

// DeleteAddress releases an address.
func (c *Compute) DeleteAddress(project, region, name string) error {
	defer c.lock()()
	path := AddressPath(project, region, name)
	if err := c.record("DELETE", path, nil); err != nil {
		return err
	}
	if !c.exists(path) {
		return notFound("address", path)
	}
	return os.Remove(c.file(path))
}

// addressesIn returns the IPs reserved in a region.
func (c *Compute) addressesIn(project, region string) (map[string]bool, error) {
	addresses, err := loadAll[Address](c, "projects/"+project+"/regions/"+region+"/addresses/*.json")
	taken := map[string]bool{}
	for _, a := range addresses {
		taken[a.Address] = true
	}
	return taken, err
}
