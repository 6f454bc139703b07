//go:build e2e

package realnode

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loklak/loklak-dumps/testbed/e2e/e2etest"
	"golang.org/x/sys/unix"
)

// The stack's names, as infra declares them.
const (
	serverName = "loklak-server"
	podLabel   = "app.kubernetes.io/name=loklak-server"
	dataPath   = "/loklak_server/data" // loklak's VOLUME, where the claim is mounted
	dumpDir    = dataPath + "/dump/own"
	// loklakContainer is loklak's container in the pod; the archiver, when it runs, is the other one.
	loklakContainer = "loklak"
)

// dumpFiles maps each file /dump/ lists to the SHA-256 of the bytes /dump/NAME serves.
type dumpFiles map[string]string

// listedDumps fetches /dump/ through the Service (the API server's service proxy, which dials a ready
// endpoint as a load balancer would) and returns the names it links, sorted.
func listedDumps(t *testing.T, ns string) []string {
	t.Helper()
	page := serviceGet(t, ns, "/dump/")
	var names []string
	for _, m := range regexp.MustCompile(`<a href="(messages_[^"]+)">`).FindAllStringSubmatch(page, -1) {
		names = append(names, m[1])
	}
	slices.Sort(names)
	return names
}

// dumps is every listed file with the hash of its bytes, each downloaded through the Service.
func dumps(t *testing.T, ns string) dumpFiles {
	t.Helper()
	files := dumpFiles{}
	for _, name := range listedDumps(t, ns) {
		files[name] = sha(serviceGet(t, ns, "/dump/"+name))
	}
	return files
}

func serviceGet(t *testing.T, ns, path string) string {
	t.Helper()
	out, err := cp.Kubectl(context.Background(), "get", "--raw",
		fmt.Sprintf("/api/v1/namespaces/%s/services/%s:http/proxy%s", ns, serverName, path))
	if err != nil {
		t.Fatalf("GET %s through the Service: %v", path, err)
	}
	return string(out)
}

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// loklakPod is the stack's running pod, read when it is Ready.
type loklakPod struct {
	Name, UID, Node, ContainerID, Image, ImageID string
	Started, Ready                               time.Time
}

// readyPod waits (up to three minutes: image pull, attach, mount and loklak's start) until the
// Deployment's one pod other than not is Ready, and returns it.
func readyPod(t *testing.T, ns, not string) loklakPod {
	t.Helper()
	var pod loklakPod
	waitUntil(t, "a Ready loklak pod in "+ns, func() bool {
		out, err := cp.Kubectl(context.Background(), "-n", ns, "get", "pods", "-l", podLabel, "-o", "json")
		if err != nil {
			return false
		}
		var list struct {
			Items []struct {
				Metadata struct {
					Name, UID         string
					DeletionTimestamp *time.Time
				}
				Spec   struct{ NodeName string }
				Status struct {
					Conditions []struct {
						Type, Status       string
						LastTransitionTime time.Time
					}
					ContainerStatuses []struct {
						Name, ContainerID, Image, ImageID string
						State                             struct {
							Running *struct{ StartedAt time.Time }
						}
					}
				}
			}
		}
		if json.Unmarshal(out, &list) != nil {
			return false
		}
		for _, p := range list.Items {
			i := -1
			for j, c := range p.Status.ContainerStatuses {
				if c.Name == loklakContainer {
					i = j
				}
			}
			if p.Metadata.DeletionTimestamp != nil || p.Metadata.Name == not || i < 0 {
				continue
			}
			cs := p.Status.ContainerStatuses[i]
			for _, c := range p.Status.Conditions {
				if c.Type == "Ready" && c.Status == "True" && cs.State.Running != nil {
					pod = loklakPod{Name: p.Metadata.Name, UID: p.Metadata.UID, Node: p.Spec.NodeName,
						ContainerID: strings.TrimPrefix(cs.ContainerID, "containerd://"), Image: cs.Image, ImageID: cs.ImageID,
						Started: cs.State.Running.StartedAt, Ready: c.LastTransitionTime}
					return true
				}
			}
		}
		return false
	})
	return pod
}

// pid is the host PID of the pod's loklak process: the kernel's view of it (status, mounts, root) is read
// through /proc/PID on the node, which is this machine.
func (p loklakPod) pid(t *testing.T) int {
	t.Helper()
	pid, err := cp.ContainerPID(context.Background(), p.ContainerID)
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// procStatus returns the fields of /proc/PID/status.
func procStatus(t *testing.T, pid int) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	fields := map[string]string{}
	for _, line := range strings.Split(string(raw), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			fields[k] = strings.TrimSpace(v)
		}
	}
	return fields
}

// dataFilesystem is the size in bytes of the filesystem mounted at loklak's data path, as the pod sees it
// (statfs through the process's root), and the mount's source.
func dataFilesystem(t *testing.T, pid int) (sizeBytes uint64, source string) {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(fmt.Sprintf("/proc/%d/root%s", pid, dataPath), &st); err != nil {
		t.Fatal(err)
	}
	mounts, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mounts), "\n") {
		f := strings.Fields(line)
		if len(f) > 9 && f[4] == dataPath {
			if i := slices.Index(f, "-"); i > 0 && i+2 < len(f) {
				source = f[i+1] + " " + f[i+2]
			}
		}
	}
	return st.Blocks * uint64(st.Bsize), source
}

// mountsOf returns the mount points of the process's mount namespace.
func mountsOf(t *testing.T, pid int) []string {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
	if err != nil {
		t.Fatal(err)
	}
	var points []string
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) > 4 {
			points = append(points, f[4])
		}
	}
	return points
}

// plantClosedDump writes a dump of an earlier day into the pod's volume (through the process's root, as
// a file loklak wrote on an earlier day and gzipped since) and returns its name.
func plantClosedDump(t *testing.T, pid int, name string, content []byte) {
	t.Helper()
	path := filepath.Join(fmt.Sprintf("/proc/%d/root", pid), dumpDir, name)
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitUntil is e2etest.WaitUntil.
func waitUntil(t *testing.T, what string, ok func() bool) { t.Helper(); e2etest.WaitUntil(t, what, ok) }

// wantKept checks that every file of before is listed now with the same bytes, except the open dump,
// whose earlier bytes must still be its first ones (loklak appends to it).
func wantKept(t *testing.T, ns string, before dumpFiles, open string, openBytes string) {
	t.Helper()
	now := dumps(t, ns)
	for name, hash := range before {
		got, ok := now[name]
		switch {
		case !ok:
			t.Errorf("%s is no longer listed at /dump/ (listed: %v)", name, keys(now))
		case name == open:
			if body := serviceGet(t, ns, "/dump/"+name); !strings.HasPrefix(body, openBytes) {
				t.Errorf("the open dump %s lost bytes: it no longer starts with its %d earlier bytes", name, len(openBytes))
			}
		case got != hash:
			t.Errorf("%s changed: sha256 %s, was %s", name, got, hash)
		}
	}
}

func keys(m dumpFiles) []string {
	var k []string
	for name := range m {
		k = append(k, name)
	}
	slices.Sort(k)
	return k
}
