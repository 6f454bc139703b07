package gcp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/storage"
	"github.com/loklak/loklak-dumps/testbed/gcs"
	"google.golang.org/api/iterator"
)

// The simulated project's Cloud Storage (../shared/notes/gcs-provider-rules.md; "gcs rules §1" below).
//
// A bucket lives in two places, as a disk does (its document and its image):
//
//   - its objects, in a real Cloud Storage emulator: github.com/fsouza/fake-gcs-server's fakestorage over
//     its filesystem backend rooted at GCSDir under the simulated project's directory (package
//     testbed/gcs). The bucket is a folder there and each object a file, so both outlive the short-lived
//     plugin processes the engine starts. The stand-in talks to the emulator through the Cloud Storage Go
//     client, over the JSON API.
//   - what the emulator does not model (location, storage class, labels, lifecycle rules, versioning,
//     uniform bucket-level access, public access prevention, soft delete and retention policies,
//     metageneration), in the stand-in's own document at storage/v1/b/NAME.json, and its IAM policy at
//     storage/v1/b/NAME/iam.json, written under the project's lock as every document is.
//
// One process owns GCSDir. When Compute.StorageURL is set (from LOKLAK_GCS_STANDIN_URL, StorageURLEnv),
// that process is a gcs.Emulator serving the folder over HTTP, which the test started beside the control
// plane and which pods on the real node reach too (rclone, say): a plugin process then keeps no Cloud
// Storage state of its own, objects change without the project's lock (a pod uploads without it), and
// an emulator that is down fails a call within a second (gcs.NewClient). Otherwise the emulator runs
// inside this process, without a listener (gcs.InProcess), as in the unit tests and the conformance
// test; it refuses while a gcs.Emulator serves the folder (whose URL was then not passed on).
//
// The emulator's filesystem backend refuses versioning ("not implemented: fs storage type does not
// support versioning yet", fake-gcs-server v1.56.1 internal/backend/fs.go), so every emulated bucket is
// unversioned and holds one generation per object; Versioning in the document is the bucket's setting as
// the API reports it, and noncurrent versions are not simulated.

// GCSDir is the emulator's root under the simulated project's directory: one folder per bucket.
const GCSDir = gcs.RootDir

// StorageBucket is a bucket's metadata as the Cloud Storage JSON API reports it (storage/v1 Bucket),
// for the fields the emulator does not keep.
type StorageBucket struct {
	Name    string `json:"name"`
	Project string `json:"project"`
	// ProjectNumber is the owning project's number, as a decimal string.
	ProjectNumber string `json:"projectNumber"`
	// Location is upper-cased, as the API spells it (gcs rules §1: "us-central1" reads back "US-CENTRAL1").
	Location     string            `json:"location"`
	LocationType string            `json:"locationType"`
	StorageClass string            `json:"storageClass"`
	Labels       map[string]string `json:"labels,omitempty"`
	// Lifecycle rules as the request body carried them ({action:{type,storageClass}, condition:{...}}).
	LifecycleRules    []map[string]any `json:"lifecycleRules,omitempty"`
	Versioning        bool             `json:"versioning"`
	UniformAccess     bool             `json:"uniformBucketLevelAccess"`
	PublicAccessPrev  string           `json:"publicAccessPrevention"`
	SoftDeleteSeconds int              `json:"softDeleteRetentionSeconds"`
	// SoftDeleteEffective is when the soft-delete policy took effect (RFC 3339).
	SoftDeleteEffective string           `json:"softDeleteEffectiveTime"`
	Retention           *RetentionPolicy `json:"retentionPolicy,omitempty"`
	Metageneration      int              `json:"metageneration"`
	TimeCreated         string           `json:"timeCreated"`
}

// RetentionPolicy is a bucket's retention policy: objects cannot be deleted or replaced before they are
// RetentionPeriod seconds old. A locked policy can never be removed or shortened (gcs rules §1).
type RetentionPolicy struct {
	RetentionPeriod int    `json:"retentionPeriod"`
	IsLocked        bool   `json:"isLocked"`
	EffectiveTime   string `json:"effectiveTime"`
}

// BucketPath is storage/v1/b/NAME: the API path of a bucket, and of its document here.
func BucketPath(name string) string { return "storage/v1/b/" + name }

// SelfLink is the bucket's API URL.
func (b StorageBucket) SelfLink() string { return "https://www.googleapis.com/" + BucketPath(b.Name) }

// defaultSoftDeleteSeconds is the API's default soft-delete retention, 7 days (gcs rules §5.2).
const defaultSoftDeleteSeconds = 604800

// emulator returns a client of the Cloud Storage emulator over the simulated project's GCSDir: of the
// server at StorageURL when that is set, else of an emulator started in this process on first use. The
// caller holds the lock.
func (c *Compute) emulator() (*storage.Client, error) {
	if c.gcs != nil {
		return c.gcs, nil
	}
	if c.StorageURL != "" {
		client, err := gcs.NewClient(context.Background(), c.StorageURL)
		if err != nil {
			return nil, err
		}
		c.gcs = client
		return client, nil
	}
	local, err := gcs.InProcess(c.Dir)
	if err != nil {
		return nil, err
	}
	c.local, c.gcs = local, local.Client()
	return c.gcs, nil
}

// projectNumber is a project's number: stable for a project ID, as the API's is.
func projectNumber(project string) string {
	var n uint64 = 14695981039346656037
	for _, b := range []byte(project) {
		n = (n ^ uint64(b)) * 1099511628211
	}
	return strconv.FormatUint(n%1_000_000_000_000, 10)
}

// InsertBucket creates a bucket (POST storage/v1/b?project=P, gcs rules §1 "Create"): in the emulator,
// then its document. Names are global: a name any project already uses is a 409, as in the API. The
// location is upper-cased and the soft-delete policy defaults to 7 days, as the API does; b.Retention's
// lock is not applied here (see LockRetentionPolicy).
func (c *Compute) InsertBucket(b StorageBucket, body map[string]any) (StorageBucket, error) {
	defer c.lock()()
	if err := c.record("POST", "storage/v1/b?project="+b.Project, body); err != nil {
		return StorageBucket{}, err
	}
	gcs, err := c.emulator()
	if err != nil {
		return StorageBucket{}, err
	}
	ctx := context.Background()
	if c.exists(BucketPath(b.Name)) {
		return StorageBucket{}, bucketTaken(b.Name)
	}
	if err := gcs.Bucket(b.Name).Create(ctx, b.Project, nil); err != nil {
		if apiCode(err) == 409 {
			return StorageBucket{}, bucketTaken(b.Name)
		}
		return StorageBucket{}, fmt.Errorf("cloud storage emulator: create bucket %s: %w", b.Name, err)
	}
	now := c.now().UTC().Format(time.RFC3339Nano)
	b.Location = strings.ToUpper(b.Location)
	b.LocationType = "region"
	if !strings.Contains(b.Location, "-") {
		b.LocationType = "multi-region"
	}
	if b.StorageClass == "" {
		b.StorageClass = "STANDARD"
	}
	if b.PublicAccessPrev == "" {
		b.PublicAccessPrev = "inherited"
	}
	if b.SoftDeleteSeconds < 0 {
		b.SoftDeleteSeconds = defaultSoftDeleteSeconds
	}
	b.SoftDeleteEffective, b.TimeCreated = now, now
	b.ProjectNumber, b.Metageneration = projectNumber(b.Project), 1
	if b.Retention != nil {
		b.Retention.IsLocked, b.Retention.EffectiveTime = false, now
	}
	return b, c.store(BucketPath(b.Name), b)
}

func bucketTaken(name string) error {
	return &APIError{Code: 409, Reason: "conflict", Message: fmt.Sprintf("Your previous request to create the named bucket succeeded and you already own it. (%s)", name)}
}

// apiCode is the HTTP status of an error answered by the emulator, or 0.
func apiCode(err error) int {
	var ae interface{ HTTPCode() int }
	if errors.As(err, &ae) {
		return ae.HTTPCode()
	}
	if errors.Is(err, storage.ErrBucketNotExist) || errors.Is(err, storage.ErrObjectNotExist) {
		return 404
	}
	return 0
}

// GetBucket returns a bucket's metadata (GET storage/v1/b/NAME), or a 404 APIError when the bucket is in
// neither the emulator nor the documents (deleted in either place counts as deleted).
func (c *Compute) GetBucket(name string) (StorageBucket, error) {
	defer c.lock()()
	if err := c.record("GET", BucketPath(name), nil); err != nil {
		return StorageBucket{}, err
	}
	return c.getBucket(name)
}

func (c *Compute) getBucket(name string) (StorageBucket, error) {
	b, err := load[StorageBucket](c, "bucket", BucketPath(name))
	if err != nil {
		return b, err
	}
	gcs, err := c.emulator()
	if err != nil {
		return StorageBucket{}, err
	}
	if _, err := gcs.Bucket(name).Attrs(context.Background()); err != nil {
		if apiCode(err) == 404 {
			return StorageBucket{}, notFound("bucket", BucketPath(name))
		}
		return StorageBucket{}, fmt.Errorf("cloud storage emulator: get bucket %s: %w", name, err)
	}
	return b, nil
}

// PatchBucket changes a bucket (PATCH storage/v1/b/NAME with body, gcs rules §1 "In place"): change edits
// the document (an error from it is the API's refusal, and nothing changes); the metageneration goes up by
// one. A locked retention policy cannot be removed or its period shortened (403, as the API answers).
func (c *Compute) PatchBucket(name string, body map[string]any, change func(b *StorageBucket) error) (StorageBucket, error) {
	defer c.lock()()
	if err := c.record("PATCH", BucketPath(name), body); err != nil {
		return StorageBucket{}, err
	}
	b, err := c.getBucket(name)
	if err != nil {
		return b, err
	}
	var before *RetentionPolicy
	if b.Retention != nil {
		r := *b.Retention
		before = &r
	}
	if err := change(&b); err != nil {
		return StorageBucket{}, err
	}
	if before != nil && before.IsLocked {
		if b.Retention == nil || b.Retention.RetentionPeriod < before.RetentionPeriod || !b.Retention.IsLocked {
			return StorageBucket{}, &APIError{Code: 403, Reason: "forbidden", Message: fmt.Sprintf("Cannot reduce retention duration or remove the locked retention policy of bucket %s", name)}
		}
	}
	b.Metageneration++
	return b, c.store(BucketPath(name), b)
}

// LockRetentionPolicy locks a bucket's retention policy (POST storage/v1/b/NAME/lockRetentionPolicy),
// irreversibly. The metageneration must be the bucket's current one (412 otherwise, as in the API).
func (c *Compute) LockRetentionPolicy(name string, metageneration int) (StorageBucket, error) {
	defer c.lock()()
	path := BucketPath(name) + "/lockRetentionPolicy?ifMetagenerationMatch=" + strconv.Itoa(metageneration)
	if err := c.record("POST", path, nil); err != nil {
		return StorageBucket{}, err
	}
	b, err := c.getBucket(name)
	if err != nil {
		return b, err
	}
	if b.Metageneration != metageneration {
		return StorageBucket{}, &APIError{Code: 412, Reason: "conditionNotMet", Message: "At least one of the pre-conditions you specified did not hold."}
	}
	if b.Retention == nil {
		return StorageBucket{}, invalid("Bucket %s has no retention policy to lock", name)
	}
	b.Retention.IsLocked = true
	b.Metageneration++
	return b, c.store(BucketPath(name), b)
}

// StorageObject is one object of a bucket, as objects.list reports it.
type StorageObject struct {
	Name       string
	Generation int64
	Size       int64
	// MD5 is the object's MD5 digest, as the API's md5Hash carries it (raw bytes).
	MD5     []byte
	Created time.Time
}

// PutObject writes an object into a bucket through the emulator, as a client uploading to the bucket
// would (the archiver, or a test): it is how objects get into a bucket outside any stack.
func (c *Compute) PutObject(bucket, name string, data []byte) error {
	defer c.lock()()
	gcs, err := c.emulator()
	if err != nil {
		return err
	}
	w := gcs.Bucket(bucket).Object(name).NewWriter(context.Background())
	if _, err := w.Write(data); err != nil {
		_ = w.Close() // the write's error is the one to report
		return fmt.Errorf("upload gs://%s/%s: %w", bucket, name, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("upload gs://%s/%s: %w", bucket, name, err)
	}
	return nil
}

// Objects lists every object of a bucket, every generation the emulator keeps (objects.list with
// versions=true), by name.
func (c *Compute) Objects(bucket string) ([]StorageObject, error) {
	defer c.lock()()
	return c.objects(bucket)
}

func (c *Compute) objects(bucket string) ([]StorageObject, error) {
	gcs, err := c.emulator()
	if err != nil {
		return nil, err
	}
	var out []StorageObject
	it := gcs.Bucket(bucket).Objects(context.Background(), &storage.Query{Versions: true})
	for {
		o, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			if apiCode(err) == 404 {
				return nil, notFound("bucket", BucketPath(bucket))
			}
			return nil, fmt.Errorf("cloud storage emulator: list gs://%s: %w", bucket, err)
		}
		out = append(out, StorageObject{Name: o.Name, Generation: o.Generation, Size: o.Size, MD5: o.MD5, Created: o.Created})
	}
	slices.SortFunc(out, func(a, b StorageObject) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// ReadObject returns an object's bytes, read through the emulator.
func (c *Compute) ReadObject(bucket, name string) ([]byte, error) {
	defer c.lock()()
	gcs, err := c.emulator()
	if err != nil {
		return nil, err
	}
	r, err := gcs.Bucket(bucket).Object(name).NewReader(context.Background())
	if err != nil {
		return nil, fmt.Errorf("read gs://%s/%s: %w", bucket, name, err)
	}
	defer func() { _ = r.Close() }() // a reader's Close reports nothing a full read did not
	return io.ReadAll(r)
}

// DeleteBucket deletes a bucket the way the provider does (gcs rules §1 "Delete"): it lists every object
// version; a bucket with objects is refused unless forceDestroy, with the provider's message; with
// forceDestroy, a locked retention policy still protects objects younger than its period; otherwise every
// object is deleted, then the bucket (DELETE storage/v1/b/NAME) and its documents. Each API request is
// recorded. A bucket already gone is a 404 APIError.
func (c *Compute) DeleteBucket(name string, forceDestroy bool) error {
	defer c.lock()()
	if err := c.record("GET", BucketPath(name)+"/o?versions=true", nil); err != nil {
		return err
	}
	b, err := c.getBucket(name)
	if err != nil {
		return err
	}
	objects, err := c.objects(name)
	if err != nil {
		return err
	}
	if len(objects) > 0 && !forceDestroy {
		return fmt.Errorf("Error trying to delete bucket %s containing objects without `force_destroy` set to true", name) // the provider's message, verbatim (gcs rules §1)
	}
	if r := b.Retention; r != nil && r.IsLocked {
		for _, o := range objects {
			if c.now().Before(o.Created.Add(time.Duration(r.RetentionPeriod) * time.Second)) {
				return fmt.Errorf("Bucket '%s' contains objects that have not met the retention period yet and cannot be deleted.", name) //nolint:staticcheck // the provider's message, verbatim (gcs rules §1)
			}
		}
	}
	gcs, err := c.emulator()
	if err != nil {
		return err
	}
	ctx := context.Background()
	for _, o := range objects {
		path := fmt.Sprintf("%s/o/%s?generation=%d", BucketPath(name), o.Name, o.Generation)
		if err := c.record("DELETE", path, nil); err != nil {
			return err
		}
		if err := gcs.Bucket(name).Object(o.Name).Generation(o.Generation).Delete(ctx); err != nil && apiCode(err) != 404 {
			return fmt.Errorf("cloud storage emulator: delete gs://%s/%s: %w", name, o.Name, err)
		}
	}
	if err := c.record("DELETE", BucketPath(name), nil); err != nil {
		return err
	}
	if err := gcs.Bucket(name).Delete(ctx); err != nil && apiCode(err) != 404 {
		return fmt.Errorf("cloud storage emulator: delete bucket %s: %w", name, err)
	}
	return c.remove(BucketPath(name), bucketPolicyPath(name))
}
