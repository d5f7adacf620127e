package progress

import (
	"bytes"
	"strings"
	"testing"
)

func TestEnabled(t *testing.T) {
	tests := []struct {
		mode string
		want bool
	}{
		{"true", true}, {"always", true}, {"false", false}, {"never", false},
		// Tests run with stderr not a terminal, so auto means off.
		{"auto", false}, {"", false},
	}
	for _, tc := range tests {
		if got := Enabled(tc.mode); got != tc.want {
			t.Errorf("Enabled(%q) = %v; want %v", tc.mode, got, tc.want)
		}
	}
}

func TestMeter(t *testing.T) {
	var nilMeter *Meter
	nilMeter.Set(5) // must not panic
	nilMeter.Done()
	if m := New(&bytes.Buffer{}, "x", false); m != nil {
		t.Fatalf("New(disabled) = %v; want nil", m)
	}
	var b bytes.Buffer
	m := New(&b, "Recording metadata", true)
	m.Set(1)
	m.Set(2) // throttled
	m.Set(300)
	m.Done()
	out := b.String()
	if !strings.HasPrefix(out, "\rRecording metadata: 1") || !strings.HasSuffix(out, "\rRecording metadata: 300, done.\n") {
		t.Errorf("meter output = %q", out)
	}
	if strings.Contains(out, ": 2\r") {
		t.Errorf("meter did not throttle: %q", out)
	}
}
