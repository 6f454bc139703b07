package dockerhub

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// The body is Docker Hub's own, byte for byte (docs.docker.com/docker-hub/usage/, "Pull rate limit").
func TestRateLimitBodyIsDockerHubs(t *testing.T) {
	const want = `{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your unauthenticated pull rate limit. https://www.docker.com/increase-rate-limit"}]}`
	if string(RateLimitBody) != want {
		t.Errorf("RateLimitBody = %s\nwant            %s", RateLimitBody, want)
	}
}

// blobRequests are the manifest and blob requests of a pull of one image, as containerd makes them
// through a mirror: the tag and the digest's manifest, the config and each layer, GET and HEAD.
func blobRequests(t *testing.T, repo string, img v1.Image) []string {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, ref := range []string{"1.71.0", digest(t, img).String()} {
		paths = append(paths, "/v2/"+repo+"/manifests/"+ref)
	}
	for _, d := range append([]v1.Descriptor{m.Config}, m.Layers...) {
		paths = append(paths, "/v2/"+repo+"/blobs/"+d.Digest.String())
	}
	return paths
}

// Refused: every manifest and blob request of rclone/rclone, GET and HEAD, by tag and by digest, is a 429
// with Docker Hub's body, and a client sees TOOMANYREQUESTS; other repositories and the other registry
// are served. Allowed again: rclone/rclone is served.
func TestRefuseAndAllowARepository(t *testing.T) {
	addr, im := serve(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rclone := blobRequests(t, "rclone/rclone", im.Rclone)
	others := []struct{ ns, path string }{
		{"docker.io", "/v2/loklak/loklak_server/manifests/latest-development"},
		{"docker.io", "/v2/library/loklak-standin-pause/manifests/v1"},
		{"registry.k8s.io", "/v2/kubectl/manifests/v1.33.13"},
	}
	served := func(when string) {
		t.Helper()
		for _, p := range rclone {
			for _, method := range []string{http.MethodGet, http.MethodHead} {
				if status, _, body := mirrorRequest(t, method, addr, "docker.io", p); status != http.StatusOK {
					t.Errorf("%s: %s %s: %d %s, want 200", when, method, p, status, body)
				}
			}
		}
		if _, err := pull(t, addr, RcloneRef); err != nil {
			t.Errorf("%s: pulling %s: %v", when, RcloneRef, err)
		}
	}
	served("before any refusal")

	if err := Refuse(ctx, addr, "rclone/rclone"); err != nil {
		t.Fatal(err)
	}
	if got, err := Refused(ctx, addr); err != nil || !slices.Equal(got, []string{"docker.io/rclone/rclone"}) {
		t.Errorf("Refused = %q, %v; want [docker.io/rclone/rclone]", got, err)
	}
	for _, p := range rclone {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			status, h, body := mirrorRequest(t, method, addr, "docker.io", p)
			if status != http.StatusTooManyRequests || h.Get("Content-Type") != "application/json" {
				t.Errorf("refused: %s %s: %d (Content-Type %q), want 429 application/json", method, p, status, h.Get("Content-Type"))
			}
			if method == http.MethodGet && !bytes.Equal(body, RateLimitBody) {
				t.Errorf("refused: GET %s: body %s, want %s", p, body, RateLimitBody)
			}
		}
	}
	// Without ns (crane, the harness) it is Docker Hub's too, so refused as well.
	if status, _, _ := mirrorRequest(t, http.MethodGet, addr, "", "/v2/rclone/rclone/manifests/1.71.0"); status != http.StatusTooManyRequests {
		t.Errorf("refused: GET without ns: %d, want 429", status)
	}
	_, err := pull(t, addr, RcloneRef)
	var terr *transport.Error
	if !errors.As(err, &terr) || terr.StatusCode != http.StatusTooManyRequests || len(terr.Errors) != 1 ||
		terr.Errors[0].Code != transport.TooManyRequestsErrorCode || terr.Errors[0].Message != RateLimitMessage {
		t.Errorf("refused: pulling %s: %v, want 429 TOOMANYREQUESTS with Docker Hub's message", RcloneRef, err)
	}
	for _, o := range others {
		if status, _, body := mirrorRequest(t, http.MethodGet, addr, o.ns, o.path); status != http.StatusOK {
			t.Errorf("rclone/rclone refused: %s?ns=%s: %d %s, want 200", o.path, o.ns, status, body)
		}
	}

	if err := Allow(ctx, addr, "docker.io/rclone/rclone"); err != nil {
		t.Fatal(err)
	}
	if got, err := Refused(ctx, addr); err != nil || len(got) != 0 {
		t.Errorf("Refused after Allow = %q, %v; want none", got, err)
	}
	served("allowed again")
	if err := Allow(ctx, addr, "rclone/rclone"); err != nil {
		t.Errorf("allowing a repository not refused: %v", err)
	}
}

// registry.k8s.io's repositories are refused by their full name, and only on that registry: Docker Hub's
// library/kubectl would be another repository.
func TestRefuseOnRegistryK8sIO(t *testing.T) {
	addr, _ := serve(t)
	ctx := context.Background()
	const p = "/v2/kubectl/manifests/v1.33.13"
	if err := Refuse(ctx, addr, "kubectl"); err != nil { // docker.io/library/kubectl: nothing served changes
		t.Fatal(err)
	}
	if status, _, _ := mirrorRequest(t, http.MethodGet, addr, "registry.k8s.io", p); status != http.StatusOK {
		t.Errorf("docker.io/library/kubectl refused: registry.k8s.io's kubectl answered %d, want 200", status)
	}
	if err := Refuse(ctx, addr, "registry.k8s.io/kubectl"); err != nil {
		t.Fatal(err)
	}
	if status, _, body := mirrorRequest(t, http.MethodGet, addr, "registry.k8s.io", p); status != http.StatusTooManyRequests ||
		!bytes.Equal(body, RateLimitBody) {
		t.Errorf("registry.k8s.io/kubectl refused: %d %s, want 429", status, body)
	}
	if got, _ := Refused(ctx, addr); !slices.Equal(got, []string{"docker.io/library/kubectl", "registry.k8s.io/kubectl"}) {
		t.Errorf("Refused = %q", got)
	}
}

// What the refusal endpoint and its client turn away: names that are not repositories, registries the
// server does not stand in for, methods it does not take. Pushes (uploads) are never refused.
func TestRefusalEndpointRefusesBadRequests(t *testing.T) {
	addr, _ := serve(t)
	ctx := context.Background()
	for _, bad := range []string{"rclone/rclone:1.71.0", "quay.io/foo/bar", "", "UPPER/case", "rclone/rclone@sha256:00"} {
		if err := Refuse(ctx, addr, bad); err == nil {
			t.Errorf("Refuse(%q) = nil, want an error", bad)
		}
	}
	for _, c := range []struct {
		method, path string
		want         int
	}{
		{http.MethodPut, AdminPath + "/quay.io/foo/bar", http.StatusBadRequest},
		{http.MethodPut, AdminPath + "/rclone/rclone:1.71.0", http.StatusBadRequest},
		{http.MethodPost, AdminPath + "/rclone/rclone", http.StatusMethodNotAllowed},
		{http.MethodPut, AdminPath, http.StatusMethodNotAllowed},
		{http.MethodGet, AdminPath, http.StatusOK},
	} {
		req, err := http.NewRequest(c.method, "http://"+addr+c.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s %s: %s, want %d", c.method, c.path, resp.Status, c.want)
		}
	}
	if err := Refuse(ctx, "127.0.0.1:1", "rclone/rclone"); err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("Refuse with no server: %v, want an error naming the address", err)
	}
}

func TestPullRepository(t *testing.T) {
	for path, want := range map[string]string{
		"/v2/rclone/rclone/manifests/1.71.0":                    "rclone/rclone",
		"/v2/library/busybox/manifests/sha256:ab":               "library/busybox",
		"/v2/kubectl/blobs/sha256:ab":                           "kubectl",
		"/v2/a/manifests/b/blobs/sha256:ab":                     "a/manifests/b",
		"/v2/rclone/rclone/blobs/uploads/":                      "",
		"/v2/rclone/rclone/blobs/uploads/123":                   "",
		"/v2/":                                                  "",
		"/v2/rclone/rclone/tags/list":                           "",
		"/testbed/refusals/rclone/rclone":                       "",
		"/v2/rclone/rclone/manifests/":                          "",
		"/v2/manifests/x":                                       "",
		"/v2/loklak/loklak_server/manifests/latest-development": "loklak/loklak_server",
	} {
		got, ok := pullRepository(path)
		if got != want || ok != (want != "") {
			t.Errorf("pullRepository(%q) = %q, %v; want %q", path, got, ok, want)
		}
	}
}
