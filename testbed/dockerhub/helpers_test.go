package dockerhub

import (
	"context"
	"io"
	"log"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Stand-in bytes for the binaries: the images hold any bytes, so these tests need no go build.
var (
	fakeStandin = []byte("\x7fELF the stand-in's bytes")
	fakePause   = []byte("\x7fELF the pause bytes")
	fakeRclone  = []byte("\x7fELF rclone's bytes")
	fakeBusybox = []byte("\x7fELF busybox's bytes")
	fakeKubectl = []byte("\x7fELF kubectl's bytes")
	fakes       = Binaries{Standin: fakeStandin, Pause: fakePause, Rclone: fakeRclone, Busybox: fakeBusybox, Kubectl: fakeKubectl}
)

// logWriter sends the registry's request lines to the test log.
type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// serve starts a Server on 127.0.0.1:0, builds the images from the fake binaries, pushes the
// catalog into it, and returns its address and the images.
func serve(t *testing.T) (string, *Images) {
	t.Helper()
	srv, err := Listen("127.0.0.1:0", log.New(logWriter{t}, "registry: ", 0))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Error(err)
		}
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	im, err := Publish(ctx, srv.Addr(), fakes, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	return srv.Addr(), im
}

// pull reads ref (a reference, tag or digest, on Docker Hub or registry.k8s.io) back from the registry at
// addr, as containerd pointed at it as a mirror would: same repository path, same tag or digest, the
// reference's registry in ns=.
func pull(t *testing.T, addr, ref string) (v1.Image, error) {
	t.Helper()
	hub, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	sep := ":"
	if strings.HasPrefix(hub.Identifier(), "sha256:") {
		sep = "@"
	}
	local, err := name.ParseReference(addr+"/"+hub.Context().RepositoryStr()+sep+hub.Identifier(), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	host := hub.Context().RegistryStr()
	if host == name.DefaultRegistry {
		host = DockerHubHost
	}
	img, err := remote.Image(local, remote.WithTransport(nsTransport{host, remote.DefaultTransport}))
	if err != nil {
		return nil, err
	}
	// remote.Image is lazy: fetch the config and layers, so a missing blob fails here.
	if _, err := img.ConfigFile(); err != nil {
		return nil, err
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			return nil, err
		}
		_, err = io.Copy(io.Discard, rc) // checks the blob against its digest
		if cerr := rc.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, err
		}
	}
	return img, nil
}

func digest(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}
