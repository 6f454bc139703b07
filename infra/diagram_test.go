package infra_test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var (
	diagramNode = regexp.MustCompile(`^\s*([a-z]+)\["[^"]*<br/>([a-z0-9-]+:[A-Za-z0-9./-]+:[A-Za-z]+)"\]`)
	diagramEdge = regexp.MustCompile(`^\s*([a-z]+) --> ([a-z]+)\s*$`)
	diagramType = regexp.MustCompile(`[a-z0-9-]+:[A-Za-z0-9./-]+:[A-Za-z]+`)
)

// The README's Mermaid graph must show exactly the resource types the program registers (dev, prod and
// prod on a regional disk together cover every type), and each solid arrow must be a dependency the
// program really has.
func TestReadmeDiagramMatchesTheProgram(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "```mermaid\n")
	block, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("README.md has no mermaid block")
	}
	nodes := map[string]string{} // diagram id -> type token
	var shown []string
	for _, line := range strings.Split(block, "\n") {
		if m := diagramNode.FindStringSubmatch(line); m != nil {
			nodes[m[1]] = m[2]
		}
	}
	for _, typ := range diagramType.FindAllString(block, -1) {
		if !slices.Contains(shown, typ) {
			shown = append(shown, typ)
		}
	}
	slices.Sort(shown)

	var registered []string
	deps := map[string][]string{} // type -> types it depends on
	regional := map[string]string{"diskMode": "create", "diskSizeGb": "200", "diskReplicaZones": `["us-central1-a","us-central1-b"]`}
	for _, run := range []struct {
		stack     string
		overrides map[string]string
	}{{"dev", nil}, {"prod", nil}, {"prod", regional}, {"dev", withArchive(map[string]string{"archivePublic": "true", "archivePublicAccessPrevention": "inherited"})},
		{"dev", map[string]string{"volumeAlertPercent": "80", "volumeAlertChannels": "projects/loklak-server/notificationChannels/1"}}} {
		for _, r := range mustRun(t, run.stack, run.overrides).Resources() {
			if !slices.Contains(registered, r.Type) {
				registered = append(registered, r.Type)
			}
			for _, d := range r.DependsOn {
				deps[r.Type] = append(deps[r.Type], strings.SplitN(d, "::", 2)[0])
			}
		}
	}
	slices.Sort(registered)
	if !slices.Equal(shown, registered) {
		t.Errorf("diagram shows %v\nprogram registers %v", shown, registered)
	}

	edges := 0
	for _, line := range strings.Split(block, "\n") {
		m := diagramEdge.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		edges++
		from, to := nodes[m[1]], nodes[m[2]]
		if from == "" || to == "" {
			t.Errorf("edge %q joins an unknown node", strings.TrimSpace(line))
			continue
		}
		if !slices.Contains(deps[to], from) {
			t.Errorf("diagram says %s --> %s, but the program's %s does not depend on %s", m[1], m[2], to, from)
		}
	}
	if edges < 8 {
		t.Errorf("diagram has %d solid arrows, want the whole chain", edges)
	}
}
