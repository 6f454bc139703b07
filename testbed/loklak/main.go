package loklak

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
)

// Main runs the stand-in as its container does and returns the exit status: configuration from the
// environment (lookupEnv is os.LookupEnv in the binary), logs to stderr, and a clean stop on SIGTERM or
// SIGINT: HTTP stops, the dump is synced and closed, gzips still running are cut off, status 0. It
// prints "listening on ADDR" once the port is open (before the start delay ends). With the control file
// ControlFailStart it prints "loklak-standin: cannot start: CONTENTS" and returns 1 before it listens;
// a gzip cut by ControlGzipCutAfterBytes ends the process with status 137 (Config.Exit is os.Exit).
func Main(lookupEnv func(string) (string, bool), stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	logger := log.New(stderr, "loklak-standin: ", log.LstdFlags|log.LUTC)
	cfg, err := ConfigFromEnv(lookupEnv)
	if err != nil {
		logger.Print(err)
		return 2
	}
	if err := failStart(cfg.DataDir); err != nil {
		// before listening: a JVM that cannot start never opens its port
		_, _ = fmt.Fprintf(stderr, "loklak-standin: %v\n", err)
		return 1
	}
	cfg.OnEvent = func(e Event) {
		if e.Kind != EventGzipProgress {
			logger.Print(e)
		}
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(cfg.Port)))
	if err != nil {
		logger.Print(err)
		return 1
	}
	logger.Printf("listening on %s (version %s, Xmx %s, data %s, dump_write_enabled %t, start delay %s)",
		ln.Addr(), cfg.Version, cfg.Xmx, cfg.DataDir, cfg.DumpWriteEnabled, cfg.StartDelay)
	if err := New(cfg).Serve(ctx, ln); err != nil {
		logger.Print(err)
		return 1
	}
	logger.Print("terminated")
	return 0
}
