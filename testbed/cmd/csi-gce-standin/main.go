// Command csi-gce-standin is the test stand-in for the Compute Engine PD CSI driver (package testbed/csi):
// a CSI plugin named pd.csi.storage.gke.io that attaches, mounts and grows the disks of the simulated
// Compute Engine project in LOKLAK_GCE_STANDIN_DIR (or -dir), for a real kubelet on this machine. It
// serves the Identity, Controller and Node services on one unix socket (-endpoint) and, with
// -registration-dir, registers itself with the kubelet's plugin watcher, as node-driver-registrar would.
// With -kubeconfig it also does external-attacher's job for the driver (csi.Attacher): it acts on the
// cluster's VolumeAttachments for pd.csi.storage.gke.io by calling its own socket, as the attacher
// sidecar does, and logs one line per attach and detach.
//
// It refuses to start without the simulated project, so it cannot pass for the real driver, and it needs
// root: its node service sets up loop devices and mounts.
//
//	csi-gce-standin -endpoint /run/csi-gce/csi.sock -project P -zone us-central1-a -instance node-1 \
//	    -registration-dir /var/lib/kubelet/plugins_registry -kubeconfig /etc/kubernetes/admin.conf
//
// SIGTERM or SIGINT stops the attacher (the VolumeAttachments in hand are finished first), then the
// servers.
package main

import (
	"context"
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
	"google.golang.org/grpc/credentials/insecure"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

var version = "0.0.0-standin"

func main() {
	endpoint := flag.String("endpoint", "", "path of the unix socket to serve CSI on")
	dir := flag.String("dir", os.Getenv(gcp.DirEnv), "the simulated Compute Engine project's directory (default $"+gcp.DirEnv+")")
	project := flag.String("project", "", "the node's project")
	zone := flag.String("zone", "", "the node's zone (its topology.gke.io/zone)")
	instance := flag.String("instance", "", "the node's instance name (its node ID is projects/P/zones/Z/instances/N)")
	regDir := flag.String("registration-dir", "", "the kubelet's plugins_registry directory; empty: do not register")
	kubeconfig := flag.String("kubeconfig", "", "a kubeconfig for the cluster whose VolumeAttachments to act on, as external-attacher does; empty: no attacher")
	flag.Parse()
	if err := run(*endpoint, *dir, *project, *zone, *instance, *regDir, *kubeconfig); err != nil {
		fmt.Fprintln(os.Stderr, "csi-gce-standin (PD CSI driver stand-in for tests):", err)
		os.Exit(1)
	}
}

// logger writes to standard error. The standard logger cannot: the Pulumi SDK, which testbed/gcp imports,
// makes the slog default (and with it package log) discard output until a Pulumi engine configures it.
var logger = log.New(os.Stderr, "", log.LstdFlags)

func run(endpoint, dir, project, zone, instance, regDir, kubeconfig string) error {
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
	var attacher *csi.Attacher
	var conn *grpc.ClientConn // the attacher's, to this plugin's socket
	if kubeconfig != "" {
		if attacher, conn, err = newAttacher(kubeconfig, endpoint); err != nil {
			return err
		}
		defer func() { _ = conn.Close() }() // on an early return; closing twice is harmless
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
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var attacherDone chan error // nil, and never ready, without an attacher
	if attacher != nil {
		attacherDone = make(chan error, 1)
		go func() { attacherDone <- attacher.Run(ctx) }()
		logger.Printf("attacher: acting on the VolumeAttachments of %s in the cluster of %s", csi.DriverName, kubeconfig)
	}
	select {
	case sig := <-stop:
		logger.Printf("%v: stopping", sig)
	case err = <-errs:
	case err = <-attacherDone:
		if err == nil {
			err = errors.New("the attacher stopped")
		}
		attacherDone = nil
	}
	cancel()
	if attacherDone != nil {
		if aerr := <-attacherDone; aerr != nil && err == nil {
			err = aerr
		}
	}
	if conn != nil {
		_ = conn.Close() // before GracefulStop, which waits for its clients' connections
	}
	for _, s := range servers {
		s.GracefulStop() // also removes the socket files
	}
	return err
}

// newAttacher connects an attacher to the cluster of the kubeconfig and to this plugin's own socket, as
// external-attacher reaches its driver's. Nothing is dialed yet: the socket need not exist.
func newAttacher(kubeconfig, endpoint string) (*csi.Attacher, *grpc.ClientConn, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, nil, fmt.Errorf("attacher: reading kubeconfig %s: %w", kubeconfig, err)
	}
	cfg.UserAgent = "csi-gce-standin-attacher"
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("attacher: %w", err)
	}
	conn, err := grpc.NewClient("unix:"+endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, nil, fmt.Errorf("attacher: connecting to %s: %w", endpoint, err)
	}
	a, err := csi.NewAttacher(csi.AttacherConfig{Client: client, Conn: conn, Logf: logger.Printf})
	if err != nil {
		_ = conn.Close()
		return nil, nil, err
	}
	return a, conn, nil
}
