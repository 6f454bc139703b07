package image

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/loklak/loklak-dumps/testbed/loklak"
)

// readBack opens the archive at file as go-containerregistry reads it, checks that its only tag is ref,
// and returns the image.
func readBack(t *testing.T, file, ref string) v1.Image {
	t.Helper()
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(file) })
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 1 || !slices.Equal(m[0].RepoTags, []string{ref}) {
		t.Fatalf("%s: manifest.json %+v, want one image tagged %s", file, m, ref)
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(file, &tag)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

type tarFile struct {
	hdr  *tar.Header
	data []byte
}

// files reads the image's only layer.
func files(t *testing.T, img v1.Image) map[string]tarFile {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 {
		t.Fatalf("%d layers, want 1", len(layers))
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rc.Close() }()
	out := map[string]tarFile{}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[hdr.Name] = tarFile{hdr, data}
	}
}

func configOf(t *testing.T, img v1.Image) *v1.ConfigFile {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	return cf
}

func TestStandinImageHasTheEntrypointEnvAndBinary(t *testing.T) {
	bin := []byte("\x7fELF not really, but the bytes must survive")
	img, err := StandinImage(bin, "v1", "amd64")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), ArchiveName(StandinRef("v1")))
	if err := WriteArchive(file, StandinRef("v1"), img); err != nil {
		t.Fatal(err)
	}
	if filepath.Base(file) != "loklak-standin_v1.tar" {
		t.Errorf("archive name %s", filepath.Base(file))
	}
	back := readBack(t, file, "loklak-standin:v1")

	cf := configOf(t, back)
	if cf.OS != "linux" || cf.Architecture != "amd64" {
		t.Errorf("platform %s/%s", cf.OS, cf.Architecture)
	}
	c := cf.Config
	if !slices.Equal(c.Entrypoint, []string{"/loklak_server/bin/loklak-standin"}) || len(c.Cmd) != 0 {
		t.Errorf("entrypoint %q cmd %q", c.Entrypoint, c.Cmd)
	}
	if c.WorkingDir != "/loklak_server" || c.User != "" {
		t.Errorf("working dir %q, user %q; want /loklak_server and root, as loklak_server's image", c.WorkingDir, c.User)
	}
	for _, e := range []string{"LOKLAK_STANDIN_VERSION=v1", "LOKLAK_STANDIN_IMAGE=loklak-standin:v1",
		"LOKLAK_STANDIN_DATA=/loklak_server/data", "LOKLAK_STANDIN_START_DELAY=5s", "LOKLAK_STANDIN_DUMP_INTERVAL=2s"} {
		if !slices.Contains(c.Env, e) {
			t.Errorf("env %q lacks %s", c.Env, e)
		}
	}
	if _, ok := c.Volumes["/loklak_server/data"]; !ok {
		t.Errorf("volumes %v", c.Volumes)
	}
	if _, ok := c.ExposedPorts["9000/tcp"]; !ok {
		t.Errorf("exposed ports %v", c.ExposedPorts)
	}
	if c.Labels["org.opencontainers.image.version"] != "v1" {
		t.Errorf("labels %v", c.Labels)
	}

	fs := files(t, back)
	b, ok := fs["loklak_server/bin/loklak-standin"]
	if !ok {
		t.Fatalf("no loklak_server/bin/loklak-standin in the layer: %v", keys(fs))
	}
	if !bytes.Equal(b.data, bin) || b.hdr.Mode&0o777 != 0o755 || b.hdr.Typeflag != tar.TypeReg || b.hdr.Uid != 0 {
		t.Errorf("the binary: mode %o, type %c, uid %d, %d bytes", b.hdr.Mode, b.hdr.Typeflag, b.hdr.Uid, len(b.data))
	}
	for _, d := range []string{"loklak_server/", "loklak_server/bin/", "loklak_server/data/"} {
		if f, ok := fs[d]; !ok || f.hdr.Typeflag != tar.TypeDir {
			t.Errorf("no directory %s in the layer: %v", d, keys(fs))
		}
	}
}

func keys(m map[string]tarFile) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestTwoVersionsAreTwoImagesAndEachIsReproducible(t *testing.T) {
	bin := []byte("same binary")
	id := func(v string) (v1.Hash, v1.Hash) {
		img, err := StandinImage(bin, v, "amd64")
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := img.ConfigName()
		if err != nil {
			t.Fatal(err)
		}
		layers, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		l, err := layers[0].Digest()
		if err != nil {
			t.Fatal(err)
		}
		return cfg, l
	}
	c1, l1 := id("v1")
	c1again, _ := id("v1")
	c2, l2 := id("v2")
	if c1 != c1again {
		t.Errorf("v1 built twice has two image IDs: %s, %s", c1, c1again)
	}
	if c1 == c2 {
		t.Errorf("v1 and v2 have the same image ID %s", c1)
	}
	if l1 != l2 {
		t.Errorf("the same binary made two layers: %s, %s", l1, l2)
	}
	if _, err := StandinImage(bin, "v 1", "amd64"); err == nil {
		t.Error("a version with a space was accepted")
	}
}

func TestPauseImage(t *testing.T) {
	bin := []byte("pause bytes")
	img, err := PauseImage(bin, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), ArchiveName(PauseRef))
	if err := WriteArchive(file, PauseRef, img); err != nil {
		t.Fatal(err)
	}
	back := readBack(t, file, PauseRef)
	cf := configOf(t, back)
	if !slices.Equal(cf.Config.Entrypoint, []string{"/pause"}) || cf.Config.User != "65535:65535" || cf.OS != "linux" {
		t.Errorf("config %+v", cf.Config)
	}
	fs := files(t, back)
	if f, ok := fs["pause"]; !ok || !bytes.Equal(f.data, bin) || f.hdr.Mode&0o777 != 0o755 {
		t.Errorf("layer %v", keys(fs))
	}
	if len(fs) != 1 {
		t.Errorf("the pause layer holds %v, want only /pause", keys(fs))
	}
}

// BuildAll for real: two go builds (cached after the first run), three archives. The binaries are taken
// back out of the archives and run: the pause binary stops on SIGTERM, and the stand-in, with the
// image's own environment, answers its status with the image's version and stops on SIGTERM.
func TestBuildAllWritesArchivesOfStaticBinariesThatRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two binaries")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out := t.TempDir()
	archives, err := BuildAll(ctx, Options{OutDir: out})
	if err != nil {
		t.Fatal(err)
	}
	var refs []string
	for _, a := range archives {
		refs = append(refs, a.Ref)
		if filepath.Dir(a.Path) != out {
			t.Errorf("%s written outside %s", a.Path, out)
		}
	}
	if !slices.Equal(refs, []string{"loklak-standin:v1", "loklak-standin:v2", "loklak-standin-pause:v1"}) {
		t.Fatalf("archives %v", refs)
	}
	if archives[0].ImageID == archives[1].ImageID {
		t.Errorf("v1 and v2 share the image ID %s", archives[0].ImageID)
	}

	extract := func(a Archive, path string) (string, *v1.ConfigFile) {
		img := readBack(t, a.Path, a.Ref)
		if id, err := img.ConfigName(); err != nil || id != a.ImageID {
			t.Errorf("%s: image ID %s (%v), BuildAll said %s", a.Ref, id, err, a.ImageID)
		}
		f, ok := files(t, img)[strings.TrimPrefix(path, "/")]
		if !ok {
			t.Fatalf("%s has no %s", a.Ref, path)
		}
		bin := filepath.Join(t.TempDir(), filepath.Base(path))
		if err := os.WriteFile(bin, f.data, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := CheckStatic(bin); err != nil {
			t.Error(err)
		}
		return bin, configOf(t, img)
	}

	pause, _ := extract(archives[2], PauseBinaryPath)
	p := exec.Command(pause)
	pauseErr, err := p.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	// not PID 1 here, pause says so once its signal handler is in place
	if line, err := bufio.NewReader(pauseErr).ReadString('\n'); err != nil || !strings.Contains(line, "not running as PID 1") {
		t.Fatalf("pause said %q (%v)", line, err)
	}
	if err := p.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = io.Copy(io.Discard, pauseErr) }()
	if err := waitExit(p, 10*time.Second); err != nil {
		t.Errorf("pause after SIGTERM: %v, want status 0", err)
	}

	standin, cf := extract(archives[1], StandinBinaryPath)
	runStandin(t, standin, cf, "v2")
}

func waitExit(cmd *exec.Cmd, limit time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		_ = cmd.Process.Kill()
		return errors.New("did not exit in time")
	}
}

// runStandin runs the extracted binary with the image's environment (data directory and port moved for
// the test), reads its status, and stops it with SIGTERM.
func runStandin(t *testing.T, bin string, cf *v1.ConfigFile, version string) {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Dir = t.TempDir()
	cmd.Env = append(slices.Clone(cf.Config.Env), "PORT=0", loklak.EnvDataDir+"="+t.TempDir(), loklak.EnvStartDelay+"=0s")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	sc := bufio.NewScanner(stderr)
	var log []string
	waitFor := func(re *regexp.Regexp) []string {
		for sc.Scan() {
			log = append(log, sc.Text())
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				return m
			}
		}
		t.Fatalf("the stand-in ended before %s:\n%s", re, strings.Join(log, "\n"))
		return nil
	}
	_, port, err := net.SplitHostPort(waitFor(regexp.MustCompile(`listening on (\S+) `))[1])
	if err != nil {
		t.Fatal(err)
	}
	waitFor(regexp.MustCompile(` ready$`))
	resp, err := http.Get("http://127.0.0.1:" + port + "/api/status.json")
	if err != nil {
		t.Fatal(err)
	}
	var st loklak.Status
	err = json.NewDecoder(resp.Body).Decode(&st)
	_ = resp.Body.Close()
	if err != nil || st.Standin.Version != version || st.Standin.Image != StandinRef(version) {
		t.Errorf("status %+v (%v), want version %s", st.Standin, err, version)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(regexp.MustCompile(` terminated$`))
	go func() {
		for sc.Scan() {
		}
	}()
	if err := waitExit(cmd, 10*time.Second); err != nil {
		t.Errorf("the stand-in after SIGTERM: %v", err)
	}
}
