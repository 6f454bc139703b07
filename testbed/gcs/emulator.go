package gcs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"
)

// Emulator is the Cloud Storage server: fake-gcs-server over the simulated project's RootDir, served
// over plain HTTP on 127.0.0.1 and on extra addresses, on one port kept across Stop and Restart. On
// 127.0.0.1 (URL) every request is the project owner's and nothing is checked; on an extra address
// (URLOn) every request is the archiver's service account's (ArchiverPrincipal) and Cloud Storage's
// IAM rules for its two roles apply (iam.go): it creates and reads objects, and overwriting or
// deleting one is refused with 403.
type Emulator struct {
	gceDir string
	hosts  []string // "127.0.0.1" first, then the extra addresses
	port   int

	mu  sync.Mutex
	run *run // nil while stopped
	// hold, when set, is the matcher of HoldUploads; release is closed by ReleaseUploads.
	hold    func(object string) bool
	release chan struct{}
	// held are the objects of held uploads not yet returned by WaitHeld, oldest first; heldAdded is
	// closed (and replaced) whenever one is added.
	held      []string
	heldAdded chan struct{}
}

// run is one life of the server, from a start to the next Stop: what a process would hold.
type run struct {
	gcs       *fakestorage.Server
	servers   []*http.Server
	listeners []net.Listener
	lock      *os.File // the exclusive flock on LockFile

	mu       sync.Mutex
	stopped  chan struct{} // closed by Stop
	closing  bool
	handlers sync.WaitGroup // requests being handled
}

// Start serves the simulated project in gceDir (its RootDir, created if missing) on 127.0.0.1, with no
// IAM check, and on each of extraHosts (IP addresses of this machine, such as the one a pod reaches the
// host at; another 127.0.0.0/8 address gives a test one on loopback) as the archiver (iam.go), on a
// free port that every address shares and that Restart keeps (chosen below the kernel's ephemeral port
// range, so no outgoing connection takes it while the server is stopped). It refuses while another
// server or an in-process emulator (InProcess) uses the folder.
func Start(gceDir string, extraHosts ...string) (*Emulator, error) {
	e := &Emulator{gceDir: gceDir, hosts: append([]string{"127.0.0.1"}, extraHosts...), heldAdded: make(chan struct{})}
	// A port taken on any of the addresses means trying another.
	var err error
	for range 20 {
		e.port = portBelowEphemeral()
		if err = e.start(); err == nil || !errors.Is(err, syscall.EADDRINUSE) {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	return e, nil
}

// portBelowEphemeral is a random port between 10000 and the start of the kernel's ephemeral range, or 0
// (any free port) when that range cannot be read or starts too low. A port from below the range is
// never handed to an outgoing connection, so none takes it while the server is stopped and Restart
// finds it free.
func portBelowEphemeral() int {
	data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	fields := strings.Fields(string(data))
	if len(fields) == 0 {
		return 0
	}
	low, err := strconv.Atoi(fields[0])
	if err != nil || low <= 11000 {
		return 0
	}
	return 10000 + rand.IntN(low-10000)
}

// start starts a run on e.port (a free one when 0, which then becomes e.port).
func (e *Emulator) start() error {
	root := filepath.Join(e.gceDir, RootDir)
	lock, err := lockDir(e.gceDir, syscall.LOCK_EX)
	if errors.Is(err, errBusy) {
		return fmt.Errorf("cloud storage server over %s: the folder is in use by another Cloud Storage server or an in-process emulator (%s is locked)", root, filepath.Join(e.gceDir, LockFile))
	}
	if err != nil {
		return fmt.Errorf("cloud storage server over %s: %w", root, err)
	}
	r := &run{lock: lock, stopped: make(chan struct{})}
	fail := func(err error) error {
		for _, l := range r.listeners {
			_ = l.Close() // the first error is the one to report
		}
		_ = lock.Close()
		return fmt.Errorf("cloud storage server over %s: %w", root, err)
	}
	for _, host := range e.hosts {
		l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(e.port)))
		if err != nil {
			return fail(err)
		}
		r.listeners = append(r.listeners, l)
		if e.port == 0 {
			e.port = l.Addr().(*net.TCPAddr).Port
		}
	}
	opts := options(e.gceDir)
	opts.Scheme, opts.PublicHost = "http", publicHost
	if r.gcs, err = fakestorage.NewServerWithOptions(opts); err != nil {
		return fail(err)
	}
	for i, l := range r.listeners {
		archiver := i > 0 // an extra address: the archiver's IAM roles apply (iam.go)
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { e.serve(r, archiver, w, req) }),
			ReadHeaderTimeout: time.Minute}
		r.servers = append(r.servers, srv)
		go func() { _ = srv.Serve(l) }() // Serve returns ErrServerClosed after Stop's Close
	}
	e.mu.Lock()
	e.run = r
	e.mu.Unlock()
	return nil
}

// URL is the server's base URL on loopback, "http://127.0.0.1:PORT", the same after Restart: what the
// GCP stand-in is given (LOKLAK_GCS_STANDIN_URL) and what NewClient takes. It is the project owner's
// access: no IAM check, so a test can put, overwrite, delete and inspect anything there.
func (e *Emulator) URL() string { return e.URLOn("127.0.0.1") }

// URLOn is the base URL on host, one of the extra addresses Start was given ("http://10.0.0.5:PORT"):
// what a pod is given. Requests there are the archiver's (ArchiverPrincipal), held to its IAM roles
// (iam.go): creating and reading objects works, overwriting, deleting and updating one and reading
// bucket metadata get 403. (URLOn("127.0.0.1") is URL, unchecked.)
func (e *Emulator) URLOn(host string) string {
	return "http://" + net.JoinHostPort(host, strconv.Itoa(e.port))
}

// Port is the port the server listens on at every address.
func (e *Emulator) Port() int { return e.port }

// Stop stops the server the way a crash does: the listeners close, every connection is cut, requests
// being handled end without an answer (a held upload is not stored), and uploads in progress in the
// server's memory (resumable sessions) are lost; what is in the folder stays. It returns once no request
// is being handled any more. Stopping a stopped server does nothing.
func (e *Emulator) Stop() error {
	e.mu.Lock()
	r := e.run
	e.run = nil
	e.mu.Unlock()
	if r == nil {
		return nil
	}
	r.mu.Lock()
	r.closing = true
	close(r.stopped)
	r.mu.Unlock()
	var errs []error
	for i, srv := range r.servers {
		// Close closes every connection, active ones too, and the listener if Serve has got as far as
		// taking it; the listener is closed here too, as Serve may not have started yet, and its port
		// must be free for Restart when Stop returns.
		for _, err := range []error{srv.Close(), r.listeners[i].Close()} {
			if !errors.Is(err, net.ErrClosed) {
				errs = append(errs, err)
			}
		}
	}
	// A handler cut off mid-request fails on its connection at once; a held one sees stopped.
	r.handlers.Wait()
	r.gcs.Stop()
	return errors.Join(append(errs, r.lock.Close())...)
}

// Restart stops the server if it runs, then starts it again over the same folder, on the same
// addresses and port, as a restarted process would: a client configured with URL keeps working.
func (e *Emulator) Restart() error {
	if err := e.Stop(); err != nil {
		return err
	}
	return e.start()
}

// HoldUploads makes every upload of an object whose name match accepts stop after the server received
// the whole request and before it stores the object, until ReleaseUploads or Stop (then it is not
// stored). A held upload is reported by WaitHeld. The uploads held are the requests that store an object
// through the JSON API, POST or PUT on /upload/storage/v1/b/BUCKET/o: a simple (media) or multipart
// upload, and the last request of a resumable upload (the one that completes it; the request that opens
// the session and earlier chunks pass). The name is the request's "name" parameter, else the multipart
// upload's metadata (an upload whose name neither gives, a gzip-encoded one say, is matched as ""). If
// the client goes away while its upload is held, the upload is not stored. A later call replaces the
// matcher; it outlives Stop and Restart.
func (e *Emulator) HoldUploads(match func(object string) bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.hold = match
	if e.release == nil {
		e.release = make(chan struct{})
	}
}

// ReleaseUploads lets every held upload go on to be stored, and stops holding new ones.
func (e *Emulator) ReleaseUploads() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.hold = nil
	if e.release != nil {
		close(e.release)
		e.release = nil
	}
}

// WaitHeld waits until an upload is held (HoldUploads) and returns its object's name. Each held upload
// is returned once, oldest first, even if it has since been released or cut off by Stop.
func (e *Emulator) WaitHeld(ctx context.Context) (string, error) {
	for {
		e.mu.Lock()
		if len(e.held) > 0 {
			name := e.held[0]
			e.held = e.held[1:]
			e.mu.Unlock()
			return name, nil
		}
		added := e.heldAdded
		e.mu.Unlock()
		select {
		case <-added:
		case <-ctx.Done():
			return "", fmt.Errorf("waiting for a held upload: %w", context.Cause(ctx))
		}
	}
}

// serve handles one request of run r: fake-gcs-server's handler, behind the archiver's IAM roles when
// archiver (the request came to an extra address: iam.go), then the upload hold.
func (e *Emulator) serve(r *run, archiver bool, w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	if r.closing {
		r.mu.Unlock()
		panic(http.ErrAbortHandler) // Stop has begun: no answer, as from a dead process
	}
	r.handlers.Add(1)
	r.mu.Unlock()
	defer r.handlers.Done()

	if archiver {
		if refused := authorize(r.gcs, req); refused != nil {
			refused.write(w, req)
			return
		}
	}

	e.mu.Lock()
	holding := e.hold != nil
	e.mu.Unlock()
	if holding && storesObject(req) {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			panic(http.ErrAbortHandler) // the request never arrived whole: nothing to store
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		name := objectName(req, body)
		e.mu.Lock()
		release := e.release
		hold := e.hold != nil && e.hold(name)
		if hold {
			e.held = append(e.held, name)
			close(e.heldAdded)
			e.heldAdded = make(chan struct{})
		}
		e.mu.Unlock()
		if hold {
			select {
			case <-release:
			case <-r.stopped:
				panic(http.ErrAbortHandler)
			case <-req.Context().Done(): // the client went away (its connection closed)
				panic(http.ErrAbortHandler)
			}
		}
	}
	if xmlPathStyle(req.URL.Path) {
		// fake-gcs-server routes the XML API's path-style requests (GET /BUCKET/OBJECT, which the Go
		// client's reads use) by its public host only: on any of the server's addresses they are that.
		req.Host = publicHost
		r.gcs.HTTPHandler().ServeHTTP(w, req)
		return
	}
	if req.URL.Query().Get("alt") == "media" || strings.HasPrefix(req.URL.Path, "/download/") || strings.HasPrefix(req.URL.Path, "/upload/") {
		r.gcs.HTTPHandler().ServeHTTP(w, req) // object bytes (or an upload): streamed as they are
		return
	}
	// A JSON API answer: Cloud Storage's objects carry an absolute mediaLink
	// (https://storage.googleapis.com/download/storage/v1/b/B/o/O?...&alt=media; JSON API reference,
	// "Objects" resource), which rclone downloads from; fake-gcs-server without an external URL answers
	// a relative "/download/...". Made absolute on the address the client asked, as Google's is.
	rec := httptest.NewRecorder()
	r.gcs.HTTPHandler().ServeHTTP(rec, req)
	body := bytes.ReplaceAll(rec.Body.Bytes(), []byte(`"mediaLink":"/download/`), []byte(`"mediaLink":"http://`+req.Host+`/download/`))
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(rec.Code)
	_, _ = w.Write(body)
}

// publicHost is the host fake-gcs-server serves the XML API on (its default, set explicitly).
const publicHost = "storage.googleapis.com"

// xmlPathStyle reports whether a request's path is the XML API's /BUCKET[/OBJECT] rather than one of
// the JSON API's (or fake-gcs-server's own) prefixes.
func xmlPathStyle(path string) bool {
	for _, prefix := range []string{"/storage/v1/", "/upload/", "/download/", "/batch/", "/_internal/"} {
		if strings.HasPrefix(path, prefix) {
			return false
		}
	}
	return path != "/"
}

// uploadPath is the JSON API's upload endpoint, as fake-gcs-server routes it.
var uploadPath = regexp.MustCompile(`^/upload/storage/v1/b/[^/]+/o/?$`)

// storesObject reports whether fake-gcs-server stores an object when it has handled req: a simple or
// multipart upload, or the last request of a resumable one (as fake-gcs-server decides it is the last:
// no Content-Range, or one with no byte range, or one whose range reaches the known total).
func storesObject(req *http.Request) bool {
	if req.Method != http.MethodPost && req.Method != http.MethodPut {
		return false
	}
	q := req.URL.Query()
	if strings.HasPrefix(req.URL.Path, "/upload/resumable/") {
		return completesResumable(req.Header.Get("Content-Range"))
	}
	if !uploadPath.MatchString(req.URL.Path) {
		return false
	}
	resumable := q.Get("uploadType") == "resumable" || (q.Get("uploadType") == "" && req.Header.Get("X-Goog-Upload-Protocol") == "resumable")
	if req.Method == http.MethodPut || resumable {
		return q.Has("upload_id") && completesResumable(req.Header.Get("Content-Range"))
	}
	return true
}

// completesResumable reports whether a resumable upload's request with this Content-Range completes it,
// by fake-gcs-server's rule (uploadFileContent).
func completesResumable(contentRange string) bool {
	spec, ok := strings.CutPrefix(contentRange, "bytes ")
	if !ok {
		return true // none, or one fake-gcs-server refuses: nothing more is expected
	}
	byteRange, total, ok := strings.Cut(spec, "/")
	first, last, ok2 := strings.Cut(byteRange, "-")
	if !ok || !ok2 || first == "*" || last == "*" {
		return true // "*/N", "*/*", "0-*/*": the end of a stream
	}
	end, err1 := strconv.Atoi(last)
	n, err2 := strconv.Atoi(total)
	if err1 != nil {
		return true
	}
	return err2 == nil && end+1 >= n
}

// objectName is the object an upload stores: its "name" parameter, else the name in a multipart
// upload's metadata part, else "".
func objectName(req *http.Request, body []byte) string {
	if name := req.URL.Query().Get("name"); name != "" {
		return name
	}
	_, params, err := mime.ParseMediaType(req.Header.Get("Content-Type"))
	if err != nil || params["boundary"] == "" {
		return ""
	}
	part, err := multipart.NewReader(bytes.NewReader(body), params["boundary"]).NextPart()
	if err != nil {
		return ""
	}
	var meta struct {
		Name string `json:"name"`
	}
	if json.NewDecoder(part).Decode(&meta) != nil {
		return ""
	}
	return meta.Name
}
