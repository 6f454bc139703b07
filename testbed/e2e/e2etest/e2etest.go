// Package e2etest holds the small helpers the end-to-end suites share (testbed/e2e, e2e/realnode,
// e2e/localrun): each suite is a package of its own, with its own control plane, so they cannot share
// test files.
package e2etest

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// WaitUntil polls ok every second for up to three minutes, and fails the test after that: what the tests
// wait for is the controllers', the scheduler's and the kubelet's work, which has no event to wait on
// from here.
func WaitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Second)
	}
}

// Want reports got != want as an error naming what.
func Want[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// Log adapts t.Log to an io.Writer, for the engine's progress output.
type Log struct{ T *testing.T }

func (w Log) Write(p []byte) (int, error) {
	w.T.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// LastLines returns the last n lines of s, joined by " | ", for an error message.
func LastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], " | ")
}

// RestoreCommand is the one kubectl exec command of repoDir's docs/archive.md (the restore), as written
// there: the tests run the command the docs give, so the two cannot drift apart.
func RestoreCommand(t *testing.T, repoDir string) string {
	t.Helper()
	f, err := os.Open(filepath.Join(repoDir, "docs", "archive.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }() // read only
	var found []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, "kubectl ") && strings.Contains(line, " exec ") {
			found = append(found, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(found) != 1 {
		t.Fatalf("docs/archive.md has %d kubectl exec commands, want the one restore command: %q", len(found), found)
	}
	return found[0]
}
