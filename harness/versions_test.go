package harness

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// The toolchain's Pulumi CLI and the Kubernetes plugin version it registers must be the SDK versions
// this module is built with (go.mod), or the engine and the program speak different releases.
func TestToolchainVersionsFollowGoMod(t *testing.T) {
	out, err := exec.Command("../hack/toolchain.sh", "--versions").Output()
	if err != nil {
		t.Fatalf("hack/toolchain.sh --versions: %v", err)
	}
	pinned := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		name, version, _ := strings.Cut(line, " ")
		pinned[name] = version
	}
	gomod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	built := map[string]string{}
	for _, line := range strings.Split(string(gomod), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && strings.HasPrefix(f[1], "v") {
			built[f[0]] = f[1]
		}
	}
	for tool, module := range map[string]string{
		"pulumi":            "github.com/pulumi/pulumi/sdk/v3",
		"kubernetes-plugin": "github.com/pulumi/pulumi-kubernetes/sdk/v4",
	} {
		if pinned[tool] == "" || pinned[tool] != built[module] {
			t.Errorf("toolchain %s = %q, but this module is built with %s %q", tool, pinned[tool], module, built[module])
		}
	}
}
