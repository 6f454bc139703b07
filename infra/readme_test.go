package infra_test

import (
	"os"
	"testing"

	"github.com/loklak/loklak-dumps/internal/configdoc"
	"github.com/loklak/loklak-dumps/internal/stackconfig"
)

// The README's config reference is generated from Pulumi.yaml; this fails when someone edits one
// without running `make docs`.
func TestReadmeConfigTableMatchesPulumiYaml(t *testing.T) {
	p, err := stackconfig.Project("..")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	got, err := configdoc.Section(string(readme))
	if err != nil {
		t.Fatal(err)
	}
	if want := configdoc.Table(p); got != want {
		t.Errorf("README config table differs from Pulumi.yaml: run `make docs`. It should read:\n%s", want)
	}
}
