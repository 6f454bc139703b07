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

// The binaries' file names in the directory Binaries reads.
const (
	StandinBinary = "loklak-standin" // a build of image.StandinPackage
	PauseBinary   = "pause"          // a build of image.PausePackage
)

// Binaries reads the stand-in and pause binaries from dir (StandinBinary, PauseBinary). One that is
// missing is built there first (image.BuildBinary for linux/arch, from the module found by
// image.ModuleDir, so the working directory must be inside this module), through a temporary file in
// dir renamed into place, so an interrupted build leaves no half a binary. A binary already there is
// used as it is, however old: delete it to rebuild. Each must be static (image.CheckStatic).
func Binaries(ctx context.Context, dir, arch string) (standin, pause []byte, err error) {
	var moduleDir string
	read := func(file, pkg string) ([]byte, error) {
		path := filepath.Join(dir, file)
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
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
		return nil, nil, err
	}
	if standin, err = read(StandinBinary, image.StandinPackage); err != nil {
		return nil, nil, err
	}
	if pause, err = read(PauseBinary, image.PausePackage); err != nil {
		return nil, nil, err
	}
	return standin, pause, nil
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
