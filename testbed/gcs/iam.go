package gcs

// The archiver's IAM roles, enforced on the addresses pods use.
//
// Who: ArchiverPrincipal, the Google service account the archiver sidecar acts as (infra/archive.go
// creates it as dumps-archiver-HASH and grants it exactly roles/storage.objectCreator and
// roles/storage.objectViewer on the archive bucket, archiverBucketRoles). Every request that reaches
// an Emulator on one of the extra addresses Start is given (URLOn(host): the real node's pods, the
// archiver's RCLONE_CONFIG_ARCHIVE_ENDPOINT) is that account's. The loopback URL (URL(), the GCP
// stand-in's and the tests' own clients) is the project owner's: nothing is checked there.
//
// The rule, from Cloud Storage's IAM documentation:
//
//   - https://cloud.google.com/storage/docs/access-control/iam-roles: roles/storage.objectCreator
//     grants storage.objects.create, storage.multipartUploads.create, .abort and .listParts and
//     storage.managedFolders.create; roles/storage.objectViewer grants storage.objects.get,
//     storage.objects.list and storage.managedFolders.get and .list (both also grant
//     resourcemanager.projects.get and .list, which no request here needs). Neither grants
//     storage.objects.delete, storage.objects.update or any storage.buckets.* permission.
//   - https://cloud.google.com/storage/docs/access-control/iam-permissions: "storage.objects.create
//     ... Overwriting an object additionally requires storage.objects.delete"; a copy or rewrite needs
//     storage.objects.get on the source and storage.objects.create on the destination (and delete when
//     that exists), a compose likewise; objects.patch and objects.update need storage.objects.update;
//     buckets.get needs storage.buckets.get.
//
// So, for the archiver: uploading (simple, multipart or resumable) an object that does not exist yet
// works; uploading, copying, rewriting or composing onto a name that exists is refused with 403
// "forbidden", "ACCOUNT does not have storage.objects.delete access to the Google Cloud Storage
// object. Permission 'storage.objects.delete' denied on resource (or it may not exist).", the body of
// Cloud Storage's JSON API errors; deleting an object is refused the same way, patching or updating
// one for storage.objects.update; listing and reading objects and their metadata work; reading a
// bucket's metadata (storage.buckets.get), listing or creating buckets and anything about ACLs or
// notifications are refused. rclone's Cloud Storage backend (v1.71.0) needs no bucket permission for
// copy, move, lsf or check when no_check_bucket is set, as the archiver sets it (without it, it
// checks the bucket by listing objects, which objectViewer allows).
//
// When "does the object exist?" is decided: on the request of a simple or multipart upload, and on the
// request that opens a resumable upload (the later requests of the session carry the opener's
// authority, as a session URI does in Cloud Storage), against the emulator's state at that moment. An
// upload found to create a new object is passed on with ifGenerationMatch=0 (unless it names a
// generation itself), so an object that appears between that moment and the upload's end (another
// upload finishing first, or one made on the loopback URL) is not overwritten either: that upload
// fails with fake-gcs-server's 412 conditionNotMet rather than a 403. A request that says
// ifGenerationMatch=0 itself never needs storage.objects.delete: onto an existing name it gets 412
// conditionNotMet (whether Cloud Storage answers 403 or 412 first there is not documented; the
// archiver never sends it). Copies, rewrites and composes are decided on the request only (the
// emulator ignores their preconditions).
//
// Requests this file does not model are refused with a 403 whose reason is "notModeled": the batch
// endpoint, signed-URL uploads, the XML API's writes, a bucket's storage layout,
// X-HTTP-Method-Override, and fake-gcs-server's own /_internal/ endpoints (but its health check). The
// archiver sends none of them.

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/fsouza/fake-gcs-server/fakestorage"
)

// ArchiverPrincipal is who the requests on the extra addresses (URLOn) are: the archiver's Google
// service account, as the errors name it.
const ArchiverPrincipal = "dumps-archiver@loklak-testbed.iam.gserviceaccount.com"

// archiverRoles are the archiver's roles on the bucket and the permissions each grants (iam-roles).
var archiverRoles = map[string][]string{
	"roles/storage.objectCreator": {
		"storage.objects.create",
		"storage.multipartUploads.create", "storage.multipartUploads.abort", "storage.multipartUploads.listParts",
		"storage.managedFolders.create",
	},
	"roles/storage.objectViewer": {
		"storage.objects.get", "storage.objects.list",
		"storage.managedFolders.get", "storage.managedFolders.list",
	},
}

// archiverMay reports whether one of the archiver's roles grants permission.
func archiverMay(permission string) bool {
	for _, permissions := range archiverRoles {
		for _, p := range permissions {
			if p == permission {
				return true
			}
		}
	}
	return false
}

// need is what one request needs.
type need struct {
	permissions []string // every one is needed
	// write, when set, is the object the request stores (an upload, or a copy's, rewrite's or
	// compose's destination): when it exists, storage.objects.delete is needed too.
	write *objectRef
	// upload marks a write that is an upload, which fake-gcs-server stores under the request's
	// ifGenerationMatch (the guard against an object appearing meanwhile).
	upload bool
	// notModeled, when not "", is what the request is that this file does not model: it is refused.
	notModeled string
	xml        bool // the XML API's (errors in its XML form)
}

type objectRef struct{ bucket, name string }

// denial is a refusal, written as Cloud Storage writes one.
type denial struct {
	status          int
	reason, message string
	xml             bool
}

// authorize decides a request to an enforced address: nil lets it through (possibly changed: its body
// rewound after the upload's metadata was read, ifGenerationMatch=0 added), else the refusal to answer.
func authorize(gcs *fakestorage.Server, req *http.Request) *denial {
	n := classify(req)
	if n.notModeled != "" {
		return &denial{status: http.StatusForbidden, reason: "notModeled", xml: n.xml, message: fmt.Sprintf(
			"testbed/gcs (iam.go): %s is not modeled for %s on this address and is refused; the project owner's URL (Emulator.URL) serves it", n.notModeled, ArchiverPrincipal)}
	}
	permissions := n.permissions
	if n.write != nil {
		precondition, found := req.URL.Query().Get("ifGenerationMatch"), exists(gcs, *n.write)
		switch {
		case found && precondition == "0":
			return &denial{status: http.StatusPreconditionFailed, reason: "conditionNotMet", xml: n.xml,
				message: "At least one of the pre-conditions you specified did not hold."}
		case found:
			permissions = append(permissions, "storage.objects.delete") // an overwrite (iam-permissions)
		case n.upload && precondition == "":
			q := req.URL.Query()
			q.Set("ifGenerationMatch", "0")
			req.URL.RawQuery = q.Encode()
		}
	}
	for _, p := range permissions {
		if !archiverMay(p) {
			return &denial{status: http.StatusForbidden, reason: "forbidden", xml: n.xml, message: fmt.Sprintf(
				"%s does not have %s access to %s. Permission '%s' denied on resource (or it may not exist).",
				ArchiverPrincipal, p, resourceOf(p), p)}
		}
	}
	return nil
}

// exists reports whether the emulator has the object now, as its own handlers would find it.
func exists(gcs *fakestorage.Server, o objectRef) bool {
	obj, err := gcs.GetObjectStreaming(o.bucket, o.name)
	if err != nil {
		return false
	}
	_ = obj.Close() // only opened to be found
	return true
}

// resourceOf is what a permission is checked on, as Cloud Storage's messages say it.
func resourceOf(permission string) string {
	switch {
	case permission == "storage.buckets.list" || permission == "storage.buckets.create":
		return "the Google Cloud project"
	case strings.HasPrefix(permission, "storage.buckets."):
		return "the Google Cloud Storage bucket"
	}
	return "the Google Cloud Storage object"
}

// write answers the refusal: the JSON API's error body, or the XML API's. The request's body is read
// first, so that a client still sending an upload reads the answer rather than a broken connection.
func (d *denial) write(w http.ResponseWriter, req *http.Request) {
	_, _ = io.Copy(io.Discard, req.Body) // a body cut short changes nothing in the answer
	if d.xml {
		code := "AccessDenied"
		if d.status == http.StatusPreconditionFailed {
			code = "PreconditionFailed"
		}
		body, _ := xml.Marshal(struct {
			XMLName xml.Name `xml:"Error"`
			Code    string   `xml:"Code"`
			Message string   `xml:"Message"`
		}{Code: code, Message: d.message}) // a struct of strings always marshals
		w.Header().Set("Content-Type", "application/xml; charset=UTF-8")
		w.WriteHeader(d.status)
		_, _ = w.Write(append([]byte(xml.Header), body...))
		return
	}
	type errorItem struct {
		Domain  string `json:"domain"`
		Reason  string `json:"reason"`
		Message string `json:"message"`
	}
	var body struct {
		Error struct {
			Code    int         `json:"code"`
			Message string      `json:"message"`
			Errors  []errorItem `json:"errors"`
		} `json:"error"`
	}
	body.Error.Code, body.Error.Message = d.status, d.message
	body.Error.Errors = []errorItem{{Domain: "global", Reason: d.reason, Message: d.message}}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(d.status)
	_ = json.NewEncoder(w).Encode(body) // the client may be gone: nothing to do about it
}

// The paths fake-gcs-server routes (fakestorage/server.go, buildMuxer), matched as its router does,
// on the escaped path, in its order where routes overlap.
var (
	jsonBuckets     = regexp.MustCompile(`^/storage/v1/b/?$`)
	jsonBucket      = regexp.MustCompile(`^/storage/v1/b/([^/]+)$`)
	jsonBucketACL   = regexp.MustCompile(`^/storage/v1/b/([^/]+)/acl(/[^/]+)?$`)
	jsonBucketNotes = regexp.MustCompile(`^/storage/v1/b/([^/]+)/notificationConfigs(/[^/]+)?$`)
	jsonObjects     = regexp.MustCompile(`^/storage/v1/b/([^/]+)/o/?$`)
	jsonObjectACL   = regexp.MustCompile(`^/storage/v1/b/([^/]+)/o/(.+)/acl(/[^/]+)?$`)
	jsonRewrite     = regexp.MustCompile(`^/storage/v1/b/([^/]+)/o/(.+)/(rewriteTo|copyTo)/b/([^/]+)/o/(.+)$`)
	jsonCompose     = regexp.MustCompile(`^/storage/v1/b/([^/]+)/o/(.+)/compose$`)
	jsonObject      = regexp.MustCompile(`^/storage/v1/b/([^/]+)/o/(.+)$`)
	downloadObject  = regexp.MustCompile(`^/download/storage/v1/b/([^/]+)/o/(.+)$`)
	uploadObjects   = regexp.MustCompile(`^/upload/storage/v1/b/([^/]+)/o/?$`)
	uploadSession   = regexp.MustCompile(`^/upload/resumable/[^/]+$`)
	xmlBucket       = regexp.MustCompile(`^/([^/]+)/?$`)
	xmlObject       = regexp.MustCompile(`^/([^/]+)/(.+)$`)
)

// unescape is a path variable as fake-gcs-server reads it (unescapeMuxVars).
func unescape(s string) string {
	if u, err := url.PathUnescape(s); err == nil {
		return u
	}
	return s
}

// classify is what req needs, as the archiver's.
func classify(req *http.Request) need {
	method, path := req.Method, req.URL.EscapedPath()
	allow := func(permissions ...string) need { return need{permissions: permissions} }
	if req.Header.Get("X-HTTP-Method-Override") != "" {
		return need{notModeled: "X-HTTP-Method-Override"}
	}
	if method == http.MethodOptions {
		return allow() // a CORS preflight: no data
	}
	get := method == http.MethodGet || method == http.MethodHead
	var m []string
	match := func(re *regexp.Regexp) bool { m = re.FindStringSubmatch(path); return m != nil }
	switch {
	case path == "/_internal/healthcheck" && get:
		return allow()
	case strings.HasPrefix(path, "/_internal/"):
		return need{notModeled: "fake-gcs-server's " + path}
	case strings.HasPrefix(path, "/batch/"):
		return need{notModeled: "the batch endpoint"}

	case match(jsonBuckets):
		if method == http.MethodPost {
			return allow("storage.buckets.create")
		}
		return allow("storage.buckets.list")
	case match(jsonBucket):
		switch method {
		case http.MethodPatch, http.MethodPost:
			return allow("storage.buckets.update")
		case http.MethodDelete:
			return allow("storage.buckets.delete")
		}
		return allow("storage.buckets.get")
	case match(jsonBucketACL):
		if get {
			return allow("storage.buckets.getIamPolicy")
		}
		return allow("storage.buckets.setIamPolicy")
	case match(jsonBucketNotes):
		if get {
			return allow("storage.buckets.get")
		}
		return allow("storage.buckets.update")
	case match(jsonObjects):
		return allow("storage.objects.list")
	case method == http.MethodPatch && match(jsonObject):
		return allow("storage.objects.update")
	case match(jsonObjectACL):
		if get {
			return allow("storage.objects.getIamPolicy")
		}
		return allow("storage.objects.setIamPolicy")
	case get && match(jsonObject):
		return allow("storage.objects.get")
	case method == http.MethodDelete && match(jsonObject):
		return allow("storage.objects.delete")
	case method == http.MethodPost && match(jsonRewrite):
		return need{permissions: []string{"storage.objects.get", "storage.objects.create"},
			write: &objectRef{unescape(m[4]), unescape(m[5])}}
	case method == http.MethodPost && match(jsonCompose):
		return need{permissions: []string{"storage.objects.get", "storage.objects.create"},
			write: &objectRef{unescape(m[1]), unescape(m[2])}}
	case match(jsonObject):
		return allow("storage.objects.update") // PUT or POST: objects.update
	case strings.HasPrefix(path, "/storage/v1/"):
		return need{notModeled: method + " " + path}

	case get && match(downloadObject):
		return allow("storage.objects.get")
	case match(uploadObjects):
		switch method {
		case http.MethodPost:
			return classifyUpload(req, unescape(m[1]))
		case http.MethodPut, http.MethodDelete:
			return allow() // a resumable session's chunk, or its cancellation: authorized when opened
		}
		return need{notModeled: method + " " + path}
	case uploadSession.MatchString(path) && (method == http.MethodPut || method == http.MethodPost):
		return allow() // a resumable session's chunk
	case strings.HasPrefix(path, "/upload/") || strings.HasPrefix(path, "/download/"):
		return need{notModeled: method + " " + path}

	// The rest is the XML API, path-style (the Emulator routes every other path so).
	case path == "/":
		return need{permissions: []string{"storage.buckets.list"}, xml: true}
	case get && match(xmlBucket):
		return need{permissions: []string{"storage.objects.list"}, xml: true}
	case get && match(xmlObject):
		return need{permissions: []string{"storage.objects.get"}, xml: true}
	case method == http.MethodDelete && match(xmlObject):
		return need{permissions: []string{"storage.objects.delete"}, xml: true}
	}
	return need{notModeled: "the XML API's " + method + " " + path, xml: true}
}

// uploadMetadata is the part of an upload's object resource that names it.
type uploadMetadata struct {
	Bucket string `json:"bucket"`
	Name   string `json:"name"`
}

// gsutilBoundary is fake-gcs-server's fix of gsutil's quoting of a multipart boundary (upload.go).
var gsutilBoundary = regexp.MustCompile(`boundary='([^']*[()<>@,;:"/\[\]?= ]+[^']*)'`)

// classifyUpload is what a POST to /upload/storage/v1/b/BUCKET/o needs: the object it stores is found
// where fake-gcs-server finds it (insertObject and the upload kinds' handlers in its upload.go).
func classifyUpload(req *http.Request, bucket string) need {
	q := req.URL.Query()
	creates := func(bucket, name string) need {
		return need{permissions: []string{"storage.objects.create"}, write: &objectRef{bucket, name}, upload: true}
	}
	uploadType := q.Get("uploadType")
	if uploadType == "resumable" && strings.Contains(req.Header.Get("Content-Type"), "application/json") {
		meta, ok := readJSONBody(req)
		if !ok {
			return need{notModeled: "a resumable upload whose metadata cannot be read"}
		}
		if meta.Bucket != "" { // handleBodyBasedResumableUpload: the body names bucket and object
			return creates(meta.Bucket, meta.Name)
		}
	}
	if uploadType == "" && req.Header.Get("X-Goog-Upload-Protocol") == "resumable" {
		uploadType = "resumable"
	}
	switch uploadType {
	case "media":
		return creates(bucket, q.Get("name"))
	case "resumable":
		if q.Has("upload_id") {
			return need{} // a chunk of an open session
		}
		name := q.Get("name")
		if name == "" {
			meta, ok := readJSONBody(req)
			if !ok {
				return need{notModeled: "a resumable upload whose metadata cannot be read"}
			}
			name = meta.Name
		}
		return creates(bucket, name)
	case "multipart":
		name := q.Get("name")
		if name == "" {
			meta, ok := readFirstPart(req)
			if !ok {
				return need{notModeled: "a multipart upload whose metadata cannot be read"}
			}
			name = meta.Name
		}
		return creates(bucket, name)
	}
	if q.Get("X-Goog-Algorithm") != "" {
		return need{notModeled: "a signed-URL upload"}
	}
	return need{} // fake-gcs-server refuses it: "invalid uploadType"
}

// readJSONBody reads req's whole body (an upload's JSON metadata, small), decodes it, and leaves the
// body to be read again. An empty body is empty metadata.
func readJSONBody(req *http.Request) (uploadMetadata, bool) {
	var meta uploadMetadata
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return meta, false
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	if len(bytes.TrimSpace(body)) == 0 {
		return meta, true
	}
	return meta, json.Unmarshal(body, &meta) == nil
}

// readFirstPart decodes a multipart upload's first part, its JSON metadata, reading no more of the
// body than that takes, and leaves the body whole to be read again.
func readFirstPart(req *http.Request) (uploadMetadata, bool) {
	var meta uploadMetadata
	_, params, err := mime.ParseMediaType(gsutilBoundary.ReplaceAllString(req.Header.Get("Content-Type"), `boundary="$1"`))
	if err != nil || params["boundary"] == "" {
		return meta, false
	}
	var read bytes.Buffer
	body := req.Body
	defer func() {
		req.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(&read, body), body}
	}()
	part, err := multipart.NewReader(io.TeeReader(body, &read), params["boundary"]).NextPart()
	if err != nil {
		return meta, false
	}
	return meta, json.NewDecoder(part).Decode(&meta) == nil
}
