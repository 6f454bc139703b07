package gcp

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The disks' contents (image.go), read with e2fsprogs' own tools: dumpe2fs for the superblock, debugfs to
// write and read files in an image without mounting it.

func e2fs(t *testing.T, name string, args ...string) string {
	t.Helper()
	path, err := tool(name)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(path, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// superblock returns the fields of dumpe2fs -h that the tests look at.
func superblock(t *testing.T, image string) (magic string, fsBytes int64) {
	t.Helper()
	out := e2fs(t, "dumpe2fs", "-h", image)
	field := func(name string) string {
		m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `:\s+(\S+)`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("dumpe2fs -h %s: no %q in\n%s", image, name, out)
		}
		return m[1]
	}
	blocks, err1 := strconv.ParseInt(field("Block count"), 10, 64)
	size, err2 := strconv.ParseInt(field("Block size"), 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("dumpe2fs -h %s: %v %v", image, err1, err2)
	}
	return field("Filesystem magic number"), blocks * size
}

// writeFile puts a file with the given content at /name in the image (debugfs -w, no mount), replacing
// one that is there.
func writeFile(t *testing.T, image, name, content string) {
	t.Helper()
	src := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(src, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	path, err := tool("debugfs")
	if err != nil {
		t.Fatal(err)
	}
	_ = exec.Command(path, "-w", "-R", "rm /"+name, image).Run() // absent the first time
	e2fs(t, "debugfs", "-w", "-R", "write "+src+" "+name, image)
}

func readFile(t *testing.T, image, name string) string {
	t.Helper()
	path, err := tool("debugfs")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(path, "-R", "cat /"+name, image).Output() // the banner goes to stderr
	if err != nil {
		t.Fatalf("debugfs cat /%s %s: %v", name, image, err)
	}
	return string(out)
}

func fileSize(t *testing.T, file string) (size, allocated int64) {
	t.Helper()
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size(), fi.Sys().(*syscall.Stat_t).Blocks * 512
}

func TestDiskImageIsSparseExt4OfTheDiskSize(t *testing.T) {
	c, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []Disk{
		{Name: "data", Project: "p1", Zone: "us-central1-a", SizeGB: 10, Type: "pd-standard"},
		{Name: "big", Project: "p1", Zone: "us-central1-a", SizeGB: 100, Type: "pd-standard"},
		{Name: "regional", Project: "p1", Region: "us-central1", SizeGB: 200, Type: "pd-standard",
			ReplicaZones: []string{APIBase + "projects/p1/zones/us-central1-a", APIBase + "projects/p1/zones/us-central1-b"}},
	} {
		start := time.Now()
		if _, err := c.InsertDisk(d); err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		image := c.DiskImage(d.Path())
		if filepath.Dir(image) != filepath.Dir(c.file(d.Path())) {
			t.Errorf("%s: image %s is not beside the disk's document %s", d.Name, image, c.file(d.Path()))
		}
		size, allocated := fileSize(t, image)
		if want := int64(d.SizeGB) << 30; size != want {
			t.Errorf("%s: image is %d bytes, want %d", d.Name, size, want)
		}
		if allocated > 64<<20 {
			t.Errorf("%s: image holds %d MiB of blocks; want a sparse file", d.Name, allocated>>20)
		}
		magic, fsBytes := superblock(t, image)
		if magic != "0xEF53" {
			t.Errorf("%s: filesystem magic %s, want ext4's 0xEF53", d.Name, magic)
		}
		if fsBytes != size {
			t.Errorf("%s: filesystem of %d bytes in an image of %d", d.Name, fsBytes, size)
		}
		t.Logf("%s: %d GiB disk made in %v, %d KiB of blocks", d.Name, d.SizeGB, took.Round(time.Millisecond), allocated>>10)
	}
}

func TestSnapshotCopiesTheBytesOfThatInstant(t *testing.T) {
	c, src := newDataDisk(t)
	image := c.DiskImage(src.Path())
	writeFile(t, image, "messages_20170101_00000001.txt", "before the snapshot\n")
	if _, err := c.CreateSnapshot(src.Path(), "data-1", nil); err != nil {
		t.Fatal(err)
	}
	writeFile(t, image, "messages_20170101_00000001.txt", "after the snapshot\n")

	// A larger disk from the snapshot: the snapshot's bytes, in an image of the new size whose filesystem
	// is still the snapshot's size until a node runs resize2fs.
	restored, err := c.InsertDisk(Disk{Name: "restored", Project: "p1", Zone: "us-central1-b", SizeGB: 20, Type: "pd-standard",
		SourceSnapshot: SnapshotPath("p1", "data-1")})
	if err != nil {
		t.Fatal(err)
	}
	restoredImage := c.DiskImage(restored.Path())
	if got := readFile(t, restoredImage, "messages_20170101_00000001.txt"); got != "before the snapshot\n" {
		t.Errorf("disk from the snapshot holds %q, want the bytes of the snapshot's instant", got)
	}
	if got := readFile(t, image, "messages_20170101_00000001.txt"); got != "after the snapshot\n" {
		t.Errorf("the source disk holds %q after the change", got)
	}
	size, allocated := fileSize(t, restoredImage)
	if size != 20<<30 || allocated > 64<<20 {
		t.Errorf("restored image: %d bytes, %d allocated; want 20 GiB, sparse", size, allocated)
	}
	if _, fsBytes := superblock(t, restoredImage); fsBytes != 10<<30 {
		t.Errorf("restored filesystem is %d bytes; want the snapshot's 10 GiB until resize2fs", fsBytes)
	}

	// The snapshot outlives its disk, bytes and all.
	if err := c.DeleteDisk(src.Path()); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, c.SnapshotImage("p1", "data-1"), "messages_20170101_00000001.txt"); got != "before the snapshot\n" {
		t.Errorf("snapshot after its disk's deletion holds %q", got)
	}
}

func TestResizeGrowsTheImageNotTheFilesystem(t *testing.T) {
	c, d := newDataDisk(t)
	writeFile(t, c.DiskImage(d.Path()), "kept", "kept\n")
	if _, err := c.ResizeDisk(d.Path(), 30); err != nil {
		t.Fatal(err)
	}
	image := c.DiskImage(d.Path())
	if size, _ := fileSize(t, image); size != 30<<30 {
		t.Errorf("image is %d bytes after a resize to 30 GB", size)
	}
	if _, fsBytes := superblock(t, image); fsBytes != 10<<30 {
		t.Errorf("filesystem is %d bytes; the resize must leave it to the node's resize2fs", fsBytes)
	}
	if got := readFile(t, image, "kept"); got != "kept\n" {
		t.Errorf("after the resize the disk holds %q", got)
	}
	// A refused shrink leaves the image alone.
	if _, err := c.ResizeDisk(d.Path(), 20); err == nil {
		t.Fatal("the API shrank a disk")
	}
	if size, _ := fileSize(t, image); size != 30<<30 {
		t.Errorf("image is %d bytes after a refused shrink", size)
	}
}

func TestDeleteRemovesTheImage(t *testing.T) {
	c, d := newDataDisk(t)
	if _, err := c.CreateSnapshot(d.Path(), "data-1", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteDisk(d.Path()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(c.DiskImage(d.Path())); !os.IsNotExist(err) {
		t.Errorf("the deleted disk's image: %v", err)
	}
	if _, err := os.Stat(c.SnapshotImage("p1", "data-1")); err != nil {
		t.Errorf("the snapshot's image went with its disk: %v", err)
	}
	// A refused delete (an instance uses the disk) keeps the contents.
	used, err := c.PutDisk(Disk{Name: "used", Project: "p1", Zone: "us-central1-a", SizeGB: 10, Type: "pd-standard",
		Users: []string{APIBase + InstancePath("p1", "us-central1-a", "node-1")}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteDisk(used.Path()); err == nil {
		t.Fatal("the API deleted a disk an instance uses")
	}
	if _, err := os.Stat(c.DiskImage(used.Path())); err != nil {
		t.Errorf("a refused delete removed the contents: %v", err)
	}
}

func TestPutDiskAndPutSnapshotHaveContents(t *testing.T) {
	c, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.PutDisk(Disk{Name: "data-dump-disk", Project: "p1", Zone: "us-central1-a", SizeGB: 100, Type: "pd-standard"})
	if err != nil {
		t.Fatal(err)
	}
	image := c.DiskImage(d.Path())
	if magic, fsBytes := superblock(t, image); magic != "0xEF53" || fsBytes != 100<<30 {
		t.Errorf("put disk: magic %s, %d bytes", magic, fsBytes)
	}
	// Putting it again (a test changing its document) keeps its bytes.
	writeFile(t, image, "kept", "kept\n")
	d.Labels = map[string]string{"team": "x"}
	if _, err := c.PutDisk(d); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, image, "kept"); got != "kept\n" {
		t.Errorf("PutDisk again: the disk holds %q", got)
	}
	if _, err := c.PutSnapshot(Snapshot{Name: "old-1", Project: "p1", DiskSizeGB: 100}); err != nil {
		t.Fatal(err)
	}
	if magic, fsBytes := superblock(t, c.SnapshotImage("p1", "old-1")); magic != "0xEF53" || fsBytes != 100<<30 {
		t.Errorf("put snapshot: magic %s, %d bytes", magic, fsBytes)
	}
}

func TestWithoutMkfsACreateFailsAndSaysWhy(t *testing.T) {
	c, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", t.TempDir())
	saved := toolDirs
	toolDirs = []string{t.TempDir()}
	t.Cleanup(func() { toolDirs = saved })

	d := Disk{Name: "data", Project: "p1", Zone: "us-central1-a", SizeGB: 10, Type: "pd-standard"}
	_, err = c.InsertDisk(d)
	if err == nil || !strings.Contains(err.Error(), "mkfs.ext4 not found") || !strings.Contains(err.Error(), "e2fsprogs") {
		t.Fatalf("InsertDisk without mkfs.ext4: %v", err)
	}
	if _, err := c.GetDisk(d.Path()); !IsNotFound(err) {
		t.Errorf("a disk without contents was left behind: %v", err)
	}
	if _, err := os.Stat(c.DiskImage(d.Path()) + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("a half-made image was left behind: %v", err)
	}
}

// newDataDisk is a simulated project with one blank 10 GB pd-standard disk, projects/p1/zones/us-central1-a/disks/data.
func newDataDisk(t *testing.T) (*Compute, Disk) {
	t.Helper()
	c, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.InsertDisk(Disk{Name: "data", Project: "p1", Zone: "us-central1-a", SizeGB: 10, Type: "pd-standard"})
	if err != nil {
		t.Fatal(err)
	}
	return c, d
}
