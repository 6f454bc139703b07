package csi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	registerapi "k8s.io/kubelet/pkg/apis/pluginregistration/v1"
)

// maxSocketPath is the longest path a unix socket address holds on Linux (sun_path, less its NUL).
const maxSocketPath = 107

// Listen opens a unix socket at path, replacing a stale socket file left by an earlier run.
func Listen(path string) (net.Listener, error) {
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("csi: socket path %s is %d bytes; a unix socket path holds at most %d", path, len(path), maxSocketPath)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("csi: %s exists and is not a socket", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, err
	}
	return net.Listen("unix", path)
}

// NewServer returns a gRPC server with the driver's Identity, Controller and Node services, which logs
// every call that fails.
func (d *Driver) NewServer() *grpc.Server {
	s := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		resp, err := handler(ctx, req)
		if err != nil {
			d.logf("%s: %v", info.FullMethod, status.Convert(err).Message())
		}
		return resp, err
	}))
	csi.RegisterIdentityServer(s, d)
	csi.RegisterControllerServer(s, d)
	csi.RegisterNodeServer(s, d)
	return s
}

// Registration answers a kubelet's plugin watcher (k8s.io/kubelet pluginregistration/v1), what
// node-driver-registrar does for a real CSI driver: a socket in the kubelet's plugins_registry directory
// whose GetInfo names the driver and the CSI endpoint. The kubelet then calls NodeGetInfo there and
// records the node ID and topology in the node's CSINode object.
type Registration struct {
	registerapi.UnimplementedRegistrationServer
	// Endpoint is the CSI socket's path, as the kubelet on this machine reaches it.
	Endpoint string
	Logf     func(format string, args ...any)

	mu     sync.Mutex
	status *registerapi.RegistrationStatus
}

// RegistrationSocket is the socket's name in the kubelet's plugins_registry directory, as
// node-driver-registrar names it.
func RegistrationSocket(dir string) string { return filepath.Join(dir, DriverName+"-reg.sock") }

// NewServer returns a gRPC server for the registration socket.
func (r *Registration) NewServer() *grpc.Server {
	s := grpc.NewServer()
	registerapi.RegisterRegistrationServer(s, r)
	return s
}

// GetInfo names the driver, its CSI endpoint and the CSI versions it speaks.
func (r *Registration) GetInfo(context.Context, *registerapi.InfoRequest) (*registerapi.PluginInfo, error) {
	return &registerapi.PluginInfo{Type: registerapi.CSIPlugin, Name: DriverName, Endpoint: r.Endpoint, SupportedVersions: []string{"1.0.0"}}, nil
}

// NotifyRegistrationStatus keeps what the kubelet answered, and logs a refusal.
func (r *Registration) NotifyRegistrationStatus(_ context.Context, s *registerapi.RegistrationStatus) (*registerapi.RegistrationStatusResponse, error) {
	r.mu.Lock()
	r.status = s
	r.mu.Unlock()
	if r.Logf != nil {
		if s.GetPluginRegistered() {
			r.Logf("the kubelet registered %s at %s", DriverName, r.Endpoint)
		} else {
			r.Logf("the kubelet refused to register %s: %s", DriverName, s.GetError())
		}
	}
	return &registerapi.RegistrationStatusResponse{}, nil
}

// Status is the kubelet's last answer: whether it registered the driver, or why not. Before any answer it
// is an error.
func (r *Registration) Status() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.status == nil:
		return errors.New("the kubelet has not answered the registration yet")
	case !r.status.GetPluginRegistered():
		return fmt.Errorf("the kubelet refused the registration: %s", r.status.GetError())
	}
	return nil
}
