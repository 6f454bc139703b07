package dockerhub

import (
	"archive/tar"
	"bufio"
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The catalog serves registry.k8s.io/kubectl:v1.33.13 from registry.k8s.io's stand-in: the manifest
// answers 200 through a registry.k8s.io mirror (ns=registry.k8s.io), and the image pulled runs
// /bin/kubectl as its entrypoint, as user 0, as the real one does.
func TestCatalogServesKubectlFromRegistryK8sIO(t *testing.T) {
	if KubectlRef != "registry.k8s.io/kubectl:v1.33.13" {
		t.Errorf("KubectlRef = %q", KubectlRef)
	}
	var e Entry
	for _, c := range Catalog {
		if c.Ref == KubectlRef {
			e = c
		}
	}
	if !e.Kubectl {
		t.Fatalf("the catalog has no %s", KubectlRef)
	}
	host, err := e.Host()
	if err != nil || host != K8sRegistryHost {
		t.Errorf("%s is on %q (%v), want %s", KubectlRef, host, err, K8sRegistryHost)
	}
	if repo, tag, err := e.Path(); err != nil || repo != "kubectl" || tag != "v1.33.13" {
		t.Errorf("%s is at %s:%s (%v), want kubectl:v1.33.13", KubectlRef, repo, tag, err)
	}

	addr, im := serve(t)
	for _, method := range []string{http.MethodHead, http.MethodGet} {
		h, _ := mirrorGet(t, method, addr, K8sRegistryHost, "/v2/kubectl/manifests/v1.33.13")
		if d := h.Get("Docker-Content-Digest"); d != digest(t, im.Kubectl).String() {
			t.Errorf("%s %s: Docker-Content-Digest %q, want the built image's %s", method, KubectlRef, d, digest(t, im.Kubectl))
		}
	}
	img, err := pull(t, addr, KubectlRef)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if !slices.Equal(c.Entrypoint, []string{"/bin/kubectl"}) || len(c.Cmd) != 0 || c.User != "0" || c.WorkingDir != "/" {
		t.Errorf("entrypoint %q, cmd %q, user %q, working dir %q; want [/bin/kubectl], none, 0, /",
			c.Entrypoint, c.Cmd, c.User, c.WorkingDir)
	}
	if !slices.Contains(c.Env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin") {
		t.Errorf("env %q lacks distroless's PATH", c.Env)
	}
	if cf.OS != "linux" || cf.Architecture != "amd64" || c.Labels["org.opencontainers.image.version"] != "1.33.13" {
		t.Errorf("platform %s/%s, labels %v", cf.OS, cf.Architecture, c.Labels)
	}

	files := filesystem(t, img)
	if f, ok := files[KubectlBinaryPath]; !ok || f.hdr.Typeflag != tar.TypeReg || f.hdr.Mode != 0o755 || f.hdr.Uid != 0 ||
		!bytes.Equal(f.data, fakeKubectl) {
		t.Errorf("%s: %+v, want a root 0755 file holding the kubectl binary", KubectlBinaryPath, f.hdr)
	}
	for _, sh := range []string{"/bin/sh", "/bin/busybox", "/bin/bash"} {
		if _, ok := files[sh]; ok {
			t.Errorf("%s in the kubectl image: the real one has no shell", sh)
		}
	}
	if !strings.HasPrefix(string(files["/etc/passwd"].data), "root:x:0:0:") ||
		!strings.Contains(string(files["/etc/passwd"].data), "\nnonroot:x:65532:65532:") {
		t.Errorf("/etc/passwd = %q, want distroless's root and nonroot", files["/etc/passwd"].data)
	}
	for dir, want := range map[string]struct {
		mode int64
		uid  int
	}{"/tmp": {0o1777, 0}, "/root": {0o700, 0}, "/home/nonroot": {0o700, 65532}, "/bin": {0o755, 0}} {
		if f, ok := files[dir]; !ok || f.hdr.Typeflag != tar.TypeDir || f.hdr.Mode != want.mode || f.hdr.Uid != want.uid {
			t.Errorf("%s: %+v, want a directory of mode %o owned by %d", dir, f.hdr, want.mode, want.uid)
		}
	}
}

func TestKubectlImageIsReproducibleAndNeedsTheBinary(t *testing.T) {
	d := func(kubectl []byte) string {
		img, err := KubectlImage(kubectl, "amd64")
		if err != nil {
			t.Fatal(err)
		}
		return digest(t, img).String()
	}
	if a, b := d(fakeKubectl), d(slices.Clone(fakeKubectl)); a != b {
		t.Errorf("the same bytes built twice: %s, %s", a, b)
	}
	if a, b := d(fakeKubectl), d([]byte("another kubectl")); a == b {
		t.Errorf("two kubectl binaries gave one digest %s", a)
	}
	if _, err := KubectlImage(nil, "amd64"); err == nil {
		t.Error("KubectlImage without a binary gave no error")
	}
}

// hack/toolchain.sh builds the kubectl the image is made of at its kubernetes_version: the image's tag
// must be that version.
func TestKubectlVersionIsTheToolchains(t *testing.T) {
	f, err := os.Open(filepath.Join("..", "..", "hack", "toolchain.sh"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	var pinned string
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "kubernetes_version="); ok {
			pinned = v
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if pinned != KubectlVersion {
		t.Errorf("hack/toolchain.sh pins kubernetes_version=%s, the kubectl image is %s", pinned, KubectlVersion)
	}
}
