// Command dockerhub-standin stands in for Docker Hub, and for registry.k8s.io, for the test node's
// containerd (package testbed/dockerhub): in-memory registries on one loopback address, chosen by the
// `ns` query parameter containerd adds to a mirror's requests. Docker Hub's (ns=docker.io, or no ns)
// serves the loklak stand-in images under the names the committed stacks use
// (loklak/loklak_server:latest-development, ...), the pause image containerd's sandbox_image names
// (docker.io/library/loklak-standin-pause:v1), and rclone/rclone:1.71.0 for the archiver sidecar (rclone
// v1.71.0 built from its Go module, with Debian's busybox-static: a stand-in for Docker Hub's Alpine
// image). registry.k8s.io's (ns=registry.k8s.io) serves registry.k8s.io/kubectl:v1.33.13 (a static
// kubectl v1.33.13 at /bin/kubectl, its entrypoint, as Kubernetes' own image).
//
//	dockerhub-standin -listen 127.0.0.1:5000 -binaries "$(hack/toolchain.sh --bin-dir)/images"
//
// It listens, builds the images from the binaries in -binaries (rclone, busybox and kubectl must be
// there, as hack/toolchain.sh puts them; a missing loklak-standin or pause is built there first, which
// needs the working directory inside this module), pushes every reference into itself, logs
// `serving N references on ADDR` on standard error, and serves, logging each request, until SIGTERM or
// SIGINT. GET /v2/loklak/loklak_server/manifests/latest-development answers 404 until the push is done,
// so a caller waits for 200 there. It writes nothing but the binaries. Exit status: 0 after a signal, 1
// on a failure, 2 on bad flags (a -listen that is not a loopback address among them).
//
// A test makes it refuse one repository's pulls with Docker Hub's 429 TOOMANYREQUESTS, and allow them
// again, through /testbed/refusals on the same address (dockerhub.Refuse, dockerhub.Allow,
// dockerhub.AdminPath).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/loklak/loklak-dumps/testbed/dockerhub"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stderr)
	stop()
	os.Exit(code)
}

// run is the command with its arguments (without the program name), logging to stderr, until ctx ends.
// It returns the exit status.
func run(ctx context.Context, args []string, stderr io.Writer) int {
	fl := flag.NewFlagSet("dockerhub-standin", flag.ContinueOnError)
	fl.SetOutput(stderr)
	listen := fl.String("listen", "", "loopback `host:port` to serve the registry on, e.g. 127.0.0.1:5000 (required)")
	binaries := fl.String("binaries", "", "`directory` of the loklak-standin, pause, rclone, busybox and kubectl binaries; "+
		"a missing loklak-standin or pause is built there (required)")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	logger := log.New(stderr, "dockerhub-standin: ", log.LstdFlags)
	switch {
	case fl.NArg() > 0:
		logger.Printf("unexpected arguments %q", fl.Args())
		return 2
	case *listen == "":
		logger.Print("-listen is required (a loopback host:port such as 127.0.0.1:5000)")
		return 2
	case *binaries == "":
		logger.Print("-binaries is required")
		return 2
	}
	if err := dockerhub.CheckLoopback(*listen); err != nil {
		logger.Print(err)
		return 2
	}
	if err := serve(ctx, *listen, *binaries, stderr, logger); err != nil {
		logger.Print(err)
		return 1
	}
	return 0
}

// gate passes writes on to w once opened, and drops them before: the registry's request log stays
// quiet while the command pushes into it.
type gate struct {
	open atomic.Bool
	w    io.Writer
}

func (g *gate) Write(p []byte) (int, error) {
	if !g.open.Load() {
		return len(p), nil
	}
	return g.w.Write(p)
}

func serve(ctx context.Context, addr, binDir string, stderr io.Writer, logger *log.Logger) error {
	requests := &gate{w: stderr}
	srv, err := dockerhub.Listen(addr, log.New(requests, "dockerhub-standin: request ", log.LstdFlags))
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	stopped := func() error {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return errors.Join(srv.Shutdown(sctx), <-served)
	}

	binaries, err := dockerhub.ReadBinaries(ctx, binDir, runtime.GOARCH)
	if err != nil {
		return errors.Join(err, stopped())
	}
	if _, err := dockerhub.Publish(ctx, srv.Addr(), binaries, runtime.GOARCH); err != nil {
		return errors.Join(err, stopped())
	}
	requests.open.Store(true)
	logger.Printf("serving %d references on %s", len(dockerhub.Catalog), srv.Addr())

	select {
	case <-ctx.Done():
		return stopped()
	case err := <-served:
		if err == nil {
			err = errors.New("closed")
		}
		return fmt.Errorf("the registry stopped: %w", err)
	}
}
