package csi

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// The node's "attached device": a loop device on the disk's image (util-linux losetup). The kernel keeps
// the association, so the plugin asks losetup which devices back an image rather than remembering.

func losetup(args ...string) (string, error) {
	out, err := exec.Command("losetup", args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("losetup %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return strings.TrimSpace(string(out)), nil
}

// loopsOf lists the loop devices backed by image (none if it has none or is missing).
func loopsOf(image string) ([]string, error) {
	if _, err := os.Stat(image); os.IsNotExist(err) {
		return nil, nil
	}
	out, err := losetup("--noheadings", "--output", "NAME", "--associated", image)
	if err != nil || out == "" {
		return nil, err
	}
	return strings.Fields(out), nil
}

// attachLoop returns a loop device on image, setting one up (read-only if asked) if none exists yet.
func attachLoop(image string, readOnly bool) (dev string, created bool, err error) {
	devs, err := loopsOf(image)
	if err != nil {
		return "", false, err
	}
	if len(devs) > 0 {
		return devs[0], false, nil
	}
	args := []string{"--find", "--show"}
	if readOnly {
		args = append(args, "--read-only")
	}
	dev, err = losetup(append(args, image)...)
	return dev, err == nil, err
}

// detachLoop releases a loop device.
func detachLoop(dev string) error {
	_, err := losetup("--detach", dev)
	return err
}

// refreshLoop makes a loop device see its image's current size (after a resize).
func refreshLoop(dev string) error {
	_, err := losetup("--set-capacity", dev)
	return err
}

// backs reports whether dev is one of image's loop devices.
func backs(dev, image string) (bool, error) {
	devs, err := loopsOf(image)
	return slices.Contains(devs, dev), err
}

// deviceSize is a block device's size in bytes.
func deviceSize(dev string) (int64, error) {
	f, err := os.Open(dev)
	if err != nil {
		return 0, err
	}
	size, err := f.Seek(0, io.SeekEnd)
	return size, errors.Join(err, f.Close())
}

// absImage is a disk's image path as losetup records it: absolute and without symbolic links.
func absImage(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	return path
}
