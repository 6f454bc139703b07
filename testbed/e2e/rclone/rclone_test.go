//go:build e2e

package rclone

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"
	"github.com/loklak/loklak-dumps/infra"
	"github.com/loklak/loklak-dumps/testbed/dockerhub"
)

// Whether `rclone move` removes a local file only once the uploaded object's MD5 was checked, read in
// rclone v1.71.0 (github.com/rclone/rclone@v1.71.0, paths below it):
//
//   - fs/sync/sync.go, (*syncCopyMove).pairCopyOrMove: a file that needs a transfer goes to
//     operations.MoveTransfer, that is fs/operations/operations.go, move.
//   - move: from the local filesystem to Cloud Storage there is no server-side Move (another remote
//     type), so it calls Copy, and `if err != nil { fs.Errorf(src, "Not deleting source as copy failed:
//     %v", err); return }`; only then `return newDst, DeleteFile(ctx, src)`.
//   - fs/operations/copy.go, (*copy).copy, after the upload: `err = c.verify(ctx, newDst)`, which fails on
//     a size difference and, when the two filesystems share a hash (CommonHash: local and Cloud Storage
//     share MD5, unless --ignore-checksum), on `checkHashes` finding the local file's MD5 different from
//     the object's ("corrupted on transfer: md5 hashes differ"); it then removes the object
//     (removeFailedCopy) and returns the error, so move keeps the local file.
//   - The object's MD5 is the md5Hash Cloud Storage answers the upload with
//     (backend/googlecloudstorage/googlecloudstorage.go, (*Object).Update: Objects.Insert(...).Do(), then
//     setMetaData(newObject)); rclone v1.71.0 does not send the MD5 with the upload.
//   - Caveat, checkHashes: an empty hash on either side counts as equal (errNoHash), so an object the
//     server reports without md5Hash (a composite object) is checked by size alone.
//   - A file whose object already exists with the same size and MD5 (--checksum) is not uploaded again:
//     (*syncCopyMove).pairChecker deletes it locally (operations.DeleteFile) after NeedTransfer found the
//     two equal, comparing the local MD5 with the md5Hash of the object's listing. With --immutable an
//     object that differs is an error there (fs.ErrorImmutableModified) and the local file is kept.
//
// So yes: move deletes a local file only after the object's MD5, as the server reports it, equals the
// file's. TestMoveKeepsAFileWhoseUploadComesBackWithAnotherMD5 shows it with a server that lies.

const (
	bucket = "loklak-archive"
	prefix = "dump/own"
)

// copyFlags and moveFlags are the flags infra.ArchiverRound gives rclone copy and, when pruning, rclone
// move, after the source, the destination and --files-from LIST (the files the round chose);
// TestArchiverFlagsAreTheProducts holds them to it. --files-from overrides every other filter (fs/filter
// Filter.Include), so the list alone says what is copied or moved; --no-traverse makes rclone look each
// named file and object up instead of listing either side.
var (
	copyFlags = []string{"--no-traverse", "--immutable", "--retries", "1", "--stats-one-line", "-v"}
	moveFlags = []string{"--no-traverse", "--checksum", "--immutable", "--retries", "1", "--stats-one-line", "-v"}
)

// filesFrom writes a --files-from list of names and returns the arguments that name it.
func filesFrom(t *testing.T, names ...string) []string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "list")
	if err := os.WriteFile(p, []byte(strings.Join(names, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return []string{"--files-from", p}
}

// emulator is fake-gcs-server's fakestorage on a loopback HTTP listener, its objects in a directory
// (the filesystem backend, as the GCP stand-in keeps buckets), with one empty bucket.
type emulator struct {
	*fakestorage.Server
	url string // http://127.0.0.1:PORT
}

func startEmulator(t *testing.T) *emulator {
	t.Helper()
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{
		Scheme: "http", Host: "127.0.0.1", Port: 0, StorageRoot: t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	if !strings.HasPrefix(srv.URL(), "http://127.0.0.1:") {
		t.Fatalf("the emulator is at %s, want http://127.0.0.1:PORT", srv.URL())
	}
	srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: bucket})
	return &emulator{Server: srv, url: srv.URL()}
}

// endpoint is the form of RCLONE_CONFIG_ARCHIVE_ENDPOINT that works: the JSON API's base URL with its
// trailing slash. rclone hands it to google.golang.org/api's storage/v1 as the service's BasePath, which
// resolves "b/{bucket}/o" against it (so without the slash, or without /storage/v1, the requests miss the
// API) and uploads to "/upload/storage/v1/b/{bucket}/o" on the same host (TestEndpointForms).
func (e *emulator) endpoint() string { return e.url + "/storage/v1/" }

// objects lists the bucket's objects under prefix by name.
func (e *emulator) objects(t *testing.T) map[string]fakestorage.ObjectAttrs {
	t.Helper()
	resp, err := e.ListObjectsWithOptionsPaginated(bucket, fakestorage.ListOptions{Prefix: prefix + "/"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.NextPageToken != "" {
		t.Fatalf("listing gs://%s/%s/ has more than one page", bucket, prefix)
	}
	out := map[string]fakestorage.ObjectAttrs{}
	for _, a := range resp.Objects {
		out[a.Name] = a
	}
	return out
}

// remoteEnv is the whole environment rclone gets: the archive remote exactly as the archiver configures
// it for an emulator (infra/archiver.go, archiverEnv), no config file (RCLONE_CONFIG=/dev/null is rclone's
// in-memory configuration, as the sidecar's: nothing is read or written), and a HOME the test checks
// stays empty. Nothing else from this
// process's environment reaches rclone.
func remoteEnv(endpoint, home string) []string {
	return []string{
		"HOME=" + home,
		"RCLONE_CONFIG=/dev/null",
		"RCLONE_CONFIG_ARCHIVE_TYPE=google cloud storage",
		"RCLONE_CONFIG_ARCHIVE_BUCKET_POLICY_ONLY=true",
		"RCLONE_CONFIG_ARCHIVE_NO_CHECK_BUCKET=true",
		"RCLONE_CONFIG_ARCHIVE_ENDPOINT=" + endpoint,
		"RCLONE_CONFIG_ARCHIVE_ANONYMOUS=true",
	}
}

// rclone runs the toolchain's rclone with env and args and returns its exit status and output.
func rclone(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, tools.Path("rclone"), args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	t.Logf("rclone %s:\n%s", strings.Join(args, " "), out)
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &exit):
		return exit.ExitCode(), string(out)
	}
	t.Fatalf("rclone %v: %v", args, err)
	return -1, ""
}

// dumps is a dump directory as loklak leaves it: two closed days (.txt.gz, whole gzip streams, last
// written hours ago), one just gzipped (.txt.gz, written now: younger than the min age) and today's open
// file (.txt, old enough, but not a .txt.gz). One closed day is bigger than rclone's 16 MiB upload chunk,
// so it goes up as a resumable upload, the other as one request. It returns the directory and the closed
// days' bytes by name.
func dumps(t *testing.T) (string, map[string][]byte) {
	t.Helper()
	dir := t.TempDir()
	rnd := rand.NewChaCha8([32]byte{'l', 'o', 'k', 'l', 'a', 'k'})
	old := time.Now().Add(-3 * time.Hour)
	closed := map[string][]byte{}
	for _, f := range []struct {
		name  string
		size  int
		mtime time.Time
	}{
		{"messages_20170601_00000001.txt.gz", 3 << 20, old},
		{"messages_20170602_00000002.txt.gz", 17 << 20, old},
		{"messages_20170603_00000003.txt.gz", 1 << 20, time.Now()},
		{"messages_20170604_00000004.txt", 2 << 20, old},
	} {
		b := make([]byte, f.size)
		_, _ = rnd.Read(b)
		if strings.HasSuffix(f.name, ".gz") {
			b = storedGzip(t, b)
		}
		p := filepath.Join(dir, f.name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, f.mtime, f.mtime); err != nil {
			t.Fatal(err)
		}
		if f.mtime.Equal(old) && strings.HasSuffix(f.name, ".txt.gz") {
			closed[f.name] = b
		}
	}
	return dir, closed
}

// storedGzip is b as a whole gzip stream, stored (random bytes do not compress): a little bigger than b.
func storedGzip(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	w, err := gzip.NewWriterLevel(&out, gzip.NoCompression)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func md5base64(b []byte) string {
	s := md5.Sum(b)
	return base64.StdEncoding.EncodeToString(s[:])
}

// wantArchived fails unless the bucket holds exactly want under prefix, each object with those bytes
// and the MD5 of those bytes.
func wantArchived(t *testing.T, e *emulator, want map[string][]byte) {
	t.Helper()
	got := e.objects(t)
	var names []string
	for n := range want {
		names = append(names, prefix+"/"+n)
	}
	if g := slices.Sorted(maps.Keys(got)); !slices.Equal(g, slices.Sorted(slices.Values(names))) {
		t.Errorf("the bucket holds %q, want %q", g, slices.Sorted(slices.Values(names)))
	}
	for n, b := range want {
		obj, err := e.GetObject(bucket, prefix+"/"+n)
		if err != nil {
			t.Errorf("%s: %v", n, err)
			continue
		}
		if !bytes.Equal(obj.Content, b) || obj.Md5Hash != md5base64(b) || obj.Size != int64(len(b)) {
			t.Errorf("%s: %d bytes, MD5 %s; want the local %d bytes, MD5 %s", n, len(obj.Content), obj.Md5Hash,
				len(b), md5base64(b))
		}
	}
}

// wantLocal fails unless dir holds exactly names.
func wantLocal(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if slices.Sort(names); !slices.Equal(got, names) {
		t.Errorf("%s holds %q, want %q", dir, got, names)
	}
}

// tamper replaces an object's bytes by others of the same size (one byte flipped), keeping its metadata
// (rclone's mtime among them), as a bad actor or a bug could; the emulator computes the new MD5.
func tamper(t *testing.T, e *emulator, name string) []byte {
	t.Helper()
	obj, err := e.GetObject(bucket, prefix+"/"+name)
	if err != nil {
		t.Fatal(err)
	}
	b := slices.Clone(obj.Content)
	b[len(b)/2] ^= 0xff
	put(t, e, name, b, obj.Metadata)
	return b
}

func put(t *testing.T, e *emulator, name string, b []byte, metadata map[string]string) {
	t.Helper()
	e.CreateObject(fakestorage.Object{
		ObjectAttrs: fakestorage.ObjectAttrs{BucketName: bucket, Name: prefix + "/" + name, Metadata: metadata},
		Content:     b,
	})
}

// rclone as the archiver's round calls it, with the archiver's remote and flags and the lists the round
// would choose: copy takes exactly the listed files (the closed days), verified by MD5, and nothing else
// in the directory; a second copy changes nothing; move removes a listed file whose object has its MD5
// and keeps one whose object was changed (--immutable); with the object's bytes back, it removes that
// one too. The fresh file and the open one never leave the disk. rclone writes nothing into HOME. (A proxy
// in front of the emulator only records that the big file went up as a resumable upload, the small one in
// one request.)
func TestArchiverCopyThenMove(t *testing.T) {
	e := startEmulator(t)
	src, closed := dumps(t)
	home := t.TempDir()
	base, uploads := proxy(t, e.url, false)
	env := remoteEnv(base+"/storage/v1/", home)
	dst := "archive:" + bucket + "/" + prefix
	a, b := "messages_20170601_00000001.txt.gz", "messages_20170602_00000002.txt.gz"
	fresh, open := "messages_20170603_00000003.txt.gz", "messages_20170604_00000004.txt"
	copyArgs := append(append([]string{"copy", src, dst}, filesFrom(t, a, b)...), copyFlags...)
	moveArgs := append(append([]string{"move", src, dst}, filesFrom(t, a, b)...), moveFlags...)

	if code, _ := rclone(t, env, copyArgs...); code != 0 {
		t.Fatalf("copy: exit %d", code)
	}
	wantArchived(t, e, closed)
	wantLocal(t, src, a, b, fresh, open)
	if u := uploads(); !slices.Equal(u, []string{"multipart", "resumable"}) {
		t.Errorf("upload types %q, want one multipart (3 MiB) and one resumable (17 MiB)", u)
	}

	before := e.objects(t)
	if code, _ := rclone(t, env, copyArgs...); code != 0 {
		t.Fatalf("copy again: exit %d", code)
	}
	if after := e.objects(t); !maps.EqualFunc(before, after, func(x, y fakestorage.ObjectAttrs) bool {
		return x.Generation == y.Generation && x.Md5Hash == y.Md5Hash && x.Updated.Equal(y.Updated)
	}) {
		t.Errorf("copy again rewrote objects: before %+v, after %+v", before, after)
	}

	// A changed object: move refuses to remove the local file whose object differs.
	changed := tamper(t, e, a)
	code, out := rclone(t, env, moveArgs...)
	if code == 0 || !strings.Contains(out, "immutable file modified") {
		t.Errorf("move onto a changed object: exit %d; want a failure that says immutable file modified", code)
	}
	wantLocal(t, src, a, fresh, open) // b is archived with its MD5: removed; a's object differs: kept
	wantArchived(t, e, map[string][]byte{a: changed, b: closed[b]})

	put(t, e, a, closed[a], e.objects(t)[prefix+"/"+a].Metadata)
	if code, _ := rclone(t, env, moveArgs...); code != 0 {
		t.Fatalf("move: exit %d", code)
	}
	wantLocal(t, src, fresh, open)
	wantArchived(t, e, closed)

	if entries, err := os.ReadDir(home); err != nil || len(entries) > 0 {
		t.Errorf("rclone wrote into HOME %s: %v %v", home, entries, err)
	}
}

// proxy passes requests to the emulator at target and records each upload's uploadType (multipart:
// one request; resumable: a session, whose chunks follow with its upload_id). With lie, it replaces the
// object's md5Hash in the answer to an upload by another: what rclone sees if the bytes that arrived are
// not the bytes it sent. It returns its base URL and the upload types so far.
func proxy(t *testing.T, target string, lie bool) (string, func() []string) {
	t.Helper()
	var (
		mu      sync.Mutex
		uploads []string
	)
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(u)
		r.Out.Header.Del("Accept-Encoding") // a plain JSON answer to rewrite
		if q := r.Out.URL.Query(); strings.HasPrefix(r.Out.URL.Path, "/upload/storage/v1/") && !q.Has("upload_id") {
			mu.Lock()
			uploads = append(uploads, q.Get("uploadType"))
			mu.Unlock()
		}
	}}
	p.ModifyResponse = func(resp *http.Response) error {
		if !lie || !strings.HasPrefix(resp.Request.URL.Path, "/upload/") || resp.StatusCode != http.StatusOK {
			return nil
		}
		body, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil {
			return err
		}
		var obj map[string]any
		if err := json.Unmarshal(body, &obj); err == nil && obj["md5Hash"] != nil {
			obj["md5Hash"] = md5base64([]byte("other bytes"))
			if body, err = json.Marshal(obj); err != nil {
				return err
			}
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		resp.ContentLength = int64(len(body))
		resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
		return nil
	}
	srv := &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + lis.Addr().String(), func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Sorted(slices.Values(uploads))
	}
}

// The check the comment at the top of this file reads in rclone's source: an upload whose object comes
// back with another MD5 is a failed transfer, the object is removed, and move keeps the local file.
func TestMoveKeepsAFileWhoseUploadComesBackWithAnotherMD5(t *testing.T) {
	e := startEmulator(t)
	src := t.TempDir()
	name := "messages_20170601_00000001.txt.gz"
	b := bytes.Repeat([]byte("a closed day\n"), 1<<16)
	p := filepath.Join(src, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}
	base, _ := proxy(t, e.url, true)
	env := remoteEnv(base+"/storage/v1/", t.TempDir())
	args := append(append([]string{"move", src, "archive:" + bucket + "/" + prefix}, filesFrom(t, name)...), moveFlags...)
	code, out := rclone(t, env, args...)
	if code == 0 || !strings.Contains(out, "corrupted on transfer: md5 hashes differ") {
		t.Errorf("move through a server that reports another MD5: exit %d; want a failure that says the md5 hashes differ", code)
	}
	wantLocal(t, src, name)
	if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got, b) {
		t.Errorf("the local file changed: %v", err)
	}
	if objs := e.objects(t); len(objs) != 0 {
		t.Errorf("the object rclone could not verify is still in the bucket: %v", slices.Collect(maps.Keys(objs)))
	}
}

// Which RCLONE_CONFIG_ARCHIVE_ENDPOINT forms reach the emulator's JSON API: only the base URL with
// /storage/v1/ and its trailing slash lists the bucket.
func TestEndpointForms(t *testing.T) {
	e := startEmulator(t)
	put(t, e, "messages_20170601_00000001.txt.gz", []byte("a closed day\n"), nil)
	for form, works := range map[string]bool{
		e.url + "/storage/v1/": true,
		e.url + "/storage/v1":  false,
		e.url + "/":            false,
		e.url:                  false,
	} {
		code, out := rclone(t, remoteEnv(form, t.TempDir()), "lsf", "--low-level-retries", "1", "--retries", "1",
			"archive:"+bucket+"/"+prefix)
		listed := code == 0 && strings.TrimSpace(out) == "messages_20170601_00000001.txt.gz"
		if listed != works {
			t.Errorf("endpoint %s: exit %d, output %q; want it to work: %v", form, code, out, works)
		}
	}
}

// The toolchain's rclone is release v1.71.0, static, and the version the stand-in's image is named for.
func TestVersion(t *testing.T) {
	code, out := rclone(t, nil, "version")
	first, _, _ := strings.Cut(out, "\n")
	if code != 0 || first != "rclone "+dockerhub.RcloneVersion || !strings.Contains(out, "go/linking: static") {
		t.Errorf("rclone version: exit %d, %q; want rclone %s, static", code, out, dockerhub.RcloneVersion)
	}
	pins, err := exec.Command("../../../hack/toolchain.sh", "--versions").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(strings.Split(string(pins), "\n"), "rclone "+dockerhub.RcloneVersion) {
		t.Errorf("hack/toolchain.sh pins %q, want rclone %s", pins, dockerhub.RcloneVersion)
	}
}

// The flags these tests give rclone are the product's: infra.ArchiverRound calls rclone copy with
// copyFlags and, when pruning, rclone move with moveFlags, each once, on the round's --files-from list;
// without pruning there is no move; never a sync.
func TestArchiverFlagsAreTheProducts(t *testing.T) {
	const paths = ` "$ARCHIVE_SOURCE" "$ARCHIVE_DESTINATION"`
	copyLine := "rclone copy" + paths + ` --files-from "$w/copy" ` + strings.Join(copyFlags, " ")
	moveLine := "rclone move" + paths + ` --files-from "$w/pruning" ` + strings.Join(moveFlags, " ")
	for _, prune := range []bool{false, true} {
		got := infra.ArchiverRound(infra.ArchiveConfig{Bucket: "b", ArchiverEnabled: true, PruneAfterDays: map[bool]int{false: 0, true: 1}[prune]})
		if strings.Count(got, copyLine) != 1 || strings.Count(got, "rclone copy") != 1 {
			t.Errorf("prune %v: the product's round does not copy once with %q:\n%s", prune, copyLine, got)
		}
		if n := strings.Count(got, moveLine); n != map[bool]int{false: 0, true: 1}[prune] || strings.Count(got, "rclone move") != n {
			t.Errorf("prune %v: the product's round moves %d times with %q:\n%s", prune, n, moveLine, got)
		}
		if strings.Contains(got, "sync") {
			t.Errorf("the product's round syncs:\n%s", got)
		}
	}
}
