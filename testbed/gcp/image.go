package gcp

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// A disk's contents are a sparse image file beside its JSON document (N.img beside N.json), formatted ext4
// when the disk is created: what the PD CSI driver would have made of a blank disk at its first NodeStage
// (mount-utils formats an unformatted disk with `mkfs.ext4 -F -m0`). A snapshot's contents are a copy of
// its disk's image, beside the snapshot's document. The CSI plugin (testbed/csi) attaches an image to a
// loop device and mounts it, so a pod's files really land in the disk.
//
//   - InsertDisk makes the image: blank, or a copy of the snapshot's, grown to the disk's size (the
//     filesystem stays the snapshot's size until the node runs resize2fs, as on a real node).
//   - PutDisk and PutSnapshot make a blank one when there is none (what existed before the test).
//   - ResizeDisk grows the image; CreateSnapshot copies it; DeleteDisk deletes it. Nothing else removes
//     contents: a snapshot's image outlives its disk.
//
// Images are made when the disk is created, not at its first attach: mkfs.ext4 with lazy inode-table and
// journal initialization takes ~10-30 ms and ~5 MB of real blocks for 10 to 200 GiB here, so eager costs
// little, and a disk that exists always has bytes to snapshot.

// ImageExt is the suffix of an image file, beside its document's ".json".
const ImageExt = ".img"

// gib is the API's unit of disk size: Compute Engine's "GB" is 2^30 bytes.
const gib = 1 << 30

// toolDirs are searched after PATH for e2fsprogs' tools: a non-root PATH on Debian lacks the sbin
// directories where they live. A test empties it to see the error without them.
var toolDirs = []string{"/usr/sbin", "/sbin"}

// tool finds an e2fsprogs program, or says what is missing and where it comes from.
func tool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range toolDirs {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("gcestandin: %s not found in PATH or %s: install e2fsprogs (apt-get install e2fsprogs); "+
		"the simulated disks hold their bytes in ext4 images it makes", name, strings.Join(toolDirs, ", "))
}

// DiskImage is the file that holds the contents of the disk at path (its ID, zonal or regional).
func (c *Compute) DiskImage(path string) string {
	return filepath.Join(c.Dir, filepath.FromSlash(path)+ImageExt)
}

// SnapshotImage is the file that holds a snapshot's contents.
func (c *Compute) SnapshotImage(project, name string) string {
	return c.DiskImage(SnapshotPath(project, name))
}

// makeImage writes a blank ext4 image of sizeGB at file, through a temporary file so that a failure leaves
// nothing behind.
func makeImage(file string, sizeGB int) error {
	mkfs, err := tool("mkfs.ext4")
	if err != nil {
		return err
	}
	tmp := file + ".tmp"
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	if err := newSparse(tmp, sizeGB); err != nil {
		return err
	}
	// -m0 as mount-utils formats for the PD CSI driver; lazy initialization keeps the image sparse (the
	// kernel zeroes the inode tables after mount, through the loop device, which punches holes).
	out, err := exec.Command(mkfs, "-F", "-q", "-m0", "-E", "lazy_itable_init=1,lazy_journal_init=1", tmp).CombinedOutput()
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("gcestandin: mkfs.ext4 %s: %w: %s", file, err, strings.TrimSpace(string(out)))
	}
	return os.Rename(tmp, file)
}

// newSparse creates a file of sizeGB that holds no blocks.
func newSparse(file string, sizeGB int) error {
	f, err := os.OpenFile(file, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	err = f.Truncate(int64(sizeGB) * gib)
	return errors.Join(err, f.Close())
}

// copyImage copies src to dst keeping holes as holes (cp --sparse=always finds the data with
// SEEK_DATA/SEEK_HOLE and skips zero blocks), then grows dst to sizeGB if that is larger.
func copyImage(src, dst string, sizeGB int) error {
	if _, err := os.Stat(src); err != nil {
		return fmt.Errorf("gcestandin: no contents to copy: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	tmp := dst + ".tmp"
	if out, err := exec.Command("cp", "--sparse=always", "--", src, tmp).CombinedOutput(); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("gcestandin: copying %s: %w: %s", src, err, strings.TrimSpace(string(out)))
	}
	if err := growImage(tmp, sizeGB); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, dst)
}

// growImage makes file sizeGB long if it is shorter (the new part is a hole); it never shrinks one.
func growImage(file string, sizeGB int) error {
	fi, err := os.Stat(file)
	if err != nil {
		return err
	}
	if want := int64(sizeGB) * gib; fi.Size() < want {
		return os.Truncate(file, want)
	}
	return nil
}

// ensureImage gives a disk or snapshot put without an API call a blank image if it has none, and grows a
// shorter one to sizeGB.
func ensureImage(file string, sizeGB int) error {
	if _, err := os.Stat(file); errors.Is(err, os.ErrNotExist) {
		return makeImage(file, sizeGB)
	} else if err != nil {
		return err
	}
	return growImage(file, sizeGB)
}

// removeImage deletes an image; one already gone is not an error.
func removeImage(file string) error {
	if err := os.Remove(file); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
