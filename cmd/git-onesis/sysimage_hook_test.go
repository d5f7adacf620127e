package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPreCommitRefusesHangingSysimage: through the real git commit and our
// pre-commit hook, an etc/sysimage.conf whose INCLUDEs fan out (16 files,
// each including the next 4 times: 4^15 parses, which once hung every
// node's boot) is refused with the file and line; fixed, it commits.
func TestPreCommitRefusesHangingSysimage(t *testing.T) {
	needRoot(t)
	img := t.TempDir()
	fixture(t, img)
	if r := onesis(t, img, "init", "--commit", "-q"); r.code != 0 {
		t.Fatalf("init: %s", r.err)
	}
	d := filepath.Join(img, "etc/sysimage.d")
	os.MkdirAll(d, 0o755)
	for i := 0; i < 14; i++ {
		os.WriteFile(filepath.Join(d, fmt.Sprint("f", i)), []byte(strings.Repeat(fmt.Sprintf("INCLUDE /etc/sysimage.d/f%d\n", i+1), 4)), 0o644)
	}
	os.WriteFile(filepath.Join(d, "f14"), []byte("PROPERTY leaf\n"), 0o644)
	os.WriteFile(filepath.Join(img, "etc/sysimage.conf"), []byte(strings.Repeat("INCLUDE /etc/sysimage.d/f0\n", 4)), 0o644)
	must(t, img, "git", "add", "etc")
	r := runIn(t, img, "git", "commit", "-q", "-m", "fan-out")
	if r.code == 0 || !strings.Contains(r.err, "more than 256 INCLUDEs") || !strings.Contains(r.err, "/etc/sysimage.d/f") {
		t.Fatalf("git commit of a fan-out: exit %d\n%s", r.code, r.err)
	}
	os.WriteFile(filepath.Join(img, "etc/sysimage.conf"), []byte("INCLUDE /etc/sysimage.d/f14\n"), 0o644)
	must(t, img, "git", "add", "etc/sysimage.conf")
	if r := runIn(t, img, "git", "commit", "-q", "-m", "fixed"); r.code != 0 {
		t.Fatalf("git commit of the fixed configuration: exit %d\n%s", r.code, r.err)
	}
}
