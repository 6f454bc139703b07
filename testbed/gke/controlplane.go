// Package gke is the testbed's GKE cluster: a real Kubernetes control plane (etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler, built from source) on loopback, with kwok's fake nodes labeled
// with GKE's zone topology key, and LoadBalancer addresses handed out as GKE's service controller would.
// What it cannot be (GKE's node pools, the PD CSI driver, attach and detach) is said in docs/testing.md.
package gke

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/loklak/loklak-dumps/testbed/toolchain"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ControlPlane is etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok on loopback,
// on ports picked at run time, with trust material made for this run under Dir.
type ControlPlane struct {
	Dir        string
	Kubeconfig string
	Server     string // https://127.0.0.1:PORT
	// Registry is the address (127.0.0.1:PORT) of the Docker Hub stand-in the real node's containerd pulls
	// docker.io images from; empty without a real node.
	Registry string
	tools    toolchain.Tools
	detach   bool
	// mu guards procs: fault tests restart processes from the engine's event goroutine while a signal
	// handler may stop everything.
	mu    sync.Mutex
	procs []*exec.Cmd
	// stopControllers ends the in-process controllers (the load balancer stand-in).
	stopControllers context.CancelFunc
}

// ControlPlaneOptions configure Start.
type ControlPlaneOptions struct {
	// Zone labels the fake node with topology.gke.io/zone, to match the PV's node affinity.
	Zone string
	// Detach leaves the processes running after this program exits (the local run); Stop or
	// StopDir ends them by the PIDs written to Dir/pids.
	Detach bool
	// RealNode, when set, gives the cluster one real node (node.go) in Zone instead of kwok's fake one.
	// kwok still runs, for fake nodes a test adds (AddNode); it never manages the real node.
	RealNode *RealNodeOptions
}

// NodeName is the fake node kwok runs pods on.
const NodeName = "kwok-node-0"

const pidFile = "pids"

// StartControlPlane starts the control plane in dir and returns once the API server is ready, the fake
// node is Ready and the default service account exists. On any failure it stops what it started.
func StartControlPlane(ctx context.Context, tools toolchain.Tools, dir string, opts ControlPlaneOptions) (cp *ControlPlane, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	started := &ControlPlane{Dir: dir, Kubeconfig: filepath.Join(dir, "kubeconfig"), tools: tools, detach: opts.Detach}
	cp = started
	defer func() {
		if err != nil {
			// started, not cp: a `return nil, err` has already set cp to nil.
			err = fmt.Errorf("%w (logs in %s)", errors.Join(err, started.Stop()), dir)
		}
	}()
	certs, err := newPKI(dir)
	if err != nil {
		return nil, fmt.Errorf("certificates: %w", err)
	}
	// Ports are held open until just before the process that binds them starts, so nothing else on the
	// machine can take one in between (only that instant remains).
	ports, err := reservePorts(6)
	if err != nil {
		return nil, err
	}
	defer ports.releaseAll()
	etcdClient, etcdPeer, apiPort, cmPort, schedPort, kwokPort := ports.port(0), ports.port(1), ports.port(2), ports.port(3), ports.port(4), ports.port(5)
	cp.Server = fmt.Sprintf("https://127.0.0.1:%d", apiPort)
	kc, err := certs.kubeconfig(cp.Server)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(cp.Kubeconfig, kc, 0o600); err != nil {
		return nil, err
	}

	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", etcdClient)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", etcdPeer)
	ports.release(0, 1)
	if err := cp.start("etcd",
		"--name=local", "--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=local="+peerURL,
	); err != nil {
		return nil, err
	}
	ports.release(2)
	if err := cp.start("kube-apiserver",
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--secure-port="+strconv.Itoa(apiPort),
		"--endpoint-reconciler-type=none",
		"--service-cluster-ip-range=10.96.0.0/16",
		"--cert-dir="+filepath.Join(dir, "apiserver-certs"),
		"--tls-cert-file="+certs.ServingCert, "--tls-private-key-file="+certs.ServingKey,
		"--client-ca-file="+certs.CACert, "--token-auth-file="+certs.TokenFile,
		"--authorization-mode=RBAC",
		// As on GKE: privileged pods are allowed by the API server, so Pod Security admission is what
		// refuses them in our namespace.
		"--allow-privileged=true",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+certs.SAPub, "--service-account-signing-key-file="+certs.SAKey,
		// A real node registers its IP and a hostname nothing resolves: exec, logs, port-forward and the
		// pod proxy must dial the IP.
		"--kubelet-preferred-address-types=InternalIP,Hostname",
	); err != nil {
		return nil, err
	}
	if err := cp.WaitReady(ctx); err != nil {
		return nil, err
	}
	ports.release(3)
	if err := cp.start("kube-controller-manager",
		"--kubeconfig="+cp.Kubeconfig, "--leader-elect=false",
		"--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(cmPort),
		"--cert-dir="+filepath.Join(dir, "cm-certs"),
		"--service-account-private-key-file="+certs.SAKey, "--root-ca-file="+certs.CACert,
		"--use-service-account-credentials=false",
	); err != nil {
		return nil, err
	}
	ports.release(4)
	if err := cp.start("kube-scheduler",
		"--kubeconfig="+cp.Kubeconfig, "--leader-elect=false",
		"--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(schedPort),
		"--cert-dir="+filepath.Join(dir, "scheduler-certs"),
	); err != nil {
		return nil, err
	}
	// The pod CIDR stays clear of the service range (10.96.0.0/16); pod IPs are only written into
	// status, no traffic goes to them. Node leases are kwok's heartbeat: without them the node lifecycle
	// controller marks the node NotReady every ~50 s and every pod on it unready with it.
	ports.release(5)
	// kwok manages only the nodes AddNode makes (they carry the annotation), never a real one.
	if err := cp.start("kwok",
		"--kubeconfig="+cp.Kubeconfig, "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
		"--node-lease-duration-seconds=40",
		"--cidr=10.244.0.1/24", "--server-address=127.0.0.1:"+strconv.Itoa(kwokPort),
	); err != nil {
		return nil, err
	}
	if opts.RealNode != nil {
		if err := cp.startRealNode(ctx, opts.Zone, *opts.RealNode); err != nil {
			return nil, err
		}
	} else if err := cp.AddNode(ctx, NodeName, opts.Zone); err != nil {
		return nil, err
	}
	if !opts.Detach {
		// In-process, so only while this program runs: the local run (Detach) uses no LoadBalancer.
		var controllers context.Context
		controllers, cp.stopControllers = context.WithCancel(context.Background())
		go cp.serveLoadBalancers(controllers)
	}
	if err := cp.waitFor(ctx, "default service account", 60*time.Second, func() error {
		_, err := cp.Kubectl(ctx, "-n", "default", "get", "serviceaccount", "default")
		return err
	}); err != nil {
		return nil, err
	}
	return cp, nil
}

// ErrNotRunning says that no control plane runs in a directory: none was started there, or its
// processes are gone (a reboot, a kill).
var ErrNotRunning = errors.New("no control plane runs there")

// AttachControlPlane returns the detached control plane that runs in dir (the local loop's second and
// later runs), once its API server answers. It fails with ErrNotRunning when dir has no pids file or
// any of its processes is gone; StopDir then ends the survivors.
func AttachControlPlane(ctx context.Context, tools toolchain.Tools, dir string) (*ControlPlane, error) {
	data, err := os.ReadFile(filepath.Join(dir, pidFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotRunning
	} else if err != nil {
		return nil, err
	}
	pids := strings.Fields(string(data))
	if len(pids) == 0 {
		return nil, ErrNotRunning
	}
	for _, p := range pids {
		if pid, err := strconv.Atoi(p); err != nil || !alive(pid) {
			return nil, fmt.Errorf("%w: process %s of %s is gone", ErrNotRunning, p, filepath.Join(dir, pidFile))
		}
	}
	cp := &ControlPlane{Dir: dir, Kubeconfig: filepath.Join(dir, "kubeconfig"), tools: tools, detach: true}
	server, err := cp.Kubectl(ctx, "config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}")
	if err != nil {
		return nil, err
	}
	cp.Server = strings.TrimSpace(string(server))
	if err := cp.WaitReady(ctx); err != nil {
		return nil, err
	}
	return cp, nil
}

// WaitReady waits until the API server answers /readyz (after a start or a restart).
func (cp *ControlPlane) WaitReady(ctx context.Context) error {
	return cp.waitFor(ctx, "kube-apiserver /readyz", 90*time.Second, func() error {
		_, err := cp.Kubectl(ctx, "get", "--raw", "/readyz")
		return err
	})
}

// AddNode registers a fake node in zone and waits until kwok reports it Ready.
func (cp *ControlPlane) AddNode(ctx context.Context, name, zone string) error {
	node := fmt.Sprintf(`{
  "apiVersion": "v1", "kind": "Node",
  "metadata": {"name": %[1]q,
    "labels": {"type": "kwok", "kubernetes.io/hostname": %[1]q, "kubernetes.io/os": "linux",
      "topology.gke.io/zone": %[2]q, "topology.kubernetes.io/zone": %[2]q},
    "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"}},
  "status": {"allocatable": {"cpu": "32", "memory": "256Gi", "ephemeral-storage": "100Gi", "pods": "110"},
             "capacity": {"cpu": "32", "memory": "256Gi", "ephemeral-storage": "100Gi", "pods": "110"}}
}`, name, zone)
	if _, err := cp.KubectlInput(ctx, []byte(node), "apply", "-f", "-"); err != nil {
		return err
	}
	return cp.waitFor(ctx, "node "+name+" Ready", 60*time.Second, func() error {
		out, err := cp.Kubectl(ctx, "get", "node", name, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
		if err != nil {
			return err
		}
		if strings.TrimSpace(string(out)) != "True" {
			return fmt.Errorf("Ready=%q", out)
		}
		return nil
	})
}

// Kubectl runs kubectl against the control plane and returns its standard output.
func (cp *ControlPlane) Kubectl(ctx context.Context, args ...string) ([]byte, error) {
	return cp.KubectlInput(ctx, nil, args...)
}

// KubectlInput runs kubectl with stdin.
func (cp *ControlPlane) KubectlInput(ctx context.Context, stdin []byte, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, cp.tools.Path("kubectl"), append([]string{"--kubeconfig=" + cp.Kubeconfig}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// StopProcess stops one of the control plane's processes by name (for fault tests) and returns a
// function that starts it again with the same arguments, detached as the rest, with the pids file updated.
func (cp *ControlPlane) StopProcess(name string) (restart func() error, err error) {
	cp.mu.Lock()
	var stopped *exec.Cmd
	for _, p := range cp.procs {
		if filepath.Base(p.Path) == name {
			stopped = p
		}
	}
	cp.mu.Unlock()
	if stopped == nil {
		return nil, fmt.Errorf("no process %s", name)
	}
	terminate(stopped.Process.Pid)
	return func() error {
		cmd, err := cp.spawn(cp.detach, name, stopped.Args[1:]...)
		if err != nil {
			return err
		}
		cp.mu.Lock()
		defer cp.mu.Unlock()
		if i := slices.Index(cp.procs, stopped); i >= 0 {
			cp.procs[i] = cmd
		} else {
			cp.procs = append(cp.procs, cmd) // Stop ran meanwhile; this one is stopped by the next Stop
		}
		return cp.writePIDs()
	}, nil
}

// Stop ends every process the control plane started, newest first, and waits for them. With a real
// node it first drains the node and afterwards releases what the node left on the host
// (nodeteardown.go); what it could not release is returned.
func (cp *ControlPlane) Stop() error {
	if cp.stopControllers != nil {
		cp.stopControllers()
	}
	if state, ok := readNodeState(cp.Dir); ok {
		cp.drainNode(context.Background(), state.Name)
	}
	cp.mu.Lock()
	pids := make([]int, len(cp.procs))
	for i, p := range cp.procs {
		pids[i] = p.Process.Pid
	}
	cp.procs = nil
	cp.mu.Unlock()
	stopInOrder(cp.tools, cp.Dir, pids)
	_ = os.Remove(filepath.Join(cp.Dir, pidFile))
	return releaseNode(cp.Dir)
}

// StopDir stops a detached control plane by the PIDs recorded in dir, as Stop does.
func StopDir(tools toolchain.Tools, dir string) error {
	data, err := os.ReadFile(filepath.Join(dir, pidFile))
	if err != nil {
		return errors.Join(err, releaseNode(dir))
	}
	if state, ok := readNodeState(dir); ok {
		cp := &ControlPlane{Dir: dir, Kubeconfig: filepath.Join(dir, "kubeconfig"), tools: tools, detach: true}
		cp.drainNode(context.Background(), state.Name)
	}
	var pids []int
	for _, line := range strings.Fields(string(data)) {
		if pid, err := strconv.Atoi(line); err == nil {
			pids = append(pids, pid)
		}
	}
	stopInOrder(tools, dir, pids)
	return errors.Join(os.Remove(filepath.Join(dir, pidFile)), releaseNode(dir))
}

func (cp *ControlPlane) start(name string, args ...string) error {
	cmd, err := cp.spawn(cp.detach, name, args...)
	if err != nil {
		return err
	}
	cp.mu.Lock()
	defer cp.mu.Unlock()
	cp.procs = append(cp.procs, cmd)
	return cp.writePIDs()
}

// writePIDs records every process's PID, oldest first: how StopDir finds a detached control plane, so a
// failed write must not pass silently. The caller holds mu.
func (cp *ControlPlane) writePIDs() error {
	var b strings.Builder
	for _, p := range cp.procs {
		fmt.Fprintln(&b, p.Process.Pid)
	}
	tmp := filepath.Join(cp.Dir, pidFile+".tmp")
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(cp.Dir, pidFile))
}

// spawn starts a tool in its own process group (so a terminal's Ctrl-C reaches only our handler, which
// stops it in order), logging to Dir/NAME.log.
func (cp *ControlPlane) spawn(detach bool, name string, args ...string) (*exec.Cmd, error) {
	log, err := os.OpenFile(filepath.Join(cp.Dir, name+".log"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	defer func() { _ = log.Close() }() // the child holds its own descriptor from Start on
	cmd := cp.tools.Command(name, args...)
	cmd.Env = append(os.Environ(), "PATH="+withSystemDirs(os.Getenv("PATH")))
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: !detach, Setsid: detach}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	if !detach {
		go func() { _ = cmd.Wait() }() // reap it; Stop waits by polling the PID
	}
	return cmd, nil
}

// withSystemDirs is path with the system's sbin and bin directories added where missing: the real node's
// processes run runc, iptables, losetup, mkfs.ext4 and the CNI plugins' helpers from there, and a
// non-login root shell's PATH may lack /usr/sbin.
func withSystemDirs(path string) string {
	dirs := filepath.SplitList(path)
	for _, d := range []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"} {
		if !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	return strings.Join(dirs, string(os.PathListSeparator))
}

// terminate sends SIGTERM to pid's process group, then SIGKILL after 10 s, and waits until it is gone.
func terminate(pid int) {
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	_ = syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(10 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			_ = syscall.Kill(pid, syscall.SIGKILL)
			deadline = time.Now().Add(time.Hour)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ProcessRunning reports whether pid still runs and has not exited (a zombie counts as gone).
func ProcessRunning(pid int) bool { return alive(pid) }

// alive reports whether pid still runs. A process that has exited but is not yet released counts as
// gone: a zombie ('Z') and one being reaped ('X', dead: kill(pid, 0) still succeeds then, until the
// kernel releases the PID).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	st, err := readProcStat(pid)
	return err == nil && st.running()
}

// running reports whether the state letter of /proc/PID/stat is one of a process that has not exited.
func (st procStat) running() bool {
	switch st.state {
	case 'Z', 'X', 'x':
		return false
	}
	return true
}

// procStat is what the harness needs from /proc/PID/stat.
type procStat struct {
	comm  string // command name, truncated by the kernel to 15 characters
	state byte
	ppid  int
}

// readProcStat parses /proc/PID/stat: "pid (comm) state ppid ...". comm may hold spaces and
// parentheses, so the fields after it are found from the last ')'.
func readProcStat(pid int) (procStat, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	return parseProcStat(pid, string(raw))
}

func parseProcStat(pid int, stat string) (procStat, error) {
	open, end := strings.IndexByte(stat, '('), strings.LastIndexByte(stat, ')')
	if open < 0 || end < open {
		return procStat{}, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	fields := strings.Fields(stat[end+1:])
	if len(fields) < 2 || len(fields[0]) != 1 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: too short", pid)
	}
	ppid, err := strconv.Atoi(fields[1])
	if err != nil {
		return procStat{}, fmt.Errorf("/proc/%d/stat: parent pid: %w", pid, err)
	}
	return procStat{comm: stat[open+1 : end], state: fields[0][0], ppid: ppid}, nil
}

// ChildProcesses returns the PIDs of parent's children whose command name starts with prefix (the
// kernel truncates names to 15 characters: pulumi-resource-kubernetes shows as "pulumi-resource").
func ChildProcesses(parent int, prefix string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := readProcStat(pid); err == nil && st.ppid == parent && strings.HasPrefix(st.comm, prefix) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func (cp *ControlPlane) waitFor(ctx context.Context, what string, timeout time.Duration, check func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// reservedPorts are free loopback ports, each held by a listener until released.
type reservedPorts []net.Listener

// reservePorts asks the kernel for n free loopback ports and holds them.
func reservePorts(n int) (reservedPorts, error) {
	var ports reservedPorts
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			ports.releaseAll()
			return nil, err
		}
		ports = append(ports, l)
	}
	return ports, nil
}

func (r reservedPorts) port(i int) int { return r[i].Addr().(*net.TCPAddr).Port }

// release frees ports for the process about to bind them.
func (r reservedPorts) release(indexes ...int) {
	for _, i := range indexes {
		_ = r[i].Close() // closing a listener we hold fails only if it is closed already
	}
}

func (r reservedPorts) releaseAll() {
	for i := range r {
		r.release(i)
	}
}
