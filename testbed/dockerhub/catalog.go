package dockerhub

import (
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/loklak/loklak-dumps/testbed/loklak/image"
)

// Repository is loklak's Docker Hub repository, the one the committed stacks name.
const Repository = "loklak/loklak_server"

// SandboxImage is the pause image's full reference, as containerd's CRI `sandbox_image` must name it
// for the node to pull it from this stand-in (docker.io/library/loklak-standin-pause:v1).
const SandboxImage = "docker.io/library/" + image.PauseRef

// ReadyRef is the reference Push writes last, so that its manifest answering 200
// (GET /v2/loklak/loklak_server/manifests/latest-development) means every reference is served: the
// harness polls it to know the registry is ready.
const ReadyRef = Repository + ":latest-development"

// Entry is one reference the stand-in serves.
type Entry struct {
	// Ref is a Docker Hub reference with a tag, written as a stack or a pod names it
	// ("loklak/loklak_server:latest-development"; "loklak-standin-pause:v1" is in library/).
	Ref string
	// Version is the stand-in version (image.StandinImage) served under Ref; empty for the pause image.
	Version string
	// Pause says Ref serves the pause image (image.PauseImage).
	Pause bool
	// Rclone says Ref serves the rclone image (RcloneImage).
	Rclone bool
	// Kubectl says Ref serves the kubectl image (KubectlImage), from registry.k8s.io's stand-in.
	Kubectl bool
}

// Catalog is every reference the stand-in serves. latest-development is what
// Pulumi.dev.yaml, Pulumi.prod.yaml and Pulumi.local.yaml name; it is stand-in v1, so the committed
// stacks run unchanged, and moving a stack to standin-v2 is a pull of another manifest. The
// loklak-standin tags are the names the image archives (image.BuildAll) carry. RcloneRef is what the
// archiver sidecar names by default. KubectlRef is on registry.k8s.io, not Docker Hub (Entry.Host).
var Catalog = []Entry{
	{Ref: ReadyRef, Version: "v1"},
	{Ref: Repository + ":standin-v1", Version: "v1"},
	{Ref: Repository + ":standin-v2", Version: "v2"},
	{Ref: image.StandinRef("v1"), Version: "v1"},
	{Ref: image.StandinRef("v2"), Version: "v2"},
	{Ref: image.PauseRef, Pause: true},
	{Ref: RcloneRef, Rclone: true},
	{Ref: KubectlRef, Kubectl: true},
}

// Host is the registry e is on, as containerd names it in a mirror request's `ns` (one of Hosts):
// DockerHubHost for a reference without a registry ("rclone/rclone:1.71.0"), K8sRegistryHost for
// KubectlRef.
func (e Entry) Host() (string, error) {
	t, err := name.NewTag(e.Ref)
	if err != nil {
		return "", fmt.Errorf("catalog reference %q: %w", e.Ref, err)
	}
	host := t.RegistryStr()
	if host == name.DefaultRegistry {
		host = DockerHubHost
	}
	if !servesHost(host) {
		return "", fmt.Errorf("catalog reference %q is on %s, which the server does not stand in for", e.Ref, host)
	}
	return host, nil
}

// Path is where e is in its host's registry's URL space: its repository ("library/" added for a one-part
// Docker Hub name, as Docker Hub and containerd's docker.io mirrors do) and its tag, e.g.
// "library/loklak-standin-pause", "v1", or "kubectl", "v1.33.13" for KubectlRef. A pull of e goes to
// GET /v2/REPOSITORY/manifests/TAG?ns=HOST (Host).
func (e Entry) Path() (repository, tag string, err error) {
	t, err := name.NewTag(e.Ref)
	if err != nil {
		return "", "", fmt.Errorf("catalog reference %q: %w", e.Ref, err)
	}
	if !strings.HasSuffix(e.Ref, ":"+t.TagStr()) {
		return "", "", fmt.Errorf("catalog reference %q has no tag", e.Ref)
	}
	return t.RepositoryStr(), t.TagStr(), nil
}
