// Package trace prints timing lines in git's GIT_TRACE style
// ("trace git-onesis: scan: 1.234s") when GIT_TRACE is set to 1, 2 or
// true (stderr) or to an absolute file path (appended), so an admin can see
// where a slow hook spends its time.
package trace

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

var (
	once sync.Once
	out  io.Writer
	mu   sync.Mutex
)

func writer() io.Writer {
	once.Do(func() {
		v := os.Getenv("GIT_TRACE")
		switch v {
		case "", "0", "false", "no", "off":
		case "1", "2", "true", "yes", "on":
			out = os.Stderr
		default:
			if filepath.IsAbs(v) {
				if f, err := os.OpenFile(v, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); err == nil {
					out = f
				}
			}
		}
	})
	return out
}

// Enabled reports whether tracing is on.
func Enabled() bool { return writer() != nil }

// Printf writes one trace line.
func Printf(format string, a ...any) {
	w := writer()
	if w == nil {
		return
	}
	mu.Lock()
	defer mu.Unlock()
	fmt.Fprintf(w, "%s trace git-onesis: %s\n", time.Now().Format("15:04:05.000000"), fmt.Sprintf(format, a...))
}

// Region starts a timed region; call the returned func to end it:
//
//	defer trace.Region("scan")()
func Region(name string) func() {
	if writer() == nil {
		return func() {}
	}
	start, faults := time.Now(), minorFaults()
	return func() {
		Printf("%s: %.3fs, %d page faults", name, time.Since(start).Seconds(), minorFaults()-faults)
	}
}

// minorFaults is how many times the process has touched memory the kernel
// had to map first, mostly fresh memory. On the virtual machines measured
// for docs/benchmarks.md each costs about 12 µs, so a region's count
// tells how much of its time is that. Regions that overlap count each
// other's.
func minorFaults() int64 {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return ru.Minflt
}
