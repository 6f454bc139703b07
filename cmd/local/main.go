// Command local runs the stack against a Kubernetes control plane on this machine's loopback, so the
// whole ordering and binding can be watched before touching GCP.
//
//	go run ./cmd/local up     start the control plane (if needed) and `pulumi up` the local stack
//	go run ./cmd/local down   destroy the local stack and stop the control plane
//
// $LOKLAK_TOOLS_BIN names the tools (make local-up sets it); $LOKLAK_LOCAL_DIR the state (default .local).
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
	"syscall"

	"github.com/loklak/loklak-dumps/harness"
	"github.com/loklak/loklak-dumps/internal/stackconfig"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optdestroy"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
)

const stackName = "local"

func main() {
	if len(os.Args) != 2 || (os.Args[1] != "up" && os.Args[1] != "down") {
		fmt.Fprintln(os.Stderr, "usage: local up|down")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if os.Args[1] == "up" {
		err = up(ctx)
	} else {
		err = down(ctx)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "local:", err)
		os.Exit(1)
	}
}

type local struct {
	tools   harness.Tools
	dir     string
	cluster string
	driver  harness.Driver
}

func setup() (local, error) {
	tools, err := harness.ToolsFromEnv()
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
		driver: harness.Driver{
			Tools: tools, RepoDir: repo, StateDir: filepath.Join(dir, "pulumi"),
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
	if _, err := os.Stat(filepath.Join(l.cluster, "pids")); err == nil {
		return fmt.Errorf("a local control plane already runs in %s: run `make local-down` first", l.cluster)
	}
	_, values, err := stackconfig.Load(l.driver.RepoDir, stackName)
	if err != nil {
		return err
	}
	fmt.Println("local: starting etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok on 127.0.0.1")
	cp, err := harness.StartControlPlane(ctx, l.tools, l.cluster, harness.ControlPlaneOptions{Zone: values["zone"], Detach: true})
	if err != nil {
		return err
	}
	fmt.Printf("local: control plane ready at %s (kubeconfig %s)\n", cp.Server, cp.Kubeconfig)
	stack, err := l.driver.Stack(ctx, stackName, values, map[string]string{"kubeconfig": cp.Kubeconfig})
	if err != nil {
		return err
	}
	res, err := stack.Up(ctx, optup.ProgressStreams(os.Stdout))
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
	fmt.Printf("\nlocal: kubectl --kubeconfig %s get all -n %s\nlocal: tear down with `make local-down`\n", cp.Kubeconfig, values["namespace"])
	return nil
}

func down(ctx context.Context) error {
	l, err := setup()
	if err != nil {
		return err
	}
	var errs []error
	if _, err := os.Stat(filepath.Join(l.cluster, "pids")); err == nil {
		// Destroy while the API server still runs, then stop it.
		errs = append(errs, destroy(ctx, l), harness.StopDir(l.cluster))
	} else if !errors.Is(err, fs.ErrNotExist) {
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
