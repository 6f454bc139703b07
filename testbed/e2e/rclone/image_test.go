//go:build e2e

package rclone

import (
	"archive/tar"
	"context"
	"errors"
	"github.com/loklak/loklak-dumps/infra"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/loklak/loklak-dumps/testbed/dockerhub"
)

// pullAndUnpack serves the catalog from the toolchain's bin/images as dockerhub-standin does, pulls
// rclone/rclone:1.71.0 from it, and unpacks its layers into a directory, which it returns with the
// image's environment.
func pullAndUnpack(t *testing.T) (string, []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	binaries, err := dockerhub.ReadBinaries(ctx, tools.Images(), runtime.GOARCH)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := dockerhub.Listen("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	t.Cleanup(func() {
		_ = srv.Close()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	if _, err := dockerhub.Publish(ctx, srv.Addr(), binaries, runtime.GOARCH); err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(srv.Addr()+"/rclone/rclone:1.71.0", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(ref, remote.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
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
			p := filepath.Join(root, path.Clean("/"+hdr.Name))
			switch hdr.Typeflag {
			case tar.TypeDir:
				err = os.MkdirAll(p, 0o755)
			case tar.TypeReg:
				var f *os.File
				if f, err = os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(hdr.Mode).Perm()); err == nil {
					_, err = io.Copy(f, tr)
					err = errors.Join(err, f.Close())
				}
			case tar.TypeSymlink:
				if path.IsAbs(hdr.Linkname) {
					t.Fatalf("%s links to %s: outside a container that is this machine's file", hdr.Name, hdr.Linkname)
				}
				err = os.Symlink(hdr.Linkname, p)
			default:
				t.Fatalf("%s: tar type %c", hdr.Name, hdr.Typeflag)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		_ = rc.Close()
	}
	return root, cf.Config.Env
}

// The image's own files run the archiver's loop in miniature: its /bin/sh (busybox) runs a script like
// infra/archiver.go's, which finds rclone, date and sleep through the image's PATH (rewritten to the
// unpacked directories, since there is no container here) and the applets the image does not link through
// its busybox (the round's fallback), copies the closed days to the emulator in the first round (each
// checked with gzip -t first) and finds nothing new to copy in the second.
func TestTheImageRunsTheArchiverLoop(t *testing.T) {
	root, imageEnv := pullAndUnpack(t)
	var dirs []string
	for _, e := range imageEnv {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			for _, d := range strings.Split(v, ":") {
				dirs = append(dirs, filepath.Join(root, d))
			}
		}
	}
	if len(dirs) == 0 {
		t.Fatalf("the image's environment %q has no PATH", imageEnv)
	}
	e := startEmulator(t)
	src, closed := dumps(t)
	env := append(remoteEnv(e.endpoint(), t.TempDir()),
		"PATH="+strings.Join(dirs, ":"),
		"ARCHIVE_SOURCE="+src,
		"ARCHIVE_DESTINATION=archive:"+bucket+"/"+prefix,
		"ARCHIVE_MIN_AGE_MINUTES=1",
		"ARCHIVE_INTERVAL=1",
		"TMPDIR="+t.TempDir(),
	)
	// The sidecar's loop, stopped after two rounds; each round is the product's own command.
	script := `set -u
echo "rclone is $(command -v rclone); $(rclone version | while read -r line; do echo "$line"; break; done)"
n=0
while :; do
  echo "archive round $n at $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  if ( ` + infra.ArchiverRound(infra.ArchiveConfig{}) + ` ); then
    echo "archive round done"
  else
    echo "archive round FAILED with exit status $?"
  fi
  n=$((n + 1))
  if [ "$n" -ge 2 ]; then break; fi
  sleep "$ARCHIVE_INTERVAL"
done
`
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(root, "bin", "sh"), "-c", script)
	cmd.Env = env
	cmd.Dir = root
	began := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(began)
	t.Logf("the image's /bin/sh -c SCRIPT (%s):\n%s", took.Round(time.Millisecond), out)
	if err != nil {
		t.Fatalf("the script: %v", err)
	}
	s := string(out)
	if want := "rclone is " + filepath.Join(root, "usr/local/bin/rclone") + "; rclone " + dockerhub.RcloneVersion; !strings.Contains(s, want) {
		t.Errorf("the script did not say %q", want)
	}
	if strings.Count(s, "archive round done") != 2 || strings.Contains(s, "FAILED") {
		t.Errorf("want two rounds done, none failed")
	}
	if strings.Count(s, "Copied (new)") != len(closed) || !strings.Contains(s, "archive: nothing new to copy") {
		t.Errorf("want the first round to copy the %d closed days and the second to find nothing to do", len(closed))
	}
	if took < time.Second {
		t.Errorf("two rounds with a 1 s sleep between them took %s: sleep did not sleep", took)
	}
	wantArchived(t, e, closed)
}
