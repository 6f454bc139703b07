package harness

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
