// Command loklak-dumps is the Pulumi program that deploys loklak_server to GKE with its message dumps on a
// Compute Engine persistent disk. Everything it declares is in package infra.
package main

import (
	"github.com/loklak/loklak-dumps/infra"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

func main() {
	pulumi.Run(infra.Program)
}
