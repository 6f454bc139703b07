package loklak

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// oldDump is a dump file of the day before the tests' day, which a start gzips.
const oldDump = "messages_20261129_22222222.txt"

// randomBytes returns n bytes that do not compress, so that a .gz is about as long as its .txt.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.NewChaCha8([32]byte{7}).Read(b)
	return b
}

func writeControl(t *testing.T, dataDir, name, value string) {
	t.Helper()
	writeFile(t, filepath.Join(ControlDir(dataDir), name), value)
}

// names lists dir, sorted.
func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func sorted(s ...string) []string { slices.Sort(s); return s }

// gzipHold holds a throttled gzip inside each of its progress events until the test calls resume (or
// release, after which nothing is held), so that a test looks at a gzip in progress without racing it.
type gzipHold struct {
	t        *testing.T
	held     chan Event
	resumeC  chan struct{}
	released chan struct{}
	once     sync.Once
}

func newGzipHold(t *testing.T) *gzipHold {
	return &gzipHold{t: t, held: make(chan Event), resumeC: make(chan struct{}), released: make(chan struct{})}
}

// on is the Config.OnEvent hook; it runs on the gzip's goroutine.
func (g *gzipHold) on(e Event) {
	if e.Kind != EventGzipProgress {
		return
	}
	select {
	case g.held <- e:
		select {
		case <-g.resumeC:
		case <-g.released:
		}
	case <-g.released:
	}
}

// next returns the progress event the gzip is now held in.
func (g *gzipHold) next() Event {
	g.t.Helper()
	select {
	case e := <-g.held:
		return e
	case <-time.After(waitLimit):
		g.t.Fatalf("no gzip progress within %s", waitLimit)
		return Event{}
	}
}

func (g *gzipHold) resume()  { g.resumeC <- struct{}{} }
func (g *gzipHold) release() { g.once.Do(func() { close(g.released) }) }

// startHeldGzip starts a server on the tests' day with content as yesterday's dump, its gzip throttled
// to 40960 bytes a second (steps of 4096) and held at each step.
func startHeldGzip(t *testing.T, content []byte) (*harness, *gzipHold) {
	cfg := testConfig(t)
	writeFile(t, filepath.Join(OwnDumpDir(cfg.DataDir), oldDump), string(content))
	writeControl(t, cfg.DataDir, ControlGzipBytesPerSecond, "40960\n")
	hold := newGzipHold(t)
	cfg.OnEvent = hold.on
	h := start(t, cfg, day)
	t.Cleanup(hold.release) // runs before the harness stops, which waits for the gzip
	return h, hold
}

func TestAGzipGrowsUnderItsFinalNameNextToItsTxt(t *testing.T) {
	content := randomBytes(16 << 10)
	h, hold := startHeldGzip(t, content)
	today := h.ev.next(EventDumpOpened).File
	gz := filepath.Join(h.own(), oldDump+".gz")
	for step := int64(1); step <= 2; step++ {
		ev := hold.next()
		if ev.File != oldDump+".gz" || ev.Bytes != step*4096 {
			t.Errorf("step %d: %v, want %s.gz bytes=%d", step, ev, oldDump, step*4096)
		}
		if got, want := names(t, h.own()), sorted(oldDump, oldDump+".gz", today); !slices.Equal(got, want) {
			t.Errorf("step %d: dump/own holds %q, want %q (no temporary name)", step, got, want)
		}
		if st, err := os.Stat(gz); err != nil || st.Size() != ev.Bytes {
			t.Errorf("step %d: the .gz is %v (%v), want %d bytes", step, st, err, ev.Bytes)
		}
		if !bytes.Equal(readFile(t, filepath.Join(h.own(), oldDump)), content) {
			t.Errorf("step %d: the .txt changed while it is gzipped", step)
		}
		hold.resume()
	}
	hold.release()
	done := h.ev.next(EventGzipped)
	if got := readFile(t, gz); int64(len(got)) != done.Bytes || !bytes.Equal(gunzip(t, got), content) {
		t.Errorf("the finished .gz is %d bytes (event says %d) and not the .txt's gzip", len(got), done.Bytes)
	}
	if got, want := names(t, h.own()), sorted(oldDump+".gz", today); !slices.Equal(got, want) {
		t.Errorf("after the gzip dump/own holds %q, want %q", got, want)
	}
}

func TestTheServerIsReadyWhileAGzipRuns(t *testing.T) {
	h, hold := startHeldGzip(t, randomBytes(16<<10))
	hold.next() // 4096 bytes of the .gz are written and the gzip waits
	h.becomeReady()
	if st := h.status(); st.Standin.DumpFile == "" {
		t.Errorf("ready without a dump file: %+v", st.Standin)
	}
	_, _, body := h.get("/dump/")
	for _, want := range []string{
		fmt.Sprintf(`<a href="%s">%[1]s</a>`, oldDump),
		fmt.Sprintf(`<a href="%s.gz">%[1]s.gz</a>`, oldDump),
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("the listing during the gzip lacks %s:\n%s", want, body)
		}
	}
	if !strings.Contains(string(body), "   4K\n") {
		t.Errorf("the listing does not show the .gz at 4K:\n%s", body)
	}
	hold.release()
	h.ev.next(EventGzipped)
}

func TestAnExistingGzIsDeletedBeforeTheTxtIsGzippedAgain(t *testing.T) {
	cfg := testConfig(t)
	own := OwnDumpDir(cfg.DataDir)
	content := "{\"a\":1}\n{\"a\":2}\n"
	writeFile(t, filepath.Join(own, oldDump), content)
	garbage := "not a gzip, and longer than the gzip that replaces it"
	writeFile(t, filepath.Join(own, oldDump+".gz"), garbage)
	// a second name for the garbage: if the .gz were truncated instead of deleted, it would change too
	link := filepath.Join(cfg.DataDir, "garbage-link")
	if err := os.Link(filepath.Join(own, oldDump+".gz"), link); err != nil {
		t.Fatal(err)
	}

	h := start(t, cfg, day)
	h.ev.gzipsAndOpen(1)
	if got := gunzip(t, readFile(t, filepath.Join(own, oldDump+".gz"))); string(got) != content {
		t.Errorf("the .gz holds %q, want the .txt's %q", got, content)
	}
	if _, err := os.Stat(filepath.Join(own, oldDump)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the .txt is still there after its gzip (%v)", err)
	}
	if got := string(readFile(t, link)); got != garbage {
		t.Errorf("the old .gz was rewritten in place (now %q), not deleted first", got)
	}
}

func TestACutGzipLeavesTheGzAndTheTxtAndExits137(t *testing.T) {
	content := randomBytes(4096)
	for _, tc := range []struct {
		cutAfter int64
		whole    bool // the stream is shorter than the cut: a complete .gz, but the .txt stays
	}{{100, false}, {1 << 20, true}} {
		t.Run(fmt.Sprint(tc.cutAfter), func(t *testing.T) {
			cfg := testConfig(t)
			own := OwnDumpDir(cfg.DataDir)
			writeFile(t, filepath.Join(own, oldDump), string(content))
			writeControl(t, cfg.DataDir, ControlGzipCutAfterBytes, fmt.Sprint(tc.cutAfter))
			var cutSaid atomic.Bool
			cfg.OnEvent = func(e Event) {
				if e.Kind == EventGzipCut {
					cutSaid.Store(true)
				}
			}
			type exit struct {
				code        int
				saidSoFirst bool
			}
			exits := make(chan exit, 4)
			cfg.Exit = func(code int) { exits <- exit{code, cutSaid.Load()} }

			h := start(t, cfg, day)
			cut := h.ev.next(EventGzipCut)
			select {
			case e := <-exits:
				if e.code != 137 || !e.saidSoFirst {
					t.Errorf("exit %d (cut logged first: %t), want 137 after the gzip-cut event", e.code, e.saidSoFirst)
				}
			case <-time.After(waitLimit):
				t.Fatal("the cut did not exit")
			}
			if err := h.stop(); err != nil {
				t.Fatal(err)
			}
			gz := readFile(t, filepath.Join(own, oldDump+".gz"))
			if int64(len(gz)) != cut.Bytes || (!tc.whole && cut.Bytes != tc.cutAfter) {
				t.Errorf("the .gz is %d bytes, the event says %d, the cut is after %d", len(gz), cut.Bytes, tc.cutAfter)
			}
			zr, err := gzip.NewReader(bytes.NewReader(gz))
			if err == nil {
				var got []byte
				got, err = io.ReadAll(zr)
				if tc.whole && (err != nil || !bytes.Equal(got, content)) {
					t.Errorf("the whole stream does not read back: %v", err)
				}
			}
			if !tc.whole && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("reading the cut .gz: %v, want an unexpected EOF", err)
			}
			if !bytes.Equal(readFile(t, filepath.Join(own, oldDump)), content) {
				t.Errorf("the .txt is not intact after the cut")
			}
			for _, ev := range h.ev.drain() {
				if ev.Kind == EventGzipped {
					t.Errorf("%v after the cut", ev)
				}
			}

			// the next start deletes the cut .gz and gzips the .txt again from its start
			if err := os.Remove(filepath.Join(ControlDir(cfg.DataDir), ControlGzipCutAfterBytes)); err != nil {
				t.Fatal(err)
			}
			h2 := start(t, cfg, day)
			h2.ev.gzipsAndOpen(1)
			if got := gunzip(t, readFile(t, filepath.Join(own, oldDump+".gz"))); !bytes.Equal(got, content) {
				t.Errorf("after the restart the .gz does not hold the .txt")
			}
			if _, err := os.Stat(filepath.Join(own, oldDump)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("after the restart the .txt is still there (%v)", err)
			}
		})
	}
}

func TestFailStartExits1BeforeTheDump(t *testing.T) {
	cfg := testConfig(t)
	writeControl(t, cfg.DataDir, ControlFailStart, "disk on fire\n")
	dumpDir := filepath.Join(cfg.DataDir, dumpDirName)

	err := New(cfg).Run(context.Background())
	if err == nil || err.Error() != "cannot start: disk on fire" {
		t.Errorf("Run = %v, want cannot start: disk on fire", err)
	}
	env := map[string]string{EnvDataDir: cfg.DataDir, EnvPort: "0"}
	var out bytes.Buffer
	if code := Main(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, &out); code != 1 {
		t.Errorf("Main = %d, want 1", code)
	}
	if got := out.String(); got != "loklak-standin: cannot start: disk on fire\n" {
		t.Errorf("Main said %q", got)
	}
	if _, err := os.Stat(dumpDir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the dump directory was made (%v)", err)
	}
}

func TestClockOffsetMovesTheDumpsDayAndTheMessages(t *testing.T) {
	cfg := testConfig(t)
	writeControl(t, cfg.DataDir, ControlClockOffset, "48h")
	h := start(t, cfg, day)
	const want = "messages_20261202_12345678.txt" // 30 November + 2 days
	if opened := h.ev.next(EventDumpOpened).File; opened != want {
		t.Fatalf("opened %s, want %s", opened, want)
	}
	h.becomeReady() // 10:00:05
	h.write(1)      // 10:00:06
	writeControl(t, cfg.DataDir, ControlClockOffset, "-24h")
	h.write(1) // 10:00:07, read with the new offset; the file stays, as loklak picks it at start only

	var got []string
	for l := range strings.SplitSeq(strings.TrimSpace(string(readFile(t, filepath.Join(h.own(), want)))), "\n") {
		var m Message
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		got = append(got, m.CreatedAt)
	}
	if wantAt := []string{"2026-12-02T10:00:06.000Z", "2026-11-29T10:00:07.000Z"}; !slices.Equal(got, wantAt) {
		t.Errorf("messages created at %q, want %q", got, wantAt)
	}

	bad := testConfig(t)
	writeControl(t, bad.DataDir, ControlClockOffset, "soon")
	bad.Clock = NewFakeClock(day)
	if err := New(bad).Run(context.Background()); err == nil || !strings.Contains(err.Error(), ControlClockOffset) {
		t.Errorf("Run with clock-offset %q = %v, want its error", "soon", err)
	}
}

// The binary's Main in a child process (see TestMain): the cut really ends it with status 137, after
// logging why, and leaves the cut .gz next to the .txt.
func TestACutGzipEndsTheProcessWith137(t *testing.T) {
	data := t.TempDir()
	own := OwnDumpDir(data)
	content := randomBytes(4096)
	writeFile(t, filepath.Join(own, oldDump), string(content))
	writeControl(t, data, ControlGzipCutAfterBytes, "100")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "LOKLAK_STANDIN_TEST_RUN_MAIN=1", "PORT=0", "LOKLAK_STANDIN_DATA="+data)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 137 {
			t.Errorf("the process ended with %v, want exit status 137; it said:\n%s", err, &stderr)
		}
	case <-time.After(waitLimit):
		_ = cmd.Process.Kill()
		t.Fatalf("the process did not exit; it said:\n%s", &stderr)
	}
	want := "gzip-cut file=" + oldDump + ".gz bytes=100: " + ControlGzipCutAfterBytes + " cut the gzip, exiting with status 137\n"
	if !strings.HasSuffix(stderr.String(), want) {
		t.Errorf("the process said:\n%s\nwant it to end with %q", &stderr, want)
	}
	if st, err := os.Stat(filepath.Join(own, oldDump+".gz")); err != nil || st.Size() != 100 {
		t.Errorf("the cut .gz: %v %v, want 100 bytes", st, err)
	}
	if !bytes.Equal(readFile(t, filepath.Join(own, oldDump)), content) {
		t.Errorf("the .txt is not intact after the cut")
	}
}

// With fail-start-after-cut, the cut leaves fail-start behind: every later start fails and the truncated
// .gz stays as it is, next to its .txt.
func TestACutGzipCanLeaveTheServerUnableToStart(t *testing.T) {
	cfg := testConfig(t)
	own := OwnDumpDir(cfg.DataDir)
	writeFile(t, filepath.Join(own, oldDump), string(randomBytes(4096)))
	writeControl(t, cfg.DataDir, ControlGzipCutAfterBytes, "100")
	writeControl(t, cfg.DataDir, ControlFailStartAfterCut, "")
	exits := make(chan int, 4)
	cfg.Exit = func(code int) { exits <- code }
	h := start(t, cfg, day)
	h.ev.next(EventGzipCut)
	if code := <-exits; code != 137 {
		t.Errorf("exit %d, want 137", code)
	}
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(ControlDir(cfg.DataDir), ControlFailStart))
	if err != nil || string(got) != "the last run was killed while compressing" {
		t.Fatalf("fail-start after the cut: %q, %v", got, err)
	}
	if err := New(cfg).Run(t.Context()); err == nil || !strings.Contains(err.Error(), "cannot start") {
		t.Errorf("the next start: %v, want it to fail", err)
	}
	if n := len(readFile(t, filepath.Join(own, oldDump+".gz"))); n != 100 {
		t.Errorf("the truncated .gz is %d bytes after the failed start, want the cut's 100", n)
	}
}
