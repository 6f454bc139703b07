//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// The built tools report the versions this module pins: the Pulumi CLI and the Compute Engine stand-in
// the SDK versions in go.mod, kubectl and the API server the toolchain's Kubernetes pin. Read from the
// binaries themselves, so a stale cache or a wrong -ldflags shows.
func TestToolsReportThePinnedVersions(t *testing.T) {
	gomod := goModVersions(t)
	pins := map[string]string{}
	out, err := exec.Command("../../hack/toolchain.sh", "--versions").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		name, version, _ := strings.Cut(line, " ")
		pins[name] = version
	}
	run := func(tool string, args ...string) string {
		t.Helper()
		out, err := tools.Command(tool, args...).Output()
		if err != nil {
			t.Fatalf("%s %v: %v", tool, args, err)
		}
		return strings.TrimSpace(string(out))
	}
	want(t, "pulumi version", run("pulumi", "version"), gomod["github.com/pulumi/pulumi/sdk/v3"])
	want(t, "pulumi-resource-gcp -version", "v"+run("pulumi-resource-gcp", "-version"), gomod["github.com/pulumi/pulumi-gcp/sdk/v7"])
	client := object{}
	if err := json.Unmarshal([]byte(run("kubectl", "version", "--client", "-o", "json")), &client); err != nil {
		t.Fatal(err)
	}
	want(t, "kubectl", client.str("clientVersion.gitVersion"), pins["kubernetes"])
	server, err := cp.Kubectl(context.Background(), "get", "--raw", "/version")
	if err != nil {
		t.Fatal(err)
	}
	got := object{}
	if err := json.Unmarshal(server, &got); err != nil {
		t.Fatal(err)
	}
	want(t, "kube-apiserver", got.str("gitVersion"), pins["kubernetes"])
}

// goModVersions reads the required module versions from go.mod.
func goModVersions(t *testing.T) map[string]string {
	t.Helper()
	data, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	versions := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && strings.HasPrefix(f[1], "v") {
			versions[f[0]] = f[1]
		}
	}
	return versions
}
