package gke

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The real node's teardown, in the order that releases everything:
//
//  1. drain: delete every pod on the node and wait until its volumes are unmounted (the kubelet calls the
//     CSI plugin's NodeUnpublish and NodeUnstage, which release the loop devices) and its VolumeAttachments
//     are gone (the attach/detach controller deletes them, the plugin's attacher detaches the disk);
//  2. stop the kubelet, then kill and remove any container left in containerd (a test that failed before
//     its pods were deleted), with their network namespaces;
//  3. stop containerd and the rest;
//  4. release what the processes leave outside Dir: mounts below Dir/node, loop devices on the simulated
//     disks, the pod cgroups, the CNI bridge and its result cache, /var/log/containers links.
//
// Step 4 alone is enough after a kill -9 of everything; steps 1-3 make it rarely needed.

// drainNode is step 1. It gives up after a minute and lets steps 2-4 release what is left.
func (cp *ControlPlane) drainNode(ctx context.Context, name string) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	_, _ = cp.Kubectl(ctx, "delete", "pods", "--all-namespaces", "--field-selector=spec.nodeName="+name,
		"--grace-period=5", "--wait=true", "--timeout=45s")
	_ = cp.waitFor(ctx, "node "+name+" to release its volumes", 50*time.Second, func() error {
		inUse, err := cp.Kubectl(ctx, "get", "node", name, "-o", "jsonpath={.status.volumesInUse}")
		if err != nil {
			return err
		}
		attachments, err := cp.Kubectl(ctx, "get", "volumeattachments", "-o",
			`jsonpath={range .items[?(@.spec.nodeName=="`+name+`")]}{.metadata.name} {end}`)
		if err != nil {
			return err
		}
		if s := strings.TrimSpace(string(inUse) + string(attachments)); s != "" {
			return fmt.Errorf("still in use: %s", s)
		}
		return nil
	})
}

// stopInOrder terminates pids newest first; after the kubelet it removes what containerd still runs
// (step 2), while containerd still answers.
func stopInOrder(tools interface {
	Command(string, ...string) *exec.Cmd
}, dir string, pids []int) {
	for i := len(pids) - 1; i >= 0; i-- {
		st, _ := readProcStat(pids[i])
		terminate(pids[i])
		if st.comm == "kubelet" {
			removeContainers(tools, NodeDir(dir))
		}
	}
}

// removeContainers kills and deletes every container in containerd's Kubernetes namespace and removes
// the network namespaces their pod sandboxes held (containerd removes them only through the CRI, which
// nobody calls once the kubelet is gone).
func removeContainers(tools interface {
	Command(string, ...string) *exec.Cmd
}, nd string) {
	ctr := func(args ...string) ([]byte, error) {
		return tools.Command("ctr", append([]string{"--address", filepath.Join(nd, containerdSocket), "-n", "k8s.io", "--timeout", "20s"}, args...)...).Output()
	}
	out, err := ctr("containers", "list", "-q")
	if err != nil {
		return
	}
	var netns []string
	for _, id := range strings.Fields(string(out)) {
		if info, err := ctr("containers", "info", id); err == nil {
			netns = append(netns, networkNamespaces(info)...)
		}
		_, _ = ctr("tasks", "kill", "-s", "SIGKILL", id)
		_, _ = ctr("tasks", "delete", "-f", id)
		_, _ = ctr("containers", "delete", id)
	}
	for _, ns := range netns {
		_ = unix.Unmount(ns, unix.MNT_DETACH)
		_ = os.Remove(ns)
	}
}

// networkNamespaces returns the network namespace paths in a container's OCI spec (`ctr containers info`).
func networkNamespaces(info []byte) []string {
	var c struct {
		Spec struct {
			Linux struct {
				Namespaces []struct{ Type, Path string } `json:"namespaces"`
			} `json:"linux"`
		} `json:"Spec"`
	}
	if json.Unmarshal(info, &c) != nil {
		return nil
	}
	var paths []string
	for _, n := range c.Spec.Linux.Namespaces {
		if n.Type == "network" && (strings.HasPrefix(n.Path, "/var/run/netns/") || strings.HasPrefix(n.Path, "/run/netns/")) {
			paths = append(paths, n.Path)
		}
	}
	return paths
}

// releaseNode is step 4: it releases what the real node of the control plane in dir left outside its
// processes, and returns what it could not release.
func releaseNode(dir string) error {
	state, ok := readNodeState(dir)
	if !ok {
		return nil
	}
	nd := NodeDir(dir)
	var errs []error
	errs = append(errs, unmountBelow(nd))
	errs = append(errs, detachLoopDevicesBelow(state.GCEDir))
	errs = append(errs, removeCgroups(kubeletCgroupRoot))
	if _, err := os.Stat("/sys/class/net/" + bridgeName); err == nil {
		if out, err := exec.Command("ip", "link", "delete", bridgeName).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("ip link delete %s: %w: %s", bridgeName, err, out))
		}
	}
	if cached, err := filepath.Glob("/var/lib/cni/results/" + cniNetwork + "-*"); err == nil {
		for _, f := range cached {
			errs = append(errs, os.Remove(f))
		}
	}
	errs = append(errs, removeLinksInto("/var/log/containers", nd))
	for _, p := range state.Created {
		errs = append(errs, os.RemoveAll(p))
	}
	errs = append(errs, removeKubeletChains())
	if err := errors.Join(errs...); err != nil {
		return err
	}
	// Everything below it released: the node's directory and its link go (the processes' logs stay in dir).
	return errors.Join(os.RemoveAll(nd), os.Remove(filepath.Join(dir, nodeDirName)))
}

// kubeletChains are the iptables chains the kubelet makes in each table, whatever its flags
// (pkg/kubelet/kubelet_network_linux.go): a canary to notice a flush, a hint for kube-proxy's mode
// detection, and KUBE-FIREWALL, which drops non-loopback packets to 127/8 (jumped to from INPUT and OUTPUT).
var kubeletChains = map[string][]string{
	"filter": {"KUBE-FIREWALL", "KUBE-KUBELET-CANARY"},
	"mangle": {"KUBE-IPTABLES-HINT", "KUBE-KUBELET-CANARY"},
	"nat":    {"KUBE-KUBELET-CANARY"},
}

// removeKubeletChains removes the kubelet's chains and the jumps to them, in IPv4 and IPv6. A chain that
// is not there is not an error.
func removeKubeletChains() error {
	var errs []error
	for _, cmd := range []string{"iptables", "ip6tables"} {
		if _, err := exec.LookPath(cmd); err != nil {
			continue
		}
		run := func(args ...string) error {
			out, err := exec.Command(cmd, append([]string{"-w"}, args...)...).CombinedOutput()
			if err != nil {
				return fmt.Errorf("%s %s: %w: %s", cmd, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
			}
			return nil
		}
		for table, chains := range kubeletChains {
			for _, chain := range chains {
				if run("-t", table, "-n", "-L", chain) != nil {
					continue // no such chain
				}
				for _, builtin := range []string{"INPUT", "OUTPUT"} {
					for run("-t", table, "-D", builtin, "-j", chain) == nil {
					}
				}
				errs = append(errs, run("-t", table, "-F", chain), run("-t", table, "-X", chain))
			}
		}
	}
	return errors.Join(errs...)
}

// unmountBelow unmounts every mount point at or below root, deepest first (mount-utils' cleanup works
// one path at a time; the kubelet's rshared bind of its root dir and the pods' binds nest).
func unmountBelow(root string) error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	var points []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		p := unescapeMountPath(fields[4])
		if p == root || strings.HasPrefix(p, root+"/") {
			points = append(points, p)
		}
	}
	// Deepest (longest) first; a path mounted twice is unmounted twice.
	slices.SortStableFunc(points, func(a, b string) int { return len(b) - len(a) })
	var errs []error
	for _, p := range points {
		if err := unix.Unmount(p, 0); err != nil && !errors.Is(err, unix.EINVAL) {
			if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
				errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
			}
		}
	}
	return errors.Join(errs...)
}

// unescapeMountPath undoes mountinfo's octal escapes (\040 for a space, and \011, \012, \134).
func unescapeMountPath(s string) string {
	return strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(s)
}

// detachLoopDevicesBelow detaches every loop device whose backing file is below dir (the simulated disks'
// images), as `losetup -d` does. The kernel reports backing files in /sys/block/loopN/loop/backing_file.
func detachLoopDevicesBelow(dir string) error {
	if dir == "" {
		return nil
	}
	files, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	var errs []error
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		backing := strings.TrimSuffix(strings.TrimSpace(string(b)), " (deleted)")
		if !strings.HasPrefix(backing, dir+"/") {
			continue
		}
		dev := "/dev/" + filepath.Base(filepath.Dir(filepath.Dir(f)))
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("losetup -d %s (%s): %w: %s", dev, backing, err, out))
		}
	}
	return errors.Join(errs...)
}

// removeCgroups removes the cgroup directory root (and everything below it, leaves first) in every
// cgroup v1 controller and in the unified hierarchy. A cgroup with a process left in it stays.
func removeCgroups(root string) error {
	hierarchies, _ := cgroupHierarchies()
	var errs []error
	for _, h := range hierarchies {
		top := filepath.Join(h, root)
		var dirs []string
		_ = filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			if err := unix.Rmdir(dirs[i]); err != nil && !errors.Is(err, unix.ENOENT) {
				errs = append(errs, fmt.Errorf("rmdir %s: %w", dirs[i], err))
			}
		}
	}
	return errors.Join(errs...)
}

// removeLinksInto removes the symbolic links in dir that point below target (the kubelet's
// /var/log/containers links to the pod logs it kept under target).
func removeLinksInto(dir, target string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil //nolint:nilerr // no such directory: nothing to remove
	}
	var errs []error
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if dest, err := os.Readlink(p); err == nil && strings.HasPrefix(dest, target+"/") {
			errs = append(errs, os.Remove(p))
		}
	}
	return errors.Join(errs...)
}
