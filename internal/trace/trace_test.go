package trace

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The writer is chosen once per process, so one test covers the file case.
func TestTraceToFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "trace.log")
	t.Setenv("GIT_TRACE", p)
	if !Enabled() {
		t.Fatalf("Enabled() = false with GIT_TRACE=%s", p)
	}
	Region("scan")()
	Printf("scan: %d entries", 42)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], " trace git-onesis: scan: 0.") || !strings.HasSuffix(lines[1], "trace git-onesis: scan: 42 entries") {
		t.Errorf("trace file = %q", b)
	}
}
