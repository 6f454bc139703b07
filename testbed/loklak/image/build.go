package image

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"go/build"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// The packages built into the images.
const (
	Module         = "github.com/loklak/loklak-dumps"
	StandinPackage = Module + "/testbed/cmd/loklak-standin"
	PausePackage   = Module + "/testbed/cmd/loklak-standin/pause"
)

// goTool is the go command: the one on PATH (go test puts GOROOT/bin first), else GOROOT's.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(build.Default.GOROOT, "bin", "go")
}

// ModuleDir finds the directory of this module (github.com/loklak/loklak-dumps) from the working
// directory, which must be inside it.
func ModuleDir(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, goTool(), "list", "-m", "-f", "{{.Path}} {{.Dir}}").Output()
	if err != nil {
		return "", fmt.Errorf("go list -m (run this inside the %s module): %w", Module, err)
	}
	p, dir, ok := strings.Cut(strings.TrimSpace(string(out)), " ")
	if !ok || p != Module {
		return "", fmt.Errorf("the working directory is in module %q, not %s", p, Module)
	}
	return dir, nil
}

// BuildBinary builds pkg as a static linux/arch executable at out: CGO_ENABLED=0, -trimpath, stripped,
// no build ID, so the same source makes the same bytes. moduleDir is where go build runs. It checks the
// result is static (no ELF interpreter, no shared libraries), since the images hold nothing else.
func BuildBinary(ctx context.Context, moduleDir, pkg, arch, out string) error {
	cmd := exec.CommandContext(ctx, goTool(), "build", "-trimpath", "-ldflags=-s -w -buildid=", "-o", out, pkg)
	cmd.Dir = moduleDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, stderr.Bytes())
	}
	return CheckStatic(out)
}

// CheckStatic returns an error unless file is an ELF executable with no interpreter and no needed
// shared libraries.
func CheckStatic(file string) error {
	f, err := elf.Open(file)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked (it has an ELF interpreter)", file)
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil && !errors.Is(err, elf.ErrNoSymbols) {
		return err
	}
	if len(libs) > 0 {
		return fmt.Errorf("%s needs shared libraries %v", file, libs)
	}
	return nil
}

// Options says what BuildAll builds and where.
type Options struct {
	OutDir    string   // where the archives go (created if missing)
	ModuleDir string   // the module's source; empty means ModuleDir from the working directory
	Arch      string   // GOARCH of the images; empty means this machine's
	Versions  []string // stand-in versions; nil means Versions
	PauseRef  string   // the pause image's reference; empty means PauseRef
}

// Archive is one image archive BuildAll wrote.
type Archive struct {
	Path    string  // the tarball
	Ref     string  // the tag in it, e.g. loklak-standin:v1
	ImageID v1.Hash // the config digest: what `ctr images ls` and the kubelet call the image ID
	Digest  v1.Hash // the manifest digest
}

// ArchiveName is the file name BuildAll gives the archive of ref ("loklak-standin:v1" gives
// "loklak-standin_v1.tar").
func ArchiveName(ref string) string {
	return strings.NewReplacer(":", "_", "/", "_", "@", "_").Replace(ref) + ".tar"
}

// BuildAll builds the stand-in and pause binaries and writes one docker-archive per image into
// opts.OutDir: loklak-standin:VERSION for each version, then the pause image. Import each with
// `ctr -n k8s.io images import FILE`.
func BuildAll(ctx context.Context, opts Options) ([]Archive, error) {
	if opts.OutDir == "" {
		return nil, errors.New("image: no output directory")
	}
	if opts.Arch == "" {
		opts.Arch = runtime.GOARCH
	}
	if opts.Versions == nil {
		opts.Versions = Versions
	}
	if opts.PauseRef == "" {
		opts.PauseRef = PauseRef
	}
	if opts.ModuleDir == "" {
		dir, err := ModuleDir(ctx)
		if err != nil {
			return nil, err
		}
		opts.ModuleDir = dir
	}
	if err := os.MkdirAll(opts.OutDir, 0o755); err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp("", "loklak-standin-build-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(work) }()

	binaries := map[string][]byte{}
	for _, pkg := range []string{StandinPackage, PausePackage} {
		out := filepath.Join(work, filepath.Base(pkg))
		if err := BuildBinary(ctx, opts.ModuleDir, pkg, opts.Arch, out); err != nil {
			return nil, err
		}
		b, err := os.ReadFile(out)
		if err != nil {
			return nil, err
		}
		binaries[pkg] = b
	}

	var archives []Archive
	write := func(ref string, img v1.Image) error {
		a := Archive{Path: filepath.Join(opts.OutDir, ArchiveName(ref)), Ref: ref}
		if err := WriteArchive(a.Path, ref, img); err != nil {
			return fmt.Errorf("writing %s: %w", ref, err)
		}
		var err error
		if a.ImageID, err = img.ConfigName(); err != nil {
			return err
		}
		if a.Digest, err = img.Digest(); err != nil {
			return err
		}
		archives = append(archives, a)
		return nil
	}
	for _, v := range opts.Versions {
		img, err := StandinImage(binaries[StandinPackage], v, opts.Arch)
		if err != nil {
			return nil, err
		}
		if err := write(StandinRef(v), img); err != nil {
			return nil, err
		}
	}
	img, err := PauseImage(binaries[PausePackage], opts.Arch)
	if err != nil {
		return nil, err
	}
	if err := write(opts.PauseRef, img); err != nil {
		return nil, err
	}
	return archives, nil
}
