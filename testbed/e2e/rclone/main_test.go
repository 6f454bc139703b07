//go:build e2e

// Package rclone runs the rclone hack/toolchain.sh builds (github.com/rclone/rclone v1.71.0, every
// backend), the binary the Docker Hub stand-in serves as rclone/rclone:1.71.0, against a real Cloud
// Storage emulator (fake-gcs-server v1.56.1's fakestorage, in this process, on a loopback HTTP listener),
// configured as the archiver sidecar configures it (infra/archiver.go): only environment variables, no
// config file, no credentials. It needs no root and no control plane. Run it with `make e2e`, or
//
//	LOKLAK_TOOLS_BIN="$(hack/toolchain.sh --bin-dir)" go test -tags e2e ./testbed/e2e/rclone/
//
// Without the toolchain it fails, saying to run hack/toolchain.sh; nothing is skipped.
package rclone

import (
	"fmt"
	"os"
	"testing"

	"github.com/loklak/loklak-dumps/testbed/toolchain"
)

var tools toolchain.Tools

func TestMain(m *testing.M) {
	var err error
	if tools, err = toolchain.ToolsFromEnv(); err != nil {
		fmt.Fprintln(os.Stderr, "rclone:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}
