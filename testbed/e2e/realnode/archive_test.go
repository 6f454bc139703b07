//go:build e2e

package realnode

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"github.com/loklak/loklak-dumps/testbed/dockerhub"
	"github.com/loklak/loklak-dumps/testbed/e2e/e2etest"
	"github.com/loklak/loklak-dumps/testbed/gcs"
	"github.com/loklak/loklak-dumps/testbed/harness"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
	"google.golang.org/api/iterator"
)

// The archive's prefix in the bucket (infra.ArchivePrefix), as a user reads it.
const archivePrefix = "dump/own/"

// TestArchiveOnARealNode runs the committed dev stack with its archive pointed at the Cloud Storage
// emulator (archiveEndpoint, the one test-only value; short min age and interval so rounds come quickly):
// the archiver sidecar is rclone 1.71.0, built from its Go module, in loklak's pod on the real node.
// Closed dumps reach the bucket with the same bytes and the open one never; with pruning, a file leaves
// the disk only once its object is there, also when Cloud Storage stops or the sidecar is killed in the
// middle of an upload; a second copy of a file is not an error; the bucket never loses an object; the
// restore command of docs/archive.md puts the archived files back; the archiver turned off stops.
func TestArchiveOnARealNode(t *testing.T) {
	ctx := context.Background()
	const (
		ns     = "loklak-archive"
		bucket = "loklak-archive-dumps"
	)
	d, stack, b := archivingStack(t, ns, "loklak-archive-data", bucket, nil)
	t.Cleanup(cloudStorage.ReleaseUploads)
	setAndUp := func(t *testing.T, key, value string) {
		t.Helper()
		if err := stack.SetConfig(ctx, key, auto.ConfigValue{Value: value}); err != nil {
			t.Fatal(err)
		}
		if _, err := stack.Up(ctx, optup.ProgressStreams(testLog{T: t})); err != nil {
			t.Fatal(err)
		}
	}
	step := func(name string, f func(t *testing.T)) {
		if !t.Run(name, f) {
			t.FailNow()
		}
	}

	var pod loklakPod
	planted := map[string]string{} // name -> sha256 of what the test put on the disk
	plant := func(t *testing.T, name string, size int, age time.Duration) {
		t.Helper()
		// A whole gzip stream, as loklak leaves a closed dump: the archiver tests each before its upload.
		plain := make([]byte, size)
		if _, err := rand.Read(plain); err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		if _, err := zw.Write(plain); err != nil || zw.Close() != nil {
			t.Fatal("gzip", err)
		}
		content := buf.Bytes()
		plantClosedDump(t, pod.pid(t), name, content)
		path := filepath.Join(fmt.Sprintf("/proc/%d/root", pod.pid(t)), dumpDir, name)
		when := time.Now().Add(-age)
		if err := os.Chtimes(path, when, when); err != nil {
			t.Fatal(err)
		}
		planted[name] = sha(string(content))
	}
	onDisk := func(t *testing.T, name string) bool {
		t.Helper()
		_, err := os.Stat(filepath.Join(fmt.Sprintf("/proc/%d/root", pod.pid(t)), dumpDir, name))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		return err == nil
	}
	const day = 24 * time.Hour

	step("closed dumps reach the bucket with the same bytes, the open one never", func(t *testing.T) {
		if _, err := stack.Up(ctx, optup.ProgressStreams(testLog{T: t})); err != nil {
			t.Fatal(err)
		}
		pod = readyPod(t, ns, "")
		plant(t, "messages_20170820_60153342.txt.gz", 1<<20, 3*day)
		plant(t, "messages_20170821_60153342.txt.gz", 3<<20, 2*day)
		planted0 := time.Now()
		plant(t, "messages_20170822_60153342.txt.gz", 1<<20, 0) // closed this instant: younger than the min age
		waitUntil(t, "the two older dumps in gs://"+bucket, func() bool {
			return b.has(t, "messages_20170820_60153342.txt.gz") && b.has(t, "messages_20170821_60153342.txt.gz")
		})
		for _, name := range []string{"messages_20170820_60153342.txt.gz", "messages_20170821_60153342.txt.gz"} {
			want(t, name+" in the bucket (sha256)", b.sha(t, name), planted[name])
			want(t, name+" still on the disk (no pruning)", onDisk(t, name), true)
		}
		if time.Since(planted0) < time.Minute {
			want(t, "the dump closed under a minute ago copied", b.has(t, "messages_20170822_60153342.txt.gz"), false)
		} else {
			t.Logf("the min-age check is moot: copying took %s", time.Since(planted0))
		}
		open := openDump(t, pod)
		for name := range b.list(t) {
			if strings.HasSuffix(name, ".txt") || name == open {
				t.Errorf("the open dump %s is in the bucket", name)
			}
		}
		want(t, "the open dump still open on the disk", onDisk(t, open), true)
		// The younger dump is archived once a minute old: the next step waits for it (and its pruning).
	})

	step("with pruning, a file leaves the disk only once a day old and its object is there", func(t *testing.T) {
		setAndUp(t, "archivePruneAfterDays", "1")
		pod = readyPod(t, ns, pod.Name)
		for _, name := range []string{"messages_20170820_60153342.txt.gz", "messages_20170821_60153342.txt.gz"} {
			waitUntil(t, name+" pruned from the disk", func() bool { return !onDisk(t, name) })
			want(t, name+" in the bucket after pruning (sha256)", b.sha(t, name), planted[name])
		}
		// Closed today: archived once a minute old, kept on the disk (the recent days stay there).
		const recent = "messages_20170822_60153342.txt.gz"
		waitUntil(t, recent+" archived", func() bool { return b.has(t, recent) })
		want(t, recent+" in the bucket (sha256)", b.sha(t, recent), planted[recent])
		waitUntil(t, "a round after it was archived", func() bool {
			return strings.Count(archiverLog(t, ns, pod), "archive round done") >= 2
		})
		want(t, recent+" still on the disk (younger than a day)", onDisk(t, recent), true)
		open := openDump(t, pod)
		want(t, "the open dump never pruned", onDisk(t, open), true)
		b.intact(t)
	})

	// Stop Cloud Storage while an upload is in flight: the round fails, the file stays on the disk; after
	// the restart the next round copies it, and only then is it pruned.
	step("Cloud Storage stopped during an upload", func(t *testing.T) {
		const name = "messages_20170823_60153342.txt.gz"
		cloudStorage.HoldUploads(func(object string) bool { return object == archivePrefix+name })
		plant(t, name, 8<<20, 2*day)
		held := waitHeld(t)
		want(t, "held upload", held, archivePrefix+name)
		if err := cloudStorage.Stop(); err != nil {
			t.Fatal(err)
		}
		cloudStorage.ReleaseUploads()
		waitUntil(t, "the archiver's round to fail", func() bool { return strings.Contains(archiverLog(t, ns, pod), "archive round FAILED") })
		want(t, name+" still on the disk with Cloud Storage down", onDisk(t, name), true)
		if err := cloudStorage.Restart(); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, name+" archived after the restart", func() bool { return b.has(t, name) })
		want(t, name+" in the bucket (sha256)", b.sha(t, name), planted[name])
		waitUntil(t, name+" pruned once archived", func() bool { return !onDisk(t, name) })
		b.intact(t)
	})

	// Kill the sidecar while an upload is in flight: the file stays; the sidecar restarts (a native
	// sidecar's restartPolicy) and its next round completes.
	step("the archiver killed during an upload", func(t *testing.T) {
		const name = "messages_20170824_60153342.txt.gz"
		restartsBefore := archiverRestarts(t, ns, pod)
		cloudStorage.HoldUploads(func(object string) bool { return object == archivePrefix+name })
		plant(t, name, 8<<20, 2*day)
		want(t, "held upload", waitHeld(t), archivePrefix+name)
		pid, err := cp.ContainerPID(ctx, archiverContainerID(t, ns, pod))
		if err != nil {
			t.Fatal(err)
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, "the archiver restarted", func() bool { return archiverRestarts(t, ns, pod) > restartsBefore })
		want(t, name+" still on the disk after the kill", onDisk(t, name), true)
		cloudStorage.ReleaseUploads()
		waitUntil(t, name+" archived by the restarted archiver", func() bool { return b.has(t, name) })
		want(t, name+" in the bucket (sha256)", b.sha(t, name), planted[name])
		waitUntil(t, name+" pruned once archived", func() bool { return !onDisk(t, name) })
		b.intact(t)
	})

	step("a second copy of an archived file is not an error", func(t *testing.T) {
		const name = "messages_20170820_60153342.txt.gz"
		objects := len(b.list(t))
		content, err := b.read(t, name)
		if err != nil {
			t.Fatal(err)
		}
		plantClosedDump(t, pod.pid(t), name, content)
		old := time.Now().Add(-3 * day)
		if err := os.Chtimes(filepath.Join(fmt.Sprintf("/proc/%d/root", pod.pid(t)), dumpDir, name), old, old); err != nil {
			t.Fatal(err)
		}
		failedBefore := strings.Count(archiverLog(t, ns, pod), "archive round FAILED")
		waitUntil(t, name+" pruned again", func() bool { return !onDisk(t, name) })
		want(t, "failed rounds since", strings.Count(archiverLog(t, ns, pod), "archive round FAILED"), failedBefore)
		want(t, "objects", len(b.list(t)), objects)
		want(t, name+" unchanged in the bucket", b.sha(t, name), planted[name])
	})

	step("docs/archive.md's restore command puts the archived files back", func(t *testing.T) {
		setAndUp(t, "archivePruneAfterDays", "0") // pruning would take the older ones off again
		pod = readyPod(t, ns, pod.Name)
		command := restoreCommand(t)
		out, err := d.Shell(ctx, strings.Replace(command, "-n loklak-dev ", "-n "+ns+" ", 1))
		if err != nil {
			t.Fatalf("%s: %v\n%s", command, err, out)
		}
		for name, hash := range planted {
			body, err := os.ReadFile(filepath.Join(fmt.Sprintf("/proc/%d/root", pod.pid(t)), dumpDir, name))
			if err != nil {
				t.Errorf("%s not restored: %v", name, err)
				continue
			}
			want(t, name+" restored (sha256)", sha(string(body)), hash)
		}
		b.intact(t)
	})

	step("archiverEnabled false stops the archiver and keeps the bucket", func(t *testing.T) {
		setAndUp(t, "archiverEnabled", "false")
		pod = readyPod(t, ns, pod.Name)
		out, err := cp.Kubectl(ctx, "-n", ns, "get", "pod", pod.Name, "-o", "jsonpath={.spec.containers[*].name}")
		if err != nil {
			t.Fatal(err)
		}
		want(t, "containers", strings.TrimSpace(string(out)), loklakContainer)
		b.intact(t)
		// Every planted file; loklak's own earlier dumps, gzipped at its restarts, are archived too.
		objects := b.list(t)
		for name := range planted {
			if _, ok := objects[name]; !ok {
				t.Errorf("%s is no longer in the bucket", name)
			}
		}
		for name := range objects {
			if !strings.HasSuffix(name, ".txt.gz") {
				t.Errorf("gs://.../%s%s: only closed dumps may be archived", archivePrefix, name)
			}
		}
	})
}

// archiveBucket reads the bucket, and remembers every object it saw with its hash, so intact can show
// that no object was ever lost or changed.
type archiveBucket struct {
	client *storage.BucketHandle
	seen   map[string]string // object name -> sha256
}

// list returns the dump objects (names without the prefix) and their MD5s as Cloud Storage reports them.
func (b archiveBucket) list(t *testing.T) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	it := b.client.Objects(context.Background(), &storage.Query{Prefix: archivePrefix})
	for {
		attrs, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimPrefix(attrs.Name, archivePrefix)] = attrs.MD5
	}
}

func (b archiveBucket) has(t *testing.T, name string) bool {
	t.Helper()
	_, ok := b.list(t)[name]
	return ok
}

func (b archiveBucket) read(t *testing.T, name string) ([]byte, error) {
	t.Helper()
	r, err := b.client.Object(archivePrefix + name).NewReader(context.Background())
	if err != nil {
		return nil, err
	}
	defer func() { _ = r.Close() }() // a reader's Close reports nothing a read did not
	return io.ReadAll(r)
}

// sha is the SHA-256 of the object's bytes, remembered for intact.
func (b archiveBucket) sha(t *testing.T, name string) string {
	t.Helper()
	body, err := b.read(t, name)
	if err != nil {
		t.Fatalf("gs://.../%s%s: %v", archivePrefix, name, err)
	}
	sum := sha256.Sum256(body)
	b.seen[name] = hex.EncodeToString(sum[:])
	return b.seen[name]
}

// intact checks that every object seen so far is still there with the same bytes.
func (b archiveBucket) intact(t *testing.T) {
	t.Helper()
	for name, hash := range b.seen {
		body, err := b.read(t, name)
		if err != nil {
			t.Errorf("the bucket lost %s: %v", name, err)
			continue
		}
		sum := sha256.Sum256(body)
		if got := hex.EncodeToString(sum[:]); got != hash {
			t.Errorf("%s changed in the bucket: sha256 %s, was %s", name, got, hash)
		}
	}
}

// waitHeld waits (two minutes at most: a round comes every ten seconds) until the emulator holds an upload.
func waitHeld(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	name, err := cloudStorage.WaitHeld(ctx)
	if err != nil {
		t.Fatalf("no upload reached Cloud Storage: %v", err)
	}
	return name
}

// openDump is the dump loklak's stand-in appends to now: the newest .txt file in the dump directory (one
// of an earlier date may still be being gzipped beside it).
func openDump(t *testing.T, pod loklakPod) string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(fmt.Sprintf("/proc/%d/root", pod.pid(t)), dumpDir))
	if err != nil {
		t.Fatal(err)
	}
	var open string
	for _, e := range entries { // sorted by name, and the name starts with the date
		if strings.HasSuffix(e.Name(), ".txt") {
			open = e.Name()
		}
	}
	if open == "" {
		t.Fatal("no open dump on the disk")
	}
	return open
}

// archiverStatus is the archiver's status in the pod (the container after loklak's).
func archiverStatus(t *testing.T, ns string, pod loklakPod) (containerID string, restarts int) {
	t.Helper()
	out, err := cp.Kubectl(context.Background(), "-n", ns, "get", "pod", pod.Name, "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Status struct {
			ContainerStatuses []struct {
				Name, ContainerID string
				RestartCount      int
			}
		}
	}
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatal(err)
	}
	for _, s := range p.Status.ContainerStatuses {
		if s.Name == "archiver" {
			return strings.TrimPrefix(s.ContainerID, "containerd://"), s.RestartCount
		}
	}
	t.Fatalf("pod %s has no archiver", pod.Name)
	return "", 0
}

func archiverContainerID(t *testing.T, ns string, pod loklakPod) string {
	id, _ := archiverStatus(t, ns, pod)
	return id
}

func archiverRestarts(t *testing.T, ns string, pod loklakPod) int {
	_, n := archiverStatus(t, ns, pod)
	return n
}

// archiverLog is the archiver's log (its current run).
func archiverLog(t *testing.T, ns string, pod loklakPod) string {
	t.Helper()
	out, err := cp.Kubectl(context.Background(), "-n", ns, "logs", pod.Name, "-c", "archiver")
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// restoreCommand is docs/archive.md's restore command (e2etest.RestoreCommand).
func restoreCommand(t *testing.T) string { t.Helper(); return e2etest.RestoreCommand(t, repoDir(t)) }

// archivingStack is the committed dev stack in namespace ns on disk, archiving to bucket in the Cloud
// Storage emulator as the node's pods reach it (archiveEndpoint, the one test-only value; a one-minute
// min age and 10 s rounds so that rounds come quickly), with extra config on top. It is destroyed at the
// end of the test, but for what is protected; the bucket is read as its owner.
func archivingStack(t *testing.T, ns, disk, bucket string, extra map[string]string) (harness.Driver, auto.Stack, archiveBucket) {
	t.Helper()
	ctx := context.Background()
	d := newDriver(t)
	stack, err := d.CommittedStack(ctx, "dev", nil)
	if err != nil {
		t.Fatal(err)
	}
	config := map[string]string{
		"namespace": ns, "diskName": disk, "archiveBucket": bucket,
		"archiveEndpoint": cloudStorage.URLOn(nodeIP) + "/storage/v1/",
		// Pulumi.yaml pins Docker Hub's rclone by its digest, which no image here has: the same tag.
		"archiverImage":        dockerhub.RcloneRef,
		"archiveMinAgeMinutes": "1", "archiveIntervalSeconds": "10",
	}
	maps.Copy(config, extra)
	for key, value := range config {
		if err := stack.SetConfig(ctx, key, auto.ConfigValue{Value: value}); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if out, err := d.CLI(ctx, "destroy", "--stack", "dev", "--yes", "--non-interactive", "--exclude-protected"); err != nil {
			t.Errorf("clean-up: %v\n%s", err, out)
		}
	})
	client, err := gcs.NewClient(ctx, cloudStorage.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return d, stack, archiveBucket{client: client.Bucket(bucket), seen: map[string]string{}}
}
