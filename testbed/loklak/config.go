package loklak

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Environment variables the stand-in reads. The first four are loklak_server's own (field-facts.md,
// "Config"); the LOKLAK_STANDIN_ ones exist only here.
const (
	EnvPort             = "PORT"               // loklak: overrides port.http (default 9000)
	EnvXmx              = "ENVXmx"             // loklak: the JVM heap, wins over Xmx
	EnvDumpWriteEnabled = "dump_write_enabled" // loklak: dump.write_enabled with '.' replaced by '_'
	EnvCommitHash       = "COMMIT_HASH"        // loklak: reported under "commit" by /api/status.json

	EnvStartDelay   = "LOKLAK_STANDIN_START_DELAY"   // Go duration until ready, like the JVM's start
	EnvDumpInterval = "LOKLAK_STANDIN_DUMP_INTERVAL" // Go duration between two appended messages
	EnvDataDir      = "LOKLAK_STANDIN_DATA"          // loklak's data directory
	EnvVersion      = "LOKLAK_STANDIN_VERSION"       // the version the status reports (set by the image)
	EnvImage        = "LOKLAK_STANDIN_IMAGE"         // the image reference the status reports (set by the image)
)

// Defaults, chosen to match loklak_server where it has one.
const (
	DefaultPort         = 9000                  // conf/config.properties port.http
	DefaultXmx          = "512m"                // conf/config.properties Xmx
	DefaultDataDir      = "/loklak_server/data" // the Dockerfile's VOLUME
	DefaultStartDelay   = 5 * time.Second       // the real JVM takes much longer; a probe only needs "not at once"
	DefaultDumpInterval = 2 * time.Second       // one message every two seconds: visible, and tiny on disk
	DefaultVersion      = "dev"                 // a binary run outside the images
	// DefaultShutdownTimeout bounds the wait for requests in flight (a dump download, say) after
	// SIGTERM; Kubernetes' default grace period is 30 s.
	DefaultShutdownTimeout = 20 * time.Second
	WorkingDir             = "/loklak_server"         // the image's working directory
	DumpFilePrefix         = "messages_"              // DAO.MESSAGE_DUMP_FILE_PREFIX
	dumpDirName            = "dump"                   // DAO: dataPath.resolve("dump")
	ownDirName             = "own"                    // JsonRepository: messages written by this peer
	dumpReadmeName         = "readme.txt"             // JsonRepository writes one into dump/
	statusPath             = "/api/status.json"       // StatusService.getAPIPath
	dumpListingPath        = "/dump/"                 // DumpDownloadServlet
	statusContentType      = "application/javascript" // what loklak's StatusService sets
)

// Config is everything the stand-in can be told. ConfigFromEnv fills it the way the container sees it;
// tests build one directly.
type Config struct {
	Port             int           // TCP port to listen on (Serve callers may bring their own listener)
	Xmx              string        // the heap the status reports
	DataDir          string        // loklak's data directory; dumps go to DataDir/dump/own
	DumpWriteEnabled bool          // loklak's dump.write_enabled
	StartDelay       time.Duration // how long after start /api/status.json keeps answering 503
	DumpInterval     time.Duration // how often a message is appended to the dump
	Version          string        // the stand-in's version, as the image names it
	Image            string        // the image reference, if the image set it
	CommitHash       string        // loklak's COMMIT_HASH, reported as is
	ShutdownTimeout  time.Duration // how long Serve lets requests in flight finish; 0 means the default

	Clock   Clock        // nil means RealClock
	OnEvent func(Event)  // called from the stand-in's goroutines for every Event; may be nil
	Rand    func() int64 // source of the 8 digits in a new dump file's name; nil means math/rand
	// Exit ends the process when ControlGzipCutAfterBytes cuts a gzip; nil means os.Exit. Tests set it
	// so that the cut does not end the test binary.
	Exit func(code int)
}

// The control directory: files a test writes to steer the stand-in, in DATA/standin-control (see
// ControlDir). It is on loklak's data volume so that it outlives a pod restart, and a test on the node
// can write it through /proc/PID/root. The stand-in only reads it, never creates it. Every file is
// optional, read when it matters (never cached, not even across a restart), and trimmed of surrounding
// white space. A file whose value does not parse fails what it steers, loudly: the start (clock-offset
// at start), the message (clock-offset later), or the gzip (the two gzip files).
const (
	ControlDirName = "standin-control"

	// ControlClockOffset holds a Go duration ("72h", "-30m") added to the clock for everything the
	// stand-in dates: the day of the dump file chosen at start and the messages' timestamps. It is read
	// at start and for every message, so a test can move days without a restart; the dump file still
	// changes only at a start, as loklak reads the date only then (JsonRepository.java line 142). The
	// start delay, dump interval, status runtime and files' modification times are not moved.
	ControlClockOffset = "clock-offset"

	// ControlGzipCutAfterBytes holds a byte count N. Each background gzip writes N bytes of its .gz
	// (or the whole stream, if shorter), syncs the .gz to disk, logs a gzip-cut event and ends the
	// process with status 137, as the kernel's OOM killer ends a JVM. The truncated .gz and its .txt
	// stay, as loklak leaves them when it dies mid-gzip; the next start deletes that .gz and gzips the
	// .txt again from its start.
	ControlGzipCutAfterBytes = "gzip-cut-after-bytes"

	// ControlFailStart, when it exists, makes the stand-in log "loklak-standin: cannot start:
	// CONTENTS" and exit with status 1 before it listens or touches the dump: a JVM that cannot start,
	// which Kubernetes turns into a crash loop.
	ControlFailStart = "fail-start"

	// ControlFailStartAfterCut, when it exists as a gzip is cut (ControlGzipCutAfterBytes), makes the
	// stand-in write ControlFailStart ("the last run was killed while compressing") before it exits, so
	// every later start fails and the truncated .gz stays as the cut left it: loklak killed mid-gzip
	// and then unable to start. A test removes ControlFailStart to let it start again.
	ControlFailStartAfterCut = "fail-start-after-cut"

	// ControlGzipBytesPerSecond holds a rate in bytes per second that each background gzip's output
	// is held to (written in tenths of a second of real time, not the Clock), so that a test can watch
	// the .gz grow. Each step is reported as an EventGzipProgress.
	ControlGzipBytesPerSecond = "gzip-bytes-per-second"
)

// ControlDir is the control directory under dataDir: DATA/standin-control.
func ControlDir(dataDir string) string { return filepath.Join(dataDir, ControlDirName) }

// readControl returns the trimmed contents of the control file name, and whether it exists.
func readControl(dataDir, name string) (string, bool, error) {
	b, err := os.ReadFile(filepath.Join(ControlDir(dataDir), name))
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return strings.TrimSpace(string(b)), true, nil
}

// clockOffset reads ControlClockOffset: zero when the file is missing.
func clockOffset(dataDir string) (time.Duration, error) {
	v, ok, err := readControl(dataDir, ControlClockOffset)
	if !ok || err != nil {
		return 0, err
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", ControlClockOffset, err)
	}
	return d, nil
}

// controlCount reads a control file that holds a count of bytes: -1 when the file is missing.
func controlCount(dataDir, name string) (int64, error) {
	v, ok, err := readControl(dataDir, name)
	if !ok || err != nil {
		return -1, err
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return -1, fmt.Errorf("%s: %q is not a count of bytes", name, v)
	}
	return n, nil
}

// failStart is the error ControlFailStart asks for, or nil when the file is missing.
func failStart(dataDir string) error {
	v, ok, err := readControl(dataDir, ControlFailStart)
	if !ok || err != nil {
		return err
	}
	return fmt.Errorf("cannot start: %s", v)
}

// ConfigFromEnv reads the configuration from environment variables through lookupEnv (os.LookupEnv in
// the binary), with the defaults above for everything unset. An empty value counts as unset, except for
// dump_write_enabled: loklak reads any value there but "true", "on" and "1" as false.
func ConfigFromEnv(lookupEnv func(string) (string, bool)) (Config, error) {
	getenv := func(k string) string { v, _ := lookupEnv(k); return v }
	cfg := Config{
		Port:             DefaultPort,
		Xmx:              DefaultXmx,
		DataDir:          DefaultDataDir,
		DumpWriteEnabled: true,
		StartDelay:       DefaultStartDelay,
		DumpInterval:     DefaultDumpInterval,
		Version:          DefaultVersion,
	}
	if v := getenv(EnvPort); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil || p < 0 || p > 65535 {
			return Config{}, fmt.Errorf("%s=%q: not a TCP port", EnvPort, v)
		}
		cfg.Port = p
	}
	if v := getenv(EnvXmx); v != "" {
		cfg.Xmx = v
	}
	if v, ok := lookupEnv(EnvDumpWriteEnabled); ok {
		cfg.DumpWriteEnabled = loklakBool(v)
	}
	for _, d := range []struct {
		env string
		dst *time.Duration
	}{{EnvStartDelay, &cfg.StartDelay}, {EnvDumpInterval, &cfg.DumpInterval}} {
		v := getenv(d.env)
		if v == "" {
			continue
		}
		dur, err := time.ParseDuration(v)
		if err != nil {
			return Config{}, fmt.Errorf("%s=%q: %w", d.env, v, err)
		}
		if dur < 0 {
			return Config{}, fmt.Errorf("%s=%q: negative", d.env, v)
		}
		*d.dst = dur
	}
	if cfg.DumpInterval == 0 {
		return Config{}, fmt.Errorf("%s must be more than zero", EnvDumpInterval)
	}
	if v := getenv(EnvDataDir); v != "" {
		cfg.DataDir = v
	}
	if v := getenv(EnvVersion); v != "" {
		cfg.Version = v
	}
	cfg.Image = getenv(EnvImage)
	cfg.CommitHash = getenv(EnvCommitHash)
	return cfg, nil
}

// loklakBool parses a boolean the way DAO.getConfig(key, boolean) does: "true", "on" and "1" are true,
// every other value is false (case matters).
func loklakBool(v string) bool {
	return v == "true" || v == "on" || v == "1"
}
