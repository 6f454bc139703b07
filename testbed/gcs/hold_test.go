package gcs

import (
	"bytes"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strings"
	"testing"
)

// The requests HoldUploads holds are those after which fake-gcs-server has stored an object.
func TestStoresObject(t *testing.T) {
	const upload = "http://127.0.0.1:1/upload/storage/v1/b/b1/o"
	for _, c := range []struct {
		method, url, contentRange, protocol string
		stores                              bool
	}{
		{"POST", upload + "?uploadType=media&name=a", "", "", true},
		{"POST", upload + "/?uploadType=multipart", "", "", true},
		{"POST", upload + "?uploadType=resumable&name=a", "", "", false}, // opens the session
		{"POST", upload + "?name=a", "", "resumable", false},             // opens it, gcloud's way
		{"PUT", upload + "?uploadType=resumable&name=a&upload_id=1", "bytes 0-262143/*", "", false},
		{"POST", upload + "?uploadType=resumable&name=a&upload_id=1", "bytes 262144-524287/*", "", false},
		{"PUT", upload + "?uploadType=resumable&name=a&upload_id=1", "bytes 524288-614399/614400", "", true},
		{"PUT", upload + "?uploadType=resumable&name=a&upload_id=1", "bytes 0-99/1000", "", false},
		{"PUT", upload + "?uploadType=resumable&name=a&upload_id=1", "bytes */614400", "", true},
		{"PUT", upload + "?uploadType=resumable&name=a&upload_id=1", "bytes 0-*/*", "", true},
		{"PUT", upload + "?uploadType=resumable&name=a&upload_id=1", "", "", true},
		{"PUT", "http://127.0.0.1:1/upload/resumable/1", "bytes 0-9/10", "", true},
		{"PUT", "http://127.0.0.1:1/upload/resumable/1", "bytes 0-9/*", "", false},
		{"DELETE", upload + "?uploadType=resumable&upload_id=1", "", "", false},
		{"POST", "http://127.0.0.1:1/storage/v1/b?project=p1", "", "", false},
		{"PUT", "http://127.0.0.1:1/storage/v1/b/b1/o/a", "", "", false},
	} {
		req, err := http.NewRequest(c.method, c.url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.contentRange != "" {
			req.Header.Set("Content-Range", c.contentRange)
		}
		if c.protocol != "" {
			req.Header.Set("X-Goog-Upload-Protocol", c.protocol)
		}
		if got := storesObject(req); got != c.stores {
			t.Errorf("%s %s Content-Range %q: stores %v, want %v", c.method, c.url, c.contentRange, got, c.stores)
		}
	}
}

// A multipart upload may name its object in the metadata part only (the JSON API allows it).
func TestObjectNameOfAMultipartUpload(t *testing.T) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	meta, err := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"application/json; charset=UTF-8"}})
	if err != nil {
		t.Fatal(err)
	}
	_, _ = meta.Write([]byte(`{"name":"dumps/a.txt.gz","contentType":"application/gzip"}`))
	media, err := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"application/gzip"}})
	if err != nil {
		t.Fatal(err)
	}
	_, _ = media.Write([]byte("data"))
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest("POST", "http://127.0.0.1:1/upload/storage/v1/b/b1/o?uploadType=multipart", bytes.NewReader(body.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "multipart/related; boundary="+mw.Boundary())
	if got := objectName(req, body.Bytes()); got != "dumps/a.txt.gz" {
		t.Errorf("name from the metadata part: %q", got)
	}
	req.URL.RawQuery += "&name=" + "from-query"
	if got := objectName(req, body.Bytes()); got != "from-query" {
		t.Errorf("name with a name parameter too: %q", got)
	}
	req, _ = http.NewRequest("POST", "http://127.0.0.1:1/upload/storage/v1/b/b1/o?uploadType=media", strings.NewReader("data"))
	if got := objectName(req, []byte("data")); got != "" {
		t.Errorf("a media upload without a name: %q", got)
	}
}
