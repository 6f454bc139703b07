// Command loklak-standin is a stand-in for loklak_server where this project's Kubernetes stack depends
// on it (see testbed/loklak/README.md). With no flags it runs the server, configured from the
// environment as its container is. With -build-images DIR it builds the container image archives
// (loklak-standin:v1, :v2 and the pause image) into DIR for `ctr -n k8s.io images import`.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/loklak/loklak-dumps/testbed/loklak"
	"github.com/loklak/loklak-dumps/testbed/loklak/image"
)

func main() {
	buildImages := flag.String("build-images", "", "build the image archives into `DIR` and exit (run inside this module)")
	arch := flag.String("arch", "", "GOARCH of the images (default: this machine's)")
	pauseRef := flag.String("pause-ref", image.PauseRef, "the pause image's `reference` (containerd's sandbox_image)")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "loklak-standin: unexpected arguments %q (the server is configured from the environment)\n", flag.Args())
		os.Exit(2)
	}
	if *buildImages == "" {
		os.Exit(loklak.Main(os.LookupEnv, os.Stderr))
	}
	os.Exit(buildAll(image.Options{OutDir: *buildImages, Arch: *arch, PauseRef: *pauseRef}))
}

func buildAll(opts image.Options) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	archives, err := image.BuildAll(ctx, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loklak-standin:", err)
		return 1
	}
	for _, a := range archives {
		fmt.Printf("%s\t%s\timage-id %s\tdigest %s\n", a.Path, a.Ref, a.ImageID, a.Digest)
	}
	fmt.Println("import each with: ctr -n k8s.io images import FILE")
	return 0
}
