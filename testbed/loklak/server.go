package loklak

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// EventKind names what happened in an Event.
type EventKind string

// The events a Server reports through Config.OnEvent. The server's own come in the order listed; the
// gzip events come from each gzip's goroutine, any time after the dump is opened (loklak's gzip threads
// log "starting gzip of", "finished gzip of" and "gzip of ... failed", JsonRepository.java lines
// 163-167). For the gzip events File is the .txt.gz name.
const (
	EventDumpDisabled EventKind = "dump-disabled" // dump_write_enabled is false: nothing will be written
	EventDumpOpened   EventKind = "dump-opened"   // File is the dump file messages are appended to
	EventReady        EventKind = "ready"         // /api/status.json now answers 200
	EventWrote        EventKind = "wrote"         // one message appended to File; Lines counts them (or Err)
	EventStopped      EventKind = "stopped"       // the dump is synced and closed; Lines is the final count

	EventGzipStarted EventKind = "gzip-started" // a background gzip began writing File; its .txt stays until it ends
	// EventGzipProgress is one throttled step (ControlGzipBytesPerSecond only): Bytes of File are
	// written. The binary does not log it (ten a second).
	EventGzipProgress EventKind = "gzip-progress"
	EventGzipped      EventKind = "gzipped" // File is complete (Bytes long) and its .txt removed, or Err says why not
	// EventGzipCut: ControlGzipCutAfterBytes cut the gzip after Bytes of File, synced them, and the
	// process now exits with status 137, leaving File and its .txt.
	EventGzipCut EventKind = "gzip-cut"
)

// Event is one thing the stand-in did. Tests wait for events instead of sleeping; the binary logs them.
type Event struct {
	Kind  EventKind
	File  string // a dump file's base name, when there is one
	Lines int64  // messages appended by this process so far
	Bytes int64  // for the gzip events: how much of the .gz is written
	Err   error
}

func (e Event) String() string {
	s := string(e.Kind)
	if e.File != "" {
		s += " file=" + e.File
	}
	switch e.Kind {
	case EventWrote, EventStopped:
		s += " lines=" + strconv.FormatInt(e.Lines, 10)
	case EventGzipProgress, EventGzipped, EventGzipCut:
		s += " bytes=" + strconv.FormatInt(e.Bytes, 10)
	}
	if e.Kind == EventGzipCut {
		s += ": " + ControlGzipCutAfterBytes + " cut the gzip, exiting with status 137"
	}
	if e.Err != nil {
		s += " error=" + strconv.Quote(e.Err.Error())
	}
	return s
}

// Server is the loklak_server stand-in: the HTTP endpoints the stack relies on and the dump writer.
type Server struct {
	cfg     Config
	clock   Clock
	started time.Time
	mux     *http.ServeMux

	ready   atomic.Bool
	readyCh chan struct{}
	runOnce atomic.Bool

	mu   sync.Mutex
	dump *Dump // nil until opened, and when dump_write_enabled is false
	seq  int64
}

// New returns a Server for cfg. Nothing happens until Run or Serve.
func New(cfg Config) *Server {
	if cfg.Clock == nil {
		cfg.Clock = RealClock{}
	}
	s := &Server{cfg: cfg, clock: cfg.Clock, readyCh: make(chan struct{})}
	s.started = s.clock.Now()
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET "+statusPath, s.serveStatus)
	s.mux.HandleFunc("GET "+dumpListingPath+"{$}", s.serveListing)
	s.mux.HandleFunc("GET "+dumpListingPath+"{name}", s.serveDumpFile)
	return s
}

// Handler is the stand-in's HTTP interface. Until the server is ready (Run has opened the dump and the
// start delay has passed) every request is answered 503, as a starting JVM would not answer at all.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.ready.Load() {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "loklak-standin is starting", http.StatusServiceUnavailable)
			return
		}
		s.mux.ServeHTTP(w, r)
	})
}

// Ready is closed once the server is ready.
func (s *Server) Ready() <-chan struct{} { return s.readyCh }

func (s *Server) emit(e Event) {
	if s.cfg.OnEvent != nil {
		s.cfg.OnEvent(e)
	}
}

// Run is the server's life apart from HTTP: open the dump (starting the gzips of older days in the
// background), wait out the start delay, then append one message every DumpInterval until ctx ends;
// then sync and close the dump, cutting off gzips still running. It returns nil when ctx ends, or the
// error that kept the server from starting: ControlFailStart, or a dump that cannot open (loklak exits
// when its DAO cannot start). Run may be called once. It never waits for the gzips; WaitGzips does.
func (s *Server) Run(ctx context.Context) error {
	if !s.runOnce.CompareAndSwap(false, true) {
		return errors.New("loklak: Server.Run called twice")
	}
	if err := failStart(s.cfg.DataDir); err != nil {
		return err
	}
	if s.cfg.DumpWriteEnabled {
		now, err := s.now()
		if err != nil {
			return err
		}
		d, err := OpenDump(s.cfg.DataDir, now, DumpOptions{Rand: s.cfg.Rand, OnEvent: s.emit, Exit: s.cfg.Exit})
		if err != nil {
			return fmt.Errorf("opening the message dump: %w", err)
		}
		s.mu.Lock()
		s.dump = d
		s.mu.Unlock()
		s.emit(Event{Kind: EventDumpOpened, File: d.Name()})
	} else {
		s.emit(Event{Kind: EventDumpDisabled})
	}

	readyC := s.clock.After(s.cfg.StartDelay)
	var tickC <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return s.stop()
		case <-readyC:
			readyC = nil
			s.ready.Store(true)
			close(s.readyCh)
			s.emit(Event{Kind: EventReady})
			if s.cfg.DumpWriteEnabled {
				tickC = s.clock.After(s.cfg.DumpInterval)
			}
		case <-tickC:
			s.writeMessage()
			tickC = s.clock.After(s.cfg.DumpInterval)
		}
	}
}

// now is the time the stand-in dates things with: the Clock moved by ControlClockOffset, which is
// read on every call.
func (s *Server) now() (time.Time, error) {
	off, err := clockOffset(s.cfg.DataDir)
	return s.clock.Now().Add(off), err
}

// WaitGzips waits until the background gzips started by Run have ended. After Run has returned, that is
// at once or soon, as stopping cuts them off. Only tests need it: in the binary, the process's exit
// ends them.
func (s *Server) WaitGzips() {
	s.mu.Lock()
	d := s.dump
	s.mu.Unlock()
	if d != nil {
		d.WaitGzips()
	}
}

func (s *Server) stop() error {
	s.ready.Store(false)
	s.mu.Lock()
	d := s.dump
	s.mu.Unlock()
	if d == nil {
		s.emit(Event{Kind: EventStopped})
		return nil
	}
	err := d.Close()
	s.emit(Event{Kind: EventStopped, File: d.Name(), Lines: d.Lines(), Err: err})
	return err
}

// Message is one line of the dump: a few of the fields of a loklak message (a tweet as loklak's
// scraper stores it), with made-up content.
type Message struct {
	CreatedAt      string   `json:"created_at"`
	Timestamp      string   `json:"timestamp"`
	ScreenName     string   `json:"screen_name"`
	Text           string   `json:"text"`
	Link           string   `json:"link"`
	IDStr          string   `json:"id_str"`
	SourceType     string   `json:"source_type"`
	ProviderType   string   `json:"provider_type"`
	RetweetCount   int      `json:"retweet_count"`
	FavoritesCount int      `json:"favourites_count"` //nolint:misspell // loklak's own key (Twitter's API spelling)
	Hashtags       []string `json:"hashtags"`
	StandinVersion string   `json:"standin_version"`
}

// loklakDateLayout is loklak's ISO 8601 with milliseconds (DateParser.PATTERN_ISO8601MILLIS), in UTC.
const loklakDateLayout = "2006-01-02T15:04:05.000Z"

func (s *Server) writeMessage() {
	s.mu.Lock()
	d := s.dump
	s.seq++
	seq := s.seq
	s.mu.Unlock()
	now, err := s.now()
	if err != nil {
		s.emit(Event{Kind: EventWrote, File: d.Name(), Lines: d.Lines(), Err: err})
		return
	}
	now = now.UTC()
	id := strconv.FormatInt(now.UnixMilli(), 10) + fmt.Sprintf("%06d", seq%1_000_000)
	line, err := json.Marshal(Message{
		CreatedAt:      now.Format(loklakDateLayout),
		Timestamp:      now.Format(loklakDateLayout),
		ScreenName:     "loklak_standin",
		Text:           fmt.Sprintf("message %d from loklak-standin %s", seq, s.cfg.Version),
		Link:           "https://twitter.com/loklak_standin/status/" + id,
		IDStr:          id,
		SourceType:     "TWITTER",
		ProviderType:   "SCRAPED",
		Hashtags:       []string{},
		StandinVersion: s.cfg.Version,
	})
	if err == nil {
		err = d.Append(line)
	}
	s.emit(Event{Kind: EventWrote, File: d.Name(), Lines: d.Lines(), Err: err})
}

// Status is the body of GET /api/status.json: the parts of loklak's StatusService answer a stack can
// check ("system" with "Xmx", "commit", "stream_enabled"), plus "standin", which says what runs.
type Status struct {
	System        StatusSystem  `json:"system"`
	Index         StatusIndex   `json:"index"`
	ClientInfo    ClientInfo    `json:"client_info"`
	Commit        Commit        `json:"commit"`
	StreamEnabled bool          `json:"stream_enabled"`
	Standin       StandinStatus `json:"standin"`
}

// StatusSystem is loklak's "system" object, reduced.
type StatusSystem struct {
	AssignedMemory int64  `json:"assigned_memory"` // the heap in bytes, from Xmx (0 if it does not parse)
	Cores          int    `json:"cores"`
	Runtime        int64  `json:"runtime"` // milliseconds since start
	Xmx            string `json:"Xmx"`     // the heap as given (ENVXmx, or loklak's default 512m)
}

// StatusIndex is loklak's "index" object, reduced to the message count.
type StatusIndex struct {
	Messages struct {
		Size      int64 `json:"size"`
		SizeLocal int64 `json:"size_local"`
	} `json:"messages"`
}

// ClientInfo is loklak's "client_info" object, reduced.
type ClientInfo struct {
	RemoteHost  string `json:"RemoteHost"`
	IsLocalhost string `json:"IsLocalhost"`
}

// Commit is loklak's "commit" object (from the COMMIT_HASH environment variable).
type Commit struct {
	Hash string `json:"hash,omitempty"`
}

// StandinStatus is the stand-in's own part of the status.
type StandinStatus struct {
	Version          string `json:"version"`         // LOKLAK_STANDIN_VERSION, set by the image
	Image            string `json:"image,omitempty"` // LOKLAK_STANDIN_IMAGE, set by the image
	DataDir          string `json:"data_dir"`
	DumpWriteEnabled bool   `json:"dump_write_enabled"`
	DumpFile         string `json:"dump_file,omitempty"` // the file being appended to
	DumpLines        int64  `json:"dump_lines"`          // messages appended by this process
}

func (s *Server) serveStatus(w http.ResponseWriter, r *http.Request) {
	st := s.Status()
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	st.ClientInfo.RemoteHost = host
	st.ClientInfo.IsLocalhost = strconv.FormatBool(isLoopback(host))
	body, err := json.Marshal(st)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", statusContentType+";charset=utf-8")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	_, _ = w.Write(append(body, '\n'))
}

// Status returns what GET /api/status.json reports, without the client part.
func (s *Server) Status() Status {
	var st Status
	st.System = StatusSystem{
		AssignedMemory: ParseHeapSize(s.cfg.Xmx),
		Cores:          runtime.NumCPU(),
		Runtime:        s.clock.Now().Sub(s.started).Milliseconds(),
		Xmx:            s.cfg.Xmx,
	}
	st.Commit.Hash = s.cfg.CommitHash
	st.Standin = StandinStatus{
		Version:          s.cfg.Version,
		Image:            s.cfg.Image,
		DataDir:          s.cfg.DataDir,
		DumpWriteEnabled: s.cfg.DumpWriteEnabled,
	}
	s.mu.Lock()
	d := s.dump
	s.mu.Unlock()
	if d != nil {
		st.Standin.DumpFile = d.Name()
		st.Standin.DumpLines = d.Lines()
	}
	st.Index.Messages.Size = st.Standin.DumpLines
	st.Index.Messages.SizeLocal = st.Standin.DumpLines
	return st
}

func isLoopback(host string) bool {
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ParseHeapSize reads a JVM heap size as -Xmx takes it ("512m", "1g", "2048k", "1073741824") and
// returns bytes, or 0 if it does not parse.
func ParseHeapSize(v string) int64 {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	mult := int64(1)
	switch v[len(v)-1] {
	case 'k', 'K':
		mult = 1 << 10
	case 'm', 'M':
		mult = 1 << 20
	case 'g', 'G':
		mult = 1 << 30
	case 't', 'T':
		mult = 1 << 40
	}
	if mult != 1 {
		v = v[:len(v)-1]
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0
	}
	return n * mult
}

// Serve runs the server on ln until ctx ends: HTTP and Run side by side. When ctx ends (SIGTERM in the
// binary) it stops accepting connections, lets requests in flight finish (up to Config.ShutdownTimeout), syncs
// and closes the dump, and returns nil. If the dump cannot be opened or ln fails, it stops the other
// half and returns the error.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	runErr := make(chan error, 1)
	go func() { runErr <- s.Run(runCtx) }()
	httpErr := make(chan error, 1)
	go func() {
		err := hs.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		httpErr <- err
	}()

	var errs []error
	runDone, httpDone := false, false
	select {
	case <-ctx.Done():
	case err := <-runErr:
		runDone = true
		errs = append(errs, err)
	case err := <-httpErr:
		httpDone = true
		errs = append(errs, err)
	}
	s.ready.Store(false)
	timeout := s.cfg.ShutdownTimeout
	if timeout <= 0 {
		timeout = DefaultShutdownTimeout
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := hs.Shutdown(shutCtx); err != nil {
		errs = append(errs, err)
		_ = hs.Close()
	}
	if !httpDone {
		errs = append(errs, <-httpErr)
	}
	stopRun()
	if !runDone {
		errs = append(errs, <-runErr)
	}
	return errors.Join(errs...)
}
