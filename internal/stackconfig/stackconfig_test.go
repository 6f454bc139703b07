package stackconfig

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every committed stack file passes the checks the Pulumi CLI makes before it runs the program.
func TestCommittedStackFilesPassTheCLIsConfigChecks(t *testing.T) {
	files, err := filepath.Glob("../../Pulumi.*.yaml")
	if err != nil || len(files) < 3 {
		t.Fatalf("stack files: %v %v", files, err)
	}
	for _, f := range files {
		stack := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "Pulumi."), ".yaml")
		if err := Validate("../..", stack); err != nil {
			t.Errorf("Pulumi.%s.yaml would be refused by the CLI:\n%v", stack, err)
		}
	}
}

// The checks refuse what the CLI refuses: a missing required key, a value of the wrong type, a plain value
// for a key declared secret.
func TestValidateRefusesWhatTheCLIRefuses(t *testing.T) {
	dir := t.TempDir()
	project := `name: p
runtime: go
config:
  name: {type: string}
  size: {type: integer, default: 10}
  on: {type: boolean, default: true}
  labels: {type: array, items: {type: string}, default: []}
  token: {type: string, secret: true}
`
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("Pulumi.yaml", project)
	for _, tc := range []struct{ stack, want string }{
		{"config:\n  p:size: 20\n", "missing configuration value 'name'"},
		{"config:\n  p:name: x\n  p:token: plain\n  p:size: ten\n", "'size' must be of type 'integer'"},
		{"config:\n  p:name: x\n  p:token: plain\n", "'token' must be encrypted as it's secret"},
		{"config:\n  p:name: x\n  p:token: plain\n  p:labels: notalist\n", "'labels' must be of type 'array<string>'"},
		{"config:\n  p:name: x\n  p:token: plain\n  p:on: maybe\n", "'on' must be of type 'boolean'"},
	} {
		write("Pulumi.s.yaml", tc.stack)
		err := Validate(dir, "s")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("stack %q: %v, want an error containing %q", tc.stack, err, tc.want)
		}
	}
	write("Pulumi.s.yaml", "config:\n  p:name: x\n  p:token:\n    secure: v1:abc\n")
	if err := Validate(dir, "s"); err != nil {
		t.Errorf("a valid stack: %v", err)
	}
}
