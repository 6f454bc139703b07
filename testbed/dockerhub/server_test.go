package dockerhub

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// containerdAccept is the Accept header containerd 1.6's docker resolver sends for a manifest
// (remotes/docker/resolver.go): docker v2 and OCI, manifests and indexes, then anything.
const containerdAccept = "application/vnd.docker.distribution.manifest.v2+json, " +
	"application/vnd.docker.distribution.manifest.list.v2+json, " +
	"application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, */*"

// mirrorRequest makes one request as containerd makes it to a registry mirror: the upstream registry's
// path with ?ns=HOST (ns: the upstream registry, docker.io or registry.k8s.io), containerd's Accept
// header. It returns the answer's status, header and body.
func mirrorRequest(t *testing.T, method, addr, ns, path string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+addr+path+"?ns="+ns, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", containerdAccept)
	req.Header.Set("User-Agent", "containerd/1.6.20")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, body
}

// mirrorGet is mirrorRequest that fails the test unless the answer is 200.
func mirrorGet(t *testing.T, method, addr, ns, path string) (http.Header, []byte) {
	t.Helper()
	status, h, body := mirrorRequest(t, method, addr, ns, path)
	if status != http.StatusOK {
		t.Fatalf("%s %s?ns=%s: %d %s", method, path, ns, status, body)
	}
	return h, body
}

// A pull through a containerd registry mirror, step by step: HEAD the tag (resolve), GET the
// manifest by the digest the HEAD gave, GET the config and the layer. containerd keeps the upstream
// registry's path (library/ added for a one-part Docker Hub name) and adds ?ns=docker.io, or
// ?ns=registry.k8s.io through registry.k8s.io's mirror.
func TestContainerdMirrorRequest(t *testing.T) {
	addr, im := serve(t)
	for _, c := range []struct {
		ns, repo, tag string
		img           v1.Image
	}{
		{"docker.io", "loklak/loklak_server", "latest-development", im.Standin["v1"]},
		{"docker.io", "loklak/loklak_server", "standin-v2", im.Standin["v2"]},
		{"docker.io", "library/loklak-standin-pause", "v1", im.Pause},
		{"docker.io", "rclone/rclone", "1.71.0", im.Rclone},
		{"registry.k8s.io", "kubectl", "v1.33.13", im.Kubectl},
	} {
		mt, err := c.img.MediaType()
		if err != nil {
			t.Fatal(err)
		}
		const dockerV2 = "application/vnd.docker.distribution.manifest.v2+json"
		if mt != dockerV2 {
			t.Errorf("the images are %s; want %s, which containerd pulls", mt, dockerV2)
		}
		want := digest(t, c.img).String()

		for _, method := range []string{http.MethodHead, http.MethodGet} {
			h, _ := mirrorGet(t, method, addr, c.ns, "/v2/"+c.repo+"/manifests/"+c.tag)
			if ct := h.Get("Content-Type"); ct != dockerV2 {
				t.Errorf("%s %s:%s: Content-Type %q, want %q", method, c.repo, c.tag, ct, dockerV2)
			}
			if d := h.Get("Docker-Content-Digest"); d != want {
				t.Errorf("%s %s:%s: Docker-Content-Digest %q, want %s", method, c.repo, c.tag, d, want)
			}
		}

		h, body := mirrorGet(t, http.MethodGet, addr, c.ns, "/v2/"+c.repo+"/manifests/"+want)
		if got := fmt.Sprintf("sha256:%x", sha256.Sum256(body)); got != want {
			t.Errorf("GET %s@%s: a manifest of digest %s", c.repo, want, got)
		}
		if ct := h.Get("Content-Type"); ct != dockerV2 {
			t.Errorf("GET %s@%s: Content-Type %q", c.repo, want, ct)
		}
		m, err := v1.ParseManifest(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for _, blob := range append([]v1.Descriptor{m.Config}, m.Layers...) {
			_, b := mirrorGet(t, http.MethodGet, addr, c.ns, "/v2/"+c.repo+"/blobs/"+blob.Digest.String())
			if got := fmt.Sprintf("sha256:%x", sha256.Sum256(b)); got != blob.Digest.String() || int64(len(b)) != blob.Size {
				t.Errorf("blob %s of %s: %d bytes of digest %s, want %d", blob.Digest, c.repo, len(b), got, blob.Size)
			}
		}
	}
}

func TestCheckLoopback(t *testing.T) {
	for _, ok := range []string{"127.0.0.1:5000", "127.0.0.1:0", "127.1.2.3:5000", "[::1]:5000"} {
		if err := CheckLoopback(ok); err != nil {
			t.Errorf("CheckLoopback(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{":5000", "0.0.0.0:5000", "[::]:5000", "10.0.0.1:5000", "localhost:5000",
		"registry-1.docker.io:443", "127.0.0.1", ""} {
		err := CheckLoopback(bad)
		if err == nil || !strings.Contains(err.Error(), "loopback") {
			t.Errorf("CheckLoopback(%q) = %v, want a refusal that says loopback", bad, err)
		}
		if srv, err := Listen(bad, nil); err == nil {
			t.Errorf("Listen(%q) listened on %s", bad, srv.Addr())
		}
	}
}

// The harness takes a 200 on ReadyRef's manifest to mean the registry is ready, so Push must write
// every other manifest before it.
func TestReadyRefIsPushedLast(t *testing.T) {
	var (
		mu   sync.Mutex
		puts []string
	)
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/") {
			mu.Lock()
			puts = append(puts, r.URL.Path)
			mu.Unlock()
		}
		reg.ServeHTTP(w, r)
	}))
	defer srv.Close()
	im, err := Build(fakes, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	if err := im.Push(context.Background(), strings.TrimPrefix(srv.URL, "http://")); err != nil {
		t.Fatal(err)
	}
	if len(puts) != len(Catalog) {
		t.Fatalf("%d manifest PUTs for %d references: %q", len(puts), len(Catalog), puts)
	}
	if last := puts[len(puts)-1]; last != "/v2/loklak/loklak_server/manifests/latest-development" {
		t.Errorf("the last manifest pushed is %s, want latest-development's: %q", last, puts)
	}
}

// Each registry is its own: kubectl is registry.k8s.io's, not Docker Hub's, and a request that names no
// registry is Docker Hub's (the harness's probe, crane). A registry the server does not stand in for is
// NAME_UNKNOWN, not Docker Hub's answer.
func TestTheNsParameterChoosesTheRegistry(t *testing.T) {
	addr, _ := serve(t)
	get := func(rawURL string) (int, []byte) {
		t.Helper()
		resp, err := http.Get("http://" + addr + rawURL)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, b
	}
	for u, want := range map[string]int{
		"/v2/kubectl/manifests/v1.33.13?ns=registry.k8s.io":                http.StatusOK,
		"/v2/kubectl/manifests/v1.33.13?ns=docker.io":                      http.StatusNotFound,
		"/v2/kubectl/manifests/v1.33.13":                                   http.StatusNotFound,
		"/v2/library/kubectl/manifests/v1.33.13?ns=docker.io":              http.StatusNotFound,
		"/v2/rclone/rclone/manifests/1.71.0":                               http.StatusOK,
		"/v2/rclone/rclone/manifests/1.71.0?ns=docker.io":                  http.StatusOK,
		"/v2/rclone/rclone/manifests/1.71.0?ns=registry.k8s.io":            http.StatusNotFound,
		"/v2/loklak/loklak_server/manifests/latest-development":            http.StatusOK,
		"/v2/loklak/loklak_server/manifests/latest-development?ns=quay.io": http.StatusNotFound,
	} {
		if got, body := get(u); got != want {
			t.Errorf("GET %s: %d %s, want %d", u, got, body, want)
		}
	}
	if _, body := get("/v2/rclone/rclone/manifests/1.71.0?ns=quay.io"); !strings.Contains(string(body), `"NAME_UNKNOWN"`) ||
		!strings.Contains(string(body), "quay.io") {
		t.Errorf("a registry not stood in for: %s, want NAME_UNKNOWN naming it", body)
	}
}
