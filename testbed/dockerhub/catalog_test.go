package dockerhub

import (
	"bufio"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/loklak/loklak-dumps/testbed/loklak/image"
)

func TestEachCatalogReferencePullsBackAsBuilt(t *testing.T) {
	addr, im := serve(t)
	for _, e := range Catalog {
		t.Run(e.Ref, func(t *testing.T) {
			built, err := im.Image(e)
			if err != nil {
				t.Fatal(err)
			}
			got, err := pull(t, addr, e.Ref)
			if err != nil {
				t.Fatalf("pulling %s: %v", e.Ref, err)
			}
			if g, w := digest(t, got), digest(t, built); g != w {
				t.Errorf("%s pulled as %s, built as %s", e.Ref, g, w)
			}
			cf, err := got.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			c := cf.Config
			if cf.OS != "linux" || cf.Architecture != "amd64" {
				t.Errorf("platform %s/%s", cf.OS, cf.Architecture)
			}
			if e.Pause {
				if !slices.Equal(c.Entrypoint, []string{image.PauseBinaryPath}) || c.User != image.PauseUser {
					t.Errorf("pause config: entrypoint %q, user %q", c.Entrypoint, c.User)
				}
				return
			}
			if e.Kubectl {
				if !slices.Equal(c.Entrypoint, []string{KubectlBinaryPath}) || len(c.Cmd) != 0 || c.User != KubectlUser ||
					c.WorkingDir != "/" {
					t.Errorf("kubectl config: entrypoint %q, cmd %q, user %q, working dir %q", c.Entrypoint, c.Cmd, c.User, c.WorkingDir)
				}
				return
			}
			if e.Rclone {
				if !slices.Equal(c.Entrypoint, []string{"rclone"}) || c.User != "" {
					t.Errorf("rclone config: entrypoint %q, user %q", c.Entrypoint, c.User)
				}
				return
			}
			if !slices.Equal(c.Entrypoint, []string{image.StandinBinaryPath}) {
				t.Errorf("entrypoint %q, want %s", c.Entrypoint, image.StandinBinaryPath)
			}
			for _, env := range []string{"LOKLAK_STANDIN_VERSION=" + e.Version, "LOKLAK_STANDIN_IMAGE=loklak-standin:" + e.Version} {
				if !slices.Contains(c.Env, env) {
					t.Errorf("env %q lacks %s", c.Env, env)
				}
			}
			if c.Labels["org.opencontainers.image.version"] != e.Version {
				t.Errorf("labels %v, want version %s", c.Labels, e.Version)
			}
		})
	}
}

func TestLatestDevelopmentIsV1AndV2Differs(t *testing.T) {
	addr, _ := serve(t)
	pulled := func(ref string) string {
		img, err := pull(t, addr, ref)
		if err != nil {
			t.Fatalf("pulling %s: %v", ref, err)
		}
		return digest(t, img).String()
	}
	dev, v1, v2 := pulled("loklak/loklak_server:latest-development"), pulled("loklak/loklak_server:standin-v1"),
		pulled("loklak/loklak_server:standin-v2")
	if dev != v1 {
		t.Errorf("latest-development is %s, standin-v1 %s: want the same manifest", dev, v1)
	}
	if v2 == v1 {
		t.Errorf("standin-v2 and standin-v1 are both %s: an update would pull nothing new", v1)
	}
	if archive := pulled("loklak-standin:v1"); archive != v1 {
		t.Errorf("loklak-standin:v1 is %s, standin-v1 %s", archive, v1)
	}
}

func TestDigestRefResolves(t *testing.T) {
	addr, im := serve(t)
	for _, v := range []string{"v1", "v2"} {
		ref, err := im.DigestRef(v)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(ref, "loklak/loklak_server@sha256:") || len(ref) != len("loklak/loklak_server@sha256:")+64 {
			t.Errorf("DigestRef(%s) = %q", v, ref)
		}
		img, err := pull(t, addr, ref)
		if err != nil {
			t.Fatalf("pulling %s: %v", ref, err)
		}
		if got := "loklak/loklak_server@" + digest(t, img).String(); got != ref {
			t.Errorf("%s pulled as %s", ref, got)
		}
	}
	if _, err := im.DigestRef("v3"); err == nil {
		t.Error("DigestRef of a version never built gave no error")
	}
}

// Rebuilding from the same bytes gives the same digests, so a harness can compute DigestRef without
// asking the server; other bytes give another.
func TestBuildIsReproducible(t *testing.T) {
	ref := func(standin []byte) string {
		b := fakes
		b.Standin = standin
		im, err := Build(b, "amd64")
		if err != nil {
			t.Fatal(err)
		}
		r, err := im.DigestRef("v1")
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if a, b := ref(fakeStandin), ref(slices.Clone(fakeStandin)); a != b {
		t.Errorf("the same bytes built twice: %s, %s", a, b)
	}
	if a, b := ref(fakeStandin), ref([]byte("other bytes")); a == b {
		t.Errorf("two binaries gave one digest %s", a)
	}
}

func TestUnknownTagIsManifestUnknown(t *testing.T) {
	addr, _ := serve(t)
	_, err := pull(t, addr, "loklak/loklak_server:no-such-tag")
	var terr *transport.Error
	if !errors.As(err, &terr) {
		t.Fatalf("pulling an unknown tag: %v, want a registry error", err)
	}
	if terr.StatusCode != http.StatusNotFound || len(terr.Errors) == 0 || terr.Errors[0].Code != transport.ManifestUnknownErrorCode {
		t.Errorf("pulling an unknown tag: status %d, errors %+v; want 404 MANIFEST_UNKNOWN", terr.StatusCode, terr.Errors)
	}
}

func TestSandboxImageIsTheCatalogPauseImage(t *testing.T) {
	if SandboxImage != "docker.io/library/loklak-standin-pause:v1" {
		t.Errorf("SandboxImage = %q", SandboxImage)
	}
	for _, e := range Catalog {
		if e.Pause {
			if "docker.io/library/"+e.Ref != SandboxImage {
				t.Errorf("the catalog serves the pause image as %s, containerd will ask for %s", e.Ref, SandboxImage)
			}
			return
		}
	}
	t.Error("the catalog has no pause image")
}

// Every committed stack's image must be served, as stand-in v1, or the stacks cannot run on the node.
func TestCatalogServesTheCommittedStacksImages(t *testing.T) {
	byRef := map[string]Entry{}
	for _, e := range Catalog {
		byRef[e.Ref] = e
	}
	for _, stack := range []string{"dev", "prod", "local"} {
		file := filepath.Join("..", "..", "Pulumi."+stack+".yaml")
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		var img string
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "loklak-dumps:image:"); ok {
				img = strings.TrimSpace(v)
			}
		}
		_ = f.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
		if e, ok := byRef[img]; !ok || e.Version != "v1" {
			t.Errorf("%s names image %q; the catalog serves it as %+v (ok %v), want stand-in v1", file, img, e, ok)
		}
	}
}
