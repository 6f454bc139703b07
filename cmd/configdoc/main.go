// Command configdoc rewrites the config reference in README.md from Pulumi.yaml (run by `make docs`).
package main

import (
	"fmt"
	"os"

	"github.com/loklak/loklak-dumps/internal/configdoc"
	"github.com/loklak/loklak-dumps/internal/stackconfig"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "configdoc:", err)
		os.Exit(1)
	}
}

func run() error {
	p, err := stackconfig.Project(".")
	if err != nil {
		return err
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		return err
	}
	out, err := configdoc.Replace(string(readme), configdoc.Table(p))
	if err != nil {
		return err
	}
	return os.WriteFile("README.md", []byte(out), 0o644)
}
