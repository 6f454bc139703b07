package infra_test

import (
	"slices"
	"testing"

	"github.com/loklak/loklak-dumps/infra"
	"github.com/loklak/loklak-dumps/internal/stackconfig"
)

// Pulumi.yaml's schema and the keys the program reads must be the same set, with the same types,
// each described, so `pulumi config` and the program never disagree.
func TestSchemaMatchesTheKeysTheProgramReads(t *testing.T) {
	p, err := stackconfig.Project("..")
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Name.String(); got != project {
		t.Fatalf("project name %q, want %q", got, project)
	}
	var declared []string
	for key, ct := range p.Config {
		declared = append(declared, key)
		typ, read := infra.Keys[key]
		if !read {
			t.Errorf("Pulumi.yaml declares %s, which the program never reads", key)
			continue
		}
		if ct.Type == nil || *ct.Type != typ {
			t.Errorf("Pulumi.yaml: %s has type %v, the program reads it as %s", key, ct.Type, typ)
		}
		if ct.Description == "" {
			t.Errorf("Pulumi.yaml: %s has no description", key)
		}
	}
	for _, key := range infra.SortedKeys() {
		if !slices.Contains(declared, key) {
			t.Errorf("the program reads %s, which Pulumi.yaml does not declare", key)
		}
	}
}

// Only the values that identify a deployment have no default; everything else runs as declared.
func TestOnlyIdentityKeysLackDefaults(t *testing.T) {
	p, err := stackconfig.Project("..")
	if err != nil {
		t.Fatal(err)
	}
	var undefaulted []string
	for key, ct := range p.Config {
		if ct.Default == nil {
			undefaulted = append(undefaulted, key)
		}
	}
	slices.Sort(undefaulted)
	if want := []string{"diskName", "gcpProject", "image"}; !slices.Equal(undefaulted, want) {
		t.Errorf("keys without a default = %v, want %v", undefaulted, want)
	}
}
