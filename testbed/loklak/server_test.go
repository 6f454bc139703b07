package loklak

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestConfigFromEnvHasLoklaksDefaultsAndKeys(t *testing.T) {
	env := func(kv map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := kv[k]; return v, ok }
	}
	cfg, err := ConfigFromEnv(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Port != 9000 || cfg.Xmx != "512m" || cfg.DataDir != "/loklak_server/data" || !cfg.DumpWriteEnabled ||
		cfg.StartDelay != DefaultStartDelay || cfg.DumpInterval != DefaultDumpInterval || cfg.Version != "dev" {
		t.Errorf("defaults: %+v", cfg)
	}
	cfg, err = ConfigFromEnv(env(map[string]string{
		"PORT": "8080", "ENVXmx": "2g", "LOKLAK_STANDIN_START_DELAY": "90s", "LOKLAK_STANDIN_DUMP_INTERVAL": "250ms",
		"LOKLAK_STANDIN_DATA": "/d", "LOKLAK_STANDIN_VERSION": "v2", "LOKLAK_STANDIN_IMAGE": "loklak-standin:v2",
		"COMMIT_HASH": "abc",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Port: 8080, Xmx: "2g", DataDir: "/d", DumpWriteEnabled: true, StartDelay: 90 * time.Second,
		DumpInterval: 250 * time.Millisecond, Version: "v2", Image: "loklak-standin:v2", CommitHash: "abc"}
	if fmt.Sprint(cfg) != fmt.Sprint(want) {
		t.Errorf("got %+v\nwant %+v", cfg, want)
	}
	// DAO.getConfig(key, boolean): "true", "on", "1" are true; any other value, even "TRUE" or "", is false
	for v, want := range map[string]bool{"true": true, "on": true, "1": true, "false": false, "TRUE": false, "0": false, "": false} {
		cfg, err := ConfigFromEnv(env(map[string]string{"dump_write_enabled": v}))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.DumpWriteEnabled != want {
			t.Errorf("dump_write_enabled=%q: %t, want %t", v, cfg.DumpWriteEnabled, want)
		}
	}
	for _, bad := range []map[string]string{{"PORT": "x"}, {"PORT": "70000"}, {"LOKLAK_STANDIN_START_DELAY": "5"},
		{"LOKLAK_STANDIN_DUMP_INTERVAL": "0s"}, {"LOKLAK_STANDIN_START_DELAY": "-1s"}} {
		if _, err := ConfigFromEnv(env(bad)); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestStatusIs503UntilTheStartDelayHasPassed(t *testing.T) {
	cfg := testConfig(t)
	cfg.Xmx = "2g"
	cfg.Image = "loklak-standin:vtest"
	cfg.CommitHash = "0123abc"
	h := start(t, cfg, day)
	h.waitTimers(1) // the start delay is armed: the dump is open, the server is "starting"
	for _, p := range []string{statusPath, dumpListingPath} {
		if code, hdr, _ := h.get(p); code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" {
			t.Errorf("GET %s before the delay = %d (Retry-After %q), want 503", p, code, hdr.Get("Retry-After"))
		}
	}
	h.clock.Advance(cfg.StartDelay - time.Millisecond)
	if code, _, _ := h.get(statusPath); code != http.StatusServiceUnavailable {
		t.Errorf("GET status 1 ms before the delay ends = %d, want 503", code)
	}
	select {
	case <-h.srv.Ready():
		t.Fatal("ready before the start delay")
	default:
	}
	h.clock.Advance(time.Millisecond)
	h.ev.next(EventReady)
	<-h.srv.Ready()

	code, hdr, body := h.get(statusPath)
	if code != http.StatusOK || !strings.HasPrefix(hdr.Get("Content-Type"), "application/javascript") {
		t.Fatalf("GET status after the delay = %d %q", code, hdr.Get("Content-Type"))
	}
	var raw map[string]any
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatalf("status is not JSON: %v\n%s", err, body)
	}
	st := h.status()
	if st.System.Xmx != "2g" || st.System.AssignedMemory != 2<<30 {
		t.Errorf("system = %+v, want Xmx 2g (2 GiB)", st.System)
	}
	if st.System.Runtime != cfg.StartDelay.Milliseconds() {
		t.Errorf("runtime = %d ms, want %d", st.System.Runtime, cfg.StartDelay.Milliseconds())
	}
	if st.Standin.Version != "vtest" || st.Standin.Image != "loklak-standin:vtest" || st.Commit.Hash != "0123abc" {
		t.Errorf("status = %+v", st)
	}
	if st.ClientInfo.IsLocalhost != "true" {
		t.Errorf("client_info = %+v, want a localhost client", st.ClientInfo)
	}
}

var dumpName = regexp.MustCompile(`^messages_\d{8}_\d{8}\.txt$`)

func TestADumpIsWrittenWithLoklaksNameAndListed(t *testing.T) {
	h := start(t, testConfig(t), day)
	opened := h.ev.next(EventDumpOpened)
	if opened.File != "messages_20261130_12345678.txt" || !dumpName.MatchString(opened.File) {
		t.Fatalf("dump file %q, want messages_20261130_12345678.txt", opened.File)
	}
	h.becomeReady()
	if last := h.write(3); last.Lines != 3 || last.File != opened.File {
		t.Fatalf("after three intervals: %v", last)
	}

	data := readFile(t, filepath.Join(h.own(), opened.File))
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != 3 || !strings.HasSuffix(string(data), "\n") {
		t.Fatalf("dump holds %q, want three lines", data)
	}
	for i, l := range lines {
		var m Message
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %d %q: %v", i, l, err)
		}
		wantAt := day.Add(h.cfg.StartDelay + time.Duration(i+1)*h.cfg.DumpInterval).Format(loklakDateLayout)
		if m.CreatedAt != wantAt || m.StandinVersion != "vtest" || m.IDStr == "" {
			t.Errorf("line %d = %+v, want created_at %s", i, m, wantAt)
		}
	}
	for _, sub := range []string{"import", "imported", "buffer"} {
		if st, err := os.Stat(filepath.Join(h.cfg.DataDir, "dump", sub)); err != nil || !st.IsDir() {
			t.Errorf("dump/%s: %v", sub, err)
		}
	}

	st := h.status()
	if st.Standin.DumpFile != opened.File || st.Standin.DumpLines != 3 || st.Index.Messages.Size != 3 {
		t.Errorf("status standin = %+v", st.Standin)
	}

	code, hdr, body := h.get("/dump/")
	if code != http.StatusOK || hdr.Get("Content-Type") != "text/html;charset=utf-8" || hdr.Get("Cache-Control") != "public, max-age=60" {
		t.Fatalf("GET /dump/ = %d, headers %v", code, hdr)
	}
	line := regexp.MustCompile(`(?m)^\[txt\] <a href="(messages_20261130_12345678\.txt)">messages_20261130_12345678\.txt</a> {6}` +
		`\w{3} \w{3} \d\d \d\d:\d\d:\d\d GMT \d{4}  +(\d+[KM]?)$`)
	m := line.FindStringSubmatch(string(body))
	if m == nil {
		t.Fatalf("listing has no line for the dump:\n%s", body)
	}
	if m[2] != strings.TrimSpace(listingSize(int64(len(data)))) {
		t.Errorf("listing says %s bytes, the file has %d", m[2], len(data))
	}
	if !strings.HasPrefix(string(body), "<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 3.2 Final//EN\">\n") ||
		!strings.Contains(string(body), "<h1>Index of /dump</h1>\n<pre>      Name \n") {
		t.Errorf("listing head:\n%s", body)
	}
	if code, _, got := h.get("/dump/" + m[1]); code != http.StatusOK || !bytes.Equal(got, data) {
		t.Errorf("GET the listed link = %d, %d bytes, want the file's %d bytes", code, len(got), len(data))
	}
}

// The lines of the listing in the 2017 write-up (seed), rebuilt from the files' names, dates and sizes.
func TestListingMatchesThe2017Format(t *testing.T) {
	date := func(s string) time.Time {
		d, err := time.Parse("Mon Jan 02 15:04:05 MST 2006", s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	files := []DumpFile{
		{"messages_20170802_71562040.txt.gz", 132<<20 + 12345, date("Thu Aug 03 00:07:21 GMT 2017")},
		{"messages_20170803_69925009.txt.gz", 532<<20 + 1, date("Mon Aug 07 15:40:04 GMT 2017")},
		{"messages_20170807_36357603.txt.gz", 377 << 20, date("Wed Aug 09 10:26:24 GMT 2017")},
		{"messages_20170809_27974404.txt", 1565<<20 - 1, date("Thu Aug 10 08:51:49 GMT 2017")},
	}
	want := `<h1>Index of /dump</h1>
<pre>      Name 
[gz ] <a href="messages_20170802_71562040.txt.gz">messages_20170802_71562040.txt.gz</a>   Thu Aug 03 00:07:21 GMT 2017   132M
[gz ] <a href="messages_20170803_69925009.txt.gz">messages_20170803_69925009.txt.gz</a>   Mon Aug 07 15:40:04 GMT 2017   532M
[gz ] <a href="messages_20170807_36357603.txt.gz">messages_20170807_36357603.txt.gz</a>   Wed Aug 09 10:26:24 GMT 2017   377M
[txt] <a href="messages_20170809_27974404.txt">messages_20170809_27974404.txt</a>      Thu Aug 10 08:51:49 GMT 2017  1564M
<hr></pre>
`
	if got := WriteListing(files); !strings.Contains(got, want) {
		t.Errorf("listing:\n%s\nwant it to contain:\n%s", got, want)
	}
	for n, want := range map[int64]string{0: "    0", 1023: " 1023", 1024: "   1K", 1<<20 - 1: "1023K", 1 << 20: "   1M"} {
		if got := listingSize(n); got != want {
			t.Errorf("size %d: %q, want %q", n, got, want)
		}
	}
	if got := listingLine(DumpFile{Name: "noext", ModTime: day}); !strings.HasPrefix(got, "[   ] ") {
		t.Errorf("a name without extension: %q", got)
	}
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

func TestOlderDaysAreGzippedAtStartAndTodaysFileIsAppendedTo(t *testing.T) {
	cfg := testConfig(t)
	own := OwnDumpDir(cfg.DataDir)
	old := map[string]string{
		"messages_20261128_11111111.txt": "{\"a\":1}\n{\"a\":2}\n",
		"messages_20261129_22222222.txt": "{\"b\":1}\n",
	}
	for n, c := range old {
		writeFile(t, filepath.Join(own, n), c)
	}
	const today = "messages_20261130_33333333.txt"
	writeFile(t, filepath.Join(own, today), "{\"c\":1}\n")
	gzBefore := []byte("an older gzip, left as it is")
	writeFile(t, filepath.Join(own, "messages_20261127_44444444.txt.gz"), string(gzBefore))
	writeFile(t, filepath.Join(own, "notes.txt"), "not a dump")

	h := start(t, cfg, day)
	// the gzips run in the background: their events and the dump's come in any order
	gzipped, opened := h.ev.gzipsAndOpen(2)
	if !gzipped["messages_20261128_11111111.txt.gz"] || !gzipped["messages_20261129_22222222.txt.gz"] {
		t.Fatalf("gzipped %v", gzipped)
	}
	if opened != today {
		t.Fatalf("appending to %q, want today's existing %s", opened, today)
	}
	h.becomeReady()
	h.write(2)

	for n, c := range old {
		if _, err := os.Stat(filepath.Join(own, n)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s still there after its gzip (%v)", n, err)
		}
		if got := gunzip(t, readFile(t, filepath.Join(own, n+".gz"))); string(got) != c {
			t.Errorf("%s.gz holds %q, want %q", n, got, c)
		}
	}
	if got := readFile(t, filepath.Join(own, "messages_20261127_44444444.txt.gz")); !bytes.Equal(got, gzBefore) {
		t.Errorf("an existing .gz was changed")
	}
	todays := readFile(t, filepath.Join(own, today))
	if !strings.HasPrefix(string(todays), "{\"c\":1}\n") || strings.Count(string(todays), "\n") != 3 {
		t.Errorf("today's file = %q, want the old line and two new ones", todays)
	}
	if _, err := os.Stat(filepath.Join(own, today+".gz")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("today's file was gzipped")
	}
	if tmp, _ := filepath.Glob(filepath.Join(own, ".*")); len(tmp) > 0 {
		t.Errorf("temporary files left: %v", tmp)
	}

	_, _, body := h.get("/dump/")
	var listed []string
	for _, m := range regexp.MustCompile(`(?m)^\[(gz |txt)\] <a href="([^"]+)">`).FindAllStringSubmatch(string(body), -1) {
		listed = append(listed, m[1]+" "+m[2])
	}
	wantListed := []string{
		"gz  messages_20261127_44444444.txt.gz",
		"gz  messages_20261128_11111111.txt.gz",
		"gz  messages_20261129_22222222.txt.gz",
		"txt messages_20261130_33333333.txt",
	}
	if fmt.Sprint(listed) != fmt.Sprint(wantListed) {
		t.Errorf("listed %q\nwant   %q\n%s", listed, wantListed, body)
	}
	for _, n := range []string{"messages_20261128_11111111.txt.gz", today} {
		code, hdr, got := h.get("/dump/" + n)
		if code != http.StatusOK || !bytes.Equal(got, readFile(t, filepath.Join(own, n))) {
			t.Errorf("GET /dump/%s = %d, %d bytes, not the file's bytes", n, code, len(got))
		}
		if hdr.Get("Content-Type") != "application/octet-stream" || hdr.Get("Last-Modified") == "" {
			t.Errorf("GET /dump/%s headers %v", n, hdr)
		}
	}
}

func TestTheFileBeingAppendedIsNeverGzippedEvenAfterMidnight(t *testing.T) {
	cfg := testConfig(t)
	evening := time.Date(2026, 11, 30, 23, 59, 50, 0, time.UTC)
	h := start(t, cfg, evening)
	first := h.ev.next(EventDumpOpened).File
	h.becomeReady() // 23:59:55
	h.write(10)     // past midnight
	if !h.clock.Now().After(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("the clock is at %v, not past midnight", h.clock.Now())
	}
	for _, ev := range h.ev.drain() {
		if ev.Kind == EventGzipped {
			t.Errorf("gzip while running: %v", ev)
		}
	}
	if got := h.status().Standin.DumpFile; got != first {
		t.Errorf("after midnight the dump is %s, want still %s (loklak picks its file at start)", got, first)
	}
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	written := readFile(t, filepath.Join(OwnDumpDir(cfg.DataDir), first))

	// the next start, on the new day, gzips yesterday's file and opens a new one
	cfg.Rand = func() int64 { return 87654321 }
	h2 := start(t, cfg, h.clock.Now())
	gzipped, opened := h2.ev.gzipsAndOpen(1)
	if !gzipped[first+".gz"] {
		t.Errorf("gzipped %v, want %s.gz", gzipped, first)
	}
	if opened != "messages_20261201_87654321.txt" {
		t.Errorf("opened %s, want messages_20261201_87654321.txt", opened)
	}
	if got := gunzip(t, readFile(t, filepath.Join(OwnDumpDir(cfg.DataDir), first+".gz"))); !bytes.Equal(got, written) {
		t.Errorf("the gzip of %s does not hold what was written", first)
	}
}

func TestDumpFilesAreServedOnlyByTheirPlainName(t *testing.T) {
	h := start(t, testConfig(t), day)
	h.becomeReady()
	writeFile(t, filepath.Join(h.cfg.DataDir, "secret"), "s")
	if err := os.Symlink(filepath.Join(h.cfg.DataDir, "secret"), filepath.Join(h.own(), "messages_link.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(h.own(), "messages_dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/dump/readme.txt", "/dump/..%2Fsecret", "/dump/messages_20990101_00000000.txt",
		"/dump/messages_link.txt", "/dump/messages_dir", "/dump/..%2F..%2Fsecret", "/dump/own/x"} {
		if code, _, body := h.get(p); code != http.StatusNotFound {
			t.Errorf("GET %s = %d %q, want 404", p, code, body)
		}
	}
}

func TestDumpWriteDisabledWritesNothing(t *testing.T) {
	cfg := testConfig(t)
	cfg.DumpWriteEnabled = false
	old := filepath.Join(OwnDumpDir(cfg.DataDir), "messages_20261101_11111111.txt")
	writeFile(t, old, "{}\n")
	before := snapshot(t, cfg.DataDir)

	h := start(t, cfg, day)
	h.ev.next(EventDumpDisabled)
	h.becomeReady()
	if n := h.clock.Waiters(); n != 0 {
		t.Errorf("%d timers armed after ready, want none (no dump interval)", n)
	}
	h.clock.Advance(time.Hour)
	st := h.status()
	if st.Standin.DumpWriteEnabled || st.Standin.DumpFile != "" || st.Standin.DumpLines != 0 {
		t.Errorf("status standin = %+v", st.Standin)
	}
	if _, _, body := h.get("/dump/"); !strings.Contains(string(body), `<a href="messages_20261101_11111111.txt">`) {
		t.Errorf("the listing does not show the existing file:\n%s", body)
	}
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	for _, ev := range h.ev.drain() {
		if ev.Kind == EventWrote || ev.Kind == EventGzipped || ev.Kind == EventDumpOpened {
			t.Errorf("event %v with dump_write_enabled=false", ev)
		}
	}
	if after := snapshot(t, cfg.DataDir); after != before {
		t.Errorf("the data directory changed:\nbefore %s\nafter  %s", before, after)
	}
}

// snapshot describes every file and directory under dir, with sizes and modification times.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %v %d %d; ", p, info.Mode(), info.Size(), info.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestCancelStopsServeAndClosesTheDump(t *testing.T) {
	cfg := testConfig(t)
	clock := NewFakeClock(day)
	ev := newEvents(t)
	cfg.Clock, cfg.OnEvent = clock, ev.on
	srv := New(cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	h := &harness{t: t, clock: clock, ev: ev, cfg: cfg}
	h.becomeReady()
	h.write(2)
	resp, err := http.Get("http://" + ln.Addr().String() + statusPath)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status over the listener = %d", resp.StatusCode)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve returned %v, want nil after cancel", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("Serve did not return after cancel")
	}
	stopped := ev.next(EventStopped)
	if stopped.Lines != 2 {
		t.Errorf("stopped after %d lines, want 2", stopped.Lines)
	}
	if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		_ = c.Close()
		t.Errorf("the port still accepts connections after Serve returned")
	}
	srv.mu.Lock()
	d := srv.dump
	srv.mu.Unlock()
	if err := d.Append([]byte("{}")); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Append after stop = %v, want os.ErrClosed", err)
	}
	data := readFile(t, d.Path())
	if strings.Count(string(data), "\n") != 2 || !strings.HasSuffix(string(data), "\n") {
		t.Errorf("dump after stop = %q", data)
	}
}

func TestServeReturnsTheErrorWhenTheDumpCannotOpen(t *testing.T) {
	cfg := testConfig(t)
	writeFile(t, filepath.Join(cfg.DataDir, "dump"), "a file where the dump directory should be")
	cfg.Clock = NewFakeClock(day)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- New(cfg).Serve(context.Background(), ln) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "opening the message dump") {
			t.Errorf("Serve = %v, want the dump's error", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("Serve kept running with no dump")
	}
}

// The binary's Main in a child process (this test binary, see TestMain): real signals, real time.
func TestSIGTERMStopsTheProcessCleanly(t *testing.T) {
	data := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(),
		"LOKLAK_STANDIN_TEST_RUN_MAIN=1", "PORT=0", "ENVXmx=1g", "LOKLAK_STANDIN_VERSION=v9",
		"LOKLAK_STANDIN_START_DELAY=0s", "LOKLAK_STANDIN_DUMP_INTERVAL=5ms", "LOKLAK_STANDIN_DATA="+data)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	lines := make(chan string, 10000)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var log []string
	waitFor := func(re *regexp.Regexp) []string {
		t.Helper()
		deadline := time.After(waitLimit)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("the process ended before %s; it said:\n%s", re, strings.Join(log, "\n"))
				}
				log = append(log, l)
				if m := re.FindStringSubmatch(l); m != nil {
					return m
				}
			case <-deadline:
				t.Fatalf("no %s within %s; the process said:\n%s", re, waitLimit, strings.Join(log, "\n"))
			}
		}
	}
	_, port, err := net.SplitHostPort(waitFor(regexp.MustCompile(`listening on (\S+) `))[1])
	if err != nil {
		t.Fatal(err)
	}
	waitFor(regexp.MustCompile(` ready$`))
	file := waitFor(regexp.MustCompile(` wrote file=(\S+) lines=3$`))[1]

	resp, err := http.Get("http://127.0.0.1:" + port + statusPath)
	if err != nil {
		t.Fatal(err)
	}
	var st Status
	err = json.NewDecoder(resp.Body).Decode(&st)
	_ = resp.Body.Close()
	if err != nil || st.Standin.Version != "v9" || st.System.Xmx != "1g" {
		t.Errorf("status = %+v (%v)", st, err)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	stopped := waitFor(regexp.MustCompile(` stopped file=(\S+) lines=(\d+)$`))
	waitFor(regexp.MustCompile(` terminated$`))
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v, want status 0", err)
	}
	if stopped[1] != file {
		t.Errorf("stopped with %s, wrote to %s", stopped[1], file)
	}
	content := readFile(t, filepath.Join(OwnDumpDir(data), file))
	if !strings.HasSuffix(string(content), "\n") {
		t.Errorf("the dump does not end with a whole line")
	}
	n := 0
	for l := range strings.SplitSeq(strings.TrimSuffix(string(content), "\n"), "\n") {
		n++
		if !json.Valid([]byte(l)) {
			t.Errorf("line %d is not JSON: %q", n, l)
		}
	}
	if strconv.Itoa(n) != stopped[2] {
		t.Errorf("the dump has %d lines, the process said it wrote %s", n, stopped[2])
	}
}

func TestEightDigitsLikeJsonRepository(t *testing.T) {
	for r, want := range map[int64]string{
		0: "00000000", 7: "70000000", 1234: "12340000", 1234567890123: "12345678", -98765432123: "98765432",
		-9223372036854775808: "92233720",
	} {
		if got := eightDigits(r); got != want {
			t.Errorf("eightDigits(%d) = %q, want %q", r, got, want)
		}
	}
	for range 100 {
		if got := eightDigits(randInt63()); len(got) != 8 || strings.Trim(got, "0123456789") != "" {
			t.Fatalf("eightDigits of a random number = %q", got)
		}
	}
}

func TestParseHeapSize(t *testing.T) {
	for v, want := range map[string]int64{"512m": 512 << 20, "1g": 1 << 30, "2G": 2 << 30, "2048k": 2 << 20,
		"1073741824": 1 << 30, "": 0, "lots": 0, "-1g": 0, "1.5g": 0} {
		if got := ParseHeapSize(v); got != want {
			t.Errorf("ParseHeapSize(%q) = %d, want %d", v, got, want)
		}
	}
}

func TestAHalfWrittenLineIsEndedBeforeTheNextAppend(t *testing.T) {
	data := t.TempDir()
	name := "messages_20261130_55555555.txt"
	writeFile(t, filepath.Join(OwnDumpDir(data), name), "{\"whole\":1}\n{\"cut\":")
	d, err := OpenDump(data, day, DumpOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Name() != name {
		t.Fatalf("opened %s, want %s", d.Name(), name)
	}
	if err := d.Append([]byte(`{"next":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := d.Append([]byte("two\nlines")); err == nil {
		t.Error("a line with a newline was appended")
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if got := string(readFile(t, d.Path())); got != "{\"whole\":1}\n{\"cut\":\n{\"next\":1}\n" {
		t.Errorf("dump = %q", got)
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
