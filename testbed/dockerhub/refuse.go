package dockerhub

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
)

// Docker Hub's refusal of a pull over its rate limit: HTTP 429 Too Many Requests with this registry error,
// as docs.docker.com/docker-hub/usage/ ("Pull rate limit") gives it:
//
//	{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your unauthenticated pull rate limit. https://www.docker.com/increase-rate-limit"}]}
//
// The server answers a refused repository's manifest and blob requests with it (Refuse).
const (
	RateLimitCode    = "TOOMANYREQUESTS"
	RateLimitMessage = "You have reached your unauthenticated pull rate limit. https://www.docker.com/increase-rate-limit"
)

// RateLimitBody is the body of the server's 429, byte for byte Docker Hub's.
var RateLimitBody = registryErrorBody(RateLimitCode, RateLimitMessage)

func registryErrorBody(code, message string) []byte {
	type regErr struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	b, err := json.Marshal(struct {
		Errors []regErr `json:"errors"`
	}{[]regErr{{code, message}}})
	if err != nil {
		panic(err) // two strings always marshal
	}
	return b
}

// AdminPath is the server's refusal endpoint, on its own listener beside the registries. No registry
// client sends a request there: the distribution API is all under /v2/.
//
//	PUT    /testbed/refusals/REPOSITORY   refuse REPOSITORY's pulls from now on: 204
//	DELETE /testbed/refusals/REPOSITORY   allow them again (whether or not they were refused): 204
//	GET    /testbed/refusals              the refused repositories, a JSON array of full names: 200
//
// REPOSITORY is written as an image reference's repository, without tag or digest: "rclone/rclone",
// "loklak/loklak_server", "busybox" (Docker Hub's library/busybox), "docker.io/rclone/rclone",
// "registry.k8s.io/kubectl"; a full name is HOST/REPOSITORY with HOST one of Hosts and library/ added to a
// one-part Docker Hub name ("docker.io/rclone/rclone", "docker.io/library/busybox"). A name that is not a
// repository, or whose host the server does not stand in for, is a 400. The client is Refuse, Allow and
// Refused.
const AdminPath = "/testbed/refusals"

// RefusalName is repository's full name, HOST/REPOSITORY as AdminPath's GET lists it: Docker Hub's host
// as containerd names it (docker.io) and library/ added to a one-part Docker Hub name. It is an error if
// repository is not a repository name (a tag or digest in it, say) or its host is not one of Hosts.
func RefusalName(repository string) (string, error) {
	r, err := name.NewRepository(repository)
	if err != nil {
		return "", fmt.Errorf("repository %q: %w", repository, err)
	}
	host := r.RegistryStr()
	if host == name.DefaultRegistry {
		host = DockerHubHost
	}
	if !servesHost(host) {
		return "", fmt.Errorf("repository %q is on %s; the stand-in serves %s", repository, host, strings.Join(Hosts, " and "))
	}
	return host + "/" + r.RepositoryStr(), nil
}

// refusals are the refused repositories, by full name (RefusalName).
type refusals struct {
	mu  sync.Mutex
	set map[string]bool
}

func newRefusals() *refusals { return &refusals{set: map[string]bool{}} }

func (f *refusals) has(full string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.set[full]
}

func (f *refusals) list() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, 0, len(f.set))
	for k := range f.set {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func (f *refusals) serveAdmin(w http.ResponseWriter, r *http.Request, logger *log.Logger) {
	repository := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, AdminPath), "/")
	if repository == "" {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			http.Error(w, r.Method+" "+AdminPath+": only GET lists the refusals", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(f.list())
		return
	}
	if r.Method != http.MethodPut && r.Method != http.MethodDelete {
		w.Header().Set("Allow", "PUT, DELETE")
		http.Error(w, r.Method+" "+r.URL.Path+": PUT refuses the repository, DELETE allows it", http.StatusMethodNotAllowed)
		return
	}
	full, err := RefusalName(repository)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	if r.Method == http.MethodPut {
		f.set[full] = true
	} else {
		delete(f.set, full)
	}
	f.mu.Unlock()
	if r.Method == http.MethodPut {
		logger.Printf("refusing every manifest and blob request of %s with 429 %s from now on", full, RateLimitCode)
	} else {
		logger.Printf("allowing %s again", full)
	}
	w.WriteHeader(http.StatusNoContent)
}

// Refuse makes the stand-in at addr (host:port: what the harness has in gke.ControlPlane.Registry, or
// Server.Addr) answer every manifest and blob request of repository, GET or HEAD, by tag or by digest, with
// Docker Hub's rate-limit refusal (429 and RateLimitBody) until Allow; other repositories are unaffected.
// repository is as AdminPath says: "rclone/rclone", "registry.k8s.io/kubectl". containerd then fails the
// pull with an error that names the 429 (the kubelet's ErrImagePull, then ImagePullBackOff); an image
// already on the node is not pulled again under imagePullPolicy IfNotPresent, so a refusal does not touch
// it.
//
// Unlike Docker Hub, which counts only GETs of manifests and answers HEADs whatever the count, every
// method is refused, blobs too: the pull fails at its first request (containerd resolves a tag with a
// HEAD), as a node over the limit fails it.
func Refuse(ctx context.Context, addr, repository string) error {
	return adminRequest(ctx, http.MethodPut, addr, repository)
}

// Allow undoes Refuse: repository's pulls from the stand-in at addr are served again. Allowing a
// repository that is not refused is no error.
func Allow(ctx context.Context, addr, repository string) error {
	return adminRequest(ctx, http.MethodDelete, addr, repository)
}

// Refused lists the repositories the stand-in at addr refuses, by full name (RefusalName), sorted.
func Refused(ctx context.Context, addr string) ([]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+AdminPath, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("listing the refusals of the registry stand-in at %s: %w", addr, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s on %s: %s: %s", AdminPath, addr, resp.Status, strings.TrimSpace(string(body)))
	}
	var out []string
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("GET %s on %s: %w", AdminPath, addr, err)
	}
	return out, nil
}

func adminRequest(ctx context.Context, method, addr, repository string) error {
	if _, err := RefusalName(repository); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+AdminPath+"/"+repository, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s on the registry stand-in at %s: %w", method, repository, addr, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("%s %s%s on %s: %s: %s", method, AdminPath+"/", repository, addr, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}
