// Package progress prints git-style progress lines ("Recording metadata:
// 12345, done.") on stderr, and only when stderr is a terminal (or when
// forced), so porcelain output on stdout is never polluted.
package progress

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/term"
)

// Meter reports a running count. A nil *Meter is valid and silent.
type Meter struct {
	w     io.Writer
	title string
	n     atomic.Int64
	mu    sync.Mutex
	last  time.Time
	shown bool
}

// Enabled decides whether progress should be shown: mode is the value of
// --progress/onesis.progress ("auto", "true", "false"); auto means stderr is
// a terminal.
func Enabled(mode string) bool {
	switch mode {
	case "true", "always", "1", "yes", "on":
		return true
	case "false", "never", "0", "no", "off":
		return false
	}
	return term.IsTerminal(int(os.Stderr.Fd()))
}

// New returns a meter writing to w, or nil when enabled is false.
func New(w io.Writer, title string, enabled bool) *Meter {
	if !enabled {
		return nil
	}
	return &Meter{w: w, title: title}
}

// Set records the current count and redraws at most five times a second.
// Safe for concurrent use.
func (m *Meter) Set(n int) {
	if m == nil {
		return
	}
	m.n.Store(int64(n))
	m.mu.Lock()
	defer m.mu.Unlock()
	if time.Since(m.last) < 200*time.Millisecond {
		return
	}
	m.last = time.Now()
	m.shown = true
	fmt.Fprintf(m.w, "\r%s: %d", m.title, n)
}

// Done prints the final count followed by ", done.".
func (m *Meter) Done() {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	fmt.Fprintf(m.w, "\r%s: %d, done.\n", m.title, m.n.Load())
}
