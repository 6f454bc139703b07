// Package harness runs the program for real on this machine: the Pulumi engine driven through the
// Automation API with a local file backend (Driver), loading the real Kubernetes provider and the GCP
// stand-in (package testbed/gcp). It sits above package infra and is used by the end-to-end tests, the
// benchmarks and the local run.
package harness

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/loklak/loklak-dumps/infra"
	"github.com/loklak/loklak-dumps/internal/stackconfig"
	"github.com/loklak/loklak-dumps/testbed/gcp"
	"github.com/loklak/loklak-dumps/testbed/toolchain"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/workspace"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"gopkg.in/yaml.v3"
)

// Driver runs the program on the real Pulumi engine through the Automation API. The program runs in this
// process (an inline program), so no Go language host is needed; the CLI and the Kubernetes provider are
// the real binaries from Tools. State lives in a local file backend under StateDir.
type Driver struct {
	Tools    toolchain.Tools
	RepoDir  string // holds Pulumi.yaml and the Pulumi.<stack>.yaml files
	StateDir string // backend, PULUMI_HOME and the workspace
	// Workspace names the workspace directory under StateDir ("workspace" when empty): two drivers on
	// one StateDir with different workspaces are two users of one backend.
	Workspace  string
	Passphrase string // for the passphrase secrets provider
	// GCEDir is the simulated Compute Engine project the stand-in GCP plugin works on (gcestandin).
	GCEDir string
	// StorageEmulatorURL is the base URL of the Cloud Storage server serving GCEDir's buckets
	// (testbed/gcs: a gcs.Emulator's URL, started by the test or command beside the control plane, never
	// by the Driver), which the stand-in GCP plugin then talks to (gcp.StorageURLEnv). Empty, the plugin
	// runs the emulator inside itself, whatever the test process's own environment says.
	StorageEmulatorURL string
	// AmbientKubeconfig is what the engine and its plugins see as KUBECONFIG: the loopback cluster's
	// file. Never empty in the environment: client-go reads ~/.kube/config when KUBECONFIG is unset or
	// empty, and a test must never reach a developer's real cluster. Unset, it names a file that does
	// not exist, so a stack without a kubeconfig of its own fails instead of finding one.
	AmbientKubeconfig string
	// Program runs instead of infra.Program when set (the benchmarks' empty-program floor).
	Program pulumi.RunFunc
}

// Stack creates or selects a stack whose config file is values (keys without the project namespace),
// written as the user would write Pulumi.<name>.yaml, plus secrets set as Pulumi secrets.
func (d Driver) Stack(ctx context.Context, name string, values stackconfig.Values, secrets map[string]string) (auto.Stack, error) {
	project, work, err := d.workspace()
	if err != nil {
		return auto.Stack{}, err
	}
	if err := writeStackFile(filepath.Join(work, "Pulumi."+name+".yaml"), project.Name.String(), values); err != nil {
		return auto.Stack{}, err
	}
	return d.upsert(ctx, project, work, name, secrets)
}

// CommittedStack creates or selects the stack whose config file is the repository's Pulumi.<name>.yaml,
// copied byte for byte, so the real CLI validates and runs exactly what a user runs. secrets are set on
// top, as a user would with `pulumi config set --secret` (nil for none).
func (d Driver) CommittedStack(ctx context.Context, name string, secrets map[string]string) (auto.Stack, error) {
	project, work, err := d.workspace()
	if err != nil {
		return auto.Stack{}, err
	}
	file, err := os.ReadFile(filepath.Join(d.RepoDir, "Pulumi."+name+".yaml"))
	if err != nil {
		return auto.Stack{}, err
	}
	if err := os.WriteFile(filepath.Join(work, "Pulumi."+name+".yaml"), file, 0o600); err != nil {
		return auto.Stack{}, err
	}
	return d.upsert(ctx, project, work, name, secrets)
}

// workspace loads the project and makes the backend, workspace and home directories.
func (d Driver) workspace() (*workspace.Project, string, error) {
	project, err := stackconfig.Project(d.RepoDir)
	if err != nil {
		return nil, "", err
	}
	work := d.workDir()
	for _, dir := range []string{d.backendDir(), work, d.homeDir()} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, "", err
		}
	}
	project.Backend = &workspace.ProjectBackend{URL: "file://" + d.backendDir()}
	return project, work, nil
}

func (d Driver) backendDir() string { return filepath.Join(d.StateDir, "backend") }
func (d Driver) workDir() string    { return filepath.Join(d.StateDir, cmp.Or(d.Workspace, "workspace")) }
func (d Driver) homeDir() string    { return filepath.Join(d.StateDir, "home") }

// Env is the environment the CLI, the engine and the plugins run with.
func (d Driver) Env() map[string]string {
	kubeconfig := d.AmbientKubeconfig
	if kubeconfig == "" {
		kubeconfig = filepath.Join(d.StateDir, "no-ambient-kubeconfig")
	}
	return map[string]string{
		"PULUMI_CONFIG_PASSPHRASE": d.Passphrase,
		"PULUMI_HOME":              d.homeDir(),
		"PULUMI_SKIP_UPDATE_CHECK": "true",
		"PATH":                     d.Tools.PathEnv(),
		"KUBECONFIG":               kubeconfig,
		// Nothing may fall back to the developer's own ~/.kube/config or ~/.pulumi.
		"HOME":     d.homeDir(),
		gcp.DirEnv: d.GCEDir,
		// Set even when empty: a URL in this process's environment must not reach the plugins.
		gcp.StorageURLEnv: d.StorageEmulatorURL,
	}
}

func (d Driver) upsert(ctx context.Context, project *workspace.Project, work, name string, secrets map[string]string) (auto.Stack, error) {
	cli, err := auto.NewPulumiCommand(&auto.PulumiCommandOptions{Root: filepath.Dir(d.Tools.Bin), SkipVersionCheck: true})
	if err != nil {
		return auto.Stack{}, err
	}
	program := d.Program
	if program == nil {
		// The program runs inline, in this process: it reads the cluster with the KUBECONFIG the engine
		// and the Kubernetes provider get, not with this process's environment.
		program = infra.ProgramOn(func(kc infra.KubeConfig) (infra.Cluster, error) {
			if kc.Kubeconfig == "" {
				kc.Kubeconfig = d.Env()["KUBECONFIG"]
			}
			return infra.NewKubeCluster(kc)
		})
	}
	stack, err := auto.UpsertStackInlineSource(ctx, name, project.Name.String(), program,
		auto.Project(*project),
		auto.WorkDir(work),
		auto.Pulumi(cli),
		auto.SecretsProvider("passphrase"),
		auto.EnvVars(d.Env()),
	)
	if err != nil {
		return auto.Stack{}, err
	}
	for _, key := range slices.Sorted(maps.Keys(secrets)) {
		if err := stack.SetConfig(ctx, key, auto.ConfigValue{Value: secrets[key], Secret: true}); err != nil {
			return auto.Stack{}, err
		}
	}
	return stack, nil
}

// writeStackFile writes values with the types Pulumi.yaml declares (integers, booleans, lists), so the
// CLI validates them against the schema exactly as it does a user's stack file. Existing secrets in the
// file are kept, even where values holds the key (its default, say): secrets change only through Stack's
// secrets.
func writeStackFile(path, project string, values stackconfig.Values) error {
	file := map[string]any{}
	if data, err := os.ReadFile(path); err == nil {
		if err := yaml.Unmarshal(data, &file); err != nil {
			return err
		}
	}
	cfg, _ := file["config"].(map[string]any)
	if cfg == nil {
		cfg = map[string]any{}
	}
	for key, raw := range values {
		if m, ok := cfg[project+":"+key].(map[string]any); ok && m["secure"] != nil {
			continue // set as a secret (Stack's secrets): a plain value, a default say, must not replace it
		}
		v, err := typed(infra.Keys[key], raw)
		if err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		cfg[project+":"+key] = v
	}
	// The project's keys unset in values go away, except secrets, which are set separately; other
	// packages' keys (gcp:project, say) stay.
	for key, v := range cfg {
		name, ours := strings.CutPrefix(key, project+":")
		if _, set := values[name]; ours && !set {
			if m, ok := v.(map[string]any); !ok || m["secure"] == nil {
				delete(cfg, key)
			}
		}
	}
	file["config"] = cfg
	data, err := yaml.Marshal(file)
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o600)
}

func typed(typ, raw string) (any, error) {
	switch typ {
	case "integer":
		if n, err := strconv.Atoi(raw); err == nil {
			return n, nil
		}
	case "boolean":
		if b, err := strconv.ParseBool(raw); err == nil {
			return b, nil
		}
	case "array":
		var list []any
		if err := json.Unmarshal([]byte(raw), &list); err == nil {
			return list, nil
		}
	}
	return raw, nil // the engine's schema check reports a value of the wrong type
}

// Step is one resource operation the engine planned or performed.
type Step struct {
	Op   apitype.OpType
	Type string
	Name string
}

// PreviewSteps previews and returns every step, so a test can say exactly which resources would change.
// opts are passed on (progress streams, say). After a failed preview the steps are those seen so far: the
// SDK closes the event channel only when the CLI got as far as streaming events, which a CLI that refuses
// the stack's config never does, so waiting for the close would hang.
func PreviewSteps(ctx context.Context, stack auto.Stack, opts ...optpreview.Option) ([]Step, error) {
	ch := make(chan events.EngineEvent)
	done := make(chan struct{})
	var mu sync.Mutex
	var steps []Step
	go func() {
		defer close(done)
		for ev := range ch {
			if ev.ResourcePreEvent != nil {
				m := ev.ResourcePreEvent.Metadata
				mu.Lock()
				steps = append(steps, Step{Op: m.Op, Type: m.Type, Name: resource.URN(m.URN).Name()})
				mu.Unlock()
			}
		}
	}()
	_, err := stack.Preview(ctx, append(opts, optpreview.EventStreams(ch))...)
	if err == nil {
		<-done // the SDK closes the channel after the last event of a finished preview
	}
	mu.Lock()
	defer mu.Unlock()
	return slices.Clone(steps), err
}

// Shell runs one command line of a runbook with bash in the workspace, with the driver's environment (this
// toolchain's pulumi and kubectl first on PATH), as a user would paste it, and returns its combined output.
// Like CLI, it suits commands that do not run the program.
func (d Driver) Shell(ctx context.Context, command string) (string, error) {
	out, err := d.command(ctx, "bash", "-c", command).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w\n%s", command, err, out)
	}
	return string(out), nil
}

// CLI runs the real Pulumi CLI in the workspace, with the driver's environment, exactly as a user would
// type the command, and returns its combined output. It suits every command that does not run the
// program (destroy, refresh, cancel, stack, config); preview and up run the program, which needs the Go
// language host that cannot be built here, so they go through the Automation API instead.
func (d Driver) CLI(ctx context.Context, args ...string) (string, error) {
	out, err := d.command(ctx, d.Tools.Path("pulumi"), args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("pulumi %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// command is name with args, run in the workspace with the driver's environment.
func (d Driver) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = d.workDir()
	cmd.Env = os.Environ()
	for k, v := range d.Env() {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	return cmd
}
