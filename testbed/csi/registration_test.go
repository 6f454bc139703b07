package csi

import (
	"path/filepath"
	"slices"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	registerapi "k8s.io/kubelet/pkg/apis/pluginregistration/v1"
)

// TestRegistrationAnswersTheKubelet plays the kubelet's plugin watcher against the registration socket:
// GetInfo names the driver and its CSI endpoint, and the kubelet's answer is kept.
func TestRegistrationAnswersTheKubelet(t *testing.T) {
	dir := t.TempDir()
	reg := &Registration{Endpoint: "/run/csi-gce/csi.sock"}
	lis, err := Listen(RegistrationSocket(filepath.Join(dir, "plugins_registry")))
	if err != nil {
		t.Fatal(err)
	}
	server := reg.NewServer()
	go func() { _ = server.Serve(lis) }()
	t.Cleanup(server.Stop)
	conn, err := grpc.NewClient("unix:"+RegistrationSocket(filepath.Join(dir, "plugins_registry")), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	client := registerapi.NewRegistrationClient(conn)

	info, err := client.GetInfo(bg, &registerapi.InfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if info.GetType() != registerapi.CSIPlugin || info.GetName() != DriverName || info.GetEndpoint() != "/run/csi-gce/csi.sock" ||
		!slices.Contains(info.GetSupportedVersions(), "1.0.0") {
		t.Errorf("GetInfo = %v", info)
	}
	if reg.Status() == nil {
		t.Error("registered before the kubelet answered")
	}
	if _, err := client.NotifyRegistrationStatus(bg, &registerapi.RegistrationStatus{PluginRegistered: false, Error: "no such version"}); err != nil {
		t.Fatal(err)
	}
	if err := reg.Status(); err == nil || err.Error() != "the kubelet refused the registration: no such version" {
		t.Errorf("after a refusal: %v", err)
	}
	if _, err := client.NotifyRegistrationStatus(bg, &registerapi.RegistrationStatus{PluginRegistered: true}); err != nil {
		t.Fatal(err)
	}
	if err := reg.Status(); err != nil {
		t.Errorf("after the registration: %v", err)
	}
}
