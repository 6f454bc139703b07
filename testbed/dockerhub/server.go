package dockerhub

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
)

// The registries the server stands in for, named as containerd names them in the `ns` query parameter it
// adds to every request it sends to a registry mirror (remotes/docker/resolver.go, request.addNamespace,
// in containerd 1.6.20 as in 1.7: the resolve HEAD and GET, and the fetcher's manifest and blob GETs).
const (
	// DockerHubHost is Docker Hub. A request without `ns` is for it too: the harness's probes and
	// go-containerregistry clients (crane) send none.
	DockerHubHost = "docker.io"
	// K8sRegistryHost is registry.k8s.io, Kubernetes' own registry (k8sregistry.go).
	K8sRegistryHost = "registry.k8s.io"
)

// Hosts are the registries the server stands in for, each an in-memory registry of its own behind the
// one listener, chosen by the request's `ns`.
var Hosts = []string{DockerHubHost, K8sRegistryHost}

// CheckLoopback returns an error unless addr is host:port with host a loopback IP literal
// ("127.0.0.1:5000", "[::1]:5000"; port 0 picks a free one). A bare ":5000", 0.0.0.0, a name such as
// localhost, or any other address is refused: the registry has no authentication and must be reachable
// only from this machine.
func CheckLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen address %q: %w (want a loopback host:port such as 127.0.0.1:5000)", addr, err)
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("listen address %q is not a loopback address: the stand-in registry has no "+
			"authentication and listens only on a loopback IP such as 127.0.0.1:5000", addr)
	}
	return nil
}

// Server is go-containerregistry's in-memory registry (pkg/registry), one per entry of Hosts, served over
// plain HTTP on a loopback listener: a request goes to the registry its `ns` query parameter names
// (DockerHubHost without one; 404 NAME_UNKNOWN for a host not in Hosts). It starts empty; Push fills it.
//
// It also answers, on the same listener, the refusal endpoint under AdminPath (refuse.go), through which
// a test makes it refuse one repository's pulls as Docker Hub does over its rate limit.
type Server struct {
	lis net.Listener
	srv *http.Server
}

// Listen checks addr with CheckLoopback and listens on it. requests receives one line per request
// (method, URL, and status and error code for a failure; a refused pull and a refusal's change, too);
// nil discards them.
func Listen(addr string, requests *log.Logger) (*Server, error) {
	if err := CheckLoopback(addr); err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening for the registry: %w", err)
	}
	if requests == nil {
		requests = log.New(discard{}, "", 0)
	}
	return &Server{lis: lis, srv: &http.Server{
		Handler:           newRouter(requests),
		ReadHeaderTimeout: 30 * time.Second,
	}}, nil
}

// router sends each request to the refusal endpoint, a refusal, or the registry of its host.
type router struct {
	registries map[string]http.Handler
	refusals   *refusals
	log        *log.Logger
}

func newRouter(requests *log.Logger) *router {
	rt := &router{registries: map[string]http.Handler{}, refusals: newRefusals(), log: requests}
	for _, h := range Hosts {
		rt.registries[h] = registry.New(registry.Logger(requests))
	}
	return rt
}

func (rt *router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == AdminPath || strings.HasPrefix(r.URL.Path, AdminPath+"/") {
		rt.refusals.serveAdmin(w, r, rt.log)
		return
	}
	host := r.URL.Query().Get("ns")
	if host == "" {
		host = DockerHubHost
	}
	reg, ok := rt.registries[host]
	if !ok {
		rt.log.Printf("%s %s: 404 NAME_UNKNOWN (no registry %s here)", r.Method, r.URL, host)
		writeRegistryError(w, http.StatusNotFound, "NAME_UNKNOWN",
			fmt.Sprintf("this stand-in serves %s, not %s", strings.Join(Hosts, " and "), host))
		return
	}
	if repo, ok := pullRepository(r.URL.Path); ok && rt.refusals.has(host+"/"+repo) {
		rt.log.Printf("%s %s: 429 TOOMANYREQUESTS (refused: %s/%s)", r.Method, r.URL, host, repo)
		writeRegistryError(w, http.StatusTooManyRequests, RateLimitCode, RateLimitMessage)
		return
	}
	reg.ServeHTTP(w, r)
}

// pullRepository is the repository of a manifest or blob request, /v2/REPOSITORY/manifests/REFERENCE or
// /v2/REPOSITORY/blobs/DIGEST, whatever its method; ok is false for any other path (/v2/, an upload under
// /v2/REPOSITORY/blobs/uploads/, the catalog, tags).
func pullRepository(path string) (repo string, ok bool) {
	rest, ok := strings.CutPrefix(path, "/v2/")
	if !ok {
		return "", false
	}
	for _, kind := range []string{"/manifests/", "/blobs/"} {
		i := strings.LastIndex(rest, kind)
		if i <= 0 {
			continue
		}
		ref := rest[i+len(kind):]
		if ref == "" || strings.Contains(ref, "/") || (kind == "/blobs/" && ref == "uploads") {
			continue
		}
		return rest[:i], true
	}
	return "", false
}

// writeRegistryError answers with a distribution-spec error body, {"errors":[{"code":...,"message":...}]}.
func writeRegistryError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Docker-Distribution-Api-Version", "registry/2.0")
	w.WriteHeader(status)
	_, _ = w.Write(registryErrorBody(code, message))
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// Addr is the address the server listens on, host:port, with the port chosen if Listen was given 0.
func (s *Server) Addr() string { return s.lis.Addr().String() }

// Serve answers requests until Shutdown, then returns nil; any other end is an error.
func (s *Server) Serve() error {
	if err := s.srv.Serve(s.lis); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving the registry on %s: %w", s.Addr(), err)
	}
	return nil
}

// Shutdown stops accepting connections and waits for requests in flight until ctx ends, then closes the
// connections left (a pull cut short, or a connection a client opened and never used: net/http counts
// those as busy for 5 s). It returns an error only if closing fails.
func (s *Server) Shutdown(ctx context.Context) error {
	if err := s.srv.Shutdown(ctx); err != nil {
		if cerr := s.srv.Close(); cerr != nil {
			return fmt.Errorf("closing the registry on %s: %w", s.Addr(), cerr)
		}
	}
	return nil
}

// Close closes the listener and every connection at once.
func (s *Server) Close() error { return s.srv.Close() }

// servesHost says whether host is one of Hosts.
func servesHost(host string) bool { return slices.Contains(Hosts, host) }
