package gke

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// RealNodeOptions ask StartControlPlane for one real node instead of kwok's fake one: a kubelet built from
// the control plane's source, Debian's containerd and runc, the CNI bridge, the PD CSI driver stand-in
// (testbed/csi) acting on the disks of a simulated Compute Engine project, and the Docker Hub and
// registry.k8s.io stand-in (testbed/dockerhub) its containerd pulls images from. It needs root and a
// non-loopback IPv4 address.
type RealNodeOptions struct {
	// Name is the Node's name and its Compute Engine instance's (projects/PROJECT/zones/ZONE/instances/NAME).
	Name string
	// Project is the simulated project the node's instance is in: the PVs' volume handles name it.
	Project string
	// GCEDir is the simulated project's directory, the one the GCP stand-in writes (LOKLAK_GCE_STANDIN_DIR).
	GCEDir string
}

// RealNodeName is the real node's default name, as GKE names a node of a pool.
const RealNodeName = "gke-loklak-default-pool-0"

// DriverName is the CSI driver of the stack's PersistentVolumes, GKE's Compute Engine PD CSI driver.
const DriverName = "pd.csi.storage.gke.io"

// node paths, relative to Dir/node. Unix socket paths must fit in 107 bytes, so they stay short.
const (
	nodeDirName        = "node"
	containerdSocket   = "containerd.sock"
	csiSocket          = "csi.sock"
	kubeletRootDir     = "kubelet"
	cniConfDir         = "cni/net.d"
	cniNetwork         = "loklak-node" // the CNI network name; the CNI result cache names its files by it
	bridgeName         = "loklak0"     // the CNI bridge link on the host
	podCIDR            = "10.89.0.0/24"
	kubeletCgroupRoot  = "/loklak-node" // every pod cgroup lives below it, so teardown finds them all
	registryManifest   = "/v2/loklak/loklak_server/manifests/latest-development"
	pauseImage         = "docker.io/library/loklak-standin-pause:v1"
	maxUnixSocketBytes = 107
)

// NodeDir is where the real node of the control plane in dir keeps its state, configuration and sockets:
// a short directory of its own under the system's temporary directory, which Dir/node links to. Short,
// because the kubelet's and the CSI plugin's unix sockets live below it and a socket path has at most 107
// bytes, which a repository's .local/cluster/... or a test's temporary directory can exceed.
func NodeDir(dir string) string {
	link := filepath.Join(dir, nodeDirName)
	if target, err := filepath.EvalSymlinks(link); err == nil {
		return target
	}
	return link
}

// makeNodeDir makes the node's short directory and the Dir/node link to it.
func makeNodeDir(dir string) (string, error) {
	nd, err := os.MkdirTemp("", "loklak-node-")
	if err != nil {
		return "", err
	}
	if err := os.Symlink(nd, filepath.Join(dir, nodeDirName)); err != nil {
		return "", errors.Join(err, os.Remove(nd))
	}
	return nd, nil
}

// startRealNode starts the Docker Hub stand-in, containerd, the PD CSI driver stand-in (with its attacher)
// and the kubelet, each as a process of the control plane (so Stop and StopDir end them), and returns once
// the node is Ready and its CSINode lists the driver.
func (cp *ControlPlane) startRealNode(ctx context.Context, zone string, opts RealNodeOptions) error {
	if os.Geteuid() != 0 {
		return errors.New("the real node needs root: the kubelet, containerd and the CSI plugin's loop devices and mounts do; " +
			"run the tests as root (sudo -E env \"PATH=$PATH\" make e2e)")
	}
	if opts.Name == "" {
		opts.Name = RealNodeName
	}
	if opts.Project == "" || opts.GCEDir == "" {
		return errors.New("real node: Project and GCEDir (the simulated Compute Engine project) are required")
	}
	nodeIP, err := hostIPv4()
	if err != nil {
		return err
	}
	nd, err := makeNodeDir(cp.Dir)
	if err != nil {
		return err
	}
	regSocket := filepath.Join(nd, kubeletRootDir, "plugins_registry", DriverName+"-reg.sock")
	if len(regSocket) > maxUnixSocketBytes {
		return fmt.Errorf("real node: the socket path %s is %d bytes, more than a unix socket allows (%d): use a shorter directory",
			regSocket, len(regSocket), maxUnixSocketBytes)
	}
	for _, d := range []string{filepath.Dir(regSocket), filepath.Join(nd, cniConfDir), filepath.Join(nd, "cni/ipam"), filepath.Join(nd, "logs")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	state := nodeState{Name: opts.Name, GCEDir: opts.GCEDir}
	for _, p := range hostPathsTheKubeletCreates {
		if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
			state.Created = append(state.Created, p)
		}
	}
	if err := cp.writeNodeState(state); err != nil {
		return err
	}

	ports, err := reservePorts(3)
	if err != nil {
		return err
	}
	defer ports.releaseAll()
	registryPort, kubeletPort, healthzPort := ports.port(0), ports.port(1), ports.port(2)

	// Docker Hub and registry.k8s.io, for containerd's docker.io and registry.k8s.io mirrors: one process,
	// one loopback address, which tells the two apart by the ns= containerd adds to a mirror's requests.
	registry := "127.0.0.1:" + strconv.Itoa(registryPort)
	cp.Registry = registry
	ports.release(0)
	if err := cp.start("dockerhub-standin", "-listen", registry, "-binaries", cp.tools.Path("images")); err != nil {
		return err
	}
	if err := cp.waitFor(ctx, "the Docker Hub stand-in", 60*time.Second, func() error {
		return httpOK(ctx, "http://"+registry+registryManifest)
	}); err != nil {
		return err
	}

	// containerd.
	if err := writeFile(filepath.Join(nd, "containerd.toml"), containerdConfig(nd, registry)); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(nd, cniConfDir, "10-"+cniNetwork+".conflist"), cniConfig(nd)); err != nil {
		return err
	}
	if err := cp.start("containerd", "--config", filepath.Join(nd, "containerd.toml")); err != nil {
		return err
	}
	if err := cp.waitFor(ctx, "containerd", 30*time.Second, func() error {
		_, err := cp.tools.Command("ctr", "--address", filepath.Join(nd, containerdSocket), "version").Output()
		return err
	}); err != nil {
		return err
	}

	// The CSIDriver object GKE has: attach is required, so kube-controller-manager's attach/detach
	// controller creates VolumeAttachments (and runs its Multi-Attach check) and the plugin's attacher acts.
	if _, err := cp.KubectlInput(ctx, []byte(csiDriverObject), "apply", "-f", "-"); err != nil {
		return err
	}
	if err := cp.start("csi-gce-standin",
		"-endpoint", filepath.Join(nd, csiSocket), "-dir", opts.GCEDir,
		"-project", opts.Project, "-zone", zone, "-instance", opts.Name,
		"-registration-dir", filepath.Dir(regSocket), "-kubeconfig", cp.Kubeconfig,
	); err != nil {
		return err
	}

	// The kubelet. It runs pods below cgroupRoot, which must exist in every hierarchy.
	if err := makeCgroups(kubeletCgroupRoot); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(nd, "kubelet.yaml"), kubeletConfig(nd, nodeIP, kubeletPort, healthzPort)); err != nil {
		return err
	}
	ports.release(1, 2)
	if err := cp.start("kubelet",
		"--config="+filepath.Join(nd, "kubelet.yaml"), "--kubeconfig="+cp.Kubeconfig,
		"--root-dir="+filepath.Join(nd, kubeletRootDir), "--cert-dir="+filepath.Join(nd, "kubelet-pki"),
		"--hostname-override="+opts.Name, "--node-ip="+nodeIP,
		"--node-labels=topology.gke.io/zone="+zone+",topology.kubernetes.io/zone="+zone+",cloud.google.com/gke-nodepool=default-pool",
	); err != nil {
		return err
	}
	return cp.waitFor(ctx, "node "+opts.Name+" Ready with the CSI driver registered", 120*time.Second, func() error {
		out, err := cp.Kubectl(ctx, "get", "node", opts.Name, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
		if err != nil {
			return err
		}
		if strings.TrimSpace(string(out)) != "True" {
			return fmt.Errorf("Ready=%q", out)
		}
		out, err = cp.Kubectl(ctx, "get", "csinode", opts.Name, "-o", "jsonpath={.spec.drivers[*].name}")
		if err != nil {
			return err
		}
		if !strings.Contains(string(out), DriverName) {
			return fmt.Errorf("CSINode drivers %q", out)
		}
		return nil
	})
}

// nodeState is what teardown needs to know about the real node, kept in Dir/node/state.json so a detached
// control plane (the local run) can be cleaned by StopDir in another process.
type nodeState struct {
	Name   string `json:"name"`
	GCEDir string `json:"gceDir"`
	// Created lists the fixed host paths the kubelet creates that did not exist before it started
	// (hostPathsTheKubeletCreates), so teardown removes those and only those.
	Created []string `json:"created,omitempty"`
}

// hostPathsTheKubeletCreates are paths outside its root dir the kubelet creates whatever its flags: the
// device-plugin socket directory (fixed) and the container log links' directory (fixed).
var hostPathsTheKubeletCreates = []string{"/var/lib/kubelet", "/var/log/containers"}

func (cp *ControlPlane) writeNodeState(s nodeState) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return writeFile(filepath.Join(NodeDir(cp.Dir), "state.json"), string(b))
}

func readNodeState(dir string) (nodeState, bool) {
	var s nodeState
	b, err := os.ReadFile(filepath.Join(NodeDir(dir), "state.json"))
	if err != nil || json.Unmarshal(b, &s) != nil {
		return s, false
	}
	return s, true
}

const csiDriverObject = `{"apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver",
 "metadata": {"name": "` + DriverName + `"},
 "spec": {"attachRequired": true, "podInfoOnMount": false, "volumeLifecycleModes": ["Persistent"],
          "fsGroupPolicy": "ReadWriteOnceWithFSType"}}`

// containerdConfig is containerd 1.6's configuration (version 2) with everything it writes under nd, except
// what containerd keeps in fixed places (shim sockets under /run/containerd/s, removed as the shims exit).
// restrict_oom_score_adj: root here lacks CAP_SYS_RESOURCE, so runc cannot lower a sandbox's oom_score_adj
// (../shared/notes/field-facts.md, "A real kubelet on these machines"). docker.io and registry.k8s.io
// are mirrored to the stand-in at registry, which serves each from its own registry
// by the ns= query parameter containerd adds to a mirror's requests (testbed/dockerhub). containerd
// still tries the real registry after the mirror, which fails here (no network): a pull the stand-in
// refuses or does not serve fails with the stand-in's answer as its first error.
func containerdConfig(nd, registry string) string {
	return fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
[grpc]
  address = %[3]q
[ttrpc]
  address = %[4]q
[plugins."io.containerd.internal.v1.opt"]
  path = %[5]q
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[6]q
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = %[7]q
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %[8]q
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]
    endpoint = ["http://%[9]s"]
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."registry.k8s.io"]
    endpoint = ["http://%[9]s"]
`, filepath.Join(nd, "containerd/root"), filepath.Join(nd, "containerd/state"),
		filepath.Join(nd, containerdSocket), filepath.Join(nd, containerdSocket+".ttrpc"),
		filepath.Join(nd, "containerd/opt"), pauseImage, filepath.Join(nd, "runc"),
		filepath.Join(nd, cniConfDir), registry)
}

// cniConfig is the pod network: a bridge with host-local addresses from podCIDR. The host routes to the
// pods through the bridge, so the API server's pod proxy and port-forward reach them.
func cniConfig(nd string) string {
	return fmt.Sprintf(`{"cniVersion": "1.0.0", "name": %q, "plugins": [
  {"type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "dataDir": %q, "ranges": [[{"subnet": %q}]], "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "portmap", "capabilities": {"portMappings": true}}
]}
`, cniNetwork, bridgeName, filepath.Join(nd, "cni/ipam"), podCIDR)
}

// kubeletConfig: cgroupfs as containerd, cgroups below kubeletCgroupRoot, pod logs under nd. The API server
// reaches the kubelet anonymously on the node IP (it has no kubelet client certificate): for tests only.
// Eviction thresholds are low so a busy CI disk does not evict the pod under test.
func kubeletConfig(nd, nodeIP string, port, healthzPort int) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
cgroupRoot: %[1]s
containerRuntimeEndpoint: unix://%[2]s
address: %[3]s
port: %[4]d
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: %[5]d
podLogsDir: %[6]s
resolvConf: /etc/resolv.conf
failSwapOn: false
podCIDR: %[7]s
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization:
  mode: AlwaysAllow
evictionHard:
  memory.available: "50Mi"
  nodefs.available: "1%%"
  imagefs.available: "1%%"
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
`, kubeletCgroupRoot, filepath.Join(nd, containerdSocket), nodeIP, port, healthzPort, filepath.Join(nd, "logs"), podCIDR)
}

// hostIPv4 is the first non-loopback IPv4 address of an up interface: the kubelet refuses a loopback node IP.
func hostIPv4() (string, error) {
	ifaces, err := net.Interfaces()
	if err != nil {
		return "", err
	}
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 || ifc.Name == bridgeName {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && !ipn.IP.IsLoopback() && !ipn.IP.IsLinkLocalUnicast() {
				return ipn.IP.String(), nil
			}
		}
	}
	return "", errors.New("real node: no non-loopback IPv4 address on this machine; the kubelet refuses a loopback node IP")
}

func httpOK(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

func writeFile(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(content), 0o600)
}

// ContainerPID returns the host PID of a running container on the real node, from its ID (a pod status's
// containerID without the "containerd://" prefix), as `ctr tasks ls` lists it. A test reads what the
// kernel says about the process (/proc/PID/status, mountinfo, root) through it.
func (cp *ControlPlane) ContainerPID(ctx context.Context, id string) (int, error) {
	cmd := cp.tools.Command("ctr", "--address", filepath.Join(NodeDir(cp.Dir), containerdSocket), "-n", "k8s.io", "tasks", "ls")
	cmd = exec.CommandContext(ctx, cmd.Path, cmd.Args[1:]...)
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("ctr tasks ls: %w", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == id && f[2] == "RUNNING" {
			return strconv.Atoi(f[1])
		}
	}
	return 0, fmt.Errorf("container %s is not running on the real node", id)
}

// cgroupHierarchies are the mount points of the cgroup hierarchies: /sys/fs/cgroup itself on a host with
// only cgroup v2 (it holds cgroup.controllers), else every directory below it (v1 controllers, and the
// unified hierarchy of a hybrid host such as this project's machines).
func cgroupHierarchies() ([]string, error) {
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return []string{"/sys/fs/cgroup"}, nil
	}
	return filepath.Glob("/sys/fs/cgroup/*")
}

// makeCgroups creates the cgroup directory root in every cgroup v1 hierarchy and the unified one
// (/sys/fs/cgroup/*), as the kubelet requires of its cgroupRoot; removeCgroups undoes it.
func makeCgroups(root string) error {
	hierarchies, err := cgroupHierarchies()
	if err != nil {
		return err
	}
	for _, h := range hierarchies {
		if fi, err := os.Stat(h); err != nil || !fi.IsDir() {
			continue
		}
		if err := os.MkdirAll(filepath.Join(h, root), 0o755); err != nil {
			return fmt.Errorf("real node: cgroup %s: %w", filepath.Join(h, root), err)
		}
	}
	return nil
}

// RemoveImages removes from the real node's containerd every image whose reference starts with prefix
// (such as "docker.io/rclone/rclone"), tags and digests alike, so that the next pod that names it must
// pull it: how a test meets a node that does not have an image yet (a new node after an upgrade).
// It returns the references it removed.
func (cp *ControlPlane) RemoveImages(ctx context.Context, prefix string) ([]string, error) {
	ctr := func(args ...string) ([]byte, error) {
		cmd := cp.tools.Command("ctr", append([]string{"--address", filepath.Join(NodeDir(cp.Dir), containerdSocket), "-n", "k8s.io"}, args...)...)
		return exec.CommandContext(ctx, cmd.Path, cmd.Args[1:]...).Output()
	}
	out, err := ctr("images", "ls", "-q")
	if err != nil {
		return nil, fmt.Errorf("ctr images ls: %w", err)
	}
	var removed []string
	for _, ref := range strings.Fields(string(out)) {
		if !strings.HasPrefix(ref, prefix) {
			continue
		}
		if _, err := ctr("images", "rm", "--sync", ref); err != nil {
			return removed, fmt.Errorf("ctr images rm %s: %w", ref, err)
		}
		removed = append(removed, ref)
	}
	return removed, nil
}
