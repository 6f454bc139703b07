package dockerhub

import (
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// The registry.k8s.io stand-in: the same server (Server) stands in for Kubernetes' registry,
// registry.k8s.io, under K8sRegistryHost, for the one image of it the product names, kubectl. containerd
// is given a mirror for registry.k8s.io at the same address as docker.io's, and tells the server which
// registry it means by the `ns` query parameter it adds to a mirror's requests.

// KubectlVersion is the kubectl KubectlRef serves; hack/toolchain.sh's kubernetes_version pins the same,
// and builds the static kubectl the image is made of (build_kubectl_static).
const KubectlVersion = "v1.33.13"

// KubectlRef is Kubernetes' kubectl image, published with every release since v1.28 (kubernetes/kubernetes
// PR #116672): kubectl as its entrypoint, no shell.
const KubectlRef = K8sRegistryHost + "/kubectl:" + KubectlVersion

// Where things are in the kubectl image, as in the real one. Kubernetes builds it from
// build/server-image/kubectl/Dockerfile (k8s.io/kubernetes v1.33.13): `COPY kubectl /bin/` and
// `ENTRYPOINT ["/bin/kubectl"]`, on the go-runner base image (build/common.sh, KUBECTL_BASE_IMAGE), which
// is distroless's static-debian12 (kubernetes/release images/build/go-runner) with WORKDIR /. That base is
// distroless's root variant: its config's user is "0". So the image runs kubectl as root unless the pod
// says otherwise, and a pod with runAsNonRoot and no runAsUser is refused by the kubelet ("image will run
// as root"), as with the real image.
const (
	KubectlBinaryPath = "/bin/kubectl"
	KubectlUser       = "0"
	KubectlWorkingDir = "/"
	// distroless's PATH, and where its CA bundle is.
	kubectlPath        = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	kubectlSSLCertFile = "/etc/ssl/certs/ca-certificates.crt"
	nonrootUID         = 65532 // distroless's nonroot user
)

// distroless's users and groups (common:passwd, common:group): root, nobody and nonroot.
const (
	kubectlPasswd = "root:x:0:0:root:/root:/sbin/nologin\n" +
		"nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n" +
		"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
	kubectlGroup = "root:x:0:\nnobody:x:65534:\ntty:x:5:\nstaff:x:50:\nnonroot:x:65532:\n"
)

// KubectlImage is the stand-in for registry.k8s.io/kubectl:v1.33.13 for arch: kubectl (a static linux
// build of k8s.io/kubernetes/cmd/kubectl v1.33.13, as hack/toolchain.sh's build_kubectl_static makes it)
// at KubectlBinaryPath. Two layers: distroless's users and directories (/etc/passwd, /etc/group, /root,
// /home/nonroot, /tmp), then kubectl. The config is the real image's: entrypoint ["/bin/kubectl"], no
// command, user 0, working directory /, distroless's PATH and SSL_CERT_FILE.
//
// What the real image has and this one lacks: the rest of distroless (Debian's base-files, netbase,
// tzdata, media-types, nsswitch.conf, os-release) and its CA bundle (SSL_CERT_FILE names a file that is
// not there: kubectl in a pod verifies the API server with the service account's ca.crt, which needs no
// bundle), and go-runner's /go-runner. Like the real image it has no shell. Built from the same bytes it
// has the same digests.
func KubectlImage(kubectl []byte, arch string) (v1.Image, error) {
	if len(kubectl) == 0 {
		return nil, fmt.Errorf("the kubectl image needs the kubectl binary (%d bytes)", len(kubectl))
	}
	base := []tarEntry{
		{path: "/etc/", mode: 0o755},
		{path: "/etc/passwd", mode: 0o644, data: []byte(kubectlPasswd)},
		{path: "/etc/group", mode: 0o644, data: []byte(kubectlGroup)},
		{path: "/home/", mode: 0o755},
		{path: "/home/nonroot/", mode: 0o700, uid: nonrootUID},
		{path: "/root/", mode: 0o700},
		{path: "/tmp/", mode: 0o1777},
	}
	top := []tarEntry{{path: "/bin/", mode: 0o755}, {path: KubectlBinaryPath, mode: 0o755, data: kubectl}}
	return layeredImage(arch, []imageLayer{
		{base, "distroless static's users and directories"},
		{top, "kubectl " + KubectlVersion + " built from k8s.io/kubernetes@" + KubectlVersion + " with CGO_ENABLED=0"},
	}, v1.Config{
		Entrypoint: []string{KubectlBinaryPath},
		Env:        []string{"PATH=" + kubectlPath, "SSL_CERT_FILE=" + kubectlSSLCertFile},
		User:       KubectlUser,
		WorkingDir: KubectlWorkingDir,
		Labels: map[string]string{
			"org.opencontainers.image.title":   "kubectl",
			"org.opencontainers.image.version": strings.TrimPrefix(KubectlVersion, "v"),
			"org.opencontainers.image.description": "a test stand-in for " + KubectlRef + ": a static kubectl " +
				KubectlVersion + " built from its Go module (testbed/dockerhub)",
		},
	})
}
