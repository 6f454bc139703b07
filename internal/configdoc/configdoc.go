// Package configdoc renders the README's config reference from Pulumi.yaml's config schema, so the
// two cannot drift: `make docs` writes it, a unit test fails when the README differs.
package configdoc

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/workspace"
)

// Markers delimit the generated table in README.md.
const (
	Start = "<!-- config-table:start -->\n"
	End   = "<!-- config-table:end -->"
)

// Table renders one Markdown row per config key, sorted by key.
func Table(p *workspace.Project) string {
	var b strings.Builder
	b.WriteString("| Key | Type | Default | Description |\n|---|---|---|---|\n")
	for _, k := range slices.Sorted(maps.Keys(p.Config)) {
		ct := p.Config[k]
		typ := "untyped"
		if ct.Type != nil {
			typ = *ct.Type
		}
		if ct.Secret {
			typ += ", secret"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", k, typ, defaultCell(ct.Default), strings.ReplaceAll(ct.Description, "|", `\|`))
	}
	return b.String()
}

func defaultCell(v any) string {
	switch v {
	case nil:
		return "none"
	case "":
		return "`\"\"`"
	}
	text, _ := json.Marshal(v)
	return "`" + strings.Trim(string(text), `"`) + "`"
}

// Section returns the table currently between the markers of readme.
func Section(readme string) (string, error) {
	_, section, _, err := split(readme)
	return section, err
}

// Replace returns readme with the table between the markers replaced.
func Replace(readme, table string) (string, error) {
	before, _, after, err := split(readme)
	if err != nil {
		return "", err
	}
	return before + Start + table + End + after, nil
}

// split cuts readme into what comes before the start marker, the section, and what follows the end marker.
func split(readme string) (before, section, after string, err error) {
	before, rest, ok1 := strings.Cut(readme, Start)
	section, after, ok2 := strings.Cut(rest, End)
	if !ok1 || !ok2 {
		return "", "", "", fmt.Errorf("README lacks the config-table markers %q ... %q", strings.TrimSpace(Start), End)
	}
	return before, section, after, nil
}
