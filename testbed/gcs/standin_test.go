package gcs_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/loklak/loklak-dumps/testbed/gcp"
	"github.com/loklak/loklak-dumps/testbed/gcs"
)

// A bucket the GCP stand-in creates (pointed at the server by LOKLAK_GCS_STANDIN_URL, as the plugin is)
// is served to any client on the loopback URL and on the host's address (there as the archiver, which
// reads and creates objects but not the bucket's metadata), objects go both ways, and they are files
// in the project's gcs/ folder.
func TestServesTheBucketsTheStandInCreates(t *testing.T) {
	ctx := testContext(t)
	dir := t.TempDir()
	var hosts []string
	if ip := hostIPv4(); ip != "" {
		hosts = append(hosts, ip)
	} else {
		t.Log("no non-loopback IPv4 address here: only the loopback URL is tried")
	}
	em := start(t, dir, hosts...)
	t.Setenv(gcp.StorageURLEnv, em.URL())
	standin, err := gcp.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if standin.StorageURL != em.URL() {
		t.Fatalf("Open took StorageURL %q from %s, want %q", standin.StorageURL, gcp.StorageURLEnv, em.URL())
	}
	if _, err := standin.InsertBucket(gcp.StorageBucket{Name: bucket, Project: "p1", Location: "us-central1", SoftDeleteSeconds: -1}, nil); err != nil {
		t.Fatal(err)
	}
	if err := standin.PutObject(bucket, "dumps/from-standin.txt.gz", []byte("from the stand-in")); err != nil {
		t.Fatal(err)
	}

	urls := []string{em.URL()}
	for _, h := range hosts {
		urls = append(urls, em.URLOn(h))
	}
	for i, u := range urls {
		c := client(t, u)
		attrs, err := c.Bucket(bucket).Attrs(ctx)
		if i > 0 {
			// The host's address is the archiver's: its roles do not read bucket metadata (iam.go).
			wantRefused(t, err, http.StatusForbidden, "forbidden", "storage.buckets.get")
		} else if err != nil {
			t.Fatalf("%s: the bucket: %v", u, err)
		} else if attrs.Location != gcs.BucketsLocation {
			t.Errorf("%s: location %q, want %q", u, attrs.Location, gcs.BucketsLocation)
		}
		if data, err := read(ctx, c, "dumps/from-standin.txt.gz"); err != nil || string(data) != "from the stand-in" {
			t.Errorf("%s: the stand-in's object: %q %v", u, data, err)
		}
		name := fmt.Sprintf("dumps/from-client-%d.txt.gz", i)
		if err := write(ctx, c, name, []byte(u), 0); err != nil {
			t.Fatalf("%s: upload: %v", u, err)
		}
		if data, err := standin.ReadObject(bucket, name); err != nil || string(data) != u {
			t.Errorf("the client's object %s read by the stand-in: %q %v", name, data, err)
		}
		if data, err := os.ReadFile(filepath.Join(dir, gcp.GCSDir, bucket, name)); err != nil || string(data) != u {
			t.Errorf("the client's object %s in the folder: %q %v", name, data, err)
		}
	}
	objects, err := standin.Objects(bucket)
	if err != nil || len(objects) != 1+len(urls) {
		t.Errorf("objects listed by the stand-in: %+v %v", objects, err)
	}
	if b, err := standin.GetBucket(bucket); err != nil || b.Location != "US-CENTRAL1" || b.SoftDeleteSeconds != 604800 {
		t.Errorf("the stand-in's document: %+v %v", b, err)
	}
}
