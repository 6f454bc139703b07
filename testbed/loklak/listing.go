package loklak

import (
	"errors"
	"html"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// listingDateLayout is java.util.Date.toString() ("EEE MMM dd HH:mm:ss zzz yyyy") in the GMT zone the
// loklak container runs in; the 2017 listing shows "Thu Aug 03 00:07:21 GMT 2017".
const listingDateLayout = "Mon Jan 02 15:04:05 GMT 2006"

// WriteListing renders files as loklak's DumpDownloadServlet renders GET /dump/: an HTML 3.2 page with a
// <pre> block holding one line per file, "[ext] <a href="NAME">NAME</a>", padding to 36 characters,
// the modification date, two spaces and the size right-aligned in five characters (bytes, then K, then
// M, rounded down).
func WriteListing(files []DumpFile) string {
	var b strings.Builder
	b.WriteString("<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 3.2 Final//EN\">\n")
	b.WriteString("<html>\n <head>\n  <title>Index of /dump</title>\n </head>\n <body>\n")
	b.WriteString("<h1>Index of /dump</h1>\n")
	b.WriteString("<pre>      Name \n")
	for _, f := range files {
		b.WriteString(listingLine(f))
	}
	b.WriteString("<hr></pre>\n")
	b.WriteString("<address>this is the message dump download directory</address>\n")
	b.WriteString("<address>- import these dumps by placing them into your data/dump/import/ directory</address>\n")
	b.WriteString("<address>- imported dumps will be moved to data/dump/imported/</address>\n")
	b.WriteString("</body></html>\n")
	return b.String()
}

func listingLine(f DumpFile) string {
	var b strings.Builder
	if d := strings.LastIndexByte(f.Name, '.'); d < 0 {
		b.WriteString("[   ]")
	} else {
		ext := f.Name[d+1:]
		if len(ext) > 3 {
			ext = ext[:3]
		}
		b.WriteString("[" + ext + strings.Repeat(" ", 3-len(ext)) + "]")
	}
	b.WriteString(` <a href="` + html.EscapeString(url.PathEscape(f.Name)) + `">` + html.EscapeString(f.Name) + "</a>")
	if pad := 36 - len(f.Name); pad > 0 {
		b.WriteString(strings.Repeat(" ", pad))
	}
	b.WriteString(f.ModTime.UTC().Format(listingDateLayout) + "  " + listingSize(f.Size) + "\n")
	return b.String()
}

func listingSize(n int64) string {
	var s string
	switch {
	case n < 1024:
		s = strconv.FormatInt(n, 10)
	case n < 1024*1024:
		s = strconv.FormatInt(n/1024, 10) + "K"
	default:
		s = strconv.FormatInt(n/1024/1024, 10) + "M"
	}
	if len(s) < 5 {
		s = strings.Repeat(" ", 5-len(s)) + s
	}
	return s
}

// serveListing answers GET /dump/ with the listing of DATA/dump/own, with the headers the 2017 listing
// shows (Cache-Control: public, max-age=60; Content-Type: text/html;charset=utf-8).
func (s *Server) serveListing(w http.ResponseWriter, _ *http.Request) {
	files, err := ListDumps(OwnDumpDir(s.cfg.DataDir))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Cache-Control", "public, max-age=60")
	w.Header().Set("Content-Type", "text/html;charset=utf-8")
	_, _ = w.Write([]byte(WriteListing(files)))
}

// serveDumpFile answers GET /dump/NAME with the bytes of DATA/dump/own/NAME, as application/octet-stream
// with Last-Modified and Content-Length. loklak's servlet opens whatever path it is given relative to
// own/; the stand-in serves only a plain file name starting with messages_, and answers 404 to anything
// else.
func (s *Server) serveDumpFile(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if name == "" || name != filepath.Base(name) || strings.ContainsAny(name, `/\`) ||
		name == "." || name == ".." || !strings.HasPrefix(name, DumpFilePrefix) {
		http.NotFound(w, r)
		return
	}
	p := filepath.Join(OwnDumpDir(s.cfg.DataDir), name)
	info, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && !info.Mode().IsRegular()) {
		http.NotFound(w, r)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		http.NotFound(w, r) // gzipped away since the Lstat
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer func() { _ = f.Close() }()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Expires", s.clock.Now().Add(10*time.Minute).UTC().Format(http.TimeFormat))
	http.ServeContent(w, r, name, info.ModTime(), f)
}
