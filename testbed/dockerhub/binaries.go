package dockerhub

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/loklak/loklak-dumps/testbed/loklak/image"
)

// The binaries' file names in the directory ReadBinaries reads (hack/toolchain.sh's bin/images).
const (
	StandinBinary = "loklak-standin" // a build of image.StandinPackage
	PauseBinary   = "pause"          // a build of image.PausePackage
	RcloneBinary  = "rclone"         // rclone v1.71.0 from its Go module (hack/toolchain.sh builds it)
	BusyboxBinary = "busybox"        // Debian's busybox-static (hack/toolchain.sh links /bin/busybox here)
	KubectlBinary = "kubectl"        // a static kubectl v1.33.13 (hack/toolchain.sh builds it)
)

// ReadBinaries reads the binaries the images are made of from dir. rclone, busybox and kubectl must be
// there (hack/toolchain.sh puts them in its bin/images, as symbolic links into its cache and to Debian's
// /bin/busybox); a missing one is an error that says so, given before anything is built. The stand-in and
// the pause binary are built there first if missing (image.BuildBinary for linux/arch, from the module
// found by image.ModuleDir, so the working directory must be inside this module), through a temporary
// file in dir renamed into place, so an interrupted build leaves no half a binary. A binary already there
// is used as it is, however old: delete it to rebuild. Each must be static (image.CheckStatic): an image
// holds nothing else, no C library.
func ReadBinaries(ctx context.Context, dir, arch string) (Binaries, error) {
	var b Binaries
	for _, file := range []string{RcloneBinary, BusyboxBinary, KubectlBinary} {
		path := filepath.Join(dir, file)
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return b, fmt.Errorf("%s is missing: run hack/toolchain.sh, which builds rclone %s and a static kubectl %s, "+
				"installs Debian's busybox-static and links the three into its bin/images (the directory -binaries names)",
				path, RcloneVersion, KubectlVersion)
		} else if err != nil {
			return b, err
		}
	}
	var moduleDir string
	read := func(file, pkg string) ([]byte, error) {
		path := filepath.Join(dir, file)
		if _, err := os.Stat(path); pkg != "" && errors.Is(err, fs.ErrNotExist) {
			if moduleDir == "" {
				if moduleDir, err = image.ModuleDir(ctx); err != nil {
					return nil, fmt.Errorf("%s is missing and cannot be built: %w", path, err)
				}
			}
			if err := build(ctx, moduleDir, pkg, arch, path); err != nil {
				return nil, err
			}
		} else if err != nil {
			return nil, err
		}
		if err := image.CheckStatic(path); err != nil {
			return nil, fmt.Errorf("%s cannot go into an image: %w", path, err)
		}
		return os.ReadFile(path)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return b, err
	}
	var err error
	for _, f := range []struct {
		file, pkg string // pkg "": not built here
		into      *[]byte
	}{
		{StandinBinary, image.StandinPackage, &b.Standin},
		{PauseBinary, image.PausePackage, &b.Pause},
		{RcloneBinary, "", &b.Rclone},
		{BusyboxBinary, "", &b.Busybox},
		{KubectlBinary, "", &b.Kubectl},
	} {
		if *f.into, err = read(f.file, f.pkg); err != nil {
			return Binaries{}, err
		}
	}
	return b, nil
}

// build builds pkg to a temporary file beside out and renames it to out.
func build(ctx context.Context, moduleDir, pkg, arch, out string) error {
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".building-")
	if err != nil {
		return err
	}
	_ = tmp.Close()
	defer func() { _ = os.Remove(tmp.Name()) }()
	if err := image.BuildBinary(ctx, moduleDir, pkg, arch, tmp.Name()); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), out)
}
