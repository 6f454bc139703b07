package gcs_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"

	"github.com/loklak/loklak-dumps/testbed/gcs"
)

const bucket = "loklak-dev-dumps-archive"

// client is a Cloud Storage client of the server at baseURL configured as any program would configure
// one for an emulator (the Go client's defaults otherwise: XML API reads, its own retries), not with
// gcs.NewClient: what the server serves must not depend on how the stand-in talks to it.
func client(t *testing.T, baseURL string) *storage.Client {
	t.Helper()
	c, err := storage.NewClient(context.Background(), option.WithEndpoint(baseURL+"/storage/v1/"), option.WithoutAuthentication())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// testContext ends with the test, or after a minute: a hang fails instead of waiting for go test's timeout.
func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func start(t *testing.T, dir string, extraHosts ...string) *gcs.Emulator {
	t.Helper()
	em, err := gcs.Start(dir, extraHosts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := em.Stop(); err != nil {
			t.Error(err)
		}
	})
	return em
}

// hostIPv4 is a non-loopback IPv4 address of this machine, as the real node's pods reach the host at
// (testbed/gke's hostIPv4), or "" when there is none.
func hostIPv4() string {
	ifaces, err := net.Interfaces()
	if err != nil {
		return ""
	}
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && !ipn.IP.IsLoopback() && !ipn.IP.IsLinkLocalUnicast() {
				return ipn.IP.String()
			}
		}
	}
	return ""
}

func read(ctx context.Context, c *storage.Client, name string) ([]byte, error) {
	r, err := c.Bucket(bucket).Object(name).NewReader(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = r.Close() }()
	return io.ReadAll(r)
}

func write(ctx context.Context, c *storage.Client, name string, data []byte, chunkSize int) error {
	w := c.Bucket(bucket).Object(name).NewWriter(ctx)
	w.ChunkSize = chunkSize
	if _, err := w.Write(data); err != nil {
		_ = w.Close() // the write's error is the one to report
		return err
	}
	return w.Close()
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	data := make([]byte, n)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	return data
}

// The folder has one owner: neither a second server nor an in-process emulator opens it beside a server,
// and a server does not start beside an in-process emulator.
func TestOneOwnerOfTheFolder(t *testing.T) {
	dir := t.TempDir()
	em := start(t, dir)
	if second, err := gcs.Start(dir); err == nil {
		_ = second.Stop()
		t.Fatal("a second server started over the same folder")
	}
	if local, err := gcs.InProcess(dir); err == nil {
		_ = local.Close()
		t.Fatal("an in-process emulator opened the folder a server serves")
	}
	if err := em.Stop(); err != nil {
		t.Fatal(err)
	}
	local, err := gcs.InProcess(dir)
	if err != nil {
		t.Fatalf("in-process emulator once the server stopped: %v", err)
	}
	if err := em.Restart(); err == nil {
		t.Fatal("the server restarted over a folder an in-process emulator uses")
	}
	if err := local.Close(); err != nil {
		t.Fatal(err)
	}
	if err := em.Restart(); err != nil {
		t.Fatalf("restart once the in-process emulator closed: %v", err)
	}
}

// Objects are files: they outlive the server, and a restarted server answers on the same URL with the
// same bytes, to the same client.
func TestObjectsSurviveStopAndRestart(t *testing.T) {
	ctx := testContext(t)
	dir := t.TempDir()
	em := start(t, dir)
	url := em.URL()
	c := client(t, url)
	if err := c.Bucket(bucket).Create(ctx, "p1", nil); err != nil {
		t.Fatal(err)
	}
	data := randomBytes(t, 1<<20)
	if err := write(ctx, c, "dumps/messages_20170101.txt.gz", data, 0); err != nil {
		t.Fatal(err)
	}
	before, err := c.Bucket(bucket).Object("dumps/messages_20170101.txt.gz").Attrs(ctx)
	if err != nil {
		t.Fatal(err)
	}

	if err := em.Stop(); err != nil {
		t.Fatal(err)
	}
	noKeepAlive := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	if resp, err := noKeepAlive.Get(url + "/storage/v1/b?project=p1"); err == nil {
		_ = resp.Body.Close()
		t.Fatalf("the stopped server answered %s", resp.Status)
	}
	if err := em.Stop(); err != nil {
		t.Fatalf("a second Stop: %v", err)
	}

	if err := em.Restart(); err != nil {
		t.Fatal(err)
	}
	if em.URL() != url {
		t.Fatalf("URL after Restart %s, was %s", em.URL(), url)
	}
	got, err := read(ctx, c, "dumps/messages_20170101.txt.gz")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("after the restart: %d bytes (%v), want the %d written", len(got), err, len(data))
	}
	after, err := c.Bucket(bucket).Object("dumps/messages_20170101.txt.gz").Attrs(ctx)
	if err != nil || !bytes.Equal(after.MD5, before.MD5) || after.Size != before.Size {
		t.Errorf("attributes after the restart: %+v %v, before %+v", after, err, before)
	}
	if err := write(ctx, c, "dumps/messages_20170102.txt.gz", []byte("next"), 0); err != nil {
		t.Errorf("upload after the restart: %v", err)
	}
}

// upload is one way of putting an object into a bucket of the server at baseURL.
type upload struct {
	name string
	put  func(ctx context.Context, baseURL, object string, data []byte) error
	size int
}

// uploads are the JSON API's kinds: the Go client's multipart upload, its resumable upload in three
// chunks (the last held), a simple media upload over plain HTTP (the name in the query), a multipart
// upload over plain HTTP with the name in the metadata part only, and a resumable upload over plain
// HTTP whose session is opened with the name in its JSON body only.
var uploads = []upload{
	{"multipart", func(ctx context.Context, baseURL, object string, data []byte) error {
		c, err := gcs.NewClient(ctx, baseURL)
		if err != nil {
			return err
		}
		defer func() { _ = c.Close() }()
		return write(ctx, c, object, data, 0)
	}, 100 << 10},
	{"resumable", func(ctx context.Context, baseURL, object string, data []byte) error {
		c, err := gcs.NewClient(ctx, baseURL)
		if err != nil {
			return err
		}
		defer func() { _ = c.Close() }()
		return write(ctx, c, object, data, 256<<10)
	}, 600 << 10},
	{"media", func(ctx context.Context, baseURL, object string, data []byte) error {
		u := fmt.Sprintf("%s/upload/storage/v1/b/%s/o?uploadType=media&name=%s", baseURL, bucket, url.QueryEscape(object))
		return post(ctx, u, "application/octet-stream", data)
	}, 10 << 10},
	{"multipart-name-in-metadata", func(ctx context.Context, baseURL, object string, data []byte) error {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		for _, part := range []struct {
			contentType string
			data        []byte
		}{{"application/json; charset=UTF-8", fmt.Appendf(nil, `{"name":%q}`, object)}, {"application/octet-stream", data}} {
			w, err := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {part.contentType}})
			if err != nil {
				return err
			}
			if _, err := w.Write(part.data); err != nil {
				return err
			}
		}
		if err := mw.Close(); err != nil {
			return err
		}
		u := fmt.Sprintf("%s/upload/storage/v1/b/%s/o?uploadType=multipart", baseURL, bucket)
		return post(ctx, u, "multipart/related; boundary="+mw.Boundary(), body.Bytes())
	}, 10 << 10},
	{"resumable-name-in-metadata", func(ctx context.Context, baseURL, object string, data []byte) error {
		// The session is opened with the object resource as JSON, then the bytes go in one PUT.
		u := fmt.Sprintf("%s/upload/storage/v1/b/%s/o?uploadType=resumable", baseURL, bucket)
		session, err := openResumable(ctx, u, object)
		if err != nil {
			return err
		}
		return putSession(ctx, session, data)
	}, 10 << 10},
}

// openResumable opens a resumable upload of object at u (a JSON API upload URL with
// uploadType=resumable), naming it in the JSON body, and returns the session's URL.
func openResumable(ctx context.Context, u, object string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(fmt.Sprintf(`{"name":%q}`, object)))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json; charset=UTF-8")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	if err := wantOK(resp); err != nil {
		return "", err
	}
	if resp.Header.Get("Location") == "" {
		return "", errors.New("no session URL (Location) in the answer")
	}
	return resp.Header.Get("Location"), nil
}

// putSession sends all of data to a resumable upload's session, completing it.
func putSession(ctx context.Context, session string, data []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, session, bytes.NewReader(data))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Range", fmt.Sprintf("bytes 0-%d/%d", len(data)-1, len(data)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	return wantOK(resp)
}

// post sends body to u and wants a 200.
func post(ctx context.Context, u, contentType string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	return wantOK(resp)
}

// wantOK is nil for a 200, else the error of the answer's JSON API error body (a *googleapi.Error).
func wantOK(resp *http.Response) error {
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	if err := googleapi.CheckResponse(resp); err != nil {
		return err
	}
	return fmt.Errorf("%s, want 200 OK", resp.Status)
}

// An upload held when the server stops fails for its client, and the restarted server has no such
// object: not in the API, not in the folder.
func TestUploadInFlightAtStopFailsAndLeavesNoObject(t *testing.T) {
	for _, up := range uploads {
		t.Run(up.name, func(t *testing.T) {
			ctx := testContext(t)
			dir := t.TempDir()
			em := start(t, dir)
			c := client(t, em.URL())
			if err := c.Bucket(bucket).Create(ctx, "p1", nil); err != nil {
				t.Fatal(err)
			}
			const object = "dumps/messages_20170101.txt.gz"
			em.HoldUploads(func(name string) bool { return name == object })
			data := randomBytes(t, up.size)
			done := make(chan error, 1)
			go func() { done <- up.put(ctx, em.URL(), object, data) }()
			held, err := em.WaitHeld(ctx)
			if err != nil || held != object {
				t.Fatalf("held %q (%v), want %q", held, err, object)
			}
			if err := em.Stop(); err != nil {
				t.Fatal(err)
			}
			if err := <-done; err == nil {
				t.Fatal("the upload cut off by Stop succeeded for its client")
			} else {
				t.Logf("the client's error: %v", err)
			}
			if err := em.Restart(); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Bucket(bucket).Object(object).Attrs(ctx); !errors.Is(err, storage.ErrObjectNotExist) {
				t.Errorf("the object after the restart: %v, want %v", err, storage.ErrObjectNotExist)
			}
			if _, err := os.Stat(filepath.Join(dir, gcs.RootDir, bucket, object)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the object's file after the restart: %v", err)
			}
		})
	}
}

// A held upload waits, unstored, while the server answers everything else, an upload the matcher does
// not name passes, and ReleaseUploads stores it.
func TestHeldUploadIsStoredWhenReleased(t *testing.T) {
	for _, up := range uploads {
		t.Run(up.name, func(t *testing.T) {
			ctx := testContext(t)
			em := start(t, t.TempDir())
			c := client(t, em.URL())
			if err := c.Bucket(bucket).Create(ctx, "p1", nil); err != nil {
				t.Fatal(err)
			}
			em.HoldUploads(func(name string) bool { return strings.HasPrefix(name, "dumps/") })
			if err := up.put(ctx, em.URL(), "status/last-run", []byte("ok")); err != nil {
				t.Fatalf("an upload the matcher does not name: %v", err)
			}
			data := randomBytes(t, up.size)
			done := make(chan error, 1)
			go func() { done <- up.put(ctx, em.URL(), "dumps/a.txt.gz", data) }()
			if held, err := em.WaitHeld(ctx); err != nil || held != "dumps/a.txt.gz" {
				t.Fatalf("held %q (%v)", held, err)
			}
			if _, err := c.Bucket(bucket).Object("dumps/a.txt.gz").Attrs(ctx); !errors.Is(err, storage.ErrObjectNotExist) {
				t.Errorf("the held object before the release: %v, want %v", err, storage.ErrObjectNotExist)
			}
			em.ReleaseUploads()
			if err := <-done; err != nil {
				t.Fatalf("the released upload: %v", err)
			}
			if got, err := read(ctx, c, "dumps/a.txt.gz"); err != nil || !bytes.Equal(got, data) {
				t.Errorf("the released object: %d bytes (%v), want %d", len(got), err, len(data))
			}
			// Released means no longer holding: the next upload goes straight through.
			if err := up.put(ctx, em.URL(), "dumps/b.txt.gz", []byte("b")); err != nil {
				t.Errorf("an upload after the release: %v", err)
			}
		})
	}
}

func TestWaitHeldEndsWithItsContext(t *testing.T) {
	em := start(t, t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if name, err := em.WaitHeld(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("WaitHeld with nothing held and its context done: %q %v", name, err)
	}
}
