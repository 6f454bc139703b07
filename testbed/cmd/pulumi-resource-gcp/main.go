// Command pulumi-resource-gcp is the test stand-in for the pulumi-gcp provider (package testbed/gcp): the
// engine loads it as the `gcp` plugin in the end-to-end tests, and it simulates Compute Engine, Cloud
// Monitoring, Cloud Storage (buckets in a fake-gcs-server emulator rooted in DIR/gcs: the server at
// LOKLAK_GCS_STANDIN_URL when that is set, testbed/gcs, else one run inside the plugin) and IAM service
// accounts in the directory DIR named by LOKLAK_GCE_STANDIN_DIR. It never talks to Google Cloud, and it refuses to start without
// that directory, so it cannot pass for the real provider by accident.
//
// hack/toolchain.sh builds it with -X main.version set to the pulumi-gcp SDK version in go.mod.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/loklak/loklak-dumps/testbed/gcp"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
)

// version is the plugin version reported to the engine; the toolchain sets it from go.mod.
var version = "0.0.0-dev"

func main() {
	printVersion := flag.Bool("version", false, "print the plugin version and exit")
	flag.Parse() // the engine passes its own address as the one argument; the stand-in does not call back
	if *printVersion {
		fmt.Println(version)
		return
	}
	if err := serve(); err != nil {
		fmt.Fprintln(os.Stderr, "pulumi-resource-gcp (Compute Engine stand-in for tests):", err)
		os.Exit(1)
	}
}

func serve() error {
	dir := os.Getenv(gcp.DirEnv)
	if dir == "" {
		return fmt.Errorf("%s is not set. This plugin is a test stand-in that simulates Compute Engine in a directory; "+
			"it is not the GCP provider and never talks to Google Cloud", gcp.DirEnv)
	}
	compute, err := gcp.Open(dir)
	if err != nil {
		return err
	}
	provider, err := gcp.NewProvider(compute, version)
	if err != nil {
		return err
	}
	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Init: func(srv *grpc.Server) error {
			pulumirpc.RegisterResourceProviderServer(srv, plugin.NewProviderServer(provider))
			return nil
		},
	})
	if err != nil {
		return err
	}
	fmt.Println(handle.Port) // the engine reads the port from the first line of standard output
	return <-handle.Done
}
