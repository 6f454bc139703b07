// Command local runs the stack against a Kubernetes control plane on this machine's loopback, so the
// whole ordering and binding can be watched before touching GCP.
//
//	go run ./cmd/local up        start the control plane, or reuse the running one, and `pulumi up`
//	                             the local stack, showing what changes
//	go run ./cmd/local preview   preview the local stack against the running control plane
//	go run ./cmd/local down      destroy the local stack and stop the control plane
//
// The loop: edit Pulumi.local.yaml, run up (or preview) again. $LOKLAK_TOOLS_BIN names the tools (the
// make targets set it); $LOKLAK_LOCAL_DIR the state (default .local).
//
// The cluster has one real node (testbed/gke, node.go): loklak's stand-in runs there, on the local
// stack's external disk, which this command puts into a simulated Compute Engine project under
// $LOKLAK_LOCAL_DIR/gce as a disk made outside the stack. It needs root.
package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/loklak/loklak-dumps/infra"
	"github.com/loklak/loklak-dumps/internal/stackconfig"
	"github.com/loklak/loklak-dumps/testbed/gke"
	"github.com/loklak/loklak-dumps/testbed/harness"
	"github.com/loklak/loklak-dumps/testbed/toolchain"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optdestroy"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
)

const stackName = "local"

func main() {
	commands := map[string]func(context.Context) error{"up": up, "preview": preview, "down": down}
	if len(os.Args) != 2 || commands[os.Args[1]] == nil {
		fmt.Fprintln(os.Stderr, "usage: local up|preview|down")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := commands[os.Args[1]](ctx); err != nil {
		fmt.Fprintln(os.Stderr, "local:", err)
		os.Exit(1)
	}
}

type local struct {
	tools   toolchain.Tools
	dir     string
	cluster string
	gceDir  string // the simulated Compute Engine project the node's CSI plugin attaches disks from
	driver  harness.Driver
}

func setup() (local, error) {
	tools, err := toolchain.ToolsFromEnv()
	if err != nil {
		return local{}, err
	}
	repo, err := os.Getwd()
	if err != nil {
		return local{}, err
	}
	dir := os.Getenv("LOKLAK_LOCAL_DIR")
	if dir == "" {
		dir = filepath.Join(repo, ".local")
	}
	return local{
		tools:   tools,
		dir:     dir,
		cluster: filepath.Join(dir, "cluster"),
		gceDir:  filepath.Join(dir, "gce"),
		driver: harness.Driver{
			Tools: tools, RepoDir: repo, StateDir: filepath.Join(dir, "pulumi"), GCEDir: filepath.Join(dir, "gce"),
			// A local stack holds no real secret but its kubeconfig path; the passphrase only keeps the
			// secrets provider honest.
			Passphrase: "local-stack",
		},
	}, nil
}

func up(ctx context.Context) error {
	l, err := setup()
	if err != nil {
		return err
	}
	values, err := l.config()
	if err != nil {
		return err
	}
	cp, err := l.controlPlane(ctx, values)
	if err != nil {
		return err
	}
	if err := l.externalDisk(values); err != nil {
		return err
	}
	stack, err := l.driver.Stack(ctx, stackName, values, map[string]string{"kubeconfig": cp.Kubeconfig})
	if err != nil {
		return err
	}
	res, err := stack.Up(ctx, optup.ProgressStreams(os.Stdout), optup.Diff())
	if err != nil {
		return err
	}
	fmt.Println("\nlocal: stack outputs")
	for _, name := range slices.Sorted(maps.Keys(res.Outputs)) {
		fmt.Printf("  %-28s %v\n", name, res.Outputs[name].Value)
	}
	rollout, err := cp.Kubectl(ctx, "get", "storageclass,pv,pvc,deployment,replicaset,pod,service", "-A", "-l", "app.kubernetes.io/part-of=loklak-dumps", "-o", "wide")
	fmt.Printf("\nlocal: what the cluster holds\n%s", rollout)
	if err != nil {
		return err
	}
	fmt.Printf("\nlocal: kubectl --kubeconfig %s get all -n %s\n", cp.Kubeconfig, values["namespace"])
	// /dump/ as the 2017 write-up listed it, through the Service (the API server's service proxy).
	list := fmt.Sprintf("%s --kubeconfig %s get --raw /api/v1/namespaces/%s/services/%s:http/proxy/dump/",
		l.tools.Path("kubectl"), cp.Kubeconfig, values["namespace"], infra.ServerName)
	listing, err := waitForDumps(ctx, cp, values["namespace"])
	fmt.Printf("\nlocal: loklak's /dump/, listed with\n  %s\n\n%s\n", list, listing)
	if err != nil {
		return err
	}
	fmt.Println("local: edit Pulumi.local.yaml and run `make local-up` (or `make local-preview`) again; tear down with `make local-down`")
	return nil
}

// waitForDumps returns loklak's /dump/ page once it lists a dump file (loklak writes its first message a
// few seconds after it is ready), or the last answer after a minute.
func waitForDumps(ctx context.Context, cp *gke.ControlPlane, namespace string) (string, error) {
	path := fmt.Sprintf("/api/v1/namespaces/%s/services/%s:http/proxy/dump/", namespace, infra.ServerName)
	deadline := time.Now().Add(time.Minute)
	for {
		page, err := cp.Kubectl(ctx, "get", "--raw", path)
		if err == nil && strings.Contains(string(page), `<a href="messages_`) {
			return string(page), nil
		}
		if time.Now().After(deadline) {
			return string(page), fmt.Errorf("/dump/ lists no dump a minute after the up: %w", err)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// externalDisk puts the local stack's disk (diskMode external: made outside the stack) into the
// simulated project, blank, unless it is there from an earlier run.
func (l local) externalDisk(values stackconfig.Values) error {
	path, put, err := harness.PutExternalDisk(l.gceDir, values)
	if put {
		fmt.Printf("local: disk %s put into the simulated project in %s (made outside the stack: diskMode external)\n", path, l.gceDir)
	}
	return err
}

// controlPlane reuses the control plane a previous run left running, or starts one. One whose
// processes are gone (after a reboot) is cleared away first, with the local stack's state, which
// described objects that went with it.
func (l local) controlPlane(ctx context.Context, values stackconfig.Values) (*gke.ControlPlane, error) {
	cp, err := gke.AttachControlPlane(ctx, l.tools, l.cluster)
	if err == nil {
		fmt.Printf("local: reusing the control plane at %s (kubeconfig %s)\n", cp.Server, cp.Kubeconfig)
		return cp, nil
	}
	if !errors.Is(err, gke.ErrNotRunning) {
		return nil, err
	}
	if _, statErr := os.Stat(l.cluster); statErr == nil {
		fmt.Printf("local: the earlier control plane is gone (%v); starting afresh\n", err)
		if err := errors.Join(gke.StopDir(l.tools, l.cluster), os.RemoveAll(l.dir)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	fmt.Println("local: starting etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok on 127.0.0.1,")
	fmt.Println("local: and a real node: the Docker Hub stand-in, containerd, the PD CSI stand-in and a kubelet")
	cp, err = gke.StartControlPlane(ctx, l.tools, l.cluster, gke.ControlPlaneOptions{Zone: values["zone"], Detach: true,
		RealNode: &gke.RealNodeOptions{Project: values["gcpProject"], GCEDir: l.gceDir}})
	if err != nil {
		return nil, err
	}
	fmt.Printf("local: control plane ready at %s (kubeconfig %s)\n", cp.Server, cp.Kubeconfig)
	return cp, nil
}

func preview(ctx context.Context) error {
	l, err := setup()
	if err != nil {
		return err
	}
	cp, err := gke.AttachControlPlane(ctx, l.tools, l.cluster)
	if errors.Is(err, gke.ErrNotRunning) {
		return fmt.Errorf("%w in %s: run `make local-up` first", err, l.cluster)
	} else if err != nil {
		return err
	}
	values, err := l.config()
	if err != nil {
		return err
	}
	stack, err := l.driver.Stack(ctx, stackName, values, map[string]string{"kubeconfig": cp.Kubeconfig})
	if err != nil {
		return err
	}
	_, err = stack.Preview(ctx, optpreview.ProgressStreams(os.Stdout), optpreview.Diff())
	return err
}

// config is Pulumi.local.yaml over Pulumi.yaml's defaults, checked before anything starts.
func (l local) config() (stackconfig.Values, error) {
	project, values, err := stackconfig.Load(l.driver.RepoDir, stackName)
	if err != nil {
		return nil, err
	}
	return values, checkConfig(project.Name.String(), values)
}

// checkConfig refuses a bad Pulumi.local.yaml before anything starts, a line per bad value as the
// program reports them to the engine. The Automation API's inline runtime would frame the program's
// refusal as "an unhandled error occurred"; checked here, it never gets that far.
func checkConfig(project string, values stackconfig.Values) error {
	_, err := infra.ParseConfig(project, func(key string) (string, bool) {
		v, ok := values[key]
		return v, ok
	}, slices.Collect(maps.Keys(values)))
	var invalid *infra.ConfigError
	if errors.As(err, &invalid) {
		for _, line := range invalid.Problems() {
			fmt.Fprintln(os.Stderr, "error:", line)
		}
		return fmt.Errorf("%w in Pulumi.local.yaml; nothing was started or changed", infra.ErrInvalidConfig)
	}
	return err
}

func down(ctx context.Context) error {
	l, err := setup()
	if err != nil {
		return err
	}
	var errs []error
	switch _, err := gke.AttachControlPlane(ctx, l.tools, l.cluster); {
	case err == nil:
		// Destroy while the API server still runs, then stop it.
		errs = append(errs, destroy(ctx, l), gke.StopDir(l.tools, l.cluster))
	case errors.Is(err, gke.ErrNotRunning):
		// Nothing to destroy: the cluster went with its processes. End any survivor.
		if err := gke.StopDir(l.tools, l.cluster); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	default:
		errs = append(errs, err)
	}
	errs = append(errs, os.RemoveAll(l.dir))
	if err := errors.Join(errs...); err != nil {
		return err
	}
	fmt.Println("local: stack destroyed, control plane stopped,", l.dir, "removed")
	return nil
}

func destroy(ctx context.Context, l local) error {
	_, values, err := stackconfig.Load(l.driver.RepoDir, stackName)
	if err != nil {
		return err
	}
	stack, err := l.driver.Stack(ctx, stackName, values, nil)
	if err != nil {
		return err
	}
	_, err = stack.Destroy(ctx, optdestroy.ProgressStreams(os.Stdout))
	return err
}
