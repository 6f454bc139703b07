// Package toolchain finds the real binaries hack/toolchain.sh builds from source (the Pulumi CLI and
// Kubernetes provider, the control plane, kwok, the GCP stand-in plugin, rclone) and runs them.
package toolchain

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ToolsEnv names the environment variable holding the directory hack/toolchain.sh prints (--bin-dir).
const ToolsEnv = "LOKLAK_TOOLS_BIN"

// Tools is a directory holding every real binary the harness runs.
type Tools struct {
	Bin string
}

var requiredTools = []string{
	"pulumi", "pulumi-resource-kubernetes", "pulumi-resource-gcp", "etcd",
	"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok", "rclone",
	ImagesDir + "/rclone", ImagesDir + "/busybox",
}

// ImagesDir is the directory below Bin holding the static binaries the Docker Hub stand-in makes its
// images from (testbed/dockerhub.ReadBinaries): the loklak stand-in and the pause program (built from
// this checkout), rclone v1.71.0 (the same file as Bin's rclone) and Debian's busybox-static, the last
// two for rclone/rclone:1.71.0.
const ImagesDir = "images"

// ToolsFromEnv finds the tools through $LOKLAK_TOOLS_BIN and checks every one is there.
func ToolsFromEnv() (Tools, error) {
	bin := os.Getenv(ToolsEnv)
	if bin == "" {
		return Tools{}, fmt.Errorf("%s is not set: run `make e2e` (or export %s=\"$(hack/toolchain.sh --bin-dir)\")", ToolsEnv, ToolsEnv)
	}
	t := Tools{Bin: bin}
	var missing []string
	for _, name := range requiredTools {
		if _, err := os.Stat(t.Path(name)); err != nil {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return Tools{}, fmt.Errorf("%s=%s lacks %s: run hack/toolchain.sh", ToolsEnv, bin, strings.Join(missing, ", "))
	}
	return t, nil
}

// Path is the full path of a tool.
func (t Tools) Path(name string) string { return filepath.Join(t.Bin, name) }

// Images is the full path of ImagesDir, what dockerhub-standin's -binaries names.
func (t Tools) Images() string { return t.Path(ImagesDir) }

// PathEnv is PATH with the tools first, so the Automation API finds this pulumi and the engine finds
// this pulumi-resource-kubernetes as an ambient plugin (no plugin download is possible here).
func (t Tools) PathEnv() string { return t.Bin + string(os.PathListSeparator) + os.Getenv("PATH") }

// Command runs a tool.
func (t Tools) Command(name string, args ...string) *exec.Cmd {
	return exec.Command(t.Path(name), args...)
}
