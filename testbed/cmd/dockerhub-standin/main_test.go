package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loklak/loklak-dumps/testbed/dockerhub"
	"github.com/loklak/loklak-dumps/testbed/loklak/image"
)

// syncBuffer is a bytes.Buffer the command and the test can share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRefusesANonLoopbackListen(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:5000", ":5000", "10.0.0.1:5000", "[::]:5000", "localhost:5000", "example.com:5000"} {
		bin := filepath.Join(t.TempDir(), "bin")
		var stderr syncBuffer
		code := run(context.Background(), []string{"-listen", addr, "-binaries", bin}, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), "not a loopback address") {
			t.Errorf("-listen %s: exit %d, said %q; want 2 and a refusal that names loopback", addr, code, stderr.String())
		}
		if _, err := os.Stat(bin); !os.IsNotExist(err) {
			t.Errorf("-listen %s: refused, yet %s was made (%v)", addr, bin, err)
		}
	}
}

func TestRequiresItsFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-binaries", t.TempDir()},
		{"-listen", "127.0.0.1:0"},
		{"-listen", "127.0.0.1:0", "-binaries", t.TempDir(), "extra"},
		{"-no-such-flag"},
	} {
		var stderr syncBuffer
		if code := run(context.Background(), args, &stderr); code != 2 {
			t.Errorf("%q: exit %d, want 2; said %q", args, code, stderr.String())
		}
	}
}

var servingLine = regexp.MustCompile(`serving (\d+) references on (127\.0\.0\.1:\d+)\n`)

// start runs the command on 127.0.0.1:0 with binaries in dir, waits for its serving line, and returns
// the address, the time the line took, and a stop that cancels it and returns its exit status.
func start(t *testing.T, dir string) (string, time.Duration, func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stderr syncBuffer
	exit := make(chan int, 1)
	began := time.Now()
	go func() { exit <- run(ctx, []string{"-listen", "127.0.0.1:0", "-binaries", dir}, &stderr) }()
	deadline := time.After(5 * time.Minute) // the first run builds two binaries
	for {
		if m := servingLine.FindStringSubmatch(stderr.String()); m != nil {
			if m[1] != "8" || len(dockerhub.Catalog) != 8 {
				t.Errorf("serving %s references; the catalog has %d", m[1], len(dockerhub.Catalog))
			}
			return m[2], time.Since(began), func() int {
				cancel()
				select {
				case code := <-exit:
					return code
				case <-time.After(10 * time.Second):
					t.Fatalf("still running 10 s after the cancel:\n%s", stderr.String())
					return -1
				}
			}
		}
		select {
		case code := <-exit:
			cancel()
			t.Fatalf("exited %d before serving:\n%s", code, stderr.String())
		case <-deadline:
			cancel()
			t.Fatalf("not serving after 5 minutes:\n%s", stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// seedToolchainBinaries puts into dir what hack/toolchain.sh links into its bin/images and the command
// does not build: rclone, busybox and kubectl. The registry serves any bytes, so a static build of the
// pause program stands in for the three here (ReadBinaries checks only that each is a static executable).
func seedToolchainBinaries(t *testing.T, dir string) {
	t.Helper()
	moduleDir, err := image.ModuleDir(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	static := filepath.Join(t.TempDir(), "static")
	if err := image.BuildBinary(t.Context(), moduleDir, image.PausePackage, runtime.GOARCH, static); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(static)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{dockerhub.RcloneBinary, dockerhub.BusyboxBinary, dockerhub.KubectlBinary} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// The whole command, twice: the first run builds the stand-in and pause binaries into a -binaries
// directory holding only rclone, busybox and kubectl, the second finds them all (that start-up is what the
// harness waits for). Each serves the harness's probe and every catalog reference, each from its host's
// registry as containerd asks a mirror (ns=), refuses and allows a repository on request, and exits 0 when
// its context (SIGTERM in main) ends.
func TestServesTheCatalogAndStops(t *testing.T) {
	if testing.Short() {
		t.Skip("builds three binaries")
	}
	dir := filepath.Join(t.TempDir(), "bin")
	seedToolchainBinaries(t, dir)
	for _, round := range []string{"building the binaries", "with the binaries built"} {
		addr, took, stop := start(t, dir)
		t.Logf("%s: serving after %s", round, took.Round(time.Millisecond))
		for _, e := range dockerhub.Catalog {
			repo, tag, err := e.Path()
			if err != nil {
				t.Fatal(err)
			}
			host, err := e.Host()
			if err != nil {
				t.Fatal(err)
			}
			if got := status(t, "http://"+addr+"/v2/"+repo+"/manifests/"+tag+"?ns="+host); got != http.StatusOK {
				t.Errorf("%s: GET %s:%s?ns=%s: %d", round, repo, tag, host, got)
			}
		}
		if got := status(t, "http://"+addr+"/v2/loklak/loklak_server/manifests/latest-development"); got != http.StatusOK {
			t.Errorf("%s: the harness's probe (no ns): %d", round, got)
		}
		rclone := "http://" + addr + "/v2/rclone/rclone/manifests/1.71.0?ns=docker.io"
		if err := dockerhub.Refuse(t.Context(), addr, "rclone/rclone"); err != nil {
			t.Fatal(err)
		}
		if got := status(t, rclone); got != http.StatusTooManyRequests {
			t.Errorf("%s: rclone/rclone refused: %d, want 429", round, got)
		}
		if err := dockerhub.Allow(t.Context(), addr, "rclone/rclone"); err != nil {
			t.Fatal(err)
		}
		if got := status(t, rclone); got != http.StatusOK {
			t.Errorf("%s: rclone/rclone allowed again: %d, want 200", round, got)
		}
		if code := stop(); code != 0 {
			t.Errorf("%s: exit %d after the cancel, want 0", round, code)
		}
		if resp, err := http.Get("http://" + addr + "/v2/"); err == nil {
			_ = resp.Body.Close()
			t.Errorf("%s: still answering on %s after it exited", round, addr)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	want := []string{dockerhub.BusyboxBinary, dockerhub.KubectlBinary, dockerhub.StandinBinary, dockerhub.PauseBinary, dockerhub.RcloneBinary}
	if !slices.Equal(names, want) {
		t.Errorf("-binaries holds %q, want only %q", names, want)
	}
}

// status is the status of a GET of url.
func status(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

// Without rclone in -binaries the command does not start: it exits 1 and says to run hack/toolchain.sh.
func TestWithoutRcloneExitsSayingToRunTheToolchain(t *testing.T) {
	dir := t.TempDir()
	var stderr syncBuffer
	code := run(context.Background(), []string{"-listen", "127.0.0.1:0", "-binaries", dir}, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), filepath.Join(dir, dockerhub.RcloneBinary)+" is missing") ||
		!strings.Contains(stderr.String(), "hack/toolchain.sh") {
		t.Errorf("exit %d, said %q; want 1 and a message naming rclone and hack/toolchain.sh", code, stderr.String())
	}
}
