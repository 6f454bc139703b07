package dockerhub

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// imageFile is one entry of an image's filesystem.
type imageFile struct {
	hdr  *tar.Header
	data []byte
}

// filesystem reads every layer of img, lowest first, into one map by absolute path (directories
// without their trailing slash); a later layer's entry replaces an earlier one's, as an overlay does.
func filesystem(t *testing.T, img v1.Image) map[string]imageFile {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]imageFile{}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			hdr, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			out[path.Clean("/"+hdr.Name)] = imageFile{hdr, data}
		}
		_ = rc.Close()
	}
	return out
}

// lookPath finds name in the image as exec does in the container: the first directory of the image's
// PATH holding it, symbolic links followed (relative to their directory, or absolute in the image).
// It returns the path found and the regular file it ends at.
func lookPath(t *testing.T, files map[string]imageFile, env []string, name string) (string, imageFile) {
	t.Helper()
	var pathVar string
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			pathVar = v
		}
	}
	for _, dir := range strings.Split(pathVar, ":") {
		p := path.Join(dir, name)
		f, ok := files[p]
		for hops := 0; ok && f.hdr.Typeflag == tar.TypeSymlink && hops < 8; hops++ {
			target := f.hdr.Linkname
			if !path.IsAbs(target) {
				target = path.Join(path.Dir(p), target)
			}
			p = target
			f, ok = files[p]
		}
		if ok && f.hdr.Typeflag == tar.TypeReg && f.hdr.Mode&0o111 != 0 {
			return path.Join(dir, name), f
		}
	}
	t.Fatalf("%s is not found through PATH %q", name, pathVar)
	return "", imageFile{}
}

// rclone/rclone:1.71.0 as containerd gets it from the stand-in: the config Docker Hub's image has
// (entrypoint rclone through PATH, /data, XDG_CONFIG_HOME), rclone at /usr/local/bin/rclone, busybox at
// /bin/busybox with sh, sleep, date, echo, cat and ls linked to it, in two layers, busybox's first.
func TestRcloneImageAsPulled(t *testing.T) {
	addr, im := serve(t)
	img, err := pull(t, addr, RcloneRef)
	if err != nil {
		t.Fatalf("pulling %s: %v", RcloneRef, err)
	}
	if g, w := digest(t, img), digest(t, im.Rclone); g != w {
		t.Errorf("%s pulled as %s, built as %s", RcloneRef, g, w)
	}
	if repo, tag, err := (Entry{Ref: RcloneRef}).Path(); err != nil || repo != "rclone/rclone" || tag != "1.71.0" {
		t.Errorf("%s is served at %s:%s (%v), want rclone/rclone:1.71.0", RcloneRef, repo, tag, err)
	}

	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if cf.OS != "linux" || cf.Architecture != "amd64" {
		t.Errorf("platform %s/%s", cf.OS, cf.Architecture)
	}
	if !slices.Equal(c.Entrypoint, []string{"rclone"}) || len(c.Cmd) != 0 || c.User != "" {
		t.Errorf("entrypoint %q, cmd %q, user %q; want [rclone], none, root", c.Entrypoint, c.Cmd, c.User)
	}
	if c.WorkingDir != "/data" || !slices.Contains(c.Env, "XDG_CONFIG_HOME=/config") {
		t.Errorf("working dir %q, env %q; want /data and XDG_CONFIG_HOME=/config", c.WorkingDir, c.Env)
	}
	var pathDirs []string
	for _, e := range c.Env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			pathDirs = strings.Split(v, ":")
		}
	}
	if !slices.Contains(pathDirs, "/usr/local/bin") || !slices.Contains(pathDirs, "/bin") {
		t.Errorf("PATH %q lacks /usr/local/bin or /bin", pathDirs)
	}
	if c.Labels["org.opencontainers.image.version"] != "1.71.0" {
		t.Errorf("labels %v", c.Labels)
	}

	files := filesystem(t, img)
	for p, want := range map[string][]byte{RcloneBinaryPath: fakeRclone, BusyboxBinaryPath: fakeBusybox} {
		f, ok := files[p]
		if !ok {
			t.Errorf("no %s in the image", p)
			continue
		}
		if f.hdr.Typeflag != tar.TypeReg || f.hdr.Mode&0o777 != 0o755 || f.hdr.Uid != 0 || !bytes.Equal(f.data, want) {
			t.Errorf("%s: type %c, mode %o, uid %d, %q; want a root 0755 file holding %q", p, f.hdr.Typeflag, f.hdr.Mode,
				f.hdr.Uid, f.data, want)
		}
	}
	if p, f := lookPath(t, files, c.Env, "rclone"); p != RcloneBinaryPath || !bytes.Equal(f.data, fakeRclone) {
		t.Errorf("the entrypoint rclone is %s (%q), want %s", p, f.data, RcloneBinaryPath)
	}
	for _, applet := range []string{"sh", "sleep", "date", "echo", "cat", "ls"} {
		f, ok := files["/bin/"+applet]
		if !ok || f.hdr.Typeflag != tar.TypeSymlink || f.hdr.Linkname != "busybox" {
			t.Errorf("/bin/%s: %+v, want a symbolic link to busybox", applet, f.hdr)
			continue
		}
		if p, f := lookPath(t, files, c.Env, applet); p != "/bin/"+applet || !bytes.Equal(f.data, fakeBusybox) {
			t.Errorf("%s through PATH is %s (%q), want /bin/%s, busybox", applet, p, f.data, applet)
		}
	}
	for dir, mode := range map[string]int64{"/bin": 0o755, "/usr/local/bin": 0o755, "/data": 0o755, "/tmp": 0o1777} {
		if f, ok := files[dir]; !ok || f.hdr.Typeflag != tar.TypeDir || f.hdr.Mode != mode {
			t.Errorf("%s: %+v, want a directory of mode %o", dir, f.hdr, mode)
		}
	}

	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 2 || len(cf.History) != 2 || !strings.HasPrefix(cf.History[0].Comment, "busybox") ||
		!strings.HasPrefix(cf.History[1].Comment, "rclone v1.71.0") {
		t.Errorf("%d layers, history %+v; want busybox's layer, then rclone's", len(layers), cf.History)
	}
}

func TestRcloneImageIsReproducibleAndNeedsBothBinaries(t *testing.T) {
	d := func(rclone, busybox []byte) v1.Hash {
		img, err := RcloneImage(rclone, busybox, "amd64")
		if err != nil {
			t.Fatal(err)
		}
		return digest(t, img)
	}
	if a, b := d(fakeRclone, fakeBusybox), d(slices.Clone(fakeRclone), slices.Clone(fakeBusybox)); a != b {
		t.Errorf("the same bytes built twice: %s, %s", a, b)
	}
	if a, b := d(fakeRclone, fakeBusybox), d([]byte("another rclone"), fakeBusybox); a == b {
		t.Errorf("two rclone binaries gave one digest %s", a)
	}
	for _, c := range [][2][]byte{{nil, fakeBusybox}, {fakeRclone, nil}} {
		if _, err := RcloneImage(c[0], c[1], "amd64"); err == nil {
			t.Errorf("RcloneImage(%q, %q) gave no error", c[0], c[1])
		}
	}
}

// rclone, busybox and kubectl are not built by ReadBinaries: without any of them it fails at once,
// before building anything, and says to run hack/toolchain.sh.
func TestReadBinariesWantsRcloneBusyboxAndKubectlFromTheToolchain(t *testing.T) {
	dir := t.TempDir()
	fromToolchain := []string{RcloneBinary, BusyboxBinary, KubectlBinary}
	for i, missing := range fromToolchain {
		for _, there := range fromToolchain[:i] {
			if err := os.WriteFile(filepath.Join(dir, there), []byte("\x7fELF"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		_, err := ReadBinaries(t.Context(), dir, "amd64")
		if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, missing)+" is missing") ||
			!strings.Contains(err.Error(), "hack/toolchain.sh") {
			t.Errorf("without %s: %v; want an error naming it and hack/toolchain.sh", missing, err)
		}
		if _, err := os.Stat(filepath.Join(dir, StandinBinary)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("without %s, %s was built anyway (%v)", missing, StandinBinary, err)
		}
	}
}
