//go:build e2e

// Package realnode runs the committed stacks on a real node: the real Pulumi engine and Kubernetes
// provider, a real control plane, and a real kubelet with containerd, runc and the CNI bridge that runs
// loklak's stand-in (testbed/loklak) from the Docker Hub stand-in (testbed/dockerhub) and mounts the
// stack's disk, a sparse ext4 image of the simulated Compute Engine project, through the PD CSI driver
// stand-in (testbed/csi). What it proves is in bytes: the files loklak wrote, read back through the
// Service, hashed. Run it with `make e2e`, as root; it has its own control plane, started after the kwok
// suite's has stopped.
package realnode

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/loklak/loklak-dumps/testbed/gcs"
	"github.com/loklak/loklak-dumps/testbed/gke"
	"github.com/loklak/loklak-dumps/testbed/harness"
	"github.com/loklak/loklak-dumps/testbed/toolchain"
)

const (
	zone    = "us-central1-a"
	project = "loklak-server" // Pulumi.dev.yaml's gcpProject
)

var (
	tools toolchain.Tools
	cp    *gke.ControlPlane
	// gceDir is the simulated Compute Engine project: the GCP stand-in (through every test's driver) and
	// the node's CSI plugin work on the same one, as a stack and GKE's node work on one project.
	gceDir string
	// cloudStorage is the project's Cloud Storage, served on loopback (the GCP stand-in's buckets) and on the
	// node's IP (what a pod reaches, as pods reach storage.googleapis.com): nodeIP.
	cloudStorage *gcs.Emulator
	nodeIP       string
)

// TestMain starts one control plane with a real node for the package and stops it on success, failure
// or interrupt. A machine that cannot run the node fails here, saying why; nothing is skipped.
func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	if tools, err = toolchain.ToolsFromEnv(); err != nil {
		fmt.Fprintln(os.Stderr, "realnode:", err)
		return 1
	}
	// Short: the kubelet's plugin sockets live below it and a unix socket path has 107 bytes.
	dir, err := os.MkdirTemp("", "loklak-realnode-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "realnode:", err)
		return 1
	}
	gceDir = filepath.Join(dir, "gce")
	start := time.Now()
	cp, err = gke.StartControlPlane(context.Background(), tools, filepath.Join(dir, "cluster"), gke.ControlPlaneOptions{
		Zone: zone, RealNode: &gke.RealNodeOptions{Project: project, GCEDir: gceDir},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "realnode: control plane with a real node:", err)
		return 1
	}
	fmt.Printf("realnode: control plane and real node ready in %.1f s at %s\n", time.Since(start).Seconds(), cp.Server)
	if cloudStorage, err = startStorage(); err != nil {
		fmt.Fprintln(os.Stderr, "realnode: cloud storage:", err)
		_ = cp.Stop()
		return 1
	}
	defer func() { _ = cloudStorage.Stop() }()
	interrupted := make(chan os.Signal, 1)
	signal.Notify(interrupted, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-interrupted
		_ = cp.Stop()
		os.Exit(130)
	}()
	code := m.Run()
	if err := cp.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "realnode: the node left something behind:", err)
		code = 1
	}
	if code == 0 {
		if err := os.RemoveAll(dir); err != nil {
			fmt.Fprintln(os.Stderr, "realnode:", err)
		}
	} else {
		fmt.Fprintln(os.Stderr, "realnode: logs kept in", dir)
	}
	return code
}

// repoDir is the project root: Pulumi.yaml and the stack files.
func repoDir(t *testing.T) string {
	dir, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func newDriver(t *testing.T) harness.Driver {
	return harness.Driver{Tools: tools, RepoDir: repoDir(t), StateDir: t.TempDir(), Passphrase: "e2e-passphrase",
		AmbientKubeconfig: cp.Kubeconfig, GCEDir: gceDir, StorageEmulatorURL: cloudStorage.URL()}
}

// startStorage serves the simulated project's Cloud Storage on loopback and on the real node's IP.
func startStorage() (*gcs.Emulator, error) {
	out, err := cp.Kubectl(context.Background(), "get", "node", gke.RealNodeName, "-o", `jsonpath={.status.addresses[?(@.type=="InternalIP")].address}`)
	if err != nil {
		return nil, err
	}
	if nodeIP = strings.TrimSpace(string(out)); nodeIP == "" {
		return nil, fmt.Errorf("node %s has no InternalIP", gke.RealNodeName)
	}
	return gcs.Start(gceDir, nodeIP)
}
