package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestShow(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "usr/bin"), 0o755)
	os.MkdirAll(filepath.Join(dir, "etc"), 0o755)
	os.WriteFile(filepath.Join(dir, "etc/passwd"), []byte("root:x:0:0::/root:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "usr/bin/tool"), []byte("#!/bin/sh\n"), 0o644)
	syscall.Chmod(filepath.Join(dir, "usr/bin/tool"), 0o4755)
	os.Symlink("/etc/passwd", filepath.Join(dir, "etc/link"))
	must(t, dir, "git", "init", "-q")
	must(t, dir, "git", "onesis", "init", "--commit", "-q")
	syscall.Chmod(filepath.Join(dir, "usr/bin/tool"), 0o755)
	must(t, dir, "git", "onesis", "commit", "-qm", "drop setuid")

	r := onesis(t, dir, "show", "HEAD~1:usr/bin/tool", "etc/link")
	for _, want := range []string{"path:      usr/bin/tool", "revision:  HEAD~1", "(-rwsr-xr-x)", "target:    /etc/passwd"} {
		if r.code != 0 || !strings.Contains(r.out, want) {
			t.Errorf("show: exit %d, lacks %q:\n%s%s", r.code, want, r.out, r.err)
		}
	}
	if strings.Contains(onesis(t, dir, "show", "usr/bin/tool").out, "rws") {
		t.Error("show at HEAD still reports setuid")
	}
	r = onesis(t, dir, "show", "--json", ":usr/bin/tool")
	var js []jsonEntry
	if err := json.Unmarshal([]byte(r.out), &js); err != nil || len(js) != 1 || js[0].Type != "file" {
		t.Errorf("show --json: %v %+v", err, js)
	}
	if r := onesis(t, dir, "show", "HEAD:no/such"); r.code != 1 || !strings.Contains(r.err, "no entry for no/such") {
		t.Errorf("missing path: exit %d, %s", r.code, r.err)
	}
	if r := onesis(t, dir, "show"); r.code != 129 {
		t.Errorf("no argument: exit %d, want 129", r.code)
	}
}
