package gcs

// The emulator run inside one process (InProcess), what both ways share, and the client of a server.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"cloud.google.com/go/storage"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/api/option"
)

// RootDir is the emulator's root under the simulated project's directory: one folder per bucket.
const RootDir = "gcs"

// LockFile, under the simulated project's directory, is what the owner of RootDir holds a flock on.
const LockFile = ".gcs-server.lock"

// BucketsLocation is the location the emulator reports for every bucket: the region the project's
// stacks use. The GCP stand-in keeps each bucket's real location in its own document.
const BucketsLocation = "US-CENTRAL1"

// options are fakestorage's options for the folder, without the listener (each user adds its own).
func options(gceDir string) fakestorage.Options {
	return fakestorage.Options{StorageRoot: filepath.Join(gceDir, RootDir), NoListener: true, BucketsLocation: BucketsLocation}
}

// lockDir takes the flock on gceDir's LockFile (exclusive for a server, shared for an in-process user)
// without waiting, and returns the open file that holds it: closing it releases the lock.
func lockDir(gceDir string, how int) (*os.File, error) {
	if err := os.MkdirAll(gceDir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(gceDir, LockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		_ = f.Close() // the flock's error is the one to report
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errBusy
		}
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return f, nil
}

var errBusy = errors.New("busy")

// Local is the emulator run inside this process, without a listener (InProcess).
type Local struct {
	srv  *fakestorage.Server
	lock *os.File // held (shared) as long as the emulator lives
}

// InProcess starts the emulator over gceDir's RootDir inside this process, with no listener: its
// Client talks to it through an in-memory transport. It refuses while an Emulator serves the folder
// (its clients should use the server's URL instead), and keeps a shared lock on the folder until Close
// or the process ends, so no Emulator starts over it meanwhile.
func InProcess(gceDir string) (*Local, error) {
	root := filepath.Join(gceDir, RootDir)
	lock, err := lockDir(gceDir, syscall.LOCK_SH)
	if errors.Is(err, errBusy) {
		return nil, fmt.Errorf("cloud storage emulator in %s: a Cloud Storage server (testbed/gcs) serves that folder; talk to it at its URL (LOKLAK_GCS_STANDIN_URL) instead of opening the folder a second time", root)
	}
	if err != nil {
		return nil, fmt.Errorf("cloud storage emulator in %s: %w", root, err)
	}
	srv, err := fakestorage.NewServerWithOptions(options(gceDir))
	if err != nil {
		_ = lock.Close() // the emulator's error is the one to report
		return nil, fmt.Errorf("cloud storage emulator in %s: %w", root, err)
	}
	return &Local{srv: srv, lock: lock}, nil
}

// Client is a Cloud Storage client of the in-process emulator.
func (l *Local) Client() *storage.Client { return l.srv.Client() }

// Close stops the emulator and releases the folder.
func (l *Local) Close() error {
	l.srv.Stop()
	return l.lock.Close()
}

// NewClient is a Cloud Storage client of the server at baseURL ("http://127.0.0.1:PORT", an Emulator's
// URL): the JSON API, for reads too, without credentials. A failed request is retried twice after a
// short pause (an idle connection the server closed, say), then reported: a server that is down fails a
// call within a second instead of being retried until the caller's context ends, which is never for
// context.Background.
func NewClient(ctx context.Context, baseURL string) (*storage.Client, error) {
	client, err := storage.NewClient(ctx,
		option.WithEndpoint(strings.TrimSuffix(baseURL, "/")+"/storage/v1/"),
		option.WithoutAuthentication(),
		storage.WithJSONReads())
	if err != nil {
		return nil, fmt.Errorf("cloud storage client of %s: %w", baseURL, err)
	}
	client.SetRetry(storage.WithMaxAttempts(3),
		storage.WithBackoff(gax.Backoff{Initial: 100 * time.Millisecond, Max: 500 * time.Millisecond, Multiplier: 2}))
	return client, nil
}
