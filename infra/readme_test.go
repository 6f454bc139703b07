package infra_test

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/loklak/loklak-dumps/internal/stackconfig"
)

// The README's config reference is exactly the table this test derives from Pulumi.yaml. When it
// fails, paste the table it prints between the README's config-table markers.
func TestReadmeConfigTableMatchesPulumiYaml(t *testing.T) {
	p, err := stackconfig.Project("..")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("| Key | Type | Default | Description |\n|---|---|---|---|\n")
	keys := make([]string, 0, len(p.Config))
	for k := range p.Config {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		ct := p.Config[k]
		typ := *ct.Type
		if ct.Secret {
			typ += ", secret"
		}
		def := "none"
		if ct.Default != nil {
			v, _ := json.Marshal(ct.Default)
			def = "`" + strings.Trim(string(v), `"`) + "`"
			if ct.Default == "" {
				def = "`\"\"`"
			}
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", k, typ, def, strings.ReplaceAll(ct.Description, "|", `\|`))
	}
	wantTable := b.String()

	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const start, end = "<!-- config-table:start -->\n", "<!-- config-table:end -->"
	_, rest, ok1 := strings.Cut(string(readme), start)
	got, _, ok2 := strings.Cut(rest, end)
	if !ok1 || !ok2 {
		t.Fatalf("README.md lacks the %q ... %q markers", start, end)
	}
	if got != wantTable {
		t.Errorf("README config table differs from Pulumi.yaml; it should read:\n%s", wantTable)
	}
}
