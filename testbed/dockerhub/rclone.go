package dockerhub

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// RcloneRef is the reference the product's archiver sidecar names by default. Docker Hub's image of that
// name is rclone's own release on Alpine; the stand-in's (RcloneImage) is rclone v1.71.0 built from its Go
// module by hack/toolchain.sh, with Debian's busybox-static for the shell.
const RcloneRef = "rclone/rclone:1.71.0"

// RcloneVersion is the version `rclone version` reports for RcloneRef; hack/toolchain.sh pins the same
// (rclone_version).
const RcloneVersion = "v1.71.0"

// Where things are in the rclone image, as in Docker Hub's rclone/rclone: rclone at /usr/local/bin, a
// busybox at /bin with its applets as symbolic links beside it, /data the working directory,
// XDG_CONFIG_HOME=/config, PATH Alpine's default.
const (
	RcloneBinaryPath  = "/usr/local/bin/rclone"
	BusyboxBinaryPath = "/bin/busybox"
	RcloneWorkingDir  = "/data"
	rclonePath        = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	layerCreatedBy    = "testbed/dockerhub (go-containerregistry)" // the layers' history entries
)

// BusyboxApplets are the commands the rclone image has in /bin, each a symbolic link to busybox (a
// relative one, so a copy of the image's files outside a container works too): the archiver's script runs
// under /bin/sh and calls sleep, date and echo; cat and ls are for a person in `kubectl exec`.
var BusyboxApplets = []string{"sh", "sleep", "date", "echo", "cat", "ls"}

// imageEpoch is the modification time of every file in the rclone and kubectl images' layers, so that
// the same binaries always make the same digests.
var imageEpoch = time.Unix(0, 0).UTC()

// tarEntry is one entry of a layer: a directory (path ending in "/"), a regular file (data), or a
// symbolic link (link set).
type tarEntry struct {
	path string
	mode int64
	data []byte
	link string
	uid  int // owner and group; 0, root, unless set
}

// tarLayer makes a layer of entries, in the order given, as a gzip blob, and hands it to
// go-containerregistry, which digests it.
func tarLayer(entries []tarEntry) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{
			Name:    strings.TrimPrefix(e.path, "/"),
			Mode:    e.mode,
			ModTime: imageEpoch,
			Format:  tar.FormatPAX,
			Uid:     e.uid,
			Gid:     e.uid,
		}
		switch {
		case strings.HasSuffix(e.path, "/"):
			hdr.Typeflag = tar.TypeDir
		case e.link != "":
			hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, e.link
		default:
			hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(e.data))
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
	// Gzipped here, once, and without compression (stored blocks: still the tar+gzip media type Docker
	// Hub's layers have): go-containerregistry would gzip an uncompressed layer for its digest and again
	// for the push, and compressing rclone's 70 MB took the stand-in's start-up from 0.5 s to 2 s.
	// Uncompressed, it takes about 0.8 s, and containerd pulls 70 MB over loopback.
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.NoCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(buf.Bytes()); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	b := gz.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
}

// RcloneImage is the stand-in for Docker Hub's rclone/rclone:1.71.0 for arch: rclone (a static linux
// build of github.com/rclone/rclone v1.71.0, every backend, as hack/toolchain.sh makes it) at
// RcloneBinaryPath, and busybox (Debian's busybox-static) at BusyboxBinaryPath with BusyboxApplets beside
// it. Two layers, as the real image's last ones: the base (busybox, /tmp, /data), then rclone. The config
// is the real image's: entrypoint ["rclone"] found through PATH, working directory /data,
// XDG_CONFIG_HOME=/config, root.
//
// What the real image has and this one lacks: the rest of Alpine (apk, musl, /etc/passwd with the rclone
// user 1009), ca-certificates (so HTTPS to a real endpoint would not verify; the testbed's Cloud Storage
// emulator is plain HTTP), tzdata and fuse3 (rclone mount). Built from the same bytes it has the same
// digests.
func RcloneImage(rclone, busybox []byte, arch string) (v1.Image, error) {
	if len(rclone) == 0 || len(busybox) == 0 {
		return nil, fmt.Errorf("the rclone image needs both binaries (rclone %d bytes, busybox %d bytes)", len(rclone), len(busybox))
	}
	base := []tarEntry{{path: "/bin/", mode: 0o755}, {path: BusyboxBinaryPath, mode: 0o755, data: busybox}}
	for _, a := range BusyboxApplets {
		base = append(base, tarEntry{path: "/bin/" + a, mode: 0o777, link: path.Base(BusyboxBinaryPath)})
	}
	base = append(base, tarEntry{path: RcloneWorkingDir + "/", mode: 0o755}, tarEntry{path: "/tmp/", mode: 0o1777})
	top := []tarEntry{
		{path: "/usr/", mode: 0o755}, {path: "/usr/local/", mode: 0o755}, {path: "/usr/local/bin/", mode: 0o755},
		{path: RcloneBinaryPath, mode: 0o755, data: rclone},
	}
	return layeredImage(arch, []imageLayer{
		{base, "busybox (Debian busybox-static) with " + strings.Join(BusyboxApplets, ", ")},
		{top, "rclone " + RcloneVersion + " built from github.com/rclone/rclone@" + RcloneVersion},
	}, v1.Config{
		Entrypoint: []string{"rclone"},
		Env:        []string{"PATH=" + rclonePath, "XDG_CONFIG_HOME=/config"},
		WorkingDir: RcloneWorkingDir,
		Labels: map[string]string{
			"org.opencontainers.image.title":   "rclone",
			"org.opencontainers.image.version": strings.TrimPrefix(RcloneVersion, "v"),
			"org.opencontainers.image.description": "a test stand-in for Docker Hub's " + RcloneRef +
				": rclone " + RcloneVersion + " built from its Go module, with Debian's busybox-static (testbed/dockerhub)",
		},
	})
}

// imageLayer is one layer of a stand-in image: its files, and the history comment that says what it is.
type imageLayer struct {
	entries []tarEntry
	comment string
}

// layeredImage is a linux/arch image of layers, in order, with config, every date at imageEpoch, so that
// the same bytes always make the same digests.
func layeredImage(arch string, layers []imageLayer, config v1.Config) (v1.Image, error) {
	img := empty.Image
	for _, l := range layers {
		layer, err := tarLayer(l.entries)
		if err != nil {
			return nil, err
		}
		if img, err = mutate.Append(img, mutate.Addendum{
			Layer:   layer,
			History: v1.History{CreatedBy: layerCreatedBy, Comment: l.comment, Created: v1.Time{Time: imageEpoch}},
		}); err != nil {
			return nil, err
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	cf.Created = v1.Time{Time: imageEpoch}
	cf.Config = config
	return mutate.ConfigFile(img, cf)
}
