package harness

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loklak/loklak-dumps/testbed/gcp"
)

// The engine's environment never lets client-go fall back to the developer's own ~/.kube/config: an
// unset or empty KUBECONFIG would, so it is always a file the test controls (or one that does not exist),
// and HOME is the driver's own.
func TestDriverEnvNeverFallsBackToTheDevelopersCluster(t *testing.T) {
	state := t.TempDir()
	env := Driver{StateDir: state}.Env()
	kubeconfig := env["KUBECONFIG"]
	if kubeconfig == "" || !strings.HasPrefix(kubeconfig, state) {
		t.Errorf("KUBECONFIG = %q, want a path inside the driver's state directory %s", kubeconfig, state)
	}
	if _, err := os.Stat(kubeconfig); !os.IsNotExist(err) {
		t.Errorf("without an ambient kubeconfig, KUBECONFIG must name no file; stat: %v", err)
	}
	if home := env["HOME"]; !strings.HasPrefix(home, state) {
		t.Errorf("HOME = %q, want the driver's own, inside %s", home, state)
	}
	loopback := filepath.Join(state, "cluster.kubeconfig")
	if got := (Driver{StateDir: state, AmbientKubeconfig: loopback}).Env()["KUBECONFIG"]; got != loopback {
		t.Errorf("KUBECONFIG = %q, want the loopback cluster's %q", got, loopback)
	}
}

// The stand-in GCP plugin talks to the Cloud Storage server the driver names, and to none when it names
// none, even if this process's environment has a URL.
func TestDriverEnvNamesTheStorageServer(t *testing.T) {
	t.Setenv(gcp.StorageURLEnv, "http://127.0.0.1:1")
	env := Driver{StateDir: t.TempDir()}.Env()
	if url, set := env[gcp.StorageURLEnv]; !set || url != "" {
		t.Errorf("without StorageEmulatorURL: %s = %q (set %v), want it set and empty", gcp.StorageURLEnv, url, set)
	}
	const url = "http://127.0.0.1:4443"
	if got := (Driver{StateDir: t.TempDir(), StorageEmulatorURL: url}).Env()[gcp.StorageURLEnv]; got != url {
		t.Errorf("%s = %q, want %q", gcp.StorageURLEnv, got, url)
	}
}
