// Command loklak-dumps is the Pulumi program that deploys loklak_server to GKE with its message dumps on a
// Compute Engine persistent disk. Everything it declares is in package infra.
package main

import (
	"errors"
	"os"

	"github.com/loklak/loklak-dumps/infra"
	"github.com/pulumi/pulumi/sdk/v3/go/common/constant"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

func main() {
	pulumi.Run(func(ctx *pulumi.Context) error {
		err := infra.Program(ctx)
		if errors.Is(err, infra.ErrInvalidConfig) {
			// Each bad value is already an engine diagnostic. This exit status tells the Go language host
			// so, and the engine fails the run without "an unhandled error occurred", which reads as a bug.
			os.Exit(constant.ExitStatusLoggedError)
		}
		return err
	})
}
