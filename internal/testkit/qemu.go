package testkit

import (
	"bufio"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// ansiCSI matches ANSI control sequences (ESC [ parameters letter).
var ansiCSI = regexp.MustCompile("\x1b\\[[0-9;?]*[A-Za-z]")

// StripANSI removes ANSI control sequences from s.
func StripANSI(s string) string { return ansiCSI.ReplaceAllString(s, "") }

// SerialUntil starts cmd, a QEMU whose serial console is its standard
// output (and error), and reads the console line by line until a line
// contains marker. Firmware repaints its console with ANSI cursor moves,
// which can land in the middle of the marker, so lines are matched with
// those sequences removed. It returns that line from the marker on, and
// the console read so far; ok is false when QEMU exited (or cmd's context
// ended) first. QEMU is killed before SerialUntil returns.
func SerialUntil(t testing.TB, cmd *exec.Cmd, marker string) (line, serial string, ok bool) {
	t.Helper()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	var b strings.Builder
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		l := StripANSI(sc.Text())
		b.WriteString(l + "\n")
		if i := strings.Index(l, marker); i >= 0 {
			return strings.TrimSpace(l[i:]), b.String(), true
		}
	}
	return "", b.String(), false
}
