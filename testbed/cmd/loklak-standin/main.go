// Command loklak-standin is a stand-in for loklak_server where this project's Kubernetes stack depends
// on it (see testbed/loklak/README.md). It runs the server, configured from the environment as its
// container is.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/loklak/loklak-dumps/testbed/loklak"
)

func main() {
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "loklak-standin: unexpected arguments %q (the server is configured from the environment)\n", flag.Args())
		os.Exit(2)
	}
	os.Exit(loklak.Main(os.LookupEnv, os.Stderr))
}
