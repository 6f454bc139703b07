// Package image builds the container images the real-kubelet tests import into containerd, since no
// registry is reachable: the loklak stand-in, in two versions so that an image update is a real change
// of image, and a pause image for the pod sandboxes. Images are assembled with go-containerregistry
// (empty image, one layer, config) and written as docker-archive tarballs, which
// `ctr -n k8s.io images import FILE` accepts and tags with the archive's RepoTags.
package image

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/loklak/loklak-dumps/testbed/loklak"
)

// Where things are in the images.
const (
	StandinRepository = "loklak-standin"                          // tagged :v1, :v2, ...
	StandinBinaryPath = loklak.WorkingDir + "/bin/loklak-standin" // the entrypoint
	StandinDataDir    = loklak.DefaultDataDir                     // loklak's VOLUME
	PauseRef          = "loklak-standin-pause:v1"                 // containerd's sandbox_image must name it
	PauseBinaryPath   = "/pause"                                  // as in registry.k8s.io/pause
	PauseUser         = "65535:65535"                             // as in registry.k8s.io/pause
	defaultPath       = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	createdBy         = "testbed/loklak/image (go-containerregistry)" // the layer's history entry
)

// Versions are the stand-in versions BuildAll writes, one image each.
var Versions = []string{"v1", "v2"}

// StandinRef is the image reference of stand-in version v, e.g. "loklak-standin:v1". containerd
// stores it as docker.io/library/loklak-standin:v1, which is also what a pod's "image: loklak-standin:v1"
// means.
func StandinRef(version string) string { return StandinRepository + ":" + version }

// layerEpoch is the modification time of every file in the layers, so that the same binary always
// makes the same layer digest.
var layerEpoch = time.Unix(0, 0).UTC()

// layerEntry is one file or directory of a layer.
type layerEntry struct {
	path string // absolute path in the image; a trailing slash makes a directory
	mode int64
	data []byte
}

// newLayer makes an uncompressed layer tar of entries (parent directories first, as listed) and hands
// it to go-containerregistry, which compresses and digests it.
func newLayer(entries []layerEntry) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{
			Name:    strings.TrimPrefix(e.path, "/"),
			Mode:    e.mode,
			ModTime: layerEpoch,
			Format:  tar.FormatPAX,
		}
		if strings.HasSuffix(e.path, "/") {
			hdr.Typeflag = tar.TypeDir
		} else {
			hdr.Typeflag = tar.TypeReg
			hdr.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	})
}

// parents lists the directories above p ("/a/b/c" gives "/a/", "/a/b/"), outermost first.
func parents(p string) []string {
	var out []string
	for d := path.Dir(p); d != "/" && d != "."; d = path.Dir(d) {
		out = append([]string{d + "/"}, out...)
	}
	return out
}

// assemble makes an image for arch from one layer and a config. Everything is done through
// go-containerregistry: the empty image, the appended layer with its history, the config file.
func assemble(arch string, entries []layerEntry, comment string, cfg v1.Config) (v1.Image, error) {
	layer, err := newLayer(entries)
	if err != nil {
		return nil, err
	}
	img, err := mutate.Append(empty.Image, mutate.Addendum{
		Layer:   layer,
		History: v1.History{CreatedBy: createdBy, Comment: comment, Created: v1.Time{Time: layerEpoch}},
	})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS = "linux"
	cf.Architecture = arch
	cf.Created = v1.Time{Time: layerEpoch}
	cf.Config = cfg
	return mutate.ConfigFile(img, cf)
}

// StandinImage is the loklak stand-in image of the given version for arch (amd64, arm64, ...), holding
// binary (a static linux build of testbed/cmd/loklak-standin) at StandinBinaryPath. Like the
// loklak_server image it works in /loklak_server, keeps its data in the volume /loklak_server/data,
// exposes 9000 and 9443 and runs as root. The environment sets the version and the image reference the
// status reports, and the stand-in's defaults (data directory, start delay, dump interval) so that
// `ctr images` and a pod spec can see them.
func StandinImage(binary []byte, version, arch string) (v1.Image, error) {
	if version == "" || strings.ContainsAny(version, " =:/") {
		return nil, fmt.Errorf("version %q: want a tag such as v1", version)
	}
	if _, err := name.NewTag(StandinRef(version)); err != nil {
		return nil, err
	}
	var entries []layerEntry
	for _, d := range append(parents(StandinBinaryPath), StandinDataDir+"/") {
		if !containsPath(entries, d) {
			entries = append(entries, layerEntry{path: d, mode: 0o755})
		}
	}
	entries = append(entries, layerEntry{path: StandinBinaryPath, mode: 0o755, data: binary})
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].path < entries[j].path })
	return assemble(arch, entries, "loklak-standin "+version, v1.Config{
		Entrypoint: []string{StandinBinaryPath},
		Env: []string{
			"PATH=" + path.Dir(StandinBinaryPath) + ":" + defaultPath,
			loklak.EnvVersion + "=" + version,
			loklak.EnvImage + "=" + StandinRef(version),
			loklak.EnvDataDir + "=" + StandinDataDir,
			loklak.EnvStartDelay + "=" + loklak.DefaultStartDelay.String(),
			loklak.EnvDumpInterval + "=" + loklak.DefaultDumpInterval.String(),
		},
		WorkingDir:   loklak.WorkingDir,
		ExposedPorts: map[string]struct{}{"9000/tcp": {}, "9443/tcp": {}},
		Volumes:      map[string]struct{}{StandinDataDir: {}},
		Labels: map[string]string{
			"org.opencontainers.image.title":       StandinRepository,
			"org.opencontainers.image.version":     version,
			"org.opencontainers.image.description": "a test stand-in for loklak_server (testbed/loklak)",
		},
		StopSignal: "SIGTERM",
	})
}

func containsPath(entries []layerEntry, p string) bool {
	for _, e := range entries {
		if e.path == p {
			return true
		}
	}
	return false
}

// PauseImage is a pause image for arch holding binary (a static linux build of
// testbed/cmd/loklak-standin/pause) at /pause, run as user 65535 like the upstream pause image.
func PauseImage(binary []byte, arch string) (v1.Image, error) {
	return assemble(arch, []layerEntry{{path: PauseBinaryPath, mode: 0o755, data: binary}}, "pause", v1.Config{
		Entrypoint: []string{PauseBinaryPath},
		User:       PauseUser,
		WorkingDir: "/",
		Labels: map[string]string{
			"org.opencontainers.image.title":       "loklak-standin-pause",
			"org.opencontainers.image.description": "a pause image for pod sandboxes (testbed/cmd/loklak-standin/pause)",
		},
	})
}

// WriteArchive writes img as a docker-archive tarball tagged ref (go-containerregistry's
// tarball.WriteToFile), the format `ctr -n k8s.io images import` takes.
func WriteArchive(file, ref string, img v1.Image) error {
	tag, err := name.NewTag(ref)
	if err != nil {
		return err
	}
	return tarball.WriteToFile(file, tag, img)
}
