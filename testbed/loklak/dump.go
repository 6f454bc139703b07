package loklak

import (
	"compress/gzip"
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
// gzip of every other .txt file when the dump is opened.
//
// Like loklak, the file is chosen once, at open: a server that runs past midnight (GMT) keeps appending
// to the file named for the day it started, and that file is gzipped by the next start on a later day.
type Dump struct {
	dir  string
	name string

	mu    sync.Mutex
	f     *os.File
	lines int64
}

// OpenDump opens the dump under dataDir at time now, the way JsonRepository's constructor does: it
// creates dump/{own,import,imported,buffer} and dump/readme.txt, gzips every messages_*.txt in own/
// that is not of today's date to messages_*.txt.gz (removing the .txt), and appends to the newest
// messages_<today>_*.txt, or creates one with eight digits from rnd. onGzip, if not nil, hears of each
// gzip (the .gz name, or the error). A gzip that fails leaves the .txt in place and does not stop the
// open, as in loklak.
func OpenDump(dataDir string, now time.Time, rnd func() int64, onGzip func(gz string, err error)) (*Dump, error) {
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
	for _, e := range entries {
		n := e.Name()
		if !e.Type().IsRegular() || !strings.HasPrefix(n, DumpFilePrefix) || !strings.HasSuffix(n, ".txt") {
			continue
		}
		if strings.HasPrefix(n, today) {
			// today's file is never compressed, so that it can be appended to; of several, take the
			// last by name (ReadDir sorts)
			current = n
			continue
		}
		gz := n + ".gz"
		err := gzipFile(filepath.Join(own, n), filepath.Join(own, gz))
		if onGzip != nil {
			onGzip(gz, err)
		}
	}
	if current == "" {
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

// Close syncs the file to disk and closes it. Closing twice is harmless.
func (d *Dump) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		return nil
	}
	err := errors.Join(d.f.Sync(), d.f.Close())
	d.f = nil
	return err
}

// gzipFile compresses src to dst and removes src, as loklak's Compression.gzip(source, dest, true).
// It writes a hidden temporary file first and renames it, so dst is either whole or absent and the
// listing never shows half a file.
func gzipFile(src, dst string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer func() { _ = in.Close() }()
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	zw := gzip.NewWriter(tmp)
	if _, err = io.Copy(zw, in); err != nil {
		return err
	}
	if err = zw.Close(); err != nil {
		return err
	}
	if err = tmp.Chmod(0o644); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), dst); err != nil {
		return err
	}
	return os.Remove(src)
}

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
