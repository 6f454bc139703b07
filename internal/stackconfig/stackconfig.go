// Package stackconfig reads a stack's effective configuration the way the Pulumi engine builds it:
// the defaults of Pulumi.yaml's config schema, overlaid by Pulumi.<stack>.yaml. Tests and the local
// harness use it so they run the program on the real stack files, never on copies.
package stackconfig

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/pulumi/pulumi/sdk/v3/go/common/diag"
	"github.com/pulumi/pulumi/sdk/v3/go/common/diag/colors"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/config"
	"github.com/pulumi/pulumi/sdk/v3/go/common/workspace"
)

// Values maps a config key (without the project namespace) to its raw value: a string, with numbers and
// booleans in their text form and arrays as JSON, which is how the engine hands config to a program.
type Values map[string]string

// Project loads Pulumi.yaml from dir.
func Project(dir string) (*workspace.Project, error) {
	return workspace.LoadProject(filepath.Join(dir, "Pulumi.yaml"))
}

// Defaults returns the defaults declared in the project's config schema.
func Defaults(p *workspace.Project) (Values, error) {
	out := Values{}
	for key, t := range p.Config {
		if t.Default == nil {
			continue
		}
		s, err := raw(t.Default)
		if err != nil {
			return nil, fmt.Errorf("default of %s in Pulumi.yaml: %w", key, err)
		}
		out[key] = s
	}
	return out, nil
}

// Load returns the effective config of stack in the project in dir.
func Load(dir, stack string) (*workspace.Project, Values, error) {
	p, err := Project(dir)
	if err != nil {
		return nil, nil, err
	}
	values, err := Defaults(p)
	if err != nil {
		return nil, nil, err
	}
	sink := diag.DefaultSink(io.Discard, io.Discard, diag.FormatOptions{Color: colors.Never})
	ps, err := workspace.LoadProjectStack(sink, p, filepath.Join(dir, "Pulumi."+stack+".yaml"))
	if err != nil {
		return nil, nil, err
	}
	for key, v := range ps.Config {
		if key.Namespace() != p.Name.String() {
			continue // another package's config, such as gcp:project
		}
		if v.Secure() {
			return nil, nil, fmt.Errorf("%s in Pulumi.%s.yaml is a secret; set it with the stack, not in tests", key, stack)
		}
		s, err := v.Value(config.NopDecrypter)
		if err != nil {
			return nil, nil, fmt.Errorf("%s in Pulumi.%s.yaml: %w", key, stack, err)
		}
		values[key.Name()] = s
	}
	return p, values, nil
}

// With returns a copy of v with the given keys overridden; an empty value removes the key.
func (v Values) With(overrides map[string]string) Values {
	out := maps.Clone(v)
	if out == nil {
		out = Values{}
	}
	for k, s := range overrides {
		if s == "" {
			delete(out, k)
		} else {
			out[k] = s
		}
	}
	return out
}

// EngineJSON is v as the PULUMI_CONFIG environment variable the engine gives a program.
func (v Values) EngineJSON(project string) string {
	m := map[string]string{}
	for k, s := range v {
		m[project+":"+k] = s
	}
	b, _ := json.Marshal(m) // a map of strings always marshals
	return string(b)
}

func raw(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case int:
		return strconv.Itoa(x), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case []any:
		b, err := json.Marshal(x)
		return string(b), err
	default:
		return "", fmt.Errorf("unsupported default of type %T", v)
	}
}

// Validate applies to Pulumi.<stack>.yaml the checks the Pulumi CLI makes before it runs any program
// (pulumi pkg/v3 workspace/config.go: mergeConfig and validateStackConfigValues, v3.274.1): every key the
// project declares without a default must be set; a key declared secret must be encrypted; every value,
// defaults included, must be of the declared type. Unlike the CLI it reports every problem at once.
// The end-to-end tests run the real CLI on the same files; this keeps the check in every `go test`.
func Validate(dir, stack string) error {
	p, err := Project(dir)
	if err != nil {
		return err
	}
	sink := diag.DefaultSink(io.Discard, io.Discard, diag.FormatOptions{Color: colors.Never})
	ps, err := workspace.LoadProjectStack(sink, p, filepath.Join(dir, "Pulumi."+stack+".yaml"))
	if err != nil {
		return err
	}
	var problems []error
	for _, name := range slices.Sorted(maps.Keys(p.Config)) {
		declared := p.Config[name]
		key := config.MustMakeKey(p.Name.String(), name)
		value, set := ps.Config[key]
		if !set {
			if declared.Default == nil && declared.Value == nil {
				problems = append(problems, fmt.Errorf("Stack '%s' is missing configuration value '%s'", stack, name)) //nolint:staticcheck // the CLI's message, verbatim
				continue
			}
			raw := declared.Default // the CLI prefers the default over a project-level value
			if raw == nil {
				raw = declared.Value
			}
			if value, err = configValue(raw); err != nil {
				return fmt.Errorf("default of %s: %w", name, err)
			}
		}
		if !declared.IsExplicitlyTyped() {
			continue
		}
		if declared.Secret && !value.Secure() {
			problems = append(problems, fmt.Errorf("Stack '%s' with configuration key '%s' must be encrypted as it's secret", stack, name)) //nolint:staticcheck // the CLI's message, verbatim
			continue
		}
		if value.Secure() {
			continue // its plaintext needs the stack's passphrase; the CLI checks it with the real decrypter
		}
		text, err := value.Value(config.NopDecrypter)
		if err != nil {
			return err
		}
		var content any = text
		if value.Object() {
			if err := json.Unmarshal([]byte(text), &content); err != nil {
				return err
			}
		}
		if !workspace.ValidateConfigValue(*declared.Type, declared.Items, content) {
			problems = append(problems, fmt.Errorf("Stack '%s' with configuration key '%s' must be of type '%s'", //nolint:staticcheck // the CLI's message, verbatim
				stack, name, workspace.InferFullTypeName(*declared.Type, declared.Items)))
		}
	}
	return errors.Join(problems...)
}

// configValue turns a schema default into a stack value the way the CLI does (createConfigValue).
func configValue(raw any) (config.Value, error) {
	switch raw.(type) {
	case string, int, bool:
		return config.NewValue(fmt.Sprint(raw)), nil
	}
	simple, err := workspace.SimplifyMarshalledValue(raw)
	if err != nil {
		return config.Value{}, err
	}
	text, err := json.Marshal(simple)
	if err != nil {
		return config.Value{}, err
	}
	return config.NewObjectValue(string(text)), nil
}
