package loklak

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestMain lets a test run the binary's Main in a child process (see TestSIGTERMStopsTheProcessCleanly).
func TestMain(m *testing.M) {
	if os.Getenv("LOKLAK_STANDIN_TEST_RUN_MAIN") == "1" {
		os.Exit(Main(os.LookupEnv, os.Stderr))
	}
	os.Exit(m.Run())
}

// waitLimit bounds every wait in these tests; it is a failure deadline, never a way to let time pass.
const waitLimit = 20 * time.Second

// day is the fake "today" of the tests: 30 November 2026, 10:00 GMT.
var day = time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)

// events records a Server's events for a test to wait on.
type events struct {
	t  *testing.T
	ch chan Event
}

func newEvents(t *testing.T) *events { return &events{t: t, ch: make(chan Event, 10000)} }

func (e *events) on(ev Event) { e.ch <- ev }

// next returns the next event of kind, failing the test on any event with an error and on timeout.
func (e *events) next(kind EventKind) Event {
	e.t.Helper()
	deadline := time.After(waitLimit)
	for {
		select {
		case ev := <-e.ch:
			if ev.Err != nil {
				e.t.Fatalf("event %v", ev)
			}
			if ev.Kind == kind {
				return ev
			}
		case <-deadline:
			e.t.Fatalf("no %s event within %s", kind, waitLimit)
		}
	}
}

// drain returns the events recorded so far without waiting.
func (e *events) drain() []Event {
	var out []Event
	for {
		select {
		case ev := <-e.ch:
			out = append(out, ev)
		default:
			return out
		}
	}
}

// harness is a Server on a fake clock behind httptest, with its Run loop going.
type harness struct {
	t      *testing.T
	srv    *Server
	http   *httptest.Server
	clock  *FakeClock
	ev     *events
	cfg    Config
	cancel context.CancelFunc
	done   chan error
}

func testConfig(t *testing.T) Config {
	return Config{
		Port:             0,
		Xmx:              DefaultXmx,
		DataDir:          t.TempDir(),
		DumpWriteEnabled: true,
		StartDelay:       5 * time.Second,
		DumpInterval:     time.Second,
		Version:          "vtest",
		Rand:             func() int64 { return 12345678901234 },
	}
}

// start runs a Server for cfg with the clock at now.
func start(t *testing.T, cfg Config, now time.Time) *harness {
	t.Helper()
	h := &harness{t: t, clock: NewFakeClock(now), ev: newEvents(t), done: make(chan error, 1)}
	cfg.Clock = h.clock
	if also := cfg.OnEvent; also != nil { // a test's own hook runs first, and may hold the caller
		cfg.OnEvent = func(e Event) { also(e); h.ev.on(e) }
	} else {
		cfg.OnEvent = h.ev.on
	}
	h.cfg = cfg
	h.srv = New(cfg)
	h.http = httptest.NewServer(h.srv.Handler())
	t.Cleanup(h.http.Close)
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- h.srv.Run(ctx) }()
	t.Cleanup(func() {
		if err := h.stop(); err != nil {
			t.Error(err)
		}
	})
	return h
}

// becomeReady passes the start delay and waits for the server to say it is ready.
func (h *harness) becomeReady() {
	h.t.Helper()
	h.waitTimers(1)
	h.clock.Advance(h.cfg.StartDelay)
	h.ev.next(EventReady)
}

func (h *harness) waitTimers(n int) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := h.clock.WaitForWaiters(ctx, n); err != nil {
		h.t.Fatalf("waiting for %d armed timers: %v", n, err)
	}
}

// write lets n dump intervals pass, one at a time, and returns the last "wrote" event.
func (h *harness) write(n int) Event {
	h.t.Helper()
	var ev Event
	for range n {
		h.waitTimers(1)
		h.clock.Advance(h.cfg.DumpInterval)
		ev = h.ev.next(EventWrote)
	}
	return ev
}

// stop ends Run and returns its error (once; later calls return nil). It then waits for the gzips Run
// started, which stopping cuts off, so that none outlives the test.
func (h *harness) stop() error {
	if h.cancel == nil {
		return nil
	}
	h.cancel()
	h.cancel = nil
	var err error
	select {
	case err = <-h.done:
	case <-time.After(waitLimit):
		h.t.Errorf("Run did not return within %s of cancel", waitLimit)
		return nil
	}
	waited := make(chan struct{})
	go func() { h.srv.WaitGzips(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(waitLimit):
		h.t.Errorf("gzips still running %s after Run returned", waitLimit)
	}
	return err
}

func (h *harness) get(path string) (int, http.Header, []byte) {
	h.t.Helper()
	resp, err := http.Get(h.http.URL + path)
	if err != nil {
		h.t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, body
}

func (h *harness) status() Status {
	h.t.Helper()
	code, _, body := h.get(statusPath)
	if code != http.StatusOK {
		h.t.Fatalf("GET %s = %d %s", statusPath, code, body)
	}
	var st Status
	if err := json.Unmarshal(body, &st); err != nil {
		h.t.Fatalf("status body %s: %v", body, err)
	}
	return st
}

func (h *harness) own() string { return OwnDumpDir(h.cfg.DataDir) }

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// gzipsAndOpen waits for n "gzipped" events and the "dump-opened" event, in whatever order the
// background gzips and the dump produce them, and returns the .gz names and the opened file.
func (e *events) gzipsAndOpen(n int) (gzipped map[string]bool, opened string) {
	e.t.Helper()
	gzipped = map[string]bool{}
	deadline := time.After(waitLimit)
	for len(gzipped) < n || opened == "" {
		select {
		case ev := <-e.ch:
			if ev.Err != nil {
				e.t.Fatalf("event %v", ev)
			}
			switch ev.Kind {
			case EventGzipped:
				gzipped[ev.File] = true
			case EventDumpOpened:
				opened = ev.File
			}
		case <-deadline:
			e.t.Fatalf("within %s: gzipped %v, opened %q; want %d gzips and the dump", waitLimit, gzipped, opened, n)
		}
	}
	return gzipped, opened
}
