// Command csi-gce-standin is the test stand-in for the Compute Engine PD CSI driver (package testbed/csi):
// a CSI plugin named pd.csi.storage.gke.io that attaches, mounts and grows the disks of the simulated
// Compute Engine project in LOKLAK_GCE_STANDIN_DIR (or -dir), for a real kubelet on this machine. It
// serves the Identity, Controller and Node services on one unix socket (-endpoint) and, with
// -registration-dir, registers itself with the kubelet's plugin watcher, as node-driver-registrar would.
//
// It refuses to start without the simulated project, so it cannot pass for the real driver, and it needs
// root: its node service sets up loop devices and mounts.
//
//	csi-gce-standin -endpoint /run/csi-gce/csi.sock -project P -zone us-central1-a -instance node-1 \
//	    -registration-dir /var/lib/kubelet/plugins_registry
package main

import (
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/loklak/loklak-dumps/testbed/csi"
	"github.com/loklak/loklak-dumps/testbed/gcp"
	"google.golang.org/grpc"
)

var version = "0.0.0-standin"

func main() {
	endpoint := flag.String("endpoint", "", "path of the unix socket to serve CSI on")
	dir := flag.String("dir", os.Getenv(gcp.DirEnv), "the simulated Compute Engine project's directory (default $"+gcp.DirEnv+")")
	project := flag.String("project", "", "the node's project")
	zone := flag.String("zone", "", "the node's zone (its topology.gke.io/zone)")
	instance := flag.String("instance", "", "the node's instance name (its node ID is projects/P/zones/Z/instances/N)")
	regDir := flag.String("registration-dir", "", "the kubelet's plugins_registry directory; empty: do not register")
	flag.Parse()
	if err := run(*endpoint, *dir, *project, *zone, *instance, *regDir); err != nil {
		fmt.Fprintln(os.Stderr, "csi-gce-standin (PD CSI driver stand-in for tests):", err)
		os.Exit(1)
	}
}

// logger writes to standard error. The standard logger cannot: the Pulumi SDK, which testbed/gcp imports,
// makes the slog default (and with it package log) discard output until a Pulumi engine configures it.
var logger = log.New(os.Stderr, "", log.LstdFlags)

func run(endpoint, dir, project, zone, instance, regDir string) error {
	switch {
	case dir == "":
		return fmt.Errorf("no simulated project: set %s or -dir. This plugin stands in for the PD CSI driver in tests; "+
			"it never talks to Google Cloud", gcp.DirEnv)
	case endpoint == "":
		return errors.New("-endpoint is required")
	case os.Geteuid() != 0:
		return errors.New("must run as root: the node service sets up loop devices and mounts")
	}
	if err := csi.CheckNodeTools(); err != nil {
		return err
	}
	compute, err := gcp.Open(dir)
	if err != nil {
		return err
	}
	driver, err := csi.NewDriver(csi.Config{Compute: compute, Project: project, Zone: zone, Instance: instance,
		Version: version, Logf: logger.Printf})
	if err != nil {
		return err
	}
	servers := []*grpc.Server{}
	errs := make(chan error, 2)
	serve := func(s *grpc.Server, path string) error {
		lis, err := csi.Listen(path)
		if err != nil {
			return err
		}
		servers = append(servers, s)
		go func(l net.Listener) { errs <- s.Serve(l) }(lis)
		return nil
	}
	if err := serve(driver.NewServer(), endpoint); err != nil {
		return err
	}
	logger.Printf("serving %s for node %s on %s", csi.DriverName, driver.NodeID(), endpoint)
	if regDir != "" {
		reg := &csi.Registration{Endpoint: endpoint, Logf: logger.Printf}
		if err := serve(reg.NewServer(), csi.RegistrationSocket(regDir)); err != nil {
			return err
		}
		logger.Printf("registration socket %s", csi.RegistrationSocket(regDir))
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	select {
	case sig := <-stop:
		logger.Printf("%v: stopping", sig)
	case err = <-errs:
	}
	for _, s := range servers {
		s.GracefulStop() // also removes the socket files
	}
	return err
}
