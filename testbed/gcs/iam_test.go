package gcs_test

// The archiver's IAM roles on the addresses pods use (iam.go): through URLOn the archiver creates and
// reads objects and is refused overwriting, deleting and updating them as Cloud Storage refuses it; the
// loopback URL, the project owner's, is unrestricted. What the archiver left is read back through the
// owner's URL.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"

	"github.com/loklak/loklak-dumps/testbed/gcs"
)

// podHost is the extra address the tests serve the archiver's view on: a loopback address other than
// 127.0.0.1 (Linux routes all of 127.0.0.0/8 to lo), so the tests need no other interface.
const podHost = "127.0.0.2"

// archiverTestbed starts a server with the archiver's address, and creates the bucket as the owner.
// It returns the server, a client of the owner's URL and the archiver's base URL.
func archiverTestbed(t *testing.T) (*gcs.Emulator, *storage.Client, string) {
	t.Helper()
	em := start(t, t.TempDir(), podHost)
	owner := client(t, em.URL())
	if err := owner.Bucket(bucket).Create(testContext(t), "p1", nil); err != nil {
		t.Fatal(err)
	}
	return em, owner, em.URLOn(podHost)
}

// wantRefused fails unless err is Cloud Storage's JSON API error with status and reason, whose message
// names permission (if not "").
func wantRefused(t *testing.T, err error, status int, reason, permission string) {
	t.Helper()
	var apiErr *googleapi.Error
	if !errors.As(err, &apiErr) {
		t.Errorf("error %v (%T), want a %d %q from Cloud Storage", err, err, status, reason)
		return
	}
	if apiErr.Code != status || len(apiErr.Errors) != 1 || apiErr.Errors[0].Reason != reason {
		t.Errorf("error %d %+v, want %d with reason %q", apiErr.Code, apiErr.Errors, status, reason)
	}
	if permission != "" {
		want := fmt.Sprintf("%s does not have %s access to the ", gcs.ArchiverPrincipal, permission)
		if !strings.HasPrefix(apiErr.Message, want) || !strings.HasSuffix(apiErr.Message, fmt.Sprintf(
			"Permission '%s' denied on resource (or it may not exist).", permission)) {
			t.Errorf("message %q, want Cloud Storage's for %s", apiErr.Message, permission)
		}
	}
}

// wantObject fails unless the owner reads data as the object's bytes.
func wantObject(t *testing.T, owner *storage.Client, name string, data []byte) {
	t.Helper()
	if got, err := read(testContext(t), owner, name); err != nil || !bytes.Equal(got, data) {
		t.Errorf("%s read by the owner: %d bytes %q... (%v), want the %d bytes %q...", name, len(got), prefix(got), err, len(data), prefix(data))
	}
}

func prefix(b []byte) []byte { return b[:min(len(b), 8)] }

// Every kind of upload creates a new object through the archiver's address, and a second upload of
// that name, of any kind, is refused for storage.objects.delete and leaves the first one's bytes.
func TestArchiverCreatesObjectsButCannotOverwriteThem(t *testing.T) {
	for _, up := range uploads {
		t.Run(up.name, func(t *testing.T) {
			ctx := testContext(t)
			_, owner, archiver := archiverTestbed(t)
			const object = "dump/own/messages_20170101_1.txt.gz"
			first := randomBytes(t, up.size)
			if err := up.put(ctx, archiver, object, first); err != nil {
				t.Fatalf("the first upload, of a new object: %v", err)
			}
			wantObject(t, owner, object, first)
			for _, again := range uploads {
				err := again.put(ctx, archiver, object, randomBytes(t, again.size))
				wantRefused(t, err, http.StatusForbidden, "forbidden", "storage.objects.delete")
			}
			wantObject(t, owner, object, first)
		})
	}
}

// An object the owner put there cannot be deleted or updated by the archiver; it stays as it was.
func TestArchiverCannotDeleteOrUpdateAnObject(t *testing.T) {
	ctx := testContext(t)
	_, owner, archiver := archiverTestbed(t)
	const object = "dump/own/messages_20170101_1.txt.gz"
	data := []byte("archived")
	if err := write(ctx, owner, object, data, 0); err != nil {
		t.Fatal(err)
	}
	handle := client(t, archiver).Bucket(bucket).Object(object)
	wantRefused(t, handle.Delete(ctx), http.StatusForbidden, "forbidden", "storage.objects.delete")
	_, err := handle.Update(ctx, storage.ObjectAttrsToUpdate{ContentType: "text/plain", Metadata: map[string]string{"k": "v"}})
	wantRefused(t, err, http.StatusForbidden, "forbidden", "storage.objects.update")

	// The same over plain HTTP, the JSON API's DELETE and PATCH.
	u := fmt.Sprintf("%s/storage/v1/b/%s/o/%s", archiver, bucket, url.PathEscape(object))
	for _, c := range []struct{ method, permission string }{
		{http.MethodDelete, "storage.objects.delete"}, {http.MethodPatch, "storage.objects.update"},
	} {
		req, err := http.NewRequestWithContext(ctx, c.method, u, strings.NewReader(`{"contentType":"text/plain"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		wantRefused(t, googleapi.CheckResponse(resp), http.StatusForbidden, "forbidden", c.permission)
		_ = resp.Body.Close()
	}

	attrs, err := owner.Bucket(bucket).Object(object).Attrs(ctx)
	if err != nil || attrs.ContentType == "text/plain" || len(attrs.Metadata) != 0 {
		t.Errorf("the object after the archiver's delete and updates: %+v %v", attrs, err)
	}
	wantObject(t, owner, object, data)
}

// The archiver lists objects and reads them and their metadata (the XML API's reads, the Go client's
// default, and the JSON API's), but not the bucket's metadata, and it neither lists nor creates buckets.
func TestArchiverListsAndReadsObjectsButNotTheBucket(t *testing.T) {
	ctx := testContext(t)
	_, owner, archiver := archiverTestbed(t)
	objects := map[string][]byte{"dump/own/messages_20170101_1.txt.gz": []byte("one"), "dump/own/messages_20170102_1.txt.gz": []byte("two")}
	for name, data := range objects {
		if err := write(ctx, owner, name, data, 0); err != nil {
			t.Fatal(err)
		}
	}
	jsonReads, err := gcs.NewClient(ctx, archiver)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = jsonReads.Close() })
	for _, c := range []*storage.Client{client(t, archiver), jsonReads} {
		var listed []string
		it := c.Bucket(bucket).Objects(ctx, &storage.Query{Prefix: "dump/own/"})
		for {
			attrs, err := it.Next()
			if errors.Is(err, iterator.Done) {
				break
			}
			if err != nil {
				t.Fatalf("listing: %v", err)
			}
			listed = append(listed, attrs.Name)
		}
		slices.Sort(listed)
		if want := []string{"dump/own/messages_20170101_1.txt.gz", "dump/own/messages_20170102_1.txt.gz"}; !slices.Equal(listed, want) {
			t.Errorf("listed %q, want %q", listed, want)
		}
		for name, data := range objects {
			if got, err := read(ctx, c, name); err != nil || !bytes.Equal(got, data) {
				t.Errorf("%s read by the archiver: %q %v, want %q", name, got, err, data)
			}
			if attrs, err := c.Bucket(bucket).Object(name).Attrs(ctx); err != nil || attrs.Size != int64(len(data)) {
				t.Errorf("%s's metadata read by the archiver: %+v %v", name, attrs, err)
			}
		}
		_, err := c.Bucket(bucket).Object("dump/own/none.txt.gz").Attrs(ctx)
		if !errors.Is(err, storage.ErrObjectNotExist) {
			t.Errorf("an object that is not there: %v, want %v", err, storage.ErrObjectNotExist)
		}
	}

	c := client(t, archiver)
	_, err = c.Bucket(bucket).Attrs(ctx)
	wantRefused(t, err, http.StatusForbidden, "forbidden", "storage.buckets.get")
	_, err = c.Buckets(ctx, "p1").Next()
	wantRefused(t, err, http.StatusForbidden, "forbidden", "storage.buckets.list")
	wantRefused(t, c.Bucket("another-bucket").Create(ctx, "p1", nil), http.StatusForbidden, "forbidden", "storage.buckets.create")
	if _, err := owner.Bucket("another-bucket").Attrs(ctx); !errors.Is(err, storage.ErrBucketNotExist) {
		t.Errorf("the bucket the archiver was refused: %v, want %v", err, storage.ErrBucketNotExist)
	}
}

// A copy (the Go client's rewriteTo, and copyTo) or a compose goes to a new name, never onto an existing
// one; one that says ifGenerationMatch=0 fails that precondition instead.
func TestArchiverCopiesOnlyToNewNames(t *testing.T) {
	ctx := testContext(t)
	_, owner, archiver := archiverTestbed(t)
	const src, dst = "dump/own/a.txt.gz", "dump/own/b.txt.gz"
	a, b := []byte("object a"), []byte("object b")
	for name, data := range map[string][]byte{src: a, dst: b} {
		if err := write(ctx, owner, name, data, 0); err != nil {
			t.Fatal(err)
		}
	}
	objects := client(t, archiver).Bucket(bucket)
	if _, err := objects.Object("dump/own/copy.txt.gz").CopierFrom(objects.Object(src)).Run(ctx); err != nil {
		t.Fatalf("a copy to a new name: %v", err)
	}
	wantObject(t, owner, "dump/own/copy.txt.gz", a)

	_, err := objects.Object(dst).CopierFrom(objects.Object(src)).Run(ctx)
	wantRefused(t, err, http.StatusForbidden, "forbidden", "storage.objects.delete")
	_, err = objects.Object(dst).If(storage.Conditions{DoesNotExist: true}).CopierFrom(objects.Object(src)).Run(ctx)
	wantRefused(t, err, http.StatusPreconditionFailed, "conditionNotMet", "")
	_, err = objects.Object(dst).ComposerFrom(objects.Object(src)).Run(ctx)
	wantRefused(t, err, http.StatusForbidden, "forbidden", "storage.objects.delete")
	u := fmt.Sprintf("%s/storage/v1/b/%s/o/%s/copyTo/b/%s/o/%s", archiver, bucket, url.PathEscape(src), bucket, url.PathEscape(dst))
	wantRefused(t, post(ctx, u, "application/json", []byte("{}")), http.StatusForbidden, "forbidden", "storage.objects.delete")
	wantObject(t, owner, dst, b)
}

// Whether an upload overwrites is decided when its session is opened; an object that appears while
// the session is open is not overwritten when it completes (iam.go: the upload carries
// ifGenerationMatch=0), and a session opened on an existing name is refused at once.
func TestArchiverResumableUploadIsDecidedWhenOpened(t *testing.T) {
	ctx := testContext(t)
	_, owner, archiver := archiverTestbed(t)
	u := fmt.Sprintf("%s/upload/storage/v1/b/%s/o?uploadType=resumable", archiver, bucket)
	const object = "dump/own/messages_20170101_1.txt.gz"
	session, err := openResumable(ctx, u, object)
	if err != nil {
		t.Fatalf("opening a session for a new object: %v", err)
	}
	if !strings.HasPrefix(session, archiver+"/") {
		t.Errorf("session URL %s, want one on the archiver's address %s", session, archiver)
	}
	owners := []byte("the owner's")
	if err := write(ctx, owner, object, owners, 0); err != nil {
		t.Fatal(err)
	}
	wantRefused(t, putSession(ctx, session, []byte("the archiver's")), http.StatusPreconditionFailed, "conditionNotMet", "")
	wantObject(t, owner, object, owners)

	_, err = openResumable(ctx, u, object)
	wantRefused(t, err, http.StatusForbidden, "forbidden", "storage.objects.delete")
}

// The owner's URL checks nothing: it overwrites and deletes what the archiver created.
func TestOwnerURLIsUnrestricted(t *testing.T) {
	ctx := testContext(t)
	_, owner, archiver := archiverTestbed(t)
	const object = "dump/own/messages_20170101_1.txt.gz"
	if err := write(ctx, client(t, archiver), object, []byte("archiver"), 0); err != nil {
		t.Fatal(err)
	}
	if err := write(ctx, owner, object, []byte("owner"), 0); err != nil {
		t.Fatalf("the owner's overwrite: %v", err)
	}
	wantObject(t, owner, object, []byte("owner"))
	if err := owner.Bucket(bucket).Object(object).Delete(ctx); err != nil {
		t.Fatalf("the owner's delete: %v", err)
	}
	if _, err := owner.Bucket(bucket).Attrs(ctx); err != nil {
		t.Errorf("the owner reads the bucket: %v", err)
	}
}

// HoldUploads holds the archiver's uploads too, and after a Restart the archiver's address is on the
// same URL and still the archiver's.
func TestArchiverAddressKeepsHoldsAndRulesAcrossRestart(t *testing.T) {
	ctx := testContext(t)
	em, owner, archiver := archiverTestbed(t)
	const object = "dump/own/messages_20170101_1.txt.gz"
	em.HoldUploads(func(name string) bool { return name == object })
	data := randomBytes(t, 10<<10)
	done := make(chan error, 1)
	go func() { done <- uploads[0].put(ctx, archiver, object, data) }()
	if held, err := em.WaitHeld(ctx); err != nil || held != object {
		t.Fatalf("held %q (%v), want %q", held, err, object)
	}
	em.ReleaseUploads()
	if err := <-done; err != nil {
		t.Fatalf("the released upload: %v", err)
	}
	wantObject(t, owner, object, data)

	if err := em.Restart(); err != nil {
		t.Fatal(err)
	}
	if em.URLOn(podHost) != archiver {
		t.Fatalf("the archiver's URL after Restart %s, was %s", em.URLOn(podHost), archiver)
	}
	for _, up := range uploads {
		wantRefused(t, up.put(ctx, archiver, object, []byte("again")), http.StatusForbidden, "forbidden", "storage.objects.delete")
	}
	if err := uploads[0].put(ctx, archiver, "dump/own/messages_20170102_1.txt.gz", []byte("new")); err != nil {
		t.Errorf("a new object after the restart: %v", err)
	}
	wantObject(t, owner, object, data)
}

// What the archiver's address does not model is refused, not served unchecked: fake-gcs-server's
// own endpoints (delete_all would empty the bucket) and the batch endpoint.
func TestArchiverAddressRefusesWhatItDoesNotModel(t *testing.T) {
	ctx := testContext(t)
	_, owner, archiver := archiverTestbed(t)
	if err := write(ctx, owner, "dump/own/a.txt.gz", []byte("a"), 0); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/_internal/delete_all", "/_internal/reseed", "/batch/storage/v1"} {
		wantRefused(t, post(ctx, archiver+path, "application/json", []byte("{}")), http.StatusForbidden, "notModeled", "")
	}
	wantObject(t, owner, "dump/own/a.txt.gz", []byte("a"))
}

// An object's mediaLink is absolute, on the address the client asked, as Cloud Storage's is: rclone
// downloads from it (a relative "/download/..." fails with "unsupported protocol scheme").
func TestObjectsCarryAnAbsoluteMediaLink(t *testing.T) {
	ctx := testContext(t)
	em, owner, archiver := archiverTestbed(t)
	const name = "dump/own/messages_20170101_1.txt.gz"
	if err := write(ctx, owner, name, []byte("one"), 0); err != nil {
		t.Fatal(err)
	}
	for _, base := range []string{em.URL(), archiver} {
		resp, err := http.Get(base + "/storage/v1/b/" + bucket + "/o/" + url.PathEscape(name))
		if err != nil {
			t.Fatal(err)
		}
		var obj struct{ MediaLink string }
		err = json.NewDecoder(resp.Body).Decode(&obj)
		_ = resp.Body.Close()
		if err != nil || !strings.HasPrefix(obj.MediaLink, base+"/download/storage/v1/b/"+bucket+"/o/") {
			t.Errorf("mediaLink on %s = %q (%v), want it absolute on that address", base, obj.MediaLink, err)
			continue
		}
		media, err := http.Get(obj.MediaLink)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(media.Body)
		_ = media.Body.Close()
		if string(got) != "one" {
			t.Errorf("GET mediaLink on %s = %q, want the object's bytes", base, got)
		}
	}
}
