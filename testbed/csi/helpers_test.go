package csi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/loklak/loklak-dumps/testbed/gcp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	mount "k8s.io/mount-utils"
)

const (
	testProject = "p1"
	testZone    = "us-central1-a"
	testNode    = "node-1"
)

// plugin is a driver served on a unix socket in the test's own directory, with its simulated project
// beside it, and a client for it.
type plugin struct {
	dir     string
	socket  string
	compute *gcp.Compute
	driver  *Driver
	conn    *grpc.ClientConn
}

func (p plugin) controller() csi.ControllerClient { return csi.NewControllerClient(p.conn) }
func (p plugin) node() csi.NodeClient             { return csi.NewNodeClient(p.conn) }

// needRoot fails the test, with the reason, where the node service cannot run: it sets up loop devices
// and mounts. CI runs as root; so must anyone who runs these tests.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root: the CSI node service sets up loop devices (losetup) and mounts ext4; run it as root, as CI does")
	}
	if err := CheckNodeTools(); err != nil {
		t.Fatal(err)
	}
}

// startPlugin serves a driver for node testNode in testZone. Every loop device on an image under the
// test's directory and every mount below it is released when the test ends, also when it fails, before
// the directory is removed.
func startPlugin(t *testing.T) plugin {
	t.Helper()
	dir := t.TempDir() // removed after the cleanups registered below
	t.Cleanup(func() { release(t, dir) })
	compute, err := gcp.Open(filepath.Join(dir, "gce"))
	if err != nil {
		t.Fatal(err)
	}
	driver, err := NewDriver(Config{Compute: compute, Project: testProject, Zone: testZone, Instance: testNode})
	if err != nil {
		t.Fatal(err)
	}
	var logging atomic.Bool // t.Logf must not run after the test
	logging.Store(true)
	driver.cfg.Logf = func(format string, args ...any) {
		if logging.Load() {
			t.Logf(format, args...)
		}
	}
	socket := filepath.Join(dir, "csi.sock")
	lis, err := Listen(socket)
	if err != nil {
		t.Fatal(err)
	}
	server := driver.NewServer()
	go func() { _ = server.Serve(lis) }()
	conn, err := grpc.NewClient("unix:"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		server.Stop()
		logging.Store(false)
	})
	return plugin{dir: dir, socket: socket, compute: compute, driver: driver, conn: conn}
}

// release unmounts everything mounted below dir (deepest first) and detaches every loop device backed by
// an image below dir. It touches nothing else.
func release(t *testing.T, dir string) {
	mounter := mount.NewWithoutSystemd("")
	mounts, err := mounter.List()
	if err != nil {
		t.Errorf("listing mounts: %v", err)
	}
	var below []string
	for _, m := range mounts {
		if strings.HasPrefix(m.Path, dir+string(filepath.Separator)) {
			below = append(below, m.Path)
		}
	}
	slices.SortFunc(below, func(a, b string) int { return len(b) - len(a) })
	for _, p := range below {
		if err := syscall.Unmount(p, 0); err != nil {
			t.Errorf("cleanup: unmounting %s: %v; detaching it", p, err)
			_ = syscall.Unmount(p, syscall.MNT_DETACH)
		}
	}
	if os.Geteuid() != 0 {
		return // without root the plugin set up no loop devices
	}
	_ = filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || !strings.HasSuffix(path, gcp.ImageExt) {
			return nil
		}
		devs, err := loopsOf(absImage(path))
		if err != nil {
			t.Errorf("cleanup: %v", err)
		}
		for _, dev := range devs {
			if err := detachLoop(dev); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
		return nil
	})
}

func randomName(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

func mountCapability() *csi.VolumeCapability {
	return &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{FsType: "ext4"}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
	}
}

var bg = context.Background()
