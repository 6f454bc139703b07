package csi

import (
	"context"
	"errors"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"net"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kubernetes-csi/csi-test/v5/pkg/sanity"
	"github.com/loklak/loklak-dumps/testbed/gcp"
)

// idGen makes the IDs csi-sanity sends: valid ones in the PD CSI driver's forms, in the test's project
// and zone, naming disks and instances that do not exist.
type idGen struct{}

func (idGen) GenerateUniqueValidVolumeID() string {
	return gcp.DiskPath(testProject, testZone, randomName("sanity-missing-"))
}
func (idGen) GenerateInvalidVolumeID() string { return "fake-vol-id" }
func (idGen) GenerateUniqueValidNodeID() string {
	return gcp.InstancePath(testProject, testZone, randomName("sanity-node-"))
}
func (idGen) GenerateInvalidNodeID() string { return "fake-node-id" }

// TestSanity runs csi-sanity, CSI's own conformance suite (kubernetes-csi/csi-test), against the plugin on
// a socket: every volume it creates is a disk of a simulated project in the test's directory, staged on a
// loop device and mounted below that directory.
func TestSanity(t *testing.T) {
	needRoot(t)
	p := startPlugin(t)
	cfg := sanity.NewTestConfig()
	// csi-test v5.3.1's utils.Connect dials, then waits for a state change from the state it reads next:
	// when a local socket connects before that read, it waits for a change that never comes and fails
	// after a minute ("Connection timed out", seen once under CI load). Through an address of another
	// scheme, Connect uses this dialer, which refuses the first attempt: gRPC then backs off (a second or
	// so) before it connects, so Connect sees the connection go to Ready.
	var refused atomic.Bool
	cfg.Address = "passthrough:///csi-gce-standin"
	cfg.DialOptions = []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			if refused.CompareAndSwap(false, true) {
				return nil, errors.New("the first attempt is refused on purpose (see TestSanity)")
			}
			return (&net.Dialer{}).DialContext(ctx, "unix", p.socket)
		}),
	}
	cfg.TargetPath = filepath.Join(p.dir, "target")
	cfg.StagingPath = filepath.Join(p.dir, "staging")
	cfg.IDGen = idGen{}
	start := time.Now()
	sanity.Test(t, cfg)
	t.Logf("csi-sanity took %v", time.Since(start).Round(time.Millisecond))
}
