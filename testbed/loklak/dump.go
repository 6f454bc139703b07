package loklak

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// dumpDateLayout is JsonRepository's daily date format (yyyyMMdd, in GMT).
const dumpDateLayout = "20060102"

// dumpReadme is the text loklak's DAO writes to data/dump/readme.txt (shortened; the stand-in has no
// import directory worker).
const dumpReadme = "This directory contains dump files for messages which arrived the platform.\n" +
	"There are three subdirectories for dump files:\n" +
	"- own:      for messages received with this peer.\n" +
	"- import:   hand-over directory for message dumps to be imported.\n" +
	"- imported: dump files which had been processed from the import directory are moved here.\n" +
	"This dump was written by loklak-standin, a test stand-in for loklak_server.\n"

// OwnDumpDir is where loklak writes the messages it collects: DATA/dump/own.
func OwnDumpDir(dataDir string) string { return filepath.Join(dataDir, dumpDirName, ownDirName) }

// Dump is the message dump of one running server, as loklak's JsonRepository keeps it: the directory
// DATA/dump/own, one file messages_YYYYMMDD_NNNNNNNN.txt that lines of JSON are appended to, and the
// gzip of every other .txt file, started when the dump is opened and run in the background.
//
// Like loklak, the file is chosen once, at open: a server that runs past midnight (GMT) keeps appending
// to the file named for the day it started, and that file is gzipped by the next start on a later day.
type Dump struct {
	dir  string
	name string

	mu    sync.Mutex
	f     *os.File
	lines int64

	gzips    sync.WaitGroup
	cutGzips context.CancelFunc
}

// DumpOptions are OpenDump's optional parts.
type DumpOptions struct {
	Rand func() int64 // source of the eight digits in a new file's name; nil means math/rand
	// OnEvent hears of each background gzip (EventGzipStarted, EventGzipProgress, EventGzipped,
	// EventGzipCut), from that gzip's goroutine. It may be nil.
	OnEvent func(Event)
	Exit    func(code int) // ends the process when a gzip is cut (ControlGzipCutAfterBytes); nil means os.Exit
}

// OpenDump opens the dump under dataDir at time now, the way JsonRepository's constructor does
// (JsonRepository.java line 114 calls getCurrentDump, lines 141-202, at loklak commit f79c657): it
// creates dump/{own,import,imported,buffer} and dump/readme.txt, appends to the newest
// messages_<today>_*.txt in own/ (today's file is never compressed, lines 148-151) or creates one with
// eight random digits (lines 197-201), and starts one goroutine per other messages_*.txt that gzips it
// to messages_*.txt.gz and removes the .txt (lines 156-171, one new Thread per file). OpenDump does not
// wait for those gzips: loklak goes on starting and serving while its threads compress, so the
// listing shows a growing .gz next to its .txt. Before each gzip starts, an existing .gz of the same
// name (a gzip cut short by an earlier run) is deleted (line 159). A gzip that fails leaves the .txt
// in place and is only reported, as loklak only logs it (line 167).
func OpenDump(dataDir string, now time.Time, opts DumpOptions) (*Dump, error) {
	dumpDir := filepath.Join(dataDir, dumpDirName)
	own := OwnDumpDir(dataDir)
	for _, d := range []string{own, filepath.Join(dumpDir, "import"), filepath.Join(dumpDir, "imported"), filepath.Join(dumpDir, "buffer")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	readme := filepath.Join(dumpDir, dumpReadmeName)
	if _, err := os.Stat(readme); errors.Is(err, fs.ErrNotExist) {
		if err := os.WriteFile(readme, []byte(dumpReadme), 0o644); err != nil {
			return nil, err
		}
	}

	today := DumpFilePrefix + now.UTC().Format(dumpDateLayout)
	entries, err := os.ReadDir(own)
	if err != nil {
		return nil, err
	}
	var current string
	var older []string
	for _, e := range entries {
		n := e.Name()
		if !e.Type().IsRegular() || !strings.HasPrefix(n, DumpFilePrefix) || !strings.HasSuffix(n, ".txt") {
			continue
		}
		if strings.HasPrefix(n, today) {
			// of several files of today, take the last by name (ReadDir sorts)
			current = n
			continue
		}
		older = append(older, n)
	}
	if current == "" {
		rnd := opts.Rand
		if rnd == nil {
			rnd = randInt63
		}
		current = today + "_" + eightDigits(rnd()) + ".txt"
	}
	f, err := os.OpenFile(filepath.Join(own, current), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	d := &Dump{dir: own, name: current, f: f}
	if err := d.endLine(); err != nil {
		_ = f.Close()
		return nil, err
	}

	ctx, cancel := context.WithCancel(context.Background())
	d.cutGzips = cancel
	for _, n := range older {
		src := filepath.Join(own, n)
		_ = os.Remove(src + ".gz") // like File.delete, line 159: a failure shows when the gzip creates it
		d.gzips.Add(1)
		go func() {
			defer d.gzips.Done()
			backgroundGzip(ctx, dataDir, src, opts)
		}()
	}
	return d, nil
}

// eightDigits makes the number in a new dump's name as JsonRepository does: the decimal digits of a
// random non-negative long, padded with zeros, cut to eight.
func eightDigits(r int64) string {
	u := uint64(r)
	if r < 0 {
		u = uint64(-r) // -MinInt64 wraps to itself, whose uint64 is still a positive number
	}
	return (strconv.FormatUint(u, 10) + "00000000")[:8]
}

func randInt63() int64 { return rand.Int64() }

// endLine makes sure the next line starts on a line of its own, should an earlier run have stopped in
// the middle of one (a full disk, say).
func (d *Dump) endLine() error {
	st, err := d.f.Stat()
	if err != nil || st.Size() == 0 {
		return err
	}
	r, err := os.Open(d.Path())
	if err != nil {
		return err
	}
	defer func() { _ = r.Close() }()
	last := make([]byte, 1)
	if _, err := r.ReadAt(last, st.Size()-1); err != nil {
		return err
	}
	if last[0] != '\n' {
		_, err = d.f.Write([]byte{'\n'})
	}
	return err
}

// Name is the base name of the file being appended to.
func (d *Dump) Name() string { return d.name }

// Path is the full path of the file being appended to.
func (d *Dump) Path() string { return filepath.Join(d.dir, d.name) }

// Lines is how many lines this Dump has appended.
func (d *Dump) Lines() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lines
}

// Append writes line and a newline in one write, so a reader never sees half of it unless the disk
// fills up.
func (d *Dump) Append(line []byte) error {
	if slices.Contains(line, '\n') {
		return fmt.Errorf("a dump line cannot hold a newline")
	}
	buf := make([]byte, 0, len(line)+1)
	buf = append(append(buf, line...), '\n')
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		return os.ErrClosed
	}
	if _, err := d.f.Write(buf); err != nil {
		return err
	}
	d.lines++
	return nil
}

// Close syncs the file to disk and closes it, and cuts off the gzips still running without waiting for
// them: loklak's shutdown hook does not wait for its gzip threads, and the JVM halts them when the hook
// is done. A gzip cut off leaves its partial .gz and its .txt, and reports nothing more. Closing twice is
// harmless.
func (d *Dump) Close() error {
	d.cutGzips()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		return nil
	}
	err := errors.Join(d.f.Sync(), d.f.Close())
	d.f = nil
	return err
}

// WaitGzips waits until every background gzip has ended: finished, failed, or cut off by Close. The
// server never waits for them; tests do, so that no gzip outlives them.
func (d *Dump) WaitGzips() { d.gzips.Wait() }

// backgroundGzip is one of loklak's gzip threads (JsonRepository.java lines 160-170): it gzips src to
// src.gz with the control files' throttle and cut, and reports how it went. Once ctx is canceled (the
// server stopped) it reports nothing more, as a JVM that has exited logs nothing.
func backgroundGzip(ctx context.Context, dataDir, src string, opts DumpOptions) {
	gz := filepath.Base(src) + ".gz"
	report := func(e Event) {
		if opts.OnEvent != nil && ctx.Err() == nil {
			e.File = gz
			opts.OnEvent(e)
		}
	}
	report(Event{Kind: EventGzipStarted})
	w := &gzipOut{ctx: ctx, onStep: func(n int64) { report(Event{Kind: EventGzipProgress, Bytes: n}) }}
	err := w.readControls(dataDir)
	if err == nil {
		err = gzipFile(src, filepath.Join(filepath.Dir(src), gz), w)
	}
	if !errors.Is(err, errGzipCut) {
		report(Event{Kind: EventGzipped, Bytes: w.written, Err: err})
		return
	}
	report(Event{Kind: EventGzipCut, Bytes: w.written})
	if _, ok, _ := readControl(dataDir, ControlFailStartAfterCut); ok {
		_ = os.WriteFile(filepath.Join(ControlDir(dataDir), ControlFailStart), []byte("the last run was killed while compressing"), 0o644)
	}
	exit := opts.Exit
	if exit == nil {
		exit = os.Exit
	}
	exit(137)
}

// errGzipCut is how a gzip learns that ControlGzipCutAfterBytes has cut it.
var errGzipCut = errors.New("gzip cut by " + ControlGzipCutAfterBytes)

// gzipFile compresses src into dst and then removes src, as loklak's Compression.gzip(source, dest,
// true) does (Compression.java lines 37-44, loklak commit f79c657): it writes the gzip stream straight
// into dst, with no temporary name and no rename, through a 64 KiB buffer at the best compression
// (line 39), finishes and closes it (line 42), and only then removes src (line 43). So while it runs,
// dst is a growing, incomplete gzip stream next to the whole src, and a process that dies meanwhile
// leaves both. Like loklak it does not sync dst before removing src. dst is written through w, which
// can throttle, cut and stop the gzip.
func gzipFile(src, dst string, w *gzipOut) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer func() { _ = in.Close() }()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer func() { _ = out.Close() }()
	w.f = out
	bw := bufio.NewWriterSize(w, 65536)
	zw, err := gzip.NewWriterLevel(bw, gzip.BestCompression)
	if err != nil {
		return err
	}
	if _, err := io.Copy(zw, in); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if w.cutAfter >= 0 {
		return w.cut() // the stream was shorter than the cut: die before src is removed
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Remove(src)
}

// gzipOut is the file a gzip writes its .gz to, held to the control files: at most rate bytes a second
// (ControlGzipBytesPerSecond), and a cut after cutAfter bytes (ControlGzipCutAfterBytes). Once ctx
// ends, writes fail, which stops the gzip where it is.
type gzipOut struct {
	ctx      context.Context
	f        *os.File
	written  int64
	rate     int64 // bytes per second; 0: as fast as it goes
	cutAfter int64 // -1: no cut
	onStep   func(written int64)
}

// readControls reads the gzip's control files, once, as the gzip starts.
func (w *gzipOut) readControls(dataDir string) error {
	rate, err := controlCount(dataDir, ControlGzipBytesPerSecond)
	if err != nil {
		return err
	}
	if rate == 0 {
		return fmt.Errorf("%s: 0 would never finish", ControlGzipBytesPerSecond)
	}
	w.rate = max(rate, 0)
	w.cutAfter, err = controlCount(dataDir, ControlGzipCutAfterBytes)
	return err
}

func (w *gzipOut) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if err := w.ctx.Err(); err != nil {
			return n, err
		}
		chunk := p
		if step := max(w.rate/10, 1); w.rate > 0 && int64(len(chunk)) > step {
			chunk = chunk[:step] // a tenth of a second's worth
		}
		if left := w.cutAfter - w.written; w.cutAfter >= 0 && int64(len(chunk)) > left {
			chunk = chunk[:left]
		}
		m, err := w.f.Write(chunk)
		n += m
		w.written += int64(m)
		p = p[m:]
		if err != nil {
			return n, err
		}
		if w.cutAfter >= 0 && w.written == w.cutAfter {
			return n, w.cut()
		}
		if w.rate > 0 {
			w.onStep(w.written)
			select {
			case <-time.After(time.Duration(m) * time.Second / time.Duration(w.rate)):
			case <-w.ctx.Done():
				return n, w.ctx.Err()
			}
		}
	}
	return n, nil
}

// cut syncs what was written of the .gz, so that it is on disk when the process ends, and returns
// errGzipCut.
func (w *gzipOut) cut() error { return errors.Join(errGzipCut, w.f.Sync()) }

// DumpFile is one entry of the /dump/ listing.
type DumpFile struct {
	Name    string
	Size    int64
	ModTime time.Time
}

// ListDumps returns the files in dir whose names start with messages_, sorted by name, as loklak's
// DAO.getTweetOwnDumps does. A missing directory is an empty list.
func ListDumps(dir string) ([]DumpFile, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []DumpFile
	for _, e := range entries {
		if !e.Type().IsRegular() || !strings.HasPrefix(e.Name(), DumpFilePrefix) {
			continue
		}
		info, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // gzipped away between ReadDir and Info
		}
		if err != nil {
			return nil, err
		}
		out = append(out, DumpFile{Name: e.Name(), Size: info.Size(), ModTime: info.ModTime()})
	}
	return out, nil
}
