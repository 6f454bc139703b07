package gke

import (
	"errors"
	"github.com/loklak/loklak-dumps/testbed/toolchain"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// fakePlane is a control plane whose one process is a shell script that sleeps, in a bin directory of
// its own: enough to exercise starting, restarting and stopping without the real binaries.
func fakePlane(t *testing.T) *ControlPlane {
	t.Helper()
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "fake"), []byte("#!/bin/sh\nexec sleep 60\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cp := &ControlPlane{Dir: t.TempDir(), tools: toolchain.Tools{Bin: bin}}
	if err := cp.start("fake", "--flag"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cp.Stop(); err != nil {
			t.Error(err)
		}
	})
	return cp
}

func pidsFile(t *testing.T, cp *ControlPlane) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(cp.Dir, pidFile))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(data))
}

// A restarted process replaces the stopped one, in procs and in the pids file StopDir reads, with the
// same arguments.
func TestRestartIsRecorded(t *testing.T) {
	cp := fakePlane(t)
	old := cp.procs[0].Process.Pid
	restart, err := cp.StopProcess("fake")
	if err != nil {
		t.Fatal(err)
	}
	if alive(old) {
		t.Fatalf("process %d still runs after StopProcess", old)
	}
	if err := restart(); err != nil {
		t.Fatal(err)
	}
	now := cp.procs[0]
	if now.Process.Pid == old || !alive(now.Process.Pid) {
		t.Fatalf("restarted process %d (old %d) does not run", now.Process.Pid, old)
	}
	if got := strings.Join(now.Args[1:], " "); got != "--flag" {
		t.Errorf("restarted with %q, want the same arguments", got)
	}
	if got := pidsFile(t, cp); len(got) != 1 || got[0] != strconv.Itoa(now.Process.Pid) {
		t.Errorf("pids file = %v, want only the restarted %d", got, now.Process.Pid)
	}
	if err := StopDir(cp.tools, cp.Dir); err != nil {
		t.Fatal(err)
	}
	if alive(now.Process.Pid) {
		t.Errorf("StopDir left the restarted process running")
	}
}

// A restart from one goroutine and a Stop from another (the engine's event stream and a signal handler)
// do not race on procs (run with -race), and nothing is left running.
func TestRestartAndStopConcurrently(t *testing.T) {
	cp := fakePlane(t)
	restart, err := cp.StopProcess("fake")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = restart() }()
	go func() { defer wg.Done(); _ = cp.Stop() }()
	wg.Wait()
	_ = cp.Stop() // a restart that won the race is stopped by the next Stop
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if len(cp.procs) != 0 {
		t.Errorf("procs after Stop = %d", len(cp.procs))
	}
}

// Attaching finds the running control plane by its pids file, and refuses one whose processes are gone
// or that was never started, with ErrNotRunning.
func TestAttachNeedsEveryProcessRunning(t *testing.T) {
	if _, err := AttachControlPlane(t.Context(), toolchain.Tools{}, t.TempDir()); !errors.Is(err, ErrNotRunning) {
		t.Errorf("attach to an empty directory: %v, want ErrNotRunning", err)
	}
	cp := fakePlane(t)
	pid := cp.procs[0].Process.Pid
	_ = cp.Stop()
	if err := os.WriteFile(filepath.Join(cp.Dir, pidFile), []byte(strconv.Itoa(pid)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := AttachControlPlane(t.Context(), toolchain.Tools{}, cp.Dir)
	if !errors.Is(err, ErrNotRunning) || !strings.Contains(err.Error(), strconv.Itoa(pid)) {
		t.Errorf("attach with process %d gone: %v, want ErrNotRunning naming it", pid, err)
	}
}
