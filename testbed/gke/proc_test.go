package gke

import (
	"os"
	"os/exec"
	"slices"
	"testing"
)

func TestParseProcStatFindsFieldsAfterTheLastParenthesis(t *testing.T) {
	st, err := parseProcStat(42, "42 (odd) name) S 7 42 42 0 -1")
	if err != nil {
		t.Fatal(err)
	}
	if st.comm != "odd) name" || st.state != 'S' || st.ppid != 7 {
		t.Errorf("parsed %+v, want comm %q, state S, ppid 7", st, "odd) name")
	}
	for _, bad := range []string{"42 S 7", "42 (x) S", "42 (x) S notapid"} {
		if _, err := parseProcStat(42, bad); err == nil {
			t.Errorf("%q parsed without error", bad)
		}
	}
}

// A process the kernel is reaping shows as 'X' while kill(pid, 0) still succeeds; seen as alive, it
// failed TestRestartIsRecorded in CI right after terminate had seen it as a zombie.
func TestExitedStatesAreNotRunning(t *testing.T) {
	for state, want := range map[byte]bool{'R': true, 'S': true, 'D': true, 'T': true, 'I': true, 'Z': false, 'X': false, 'x': false} {
		if got := (procStat{state: state}).running(); got != want {
			t.Errorf("state %c: running() = %v, want %v", state, got, want)
		}
	}
}

func TestChildProcessesFindsARunningChild(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	if got := ChildProcesses(os.Getpid(), "sle"); !slices.Equal(got, []int{cmd.Process.Pid}) {
		t.Errorf("ChildProcesses(self, sle) = %v, want [%d]", got, cmd.Process.Pid)
	}
	if got := ChildProcesses(os.Getpid(), "nosuch"); len(got) != 0 {
		t.Errorf("ChildProcesses(self, nosuch) = %v, want none", got)
	}
	if !alive(cmd.Process.Pid) {
		t.Errorf("alive(%d) = false for a running child", cmd.Process.Pid)
	}
}
