package gke

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
	"sigs.k8s.io/yaml"
)

// The kubelet configuration the node writes is a KubeletConfiguration the kubelet accepts: every field
// decodes strictly into k8s.io/kubelet's type (a misspelled field would fail here, not at the kubelet's
// start), with the values the node relies on.
func TestKubeletConfigDecodesIntoTheKubeletsType(t *testing.T) {
	var c kubeletv1beta1.KubeletConfiguration
	if err := yaml.UnmarshalStrict([]byte(kubeletConfig("/n", "192.0.2.2", 10250, 10248)), &c); err != nil {
		t.Fatal(err)
	}
	checks := map[string][2]string{
		"cgroupDriver":             {c.CgroupDriver, "cgroupfs"},
		"cgroupRoot":               {c.CgroupRoot, kubeletCgroupRoot},
		"containerRuntimeEndpoint": {c.ContainerRuntimeEndpoint, "unix:///n/containerd.sock"},
		"address":                  {c.Address, "192.0.2.2"},
		"podLogsDir":               {c.PodLogsDir, "/n/logs"},
		"authorization.mode":       {string(c.Authorization.Mode), "AlwaysAllow"},
		"evictionHard":             {c.EvictionHard["nodefs.available"], "1%"},
	}
	for field, v := range checks {
		if v[0] != v[1] {
			t.Errorf("%s = %q, want %q", field, v[0], v[1])
		}
	}
	if c.ReadOnlyPort != 0 || c.Port != 10250 || c.HealthzPort == nil || *c.HealthzPort != 10248 {
		t.Errorf("ports: read-only %d, port %d, healthz %v", c.ReadOnlyPort, c.Port, c.HealthzPort)
	}
}

// containerd's configuration is TOML with its files under the node's directory, the docker.io mirror,
// and restrict_oom_score_adj (without it every sandbox fails here: field-facts.md).
func TestContainerdConfigKeepsItsFilesInTheNodeDir(t *testing.T) {
	var c map[string]any
	if _, err := toml.Decode(containerdConfig("/n", "127.0.0.1:5000"), &c); err != nil {
		t.Fatal(err)
	}
	cri, _ := lookup(c, "plugins", "io.containerd.grpc.v1.cri").(map[string]any)
	for _, path := range [][]any{{c["root"]}, {c["state"]}, {lookup(c, "grpc", "address")}, {lookup(c, "ttrpc", "address")},
		{lookup(c, "plugins", "io.containerd.internal.v1.opt", "path")}, {lookup(cri, "cni", "conf_dir")},
		{lookup(cri, "containerd", "runtimes", "runc", "options", "Root")}} {
		if s, _ := path[0].(string); !strings.HasPrefix(s, "/n/") {
			t.Errorf("a containerd path outside the node's directory: %v", path[0])
		}
	}
	if cri["restrict_oom_score_adj"] != true {
		t.Errorf("restrict_oom_score_adj = %v, want true", cri["restrict_oom_score_adj"])
	}
	if got := lookup(cri, "registry", "mirrors", "docker.io", "endpoint"); !slices.Equal(toStrings(got), []string{"http://127.0.0.1:5000"}) {
		t.Errorf("docker.io mirror = %v", got)
	}
	if cri["sandbox_image"] != pauseImage {
		t.Errorf("sandbox_image = %v, want %s", cri["sandbox_image"], pauseImage)
	}
}

func TestCNIConfigIsABridgeWithAddressesUnderTheNodeDir(t *testing.T) {
	var c struct {
		Name    string
		Plugins []struct {
			Type, Bridge string
			IPAM         struct {
				Type, DataDir string
			}
		}
	}
	if err := json.Unmarshal([]byte(cniConfig("/n")), &c); err != nil {
		t.Fatal(err)
	}
	if c.Name != cniNetwork || len(c.Plugins) != 2 || c.Plugins[0].Type != "bridge" || c.Plugins[0].Bridge != bridgeName ||
		c.Plugins[0].IPAM.Type != "host-local" || c.Plugins[0].IPAM.DataDir != "/n/cni/ipam" {
		t.Errorf("CNI config = %+v", c)
	}
}

func TestNetworkNamespacesFromAContainersSpec(t *testing.T) {
	info := []byte(`{"Spec": {"linux": {"namespaces": [{"type": "pid"}, {"type": "network", "path": "/var/run/netns/cni-1"},
	  {"type": "network", "path": "/proc/1/ns/net"}, {"type": "ipc"}]}}}`)
	if got := networkNamespaces(info); !slices.Equal(got, []string{"/var/run/netns/cni-1"}) {
		t.Errorf("networkNamespaces = %v, want only the /var/run/netns one", got)
	}
	if got := networkNamespaces([]byte("not json")); got != nil {
		t.Errorf("networkNamespaces(garbage) = %v", got)
	}
}

func TestUnescapeMountPath(t *testing.T) {
	if got := unescapeMountPath(`/a\040b\011c\134d`); got != "/a b\tc\\d" {
		t.Errorf("unescapeMountPath = %q", got)
	}
}

// Only the links into the node's directory go: the kubelet's /var/log/containers may hold others'.
func TestRemoveLinksIntoLeavesOthersLinks(t *testing.T) {
	dir, node := t.TempDir(), t.TempDir()
	for name, target := range map[string]string{"ours.log": filepath.Join(node, "logs/a.log"), "theirs.log": "/var/log/pods/x.log"} {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := removeLinksInto(dir, node); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "theirs.log" {
		t.Errorf("left %v, want only theirs.log", entries)
	}
}

// NodeDir follows the Dir/node link to the node's short directory, and is Dir/node without one.
func TestNodeDirFollowsTheLink(t *testing.T) {
	dir := t.TempDir()
	if got := NodeDir(dir); got != filepath.Join(dir, nodeDirName) {
		t.Errorf("NodeDir without a link = %s", got)
	}
	nd, err := makeNodeDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(nd) })
	if got := NodeDir(dir); got != nd {
		t.Errorf("NodeDir = %s, want %s", got, nd)
	}
	if len(filepath.Join(nd, kubeletRootDir, "plugins_registry", DriverName+"-reg.sock")) > maxUnixSocketBytes {
		t.Errorf("the registration socket under %s would not fit a unix socket path", nd)
	}
}

func lookup(m any, keys ...string) any {
	for _, k := range keys {
		mm, ok := m.(map[string]any)
		if !ok {
			return nil
		}
		m = mm[k]
	}
	return m
}

func toStrings(v any) []string {
	list, _ := v.([]any)
	var out []string
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}
