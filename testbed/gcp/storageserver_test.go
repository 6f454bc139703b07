package gcp

import (
	"os"
	"strings"
	"testing"

	"github.com/loklak/loklak-dumps/testbed/gcs"
)

// storageServerEnv, set to 1, makes every test project (newFixture, and each conformance case) keep its
// buckets in a Cloud Storage server of its own (gcs.Emulator, the way the plugin runs beside a control
// plane: Compute.StorageURL set) instead of an emulator inside the test process. Unset, the tests run as
// the plugin does without LOKLAK_GCS_STANDIN_URL. TestStorageOverAServer sets it for the storage tests,
// so both ways run by default; `GCP_TEST_STORAGE_SERVER=1 go test ./testbed/gcp/` runs every test over a
// server.
const storageServerEnv = "GCP_TEST_STORAGE_SERVER"

// serveStorage starts a Cloud Storage server over c's directory and points c at it, when
// storageServerEnv asks for one. The server stops with the test.
func serveStorage(t *testing.T, c *Compute) {
	t.Helper()
	if os.Getenv(storageServerEnv) != "1" {
		return
	}
	em, err := gcs.Start(c.Dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := em.Stop(); err != nil {
			t.Error(err)
		}
	})
	c.StorageURL = em.URL()
}

// TestStorageOverAServer runs the Cloud Storage tests again with every bucket in a gcs.Emulator reached
// over HTTP, as the plugin works when LOKLAK_GCS_STANDIN_URL is set.
func TestStorageOverAServer(t *testing.T) {
	t.Setenv(storageServerEnv, "1")
	for name, test := range map[string]func(*testing.T){
		"BucketLivesInTheEmulatorAndItsDocument":           TestBucketLivesInTheEmulatorAndItsDocument,
		"BucketWithObjectsIsNotDeletedWithoutForceDestroy": TestBucketWithObjectsIsNotDeletedWithoutForceDestroy,
		"LockedRetentionProtectsYoungObjects":              TestLockedRetentionProtectsYoungObjectsEvenWithForceDestroy,
		"BucketUpdatePatchesOnlyWhatChanged":               TestBucketUpdatePatchesOnlyWhatChanged,
		"IAMMemberReplacedCreateBeforeDeleteLosesTheGrant": TestIAMMemberReplacedCreateBeforeDeleteLosesTheGrant,
		"DeletedAccountsBucketGrantLeavesState":            TestDeletedAccountsBucketGrantLeavesState,
		"ConformanceStorageAndIAMWithTheRealProvider":      TestConformanceStorageAndIAMWithTheRealProvider,
	} {
		t.Run(name, test)
	}
}

// A server that is down fails the stand-in's call (as an unreachable API does) instead of being retried
// for ever, and the same Compute works again once the server is back on its port.
func TestStorageServerDownFailsTheCall(t *testing.T) {
	dir := t.TempDir()
	em, err := gcs.Start(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = em.Stop() })
	c, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	c.StorageURL = em.URL()
	if _, err := c.InsertBucket(StorageBucket{Name: "loklak-dev-dumps-archive", Project: "p1", Location: "us-central1"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := em.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetBucket("loklak-dev-dumps-archive"); err == nil || IsNotFound(err) {
		t.Fatalf("GetBucket with the server down: %v, want a failed call", err)
	}
	if err := em.Restart(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetBucket("loklak-dev-dumps-archive"); err != nil {
		t.Fatalf("GetBucket after the restart: %v", err)
	}
}

// With no URL, the stand-in refuses to open the folder a server is serving: that folder has one owner,
// and a Driver that started the server but did not pass its URL on is a mistake to report.
func TestInProcessEmulatorRefusesAFolderAServerServes(t *testing.T) {
	dir := t.TempDir()
	em, err := gcs.Start(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = em.Stop() })
	c, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	c.StorageURL = ""
	_, err = c.InsertBucket(StorageBucket{Name: "loklak-dev-dumps-archive", Project: "p1", Location: "us-central1"}, nil)
	if err == nil || !strings.Contains(err.Error(), "serves that folder") {
		t.Fatalf("InsertBucket in-process beside a server: %v", err)
	}
}
