//go:build e2e

// Package localrun runs the local loop (`make local-up`, `local-preview`, `local-down`) as a user does. It
// has no control plane of its own: the loop starts one, with a real node, so `make e2e` runs this package
// alone (-p 1), after the others have stopped theirs.
package localrun

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/loklak/loklak-dumps/testbed/e2e/e2etest"
	"github.com/loklak/loklak-dumps/testbed/gke"
	"github.com/loklak/loklak-dumps/testbed/toolchain"
)

// The local loop as the README gives it, with the same command `make local-up`, `make local-preview`
// and `make local-down` run, in a copy of the project: preview before any up says what to do; up starts
// a control plane with a real node and ends with loklak's /dump/ listing and the command that printed
// it; after an edit of Pulumi.local.yaml, preview shows the change and up applies it on the same control
// plane (same processes); down stops it all, removes the local state, and leaves no mount or loop device.
func TestLocalLoop(t *testing.T) {
	tools, err := toolchain.ToolsFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	repo, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "local")
	build := exec.Command("go", "build", "-o", bin, "./testbed/cmd/local")
	build.Dir = repo
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./testbed/cmd/local: %v\n%s", err, out)
	}
	work := t.TempDir()
	for _, f := range []string{"Pulumi.yaml", "Pulumi.local.yaml"} {
		data, err := os.ReadFile(filepath.Join(repo, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(work, f), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	state := filepath.Join(work, ".local")
	local := func(command string) (string, error) {
		cmd := exec.CommandContext(ctx, bin, command)
		cmd.Dir = work
		cmd.Env = append(os.Environ(), "LOKLAK_TOOLS_BIN="+tools.Bin, "LOKLAK_LOCAL_DIR="+state)
		// A file, not a pipe: the control plane it leaves running must not hold our end open.
		out, err := os.CreateTemp(t.TempDir(), "local-"+command+"-*.log")
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = out.Close() }()
		cmd.Stdout, cmd.Stderr = out, out
		runErr := cmd.Run()
		printed, err := os.ReadFile(out.Name())
		if err != nil {
			t.Fatal(err)
		}
		return string(printed), runErr
	}
	mustLocal := func(command string) string {
		t.Helper()
		out, err := local(command)
		if err != nil {
			t.Fatalf("local %s: %v\n%s", command, err, out)
		}
		return out
	}
	t.Cleanup(func() {
		if out, err := local("down"); err != nil {
			t.Errorf("clean-up local down: %v\n%s", err, out)
		}
	})

	out, err := local("preview")
	if err == nil || !strings.Contains(out, "run `make local-up` first") {
		t.Errorf("preview without a control plane: %v, output %q; want a failure that says to run make local-up", err, lastLines(out, 2))
	}

	// A bad value is refused before anything starts, a line per key, with no "unhandled error" frame.
	stackFile := filepath.Join(work, "Pulumi.local.yaml")
	config, err := os.ReadFile(stackFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stackFile, append(slices.Clone(config), "  loklak-dumps:replicas: 2\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = local("up")
	if err == nil || !strings.Contains(out, `error: config loklak-dumps:replicas = "2": must be an integer from 0 to 1`) || strings.Contains(out, "unhandled") {
		t.Errorf("up with replicas: 2: %v, output:\n%s\nwant a failure with one line for the key and no unhandled error", err, out)
	}
	if _, err := os.Stat(filepath.Join(state, "cluster")); !os.IsNotExist(err) {
		t.Errorf("up with a bad config started a control plane (%v)", err)
	}
	if err := os.WriteFile(stackFile, config, 0o600); err != nil {
		t.Fatal(err)
	}

	out = mustLocal("up")
	if !strings.Contains(out, "local: control plane ready") {
		t.Errorf("the first up did not start a control plane:\n%s", out)
	}
	// It ends with /dump/ as loklak lists it, and the one command that lists it again.
	listCommand := lineAfter(out, "local: loklak's /dump/, listed with")
	if !strings.Contains(listCommand, "get --raw /api/v1/namespaces/loklak-local/services/loklak-server:http/proxy/dump/") ||
		!strings.Contains(out, `<a href="messages_`) {
		t.Errorf("the first up does not end with the /dump/ listing and its command:\n%s", lastLines(out, 12))
	}
	if again, err := exec.CommandContext(ctx, "bash", "-c", listCommand).Output(); err != nil || !strings.Contains(string(again), `<a href="messages_`) {
		t.Errorf("the printed command %q: %v, %q; want the listing", listCommand, err, again)
	}
	pidsFile := filepath.Join(state, "cluster", "pids")
	firstPIDs, err := os.ReadFile(pidsFile)
	if err != nil {
		t.Fatal(err)
	}

	const image = "loklak/loklak_server:standin-v2" // a tag the Docker Hub stand-in serves (testbed/dockerhub)
	edited := strings.Replace(string(config), "loklak/loklak_server:latest-development", image, 1)
	if edited == string(config) {
		t.Fatal("Pulumi.local.yaml has no image to edit")
	}
	if err := os.WriteFile(stackFile, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}

	out = mustLocal("preview")
	for _, part := range []string{"kubernetes:apps/v1:Deployment", image, "1 to update"} {
		if !strings.Contains(out, part) {
			t.Errorf("preview after the edit does not show %q:\n%s", part, out)
		}
	}
	out = mustLocal("up")
	for _, part := range []string{"local: reusing the control plane", image, "1 updated"} {
		if !strings.Contains(out, part) {
			t.Errorf("the second up does not show %q:\n%s", part, out)
		}
	}
	if strings.Contains(out, "local: starting etcd") {
		t.Errorf("the second up started another control plane")
	}
	pids, err := os.ReadFile(pidsFile)
	if err != nil {
		t.Fatal(err)
	}
	want(t, "control plane processes (the same ones)", string(pids), string(firstPIDs))
	cluster, err := gke.AttachControlPlane(ctx, tools, filepath.Join(state, "cluster"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := cluster.Kubectl(ctx, "-n", "loklak-local", "get", "deployment", "loklak-server", "-o", "jsonpath={.spec.template.spec.containers[0].image}")
	if err != nil {
		t.Fatal(err)
	}
	want(t, "image on the running control plane", string(got), image)

	// The node's own directory (mounts and loop devices live below it), before down removes the link.
	nodeDir, err := filepath.EvalSymlinks(filepath.Join(state, "cluster", "node"))
	if err != nil {
		t.Fatal(err)
	}
	mustLocal("down")
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Errorf("local down left %s: %v", state, err)
	}
	for _, p := range strings.Fields(string(firstPIDs)) {
		if pid, err := strconv.Atoi(p); err != nil || gke.ProcessRunning(pid) {
			t.Errorf("process %s of the local control plane still runs after local down", p)
		}
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{state, nodeDir} {
		if strings.Contains(string(mounts), dir) {
			t.Errorf("local down left mounts below %s", dir)
		}
	}
	if _, err := os.Stat(nodeDir); !os.IsNotExist(err) {
		t.Errorf("local down left the node's directory %s: %v", nodeDir, err)
	}
	if loops, err := exec.Command("losetup", "--list", "--noheadings", "--output", "BACK-FILE").Output(); err != nil {
		t.Fatal(err)
	} else if strings.Contains(string(loops), state) || strings.Contains(string(loops), nodeDir) {
		t.Errorf("local down left loop devices on %s:\n%s", state, loops)
	}
}

// lineAfter returns the line that follows the first line containing marker, trimmed.
func lineAfter(out, marker string) string {
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		if strings.Contains(l, marker) && i+1 < len(lines) {
			return strings.TrimSpace(lines[i+1])
		}
	}
	return ""
}

func lastLines(s string, n int) string { return e2etest.LastLines(s, n) }

func want[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	e2etest.Want(t, what, got, want)
}
