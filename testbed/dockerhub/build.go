package dockerhub

import (
	"context"
	"fmt"
	"net/http"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/loklak/loklak-dumps/testbed/loklak/image"
)

// Images are the images Catalog serves, built for one architecture.
type Images struct {
	Arch    string              // GOARCH of every image
	Standin map[string]v1.Image // the loklak stand-in, by version ("v1", "v2")
	Pause   v1.Image            // the pause image
	Rclone  v1.Image            // the stand-in for rclone/rclone:1.71.0 (RcloneImage)
	Kubectl v1.Image            // the stand-in for registry.k8s.io/kubectl:v1.33.13 (KubectlImage)
}

// Binaries are the bytes the images are made of, static linux executables for one architecture.
type Binaries struct {
	Standin []byte // a build of testbed/cmd/loklak-standin (image.StandinPackage)
	Pause   []byte // a build of testbed/cmd/loklak-standin/pause (image.PausePackage)
	Rclone  []byte // rclone v1.71.0 as hack/toolchain.sh builds it
	Busybox []byte // Debian's busybox-static /bin/busybox
	Kubectl []byte // kubectl v1.33.13, static, as hack/toolchain.sh builds it (build_kubectl_static)
}

// Build makes the images of every Catalog entry from b for arch (a GOARCH). The images are
// reproducible: the same bytes always make the same digests.
func Build(b Binaries, arch string) (*Images, error) {
	im := &Images{Arch: arch, Standin: map[string]v1.Image{}}
	for _, e := range Catalog {
		if e.Pause || e.Rclone || e.Kubectl || im.Standin[e.Version] != nil {
			continue
		}
		img, err := image.StandinImage(b.Standin, e.Version, arch)
		if err != nil {
			return nil, fmt.Errorf("building stand-in %s: %w", e.Version, err)
		}
		im.Standin[e.Version] = img
	}
	var err error
	if im.Pause, err = image.PauseImage(b.Pause, arch); err != nil {
		return nil, fmt.Errorf("building the pause image: %w", err)
	}
	if im.Rclone, err = RcloneImage(b.Rclone, b.Busybox, arch); err != nil {
		return nil, fmt.Errorf("building %s: %w", RcloneRef, err)
	}
	if im.Kubectl, err = KubectlImage(b.Kubectl, arch); err != nil {
		return nil, fmt.Errorf("building %s: %w", KubectlRef, err)
	}
	return im, nil
}

// Image is the image e serves.
func (im *Images) Image(e Entry) (v1.Image, error) {
	switch {
	case e.Pause:
		return im.Pause, nil
	case e.Rclone:
		return im.Rclone, nil
	case e.Kubectl:
		return im.Kubectl, nil
	}
	img, ok := im.Standin[e.Version]
	if !ok {
		return nil, fmt.Errorf("%s: no stand-in version %q was built", e.Ref, e.Version)
	}
	return img, nil
}

// DigestRef is stand-in version's reference pinned by digest, "loklak/loklak_server@sha256:<64 hex>",
// as the prod stack's comment advises and as infra pulls with IfNotPresent.
func (im *Images) DigestRef(version string) (string, error) {
	img, ok := im.Standin[version]
	if !ok {
		return "", fmt.Errorf("no stand-in version %q was built", version)
	}
	d, err := img.Digest()
	if err != nil {
		return "", fmt.Errorf("digest of stand-in %s: %w", version, err)
	}
	return Repository + "@" + d.String(), nil
}

// Push writes every Catalog entry into the registry at addr (host:port, spoken to over plain HTTP),
// under the entry's host, repository and tag (Entry.Host, Entry.Path; the host as the `ns` query
// parameter of every request, as containerd sends it): remote.Write for an image's first tag in a
// repository, remote.Tag (the manifest alone) for the others. ReadyRef goes last. Its errors name the
// reference.
func (im *Images) Push(ctx context.Context, addr string) error {
	written := map[string]bool{} // host + "/" + repository + "@" + digest
	for _, e := range pushOrder() {
		img, err := im.Image(e)
		if err != nil {
			return err
		}
		repo, tag, err := e.Path()
		if err != nil {
			return err
		}
		host, err := e.Host()
		if err != nil {
			return err
		}
		dst, err := name.NewTag(addr+"/"+repo+":"+tag, name.Insecure, name.StrictValidation)
		if err != nil {
			return fmt.Errorf("%s in registry %s: %w", e.Ref, addr, err)
		}
		d, err := img.Digest()
		if err != nil {
			return fmt.Errorf("digest of %s: %w", e.Ref, err)
		}
		key := host + "/" + repo + "@" + d.String()
		opts := []remote.Option{remote.WithContext(ctx), remote.WithTransport(nsTransport{host, remote.DefaultTransport})}
		if written[key] {
			err = remote.Tag(dst, img, opts...)
		} else {
			err = remote.Write(dst, img, opts...)
		}
		if err != nil {
			return fmt.Errorf("pushing %s to %s: %w", e.Ref, dst, err)
		}
		written[key] = true
	}
	return nil
}

// nsTransport adds ns=host to every request's query, as containerd does to a mirror's, so that the
// server puts what is pushed into host's registry.
type nsTransport struct {
	host string
	next http.RoundTripper
}

func (t nsTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	q := r.URL.Query()
	q.Set("ns", t.host)
	r.URL.RawQuery = q.Encode()
	return t.next.RoundTrip(r)
}

// pushOrder is Catalog with ReadyRef moved to the end.
func pushOrder() []Entry {
	var out, last []Entry
	for _, e := range Catalog {
		if e.Ref == ReadyRef {
			last = append(last, e)
		} else {
			out = append(out, e)
		}
	}
	return append(out, last...)
}

// Publish builds the images from the binaries (Build) and pushes them into the registry at addr (Push).
func Publish(ctx context.Context, addr string, b Binaries, arch string) (*Images, error) {
	im, err := Build(b, arch)
	if err != nil {
		return nil, err
	}
	if err := im.Push(ctx, addr); err != nil {
		return nil, err
	}
	return im, nil
}
