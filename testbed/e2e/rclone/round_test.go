//go:build e2e

package rclone

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loklak/loklak-dumps/infra"
	"github.com/loklak/loklak-dumps/testbed/e2e/e2etest"
)

// These tests run the product's own scripts, infra.ArchiverRound and infra.ArchiverRestore, with
// busybox's sh and applets (the image's busybox, every applet linked, as in rclone/rclone's Alpine
// image) and the toolchain's rclone, against the emulator through iamProxy: the bucket as the archiver's
// roles (objectCreator, objectViewer) let it see it, refusing every overwrite and delete with 403. The
// tests' own changes to the bucket (put, tamper) go to the emulator directly, as an admin's would.

// iamProxy passes the archiver's requests to the emulator as Cloud Storage enforces
// roles/storage.objectCreator plus roles/storage.objectViewer: reads and new objects pass; a DELETE, a
// metadata PATCH or PUT, a rewrite or copy, and an upload to a name that exists are refused with 403. It
// also makes the objects' mediaLink absolute, through itself, as Cloud Storage's is (the emulator, with
// no external URL, answers "/download/..."; rclone downloads from the mediaLink and cannot follow a
// relative one). It returns the remote's environment and the refused requests so far.
func iamProxy(t *testing.T, e *emulator, home string) ([]string, func() []string) {
	t.Helper()
	var (
		mu      sync.Mutex
		refused []string
	)
	u, err := url.Parse(e.url)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + lis.Addr().String()
	p := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(u)
		r.Out.Header.Del("Accept-Encoding") // plain JSON answers to rewrite
	}}
	p.ModifyResponse = func(resp *http.Response) error {
		if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			return nil
		}
		body, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil {
			return err
		}
		body = bytes.ReplaceAll(body, []byte(`"mediaLink":"/download/`), []byte(`"mediaLink":"`+base+`/download/`))
		resp.Body = io.NopCloser(bytes.NewReader(body))
		resp.ContentLength = int64(len(body))
		resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
		return nil
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		deny := false
		switch {
		case r.Method == http.MethodGet || r.Method == http.MethodHead:
		case strings.HasPrefix(r.URL.Path, "/upload/storage/v1/") && q.Has("upload_id"):
			// a chunk of a resumable upload whose start was allowed
		case strings.HasPrefix(r.URL.Path, "/upload/storage/v1/") && r.Method == http.MethodPost:
			if _, err := e.GetObject(bucket, q.Get("name")); err == nil {
				deny = true // objectCreator cannot replace an object
			}
		default:
			deny = true
		}
		if deny {
			mu.Lock()
			refused = append(refused, r.Method+" "+r.URL.RequestURI())
			mu.Unlock()
			http.Error(w, `{"error":{"code":403,"message":"does not have storage.objects.delete access"}}`, http.StatusForbidden)
			return
		}
		p.ServeHTTP(w, r)
	})
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { _ = srv.Close() })
	return remoteEnv(base+"/storage/v1/", home), func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(refused)
	}
}

// busyboxPath is a directory with the toolchain's rclone and the image's busybox under each of its
// applet names, and nothing else: the scripts find no other tool.
func busyboxPath(t *testing.T) string {
	t.Helper()
	bb := filepath.Join(tools.Images(), "busybox")
	list, err := exec.Command(bb, "--list").Output()
	if err != nil {
		t.Fatalf("%s --list: %v", bb, err)
	}
	dir := t.TempDir()
	for _, applet := range append(strings.Fields(string(list)), "busybox") {
		if fileExists(filepath.Join(dir, applet)) {
			continue // busybox-static lists itself
		}
		if err := os.Symlink(bb, filepath.Join(dir, applet)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(tools.Path("rclone"), filepath.Join(dir, "rclone")); err != nil {
		t.Fatal(err)
	}
	return dir
}

// site is one archiver's world: the emulator behind iamProxy, a dump directory, a staging directory
// beside it, and the environment the archiver container gives its scripts (infra/archiver.go,
// archiverEnv).
type site struct {
	e       *emulator
	src     string
	staging string
	env     []string
	refused func() []string
}

func newSite(t *testing.T, pruneMinutes int) *site {
	t.Helper()
	e := startEmulator(t)
	data := t.TempDir()
	s := &site{e: e, src: filepath.Join(data, "dump", "own"), staging: filepath.Join(data, "dump", "restore-staging")}
	if err := os.MkdirAll(s.src, 0o755); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	env, refused := iamProxy(t, e, home)
	s.refused = refused
	s.env = append(env,
		"PATH="+busyboxPath(t),
		"TMPDIR="+t.TempDir(),
		"ARCHIVE_SOURCE="+s.src,
		"ARCHIVE_DESTINATION=archive:"+bucket+"/"+prefix,
		"ARCHIVE_STAGING="+s.staging,
		"ARCHIVE_MIN_AGE_MINUTES=1",
		"ARCHIVE_PRUNE_AGE_MINUTES="+strconv.Itoa(pruneMinutes),
		"ARCHIVE_INTERVAL=1",
	)
	t.Cleanup(func() {
		if r := refused(); len(r) > 0 {
			t.Errorf("the archiver tried what its roles refuse (an overwrite or a delete in the bucket): %q", r)
		}
	})
	return s
}

// run runs a script with busybox's sh in the site's environment and returns its exit status and output.
func (s *site) run(t *testing.T, script string, extraEnv ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(tools.Images(), "busybox"), "sh", "-c", script)
	cmd.Env = append(slices.Clone(s.env), extraEnv...)
	out, err := cmd.CombinedOutput()
	t.Logf("the script said:\n%s", out)
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &exit):
		return exit.ExitCode(), string(out)
	}
	t.Fatalf("busybox sh: %v", err)
	return -1, ""
}

func roundConfig(prune bool) infra.ArchiveConfig {
	cfg := infra.ArchiveConfig{Bucket: "b", ArchiverEnabled: true, MinAgeMinutes: 1, IntervalSeconds: 1}
	if prune {
		cfg.PruneAfterDays = 1
	}
	return cfg
}

func (s *site) round(t *testing.T, prune bool) (int, string) {
	t.Helper()
	return s.run(t, infra.ArchiverRound(roundConfig(prune)))
}

// write puts a file into the dump directory, modified age ago.
func (s *site) write(t *testing.T, name string, b []byte, age time.Duration) {
	t.Helper()
	writeAt(t, filepath.Join(s.src, name), b, age)
}

func writeAt(t *testing.T, p string, b []byte, age time.Duration) {
	t.Helper()
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(-age)
	if err := os.Chtimes(p, at, at); err != nil {
		t.Fatal(err)
	}
}

func (s *site) read(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.src, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// day is a day of dumps as loklak writes it: JSON lines, deterministic for a seed.
func day(seed uint64, lines int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	var b bytes.Buffer
	for i := range lines {
		b.WriteString(`{"id_str":"` + strconv.FormatUint(r.Uint64(), 10) + `","screen_name":"user` + strconv.Itoa(r.IntN(500)) +
			`","text":"message ` + strconv.Itoa(i) + ` ` + strconv.FormatUint(r.Uint64(), 36) + `"}` + "\n")
	}
	return b.Bytes()
}

func gz(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

const hours = time.Hour

// The archiver never uploads a .txt.gz whose .txt is beside it, however old: loklak is still writing it,
// or its compression was cut short (here: cut in the middle, and unmodified for hours since). It says so
// and archives the others. Once loklak has written the whole file and removed the .txt, the next round
// archives that, with the same bytes.
func TestRoundNeverArchivesAFileBesideItsTxt(t *testing.T) {
	s := newSite(t, 0)
	a, b := "messages_20170601_00000001.txt.gz", "messages_20170602_00000002.txt.gz"
	whole := gz(t, day(1, 20000))
	s.write(t, a, whole[:len(whole)/2], 3*hours) // the compression, cut short
	s.write(t, strings.TrimSuffix(a, ".gz"), day(1, 20000), 5*hours)
	s.write(t, b, gz(t, day(2, 1000)), 3*hours)

	code, out := s.round(t, false)
	if code != 0 || !strings.Contains(out, "not archiving "+a+": "+strings.TrimSuffix(a, ".gz")+" is still beside it") {
		t.Errorf("round beside a .txt: exit %d; want 0 and a line naming %s and why", code, a)
	}
	wantArchived(t, s.e, map[string][]byte{b: s.read(t, b)})

	// loklak's next start compresses it again, and removes the .txt.
	s.write(t, a, whole, 2*hours)
	if err := os.Remove(filepath.Join(s.src, strings.TrimSuffix(a, ".gz"))); err != nil {
		t.Fatal(err)
	}
	if code, _ := s.round(t, false); code != 0 {
		t.Errorf("round once the file is whole: exit %d", code)
	}
	wantArchived(t, s.e, map[string][]byte{a: whole, b: s.read(t, b)})
}

// A .txt.gz without its .txt that is not a complete gzip stream is never uploaded: the round says NOT
// ARCHIVED and fails, every round, until the file is whole; then it goes up with the same bytes, and a
// later round does not read it again.
func TestRoundRefusesAnIncompleteGzip(t *testing.T) {
	s := newSite(t, 0)
	a, b := "messages_20170601_00000001.txt.gz", "messages_20170602_00000002.txt.gz"
	whole := gz(t, day(1, 20000))
	s.write(t, a, whole[:len(whole)-100], 3*hours)
	s.write(t, b, gz(t, day(2, 1000)), 3*hours)
	for range 2 {
		code, out := s.round(t, false)
		if code == 0 || !strings.Contains(out, "NOT ARCHIVED: "+a+" is not a complete gzip stream") {
			t.Errorf("round with a truncated gzip: exit %d; want a failure that says NOT ARCHIVED: %s is not a complete gzip stream", code, a)
		}
		wantArchived(t, s.e, map[string][]byte{b: s.read(t, b)})
	}
	s.write(t, a, whole, 2*hours)
	if code, _ := s.round(t, false); code != 0 {
		t.Errorf("round once the file is whole: exit %d", code)
	}
	wantArchived(t, s.e, map[string][]byte{a: whole, b: s.read(t, b)})
	if code, out := s.round(t, false); code != 0 || !strings.Contains(out, "nothing new to copy") {
		t.Errorf("round with everything archived: exit %d; want 0 and nothing new to copy", code)
	}
}

// An object that differs in size from its local file (a truncated upload by the earlier archiver, the
// disk now holding the whole file) is reported with both sizes, every round; neither side changes, and
// pruning never removes that file.
func TestRoundReportsADifferingArchivedCopy(t *testing.T) {
	s := newSite(t, 24*60)
	a, b := "messages_20170601_00000001.txt.gz", "messages_20170602_00000002.txt.gz"
	whole := gz(t, day(1, 20000))
	truncated := whole[:len(whole)/3]
	put(t, s.e, a, truncated, nil)
	gen := s.e.objects(t)[prefix+"/"+a].Generation
	s.write(t, a, whole, 72*hours)
	s.write(t, b, gz(t, day(2, 1000)), 72*hours)
	bBytes := s.read(t, b)
	want := "ARCHIVED COPY DIFFERS: " + a + ": the bucket holds " + strconv.Itoa(len(truncated)) + " bytes, the disk " + strconv.Itoa(len(whole)) + " bytes"
	for i := range 2 {
		code, out := s.round(t, true)
		if code == 0 || !strings.Contains(out, want) {
			t.Errorf("round %d: exit %d; want a failure that says %q", i, code, want)
		}
		wantArchived(t, s.e, map[string][]byte{a: truncated, b: bBytes})
		if g := s.e.objects(t)[prefix+"/"+a].Generation; g != gen {
			t.Errorf("the differing object was rewritten: generation %d, was %d", g, gen)
		}
	}
	// b was copied in the first round and pruned in the second; a stays.
	wantLocal(t, s.src, a)
	if !bytes.Equal(s.read(t, a), whole) {
		t.Errorf("the local %s changed", a)
	}
}

// Pruning removes a file only when it is at least ARCHIVE_PRUNE_AGE_MINUTES old, has no .txt beside it,
// and the bucket holds it with the same MD5; a file copied in this round is removed in the next.
func TestRoundPrunesOnlyVerifiedFiles(t *testing.T) {
	s := newSite(t, 24*60)
	const (
		verified = "messages_20170601_00000001.txt.gz" // old, archived: removed
		changed  = "messages_20170602_00000002.txt.gz" // old, its object has other bytes, same size: kept
		beside   = "messages_20170603_00000003.txt.gz" // old, archived, but its .txt is there: kept
		young    = "messages_20170604_00000004.txt.gz" // archived, a day not yet over: kept
		fresh    = "messages_20170605_00000005.txt.gz" // old, not archived yet: copied now, removed next round
	)
	files := map[string][]byte{}
	for i, n := range []string{verified, changed, beside, young, fresh} {
		files[n] = gz(t, day(uint64(i), 2000))
		age := 72 * hours
		if n == young {
			age = 2 * hours
		}
		s.write(t, n, files[n], age)
		if n != fresh {
			put(t, s.e, n, files[n], nil)
		}
	}
	s.write(t, strings.TrimSuffix(beside, ".gz"), day(2, 2000), 72*hours)
	other := tamper(t, s.e, changed)

	code, out := s.round(t, true)
	if code == 0 || !strings.Contains(out, "immutable file modified") {
		t.Errorf("round with an object that differs in its bytes: exit %d; want a failure that says immutable file modified", code)
	}
	wantLocal(t, s.src, changed, beside, strings.TrimSuffix(beside, ".gz"), young, fresh)
	if code, _ := s.round(t, true); code == 0 {
		t.Errorf("second round: exit 0; want the changed object reported again")
	}
	wantLocal(t, s.src, changed, beside, strings.TrimSuffix(beside, ".gz"), young)
	wantArchived(t, s.e, map[string][]byte{verified: files[verified], changed: other, beside: files[beside], young: files[young], fresh: files[fresh]})
	for n, b := range files {
		if p := filepath.Join(s.src, n); fileExists(p) && !bytes.Equal(s.read(t, n), b) {
			t.Errorf("the local %s changed", n)
		}
	}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// restoreScript is the command of docs/archive.md's restore section, as a person runs it through the
// archiver container: what follows `kubectl ... exec ... -- `, unquoted once by a shell.
func restoreScript(t *testing.T) string {
	t.Helper()
	command := e2etest.RestoreCommand(t, filepath.Join("..", "..", ".."))
	_, after, ok := strings.Cut(command, " -- ")
	if !ok || !strings.Contains(command, "-n loklak-dev ") || !strings.Contains(command, " -c archiver ") {
		t.Fatalf("the restore command %q is not kubectl -n loklak-dev exec ... -c archiver -- COMMAND", command)
	}
	return after
}

// restore runs docs/archive.md's restore command in the site, with ARCHIVE_RESTORE as archiverEnv sets it.
func (s *site) restore(t *testing.T) (int, string) {
	t.Helper()
	return s.run(t, restoreScript(t), "ARCHIVE_RESTORE="+infra.ArchiverRestore(roundConfig(false)))
}

// snapshot is every file under dir, by path, with its bytes and modification time.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		out[p] = md5base64(b) + " " + info.ModTime().String()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The restore onto a disk made from a snapshot: every case of infra.ArchiverRestore, twice, the second
// run changing nothing; then, once loklak has compressed the file it was compressing, a third run
// replaces that too.
func TestRestore(t *testing.T) {
	s := newSite(t, 0)
	const (
		missing   = "messages_20170601_00000001.txt.gz" // in the bucket only: restored
		identical = "messages_20170602_00000002.txt.gz" // the same on both: left alone
		snapped   = "messages_20170603_00000003.txt.gz" // open at the snapshot: the disk has the start, gzipped later; replaced
		cut       = "messages_20170604_00000004.txt.gz" // a compression cut short on the disk: replaced
		longer    = "messages_20170605_00000005.txt.gz" // the disk's holds more than the bucket's: kept
		corrupt   = "messages_20170606_00000006.txt.gz" // truncated in the bucket: never used
		conflict  = "messages_20170607_00000007.txt.gz" // different days under one name: both kept
		beside    = "messages_20170608_00000008.txt.gz" // loklak is compressing it on the disk: skipped
	)
	full := map[string][]byte{}
	for i, n := range []string{missing, identical, snapped, cut, longer, corrupt, conflict, beside} {
		full[n] = day(uint64(i), 5000)
	}
	objects := map[string][]byte{}
	for _, n := range []string{missing, identical, snapped, cut, conflict, beside} {
		objects[n] = gz(t, full[n])
	}
	objects[longer] = gz(t, full[longer][:len(full[longer])/2])
	c := gz(t, full[corrupt])
	objects[corrupt] = c[:len(c)-50]
	for n, b := range objects {
		put(t, s.e, n, b, nil)
	}

	s.write(t, identical, objects[identical], 48*hours)
	s.write(t, snapped, gz(t, full[snapped][:len(full[snapped])/3]), 2*hours)
	s.write(t, cut, objects[cut][:len(objects[cut])/2], 2*hours)
	s.write(t, longer, gz(t, full[longer]), 48*hours)
	s.write(t, conflict, gz(t, day(99, 5000)), 48*hours)
	s.write(t, beside, gz(t, full[beside][:1000]), time.Minute) // being written
	s.write(t, strings.TrimSuffix(beside, ".gz"), full[beside][:len(full[beside])/2], time.Minute)
	before := map[string][]byte{}
	for _, n := range []string{longer, conflict, beside} {
		before[n] = s.read(t, n)
	}

	code, out := s.restore(t)
	if code == 0 {
		t.Errorf("restore with a corrupt object, a conflict and a skipped file: exit 0")
	}
	for _, line := range []string{
		"restore: restored " + missing,
		"restore: REPLACED " + snapped + ": the disk held the first",
		"restore: REPLACED " + cut + ": the disk held the first",
		"restore: kept the disk's " + longer,
		"restore: CORRUPT IN BUCKET: " + corrupt + " is not a complete gzip stream",
		"restore: CONFLICT: " + conflict + ":",
		"restore: SKIPPED " + beside + ": " + strings.TrimSuffix(beside, ".gz") + " is beside it",
		"restore: 1 restored, 2 replaced by the bucket's complete copy, 1 already there, 1 kept, 3 not restored",
	} {
		if !strings.Contains(out, line) {
			t.Errorf("the restore did not say %q", line)
		}
	}
	for _, n := range []string{missing, identical, snapped, cut} {
		if !bytes.Equal(s.read(t, n), objects[n]) {
			t.Errorf("%s on the disk is not the bucket's object", n)
		}
	}
	for n, b := range before {
		if !bytes.Equal(s.read(t, n), b) {
			t.Errorf("%s on the disk changed", n)
		}
	}
	wantLocal(t, s.src, missing, identical, snapped, cut, longer, conflict, beside, strings.TrimSuffix(beside, ".gz"))
	wantLocal(t, s.staging, conflict)
	if b, err := os.ReadFile(filepath.Join(s.staging, conflict)); err != nil || !bytes.Equal(b, objects[conflict]) {
		t.Errorf("the conflicting object is not in the staging directory: %v", err)
	}
	for n, b := range objects {
		if obj, err := s.e.GetObject(bucket, prefix+"/"+n); err != nil || !bytes.Equal(obj.Content, b) {
			t.Errorf("the object %s changed: %v", n, err)
		}
	}
	disk := snapshot(t, filepath.Dir(s.src))
	code, out = s.restore(t)
	if code == 0 || !strings.Contains(out, "restore: 0 restored, 0 replaced by the bucket's complete copy, 4 already there, 1 kept, 3 not restored") {
		t.Errorf("second restore: exit %d; want the same three problems and nothing else done", code)
	}
	if again := snapshot(t, filepath.Dir(s.src)); !maps.Equal(disk, again) {
		t.Errorf("the second restore changed the disk:\nbefore %v\nafter  %v", disk, again)
	}

	// loklak compressed it (from the start it had, the snapshot's) and removed the .txt.
	s.write(t, beside, gz(t, full[beside][:len(full[beside])/2]), time.Minute)
	if err := os.Remove(filepath.Join(s.src, strings.TrimSuffix(beside, ".gz"))); err != nil {
		t.Fatal(err)
	}
	if _, out := s.restore(t); !strings.Contains(out, "restore: REPLACED "+beside) {
		t.Errorf("third restore: want %s replaced", beside)
	}
	if !bytes.Equal(s.read(t, beside), objects[beside]) {
		t.Errorf("%s on the disk is not the bucket's object", beside)
	}
}
