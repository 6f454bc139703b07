package dockerhub

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
)

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

// Server is go-containerregistry's in-memory registry (pkg/registry) served over plain HTTP on a
// loopback listener. It starts empty; Push fills it.
type Server struct {
	lis net.Listener
	srv *http.Server
}

// Listen checks addr with CheckLoopback and listens on it. requests receives one line per request
// (method, URL, and status and error code for a failure); nil discards them.
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
		Handler:           registry.New(registry.Logger(requests)),
		ReadHeaderTimeout: 30 * time.Second,
	}}, nil
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
