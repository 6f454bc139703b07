//go:build e2e

package realnode

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/loklak/loklak-dumps/infra"
	"github.com/loklak/loklak-dumps/testbed/dockerhub"
	"github.com/loklak/loklak-dumps/testbed/loklak"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
)

// simDay is one simulated day: the test moves loklak's clock and every dump file's age by it.
const simDay = 24 * time.Hour

// TestDumpsCloseOnScheduleAndReachTheBucketWhole runs the committed dev stack on the real node with the
// archive on the Cloud Storage emulator, pruning after pruneDays, and loklak's stand-in as loklak really
// writes its dumps: one file per run, gzipped in place at the next start. A clock the test controls
// (the stand-in's clock-offset, and every dump file's modification time moved back) runs it through
// many days:
//   - with the daily rotation (the CronJob's own commands, run as its service account), each day's file
//     closes, reaches the bucket with the same bytes, and the disk holds at most pruneDays plus one
//     rotation period of messages; without it, the same days break that bound;
//   - a gzip killed midway, then a loklak that cannot start for longer than the archiver's min age:
//     the truncated .gz never reaches the bucket, and after a good start the complete one does;
//   - the archiver's image refused by Docker Hub on a node that lacks it: loklak still starts and
//     writes, and the archiver catches up once the image is back;
//   - a disk whose open file was cut at a "snapshot": the restore command of docs/archive.md puts the
//     bucket's complete copy in its place, and /dump/ serves every file whole.
//
// It prints how long /dump/ is unreachable during an image update and during a rotation.
func TestDumpsCloseOnScheduleAndReachTheBucketWhole(t *testing.T) {
	ctx := context.Background()
	const (
		ns        = "loklak-rotation"
		bucket    = "loklak-rotation-dumps"
		pruneDays = 2
		days      = 6
	)
	d, stack, b := archivingStack(t, ns, "loklak-rotation-data", bucket, map[string]string{"archivePruneAfterDays": strconv.Itoa(pruneDays)})
	t.Cleanup(func() { _ = dockerhub.Allow(context.Background(), cp.Registry, "rclone/rclone") })
	step := func(name string, f func(t *testing.T)) {
		if !t.Run(name, f) {
			t.FailNow()
		}
	}

	var (
		pod    loklakPod
		offset time.Duration // the stand-in's clock-offset
	)
	w := world{t: t, ns: ns}
	up := func(t *testing.T) {
		t.Helper()
		if _, err := stack.Up(ctx, optup.ProgressStreams(testLog{T: t})); err != nil {
			t.Fatal(err)
		}
	}

	step("an image update leaves /dump/ down for about loklak's start", func(t *testing.T) {
		up(t)
		pod = readyPod(t, ns, "")
		if err := stack.SetConfig(ctx, "image", auto.ConfigValue{Value: "loklak/loklak_server:standin-v2"}); err != nil {
			t.Fatal(err)
		}
		stop := pollDump(ns)
		up(t)
		gap := stop()
		pod = readyPod(t, ns, pod.Name)
		t.Logf("bench: image update: /dump/ unreachable for %.1f s (the stand-in's start delay is %s)", gap.Seconds(), loklak.DefaultStartDelay)
	})

	// The rotation as the CronJob runs it: its two commands, read from the CronJob in the cluster, run
	// by kubectl as its service account (the node's pods cannot reach this API server, which listens on
	// loopback with no kube-proxy in front, so the test runs them in the Job's stead).
	rotate := func(t *testing.T) time.Duration {
		t.Helper()
		stop := pollDump(ns)
		for _, cmd := range w.rotationCommands() {
			args := append([]string{"--as", "system:serviceaccount:" + ns + ":" + infra.RotationName}, cmd[1:]...)
			if out, err := cp.Kubectl(ctx, args...); err != nil {
				t.Fatalf("%s: %v\n%s", strings.Join(cmd, " "), err, out)
			}
		}
		gap := stop()
		pod = readyPod(t, ns, pod.Name)
		w.waitForMessage(pod)
		return gap
	}
	passDay := func(t *testing.T) {
		t.Helper()
		offset += simDay
		w.setControl(pod, loklak.ControlClockOffset, offset.String())
		w.age(pod, simDay)
	}
	// archivedWhole waits until every closed file on the disk older than the min age is in the bucket
	// with the same bytes, and until nothing older than pruneDays is left on the disk.
	archivedWhole := func(t *testing.T) {
		t.Helper()
		waitUntil(t, "every closed dump older than a minute in the bucket, and none older than the pruning age on the disk", func() bool {
			for _, f := range w.files(pod) {
				closed := strings.HasSuffix(f.name, ".txt.gz") && !w.exists(pod, strings.TrimSuffix(f.name, ".gz"))
				if closed && f.age > time.Minute && !b.has(t, f.name) {
					return false
				}
				if closed && f.age > pruneDays*simDay+time.Minute {
					return false
				}
			}
			return true
		})
		for _, f := range w.files(pod) {
			if strings.HasSuffix(f.name, ".txt.gz") && b.has(t, f.name) {
				want(t, f.name+" in the bucket (sha256)", b.sha(t, f.name), sha(string(w.read(pod, f.name))))
			}
		}
	}

	step("with the daily rotation, every day closes, is archived whole, and the disk stays within its bound", func(t *testing.T) {
		var gaps []string
		for day := 1; day <= days; day++ {
			passDay(t)
			gap := rotate(t)
			gaps = append(gaps, fmt.Sprintf("%.1f", gap.Seconds()))
			waitUntil(t, "yesterday's dump gzipped whole", func() bool { return w.openFiles(pod) == 1 })
			archivedWhole(t)
			if err := w.bound(pod, offset, pruneDays*simDay+simDay+10*time.Minute); err != nil {
				t.Fatalf("day %d: %v", day, err)
			}
		}
		t.Logf("bench: rotation: /dump/ unreachable for %s s over %d rotations (the stand-in's start delay is %s)", strings.Join(gaps, ", "), days, loklak.DefaultStartDelay)
	})

	step("a gzip killed midway, then no start for longer than the min age: the truncated .gz is never archived", func(t *testing.T) {
		open := openDump(t, pod)
		content := w.read(pod, open)
		w.setControl(pod, loklak.ControlGzipCutAfterBytes, "100")
		w.setControl(pod, loklak.ControlFailStartAfterCut, "")
		passDay(t)
		if out, err := cp.Kubectl(ctx, "-n", ns, "rollout", "restart", "deployment/"+serverName); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		gz := open + ".gz"
		pod = w.podAfter(pod.Name, "archiver") // loklak's container will not stay up
		waitUntil(t, "loklak cut mid-gzip and unable to start", func() bool {
			return w.exists(pod, loklak.ControlDirName+"/"+loklak.ControlFailStart) && w.exists(pod, open) && w.exists(pod, gz)
		})
		if !w.exists(pod, open) || validGzip(w.read(pod, gz)) {
			t.Fatalf("want a truncated %s beside %s", gz, open)
		}
		w.age(pod, 10*time.Minute) // older than the min age: only the .txt beside it keeps it back
		rounds := w.archiverRounds(pod)
		waitUntil(t, "two more archive rounds", func() bool { return w.archiverRounds(pod) >= rounds+2 })
		want(t, gz+" in the bucket", b.has(t, gz), false)
		if log := w.archiverLog(pod); !strings.Contains(log, gz) {
			t.Errorf("the archiver's log never names %s:\n%s", gz, log)
		}

		w.removeControl(pod, loklak.ControlGzipCutAfterBytes)
		w.removeControl(pod, loklak.ControlFailStartAfterCut)
		w.removeControl(pod, loklak.ControlFailStart)
		pod = readyPod(t, ns, "")
		waitUntil(t, gz+" complete and its .txt gone", func() bool { return !w.exists(pod, open) && validGzip(w.read(pod, gz)) })
		w.age(pod, 10*time.Minute)
		waitUntil(t, gz+" in the bucket", func() bool { return b.has(t, gz) })
		got, err := b.read(t, gz)
		if err != nil {
			t.Fatal(err)
		}
		if plain := gunzip(t, got); !bytes.HasPrefix(plain, content) {
			t.Errorf("the archived %s (%d bytes of messages) does not start with the %d bytes the file held before the cut", gz, len(plain), len(content))
		}
	})

	step("the archiver's image refused on a node without it: loklak starts and writes; the archiver catches up", func(t *testing.T) {
		if err := dockerhub.Refuse(ctx, cp.Registry, "rclone/rclone"); err != nil {
			t.Fatal(err)
		}
		if removed, err := cp.RemoveImages(ctx, "docker.io/rclone/rclone"); err != nil || len(removed) == 0 {
			t.Fatalf("removing the archiver's image from the node: %v (removed %v)", err, removed)
		}
		passDay(t)
		old := pod.Name
		if out, err := cp.Kubectl(ctx, "-n", ns, "rollout", "restart", "deployment/"+serverName); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		var st podState
		waitUntil(t, "loklak running and ready beside an archiver that cannot be pulled", func() bool {
			st = w.podState(old)
			return st.loklakReady && strings.Contains(st.archiverWaiting, "ImagePull")
		})
		pod = w.podAfter(old, loklakContainer)
		open := openDump(t, pod)
		size := w.size(pod, open)
		waitUntil(t, "loklak writing while the archiver waits", func() bool { return w.size(pod, open) > size })
		// A pod is Ready only when all its containers are: the Service leaves it out meanwhile.
		want(t, "pod Ready while the archiver cannot be pulled", st.podReady, false)
		closed := w.closedNotIn(pod, b)
		if len(closed) == 0 {
			t.Fatal("no closed dump waits for the archiver")
		}

		if err := dockerhub.Allow(ctx, cp.Registry, "rclone/rclone"); err != nil {
			t.Fatal(err)
		}
		pod = readyPod(t, ns, "")
		w.age(pod, 10*time.Minute)
		waitUntil(t, "the archiver catching up on "+strings.Join(closed, ", "), func() bool {
			for _, name := range closed {
				if !b.has(t, name) {
					return false
				}
			}
			return true
		})
	})

	step("a disk whose open file was cut at a snapshot: the restore puts the complete copy back", func(t *testing.T) {
		open := openDump(t, pod)
		snapshot := w.read(pod, open) // the bytes a snapshot taken now holds of the open file
		w.waitForMessage(pod)         // and loklak writes on after it
		passDay(t)
		rotate(t)
		waitUntil(t, open+" closed", func() bool { return w.openFiles(pod) == 1 && !w.exists(pod, open) })
		w.age(pod, 10*time.Minute)
		waitUntil(t, open+".gz in the bucket", func() bool { return b.has(t, open+".gz") })

		// The disk as the snapshot left it: the open file with the snapshot's bytes, no .gz of it.
		w.remove(pod, open+".gz")
		w.write(pod, open, snapshot)
		passDay(t)
		rotate(t) // loklak's start gzips the snapshot's part of the file
		waitUntil(t, "the snapshot's part gzipped", func() bool { return !w.exists(pod, open) && validGzip(w.read(pod, open+".gz")) })
		if sha(string(w.read(pod, open+".gz"))) == b.sha(t, open+".gz") {
			t.Fatal("the disk already holds the bucket's copy: nothing to restore")
		}

		command := restoreCommand(t)
		out, err := d.Shell(ctx, strings.Replace(command, "-n loklak-dev ", "-n "+ns+" ", 1))
		if err != nil {
			t.Fatalf("%s: %v\n%s", command, err, out)
		}
		t.Logf("restore said:\n%s", out)
		listed := dumps(t, ns)
		for name := range b.list(t) {
			if got := b.sha(t, name); listed[name] != got {
				t.Errorf("/dump/%s: sha256 %q, the bucket's is %s", name, listed[name], got)
			}
		}
		for name := range listed {
			if strings.HasSuffix(name, ".gz") && !validGzip([]byte(serviceGet(t, ns, "/dump/"+name))) {
				t.Errorf("/dump/%s is not a whole gzip stream", name)
			}
		}
		if plain := gunzip(t, w.read(pod, open+".gz")); !bytes.HasPrefix(plain, snapshot) {
			t.Errorf("the restored %s does not start with the snapshot's %d bytes", open, len(snapshot))
		}
		b.intact(t)
	})

	step("without the rotation, the same days break the bound", func(t *testing.T) {
		if err := stack.SetConfig(ctx, "dumpRotationEnabled", auto.ConfigValue{Value: "false"}); err != nil {
			t.Fatal(err)
		}
		up(t)
		if out, err := cp.Kubectl(ctx, "-n", ns, "get", "cronjob", infra.RotationName); err == nil {
			t.Fatalf("the CronJob is still there:\n%s", out)
		}
		open := openDump(t, pod)
		for day := 1; day <= pruneDays+2; day++ {
			passDay(t)
		}
		rounds := w.archiverRounds(pod)
		waitUntil(t, "two more archive rounds", func() bool { return w.archiverRounds(pod) >= rounds+2 })
		err := w.bound(pod, offset, pruneDays*simDay+simDay+10*time.Minute)
		if err == nil {
			t.Fatal("the disk kept within the bound without the rotation: the test could not fail")
		}
		t.Logf("without the rotation, as expected: %v", err)
		want(t, open+" still open", w.openFiles(pod), 1)
		want(t, "its messages archived", b.has(t, open+".gz"), false)
	})
}

// world reads and writes loklak's volume on the real node through the pod's root (/proc/PID/root).
type world struct {
	t  *testing.T
	ns string
}

type dumpFile struct {
	name string
	age  time.Duration // by modification time
}

func (w world) path(pod loklakPod, name string) string {
	return filepath.Join(fmt.Sprintf("/proc/%d/root", pod.pid(w.t)), dumpDir, name)
}

func (w world) controlPath(pod loklakPod, name string) string {
	return filepath.Join(fmt.Sprintf("/proc/%d/root", pod.pid(w.t)), dataPath, loklak.ControlDirName, name)
}

func (w world) exists(pod loklakPod, name string) bool {
	p := w.path(pod, name)
	if strings.HasPrefix(name, loklak.ControlDirName+"/") {
		p = w.controlPath(pod, strings.TrimPrefix(name, loklak.ControlDirName+"/"))
	}
	_, err := os.Stat(p)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		w.t.Fatal(err)
	}
	return err == nil
}

func (w world) read(pod loklakPod, name string) []byte {
	b, err := os.ReadFile(w.path(pod, name))
	if err != nil {
		w.t.Fatal(err)
	}
	return b
}

func (w world) write(pod loklakPod, name string, content []byte) {
	if err := os.WriteFile(w.path(pod, name), content, 0o644); err != nil {
		w.t.Fatal(err)
	}
}

func (w world) remove(pod loklakPod, name string) {
	if err := os.Remove(w.path(pod, name)); err != nil {
		w.t.Fatal(err)
	}
}

func (w world) setControl(pod loklakPod, name, value string) {
	p := w.controlPath(pod, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		w.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
		w.t.Fatal(err)
	}
}

func (w world) removeControl(pod loklakPod, name string) {
	if err := os.Remove(w.controlPath(pod, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		w.t.Fatal(err)
	}
}

// files lists the dump files with their ages.
func (w world) files(pod loklakPod) []dumpFile {
	entries, err := os.ReadDir(filepath.Dir(w.path(pod, "x")))
	if err != nil {
		w.t.Fatal(err)
	}
	var out []dumpFile
	for _, e := range entries {
		info, err := e.Info()
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			w.t.Fatal(err)
		}
		if strings.HasPrefix(e.Name(), loklak.DumpFilePrefix) {
			out = append(out, dumpFile{name: e.Name(), age: time.Since(info.ModTime())})
		}
	}
	return out
}

// waitForMessage waits until loklak appends a message to its open file.
func (w world) waitForMessage(pod loklakPod) {
	open := openDump(w.t, pod)
	size := w.size(pod, open)
	waitUntil(w.t, "a new message in "+open, func() bool { return w.size(pod, open) > size })
}

// size is a dump file's size in bytes.
func (w world) size(pod loklakPod, name string) int64 {
	info, err := os.Stat(w.path(pod, name))
	if err != nil {
		w.t.Fatal(err)
	}
	return info.Size()
}

// openFiles counts the .txt files: loklak's open one, and any still being gzipped.
func (w world) openFiles(pod loklakPod) int {
	n := 0
	for _, f := range w.files(pod) {
		if strings.HasSuffix(f.name, ".txt") {
			n++
		}
	}
	return n
}

// age moves every dump file's modification time back by d: time passing, as the archiver sees it.
func (w world) age(pod loklakPod, d time.Duration) {
	for _, f := range w.files(pod) {
		p := w.path(pod, f.name)
		info, err := os.Stat(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			w.t.Fatal(err)
		}
		when := info.ModTime().Add(-d)
		if err := os.Chtimes(p, when, when); err != nil && !errors.Is(err, os.ErrNotExist) {
			w.t.Fatal(err)
		}
	}
}

// bound checks the disk's promise: no message on the disk older than limit, by loklak's clock (the real
// clock plus offset), read from each file's first line.
func (w world) bound(pod loklakPod, offset, limit time.Duration) error {
	now := time.Now().Add(offset)
	for _, f := range w.files(pod) {
		content := w.read(pod, f.name)
		if len(content) == 0 {
			continue // opened a moment ago: no message yet
		}
		first, err := firstMessageTime(content, strings.HasSuffix(f.name, ".gz"))
		if err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
		if first.IsZero() {
			w.t.Logf("%s holds no message", f.name)
			continue
		}
		if age := now.Sub(first); age > limit {
			return fmt.Errorf("%s holds a message %.1f days old, more than the bound of %.1f days", f.name, age.Hours()/24, limit.Hours()/24)
		}
	}
	return nil
}

// firstMessageTime is the created_at of a dump's first message.
func firstMessageTime(content []byte, gzipped bool) (time.Time, error) {
	var r io.Reader = bytes.NewReader(content)
	if gzipped {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return time.Time{}, err
		}
		r = zr
	}
	line, err := bufio.NewReader(r).ReadBytes('\n')
	if errors.Is(err, io.EOF) && len(line) == 0 {
		return time.Time{}, nil // a run that wrote no message: nothing to bound
	}
	if err != nil && len(line) == 0 {
		return time.Time{}, fmt.Errorf("no first message: %w", err)
	}
	var m struct {
		CreatedAt time.Time `json:"created_at"`
	}
	if err := json.Unmarshal(line, &m); err != nil {
		return time.Time{}, fmt.Errorf("first line %q: %w", line, err)
	}
	return m.CreatedAt, nil
}

func validGzip(b []byte) bool {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return false
	}
	_, err = io.Copy(io.Discard, zr)
	return err == nil
}

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// closedNotIn lists the closed dumps on the disk that the bucket lacks.
func (w world) closedNotIn(pod loklakPod, b archiveBucket) []string {
	var out []string
	for _, f := range w.files(pod) {
		if strings.HasSuffix(f.name, ".txt.gz") && !w.exists(pod, strings.TrimSuffix(f.name, ".gz")) && !b.has(w.t, f.name) {
			out = append(out, f.name)
		}
	}
	return out
}

// rotationCommands are the commands of the rotation CronJob in the cluster: its init container's, then
// its container's.
func (w world) rotationCommands() [][]string {
	out, err := cp.Kubectl(context.Background(), "-n", w.ns, "get", "cronjob", infra.RotationName, "-o", "json")
	if err != nil {
		w.t.Fatalf("the rotation CronJob: %v\n%s", err, out)
	}
	var cj struct {
		Spec struct {
			JobTemplate struct {
				Spec struct {
					Template struct {
						Spec struct {
							InitContainers, Containers []struct{ Command []string }
						}
					}
				}
			}
		}
	}
	if err := json.Unmarshal(out, &cj); err != nil {
		w.t.Fatal(err)
	}
	pod := cj.Spec.JobTemplate.Spec.Template.Spec
	if len(pod.InitContainers) != 1 || len(pod.Containers) != 1 {
		w.t.Fatalf("the rotation's pod has %d init containers and %d containers, want 1 and 1", len(pod.InitContainers), len(pod.Containers))
	}
	return [][]string{pod.InitContainers[0].Command, pod.Containers[0].Command}
}

// podState is what the kubelet says of the Deployment's pod other than not.
type podState struct {
	name                    string
	podReady, loklakReady   bool
	archiverWaiting         string // the archiver's waiting reason, if it waits
	containerID, archiverID string
}

func (w world) podState(not string) podState {
	out, err := cp.Kubectl(context.Background(), "-n", w.ns, "get", "pods", "-l", podLabel, "-o", "json")
	if err != nil {
		w.t.Fatal(err)
	}
	var list struct {
		Items []struct {
			Metadata struct {
				Name              string
				DeletionTimestamp *time.Time
			}
			Status struct {
				Conditions        []struct{ Type, Status string }
				ContainerStatuses []struct {
					Name, ContainerID string
					Ready             bool
					State             struct {
						Waiting *struct{ Reason string }
					}
				}
			}
		}
	}
	if err := json.Unmarshal(out, &list); err != nil {
		w.t.Fatal(err)
	}
	for _, p := range list.Items {
		if p.Metadata.DeletionTimestamp != nil || p.Metadata.Name == not {
			continue
		}
		st := podState{name: p.Metadata.Name}
		for _, c := range p.Status.Conditions {
			st.podReady = st.podReady || (c.Type == "Ready" && c.Status == "True")
		}
		for _, c := range p.Status.ContainerStatuses {
			switch c.Name {
			case loklakContainer:
				st.loklakReady, st.containerID = c.Ready, strings.TrimPrefix(c.ContainerID, "containerd://")
			case "archiver":
				st.archiverID = strings.TrimPrefix(c.ContainerID, "containerd://")
				if c.State.Waiting != nil {
					st.archiverWaiting = c.State.Waiting.Reason
				}
			}
		}
		return st
	}
	return podState{}
}

// podAfter is the Deployment's pod other than not, reached through the running container named via
// ("loklak" or "archiver"): both mount the volume at the same path, so either shows the test the disk,
// also while the other cannot run.
func (w world) podAfter(not, via string) loklakPod {
	var pod loklakPod
	waitUntil(w.t, "a running "+via+" container", func() bool {
		st := w.podState(not)
		id := map[string]string{loklakContainer: st.containerID, "archiver": st.archiverID}[via]
		if id == "" {
			return false
		}
		if _, err := cp.ContainerPID(context.Background(), id); err != nil {
			return false
		}
		pod = loklakPod{Name: st.name, ContainerID: id}
		return true
	})
	return pod
}

// archiverRounds counts the rounds the pod's archiver has finished, failed or not.
func (w world) archiverRounds(pod loklakPod) int {
	log := w.archiverLog(pod)
	return strings.Count(log, "archive round done") + strings.Count(log, "archive round FAILED")
}

func (w world) archiverLog(pod loklakPod) string {
	out, err := cp.Kubectl(context.Background(), "-n", w.ns, "logs", pod.Name, "-c", "archiver")
	if err != nil {
		return ""
	}
	return string(out)
}

// pollDump asks /dump/ through the Service every 0.2 s until the returned function is called and
// /dump/ answers again (three minutes at most); that function returns the longest stretch during which
// it did not answer 200.
func pollDump(ns string) (stop func() time.Duration) {
	path := fmt.Sprintf("/api/v1/namespaces/%s/services/%s:http/proxy/dump/", ns, serverName)
	stopping := make(chan struct{})
	result := make(chan time.Duration, 1)
	go func() {
		var (
			longest       time.Duration
			downSince     time.Time
			stopRequested bool
		)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		giveUp := time.After(time.Hour)
		for {
			_, err := cp.Kubectl(context.Background(), "get", "--raw", path)
			now := time.Now()
			switch {
			case err != nil && downSince.IsZero():
				downSince = now
			case err == nil && !downSince.IsZero():
				longest = max(longest, now.Sub(downSince))
				downSince = time.Time{}
			}
			if !stopRequested {
				select {
				case <-stopping:
					stopRequested = true
					giveUp = time.After(3 * time.Minute)
				default:
				}
			}
			if stopRequested && err == nil {
				result <- longest
				return
			}
			select {
			case <-giveUp:
				result <- max(longest, time.Since(downSince))
				return
			case <-tick.C:
			}
		}
	}()
	return func() time.Duration {
		close(stopping)
		return <-result
	}
}
