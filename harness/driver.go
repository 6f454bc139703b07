package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/loklak/loklak-dumps/infra"
	"github.com/loklak/loklak-dumps/internal/stackconfig"
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
	Tools      Tools
	RepoDir    string // holds Pulumi.yaml and the Pulumi.<stack>.yaml files
	StateDir   string // backend, PULUMI_HOME and the workspace
	Passphrase string // for the passphrase secrets provider
	// Program runs instead of infra.Program when set (the benchmarks' empty-program floor).
	Program pulumi.RunFunc
}

// Stack creates or selects a stack whose config file is values (keys without the project namespace),
// written as the user would write Pulumi.<name>.yaml, plus secrets set as Pulumi secrets.
func (d Driver) Stack(ctx context.Context, name string, values stackconfig.Values, secrets map[string]string) (auto.Stack, error) {
	project, err := stackconfig.Project(d.RepoDir)
	if err != nil {
		return auto.Stack{}, err
	}
	backend := filepath.Join(d.StateDir, "backend")
	work := filepath.Join(d.StateDir, "workspace")
	home := filepath.Join(d.StateDir, "home")
	for _, dir := range []string{backend, work, home} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return auto.Stack{}, err
		}
	}
	project.Backend = &workspace.ProjectBackend{URL: "file://" + backend}
	if err := writeStackFile(filepath.Join(work, "Pulumi."+name+".yaml"), project.Name.String(), values); err != nil {
		return auto.Stack{}, err
	}
	cli, err := auto.NewPulumiCommand(&auto.PulumiCommandOptions{Root: filepath.Dir(d.Tools.Bin), SkipVersionCheck: true})
	if err != nil {
		return auto.Stack{}, err
	}
	program := d.Program
	if program == nil {
		program = infra.Program
	}
	stack, err := auto.UpsertStackInlineSource(ctx, name, project.Name.String(), program,
		auto.Project(*project),
		auto.WorkDir(work),
		auto.Pulumi(cli),
		auto.SecretsProvider("passphrase"),
		auto.EnvVars(map[string]string{
			"PULUMI_CONFIG_PASSPHRASE": d.Passphrase,
			"PULUMI_HOME":              home,
			"PULUMI_SKIP_UPDATE_CHECK": "true",
			"PATH":                     d.Tools.PathEnv(),
			// The provider must use the kubeconfig from stack config, never an ambient one.
			"KUBECONFIG": "",
		}),
	)
	if err != nil {
		return auto.Stack{}, err
	}
	for key, value := range secrets {
		if err := stack.SetConfig(ctx, key, auto.ConfigValue{Value: value, Secret: true}); err != nil {
			return auto.Stack{}, err
		}
	}
	return stack, nil
}

// writeStackFile writes values with the types Pulumi.yaml declares (integers, booleans, lists), so the
// CLI validates them against the schema exactly as it does a user's stack file. Existing secrets in the
// file are kept.
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
func PreviewSteps(ctx context.Context, stack auto.Stack) ([]Step, error) {
	ch := make(chan events.EngineEvent)
	done := make(chan []Step)
	go func() {
		var steps []Step
		for ev := range ch {
			if ev.ResourcePreEvent != nil {
				m := ev.ResourcePreEvent.Metadata
				steps = append(steps, Step{Op: m.Op, Type: m.Type, Name: resource.URN(m.URN).Name()})
			}
		}
		done <- steps
	}()
	_, err := stack.Preview(ctx, optpreview.EventStreams(ch))
	steps := <-done
	return steps, err
}
