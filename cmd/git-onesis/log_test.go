package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestLog(t *testing.T) {
	dir := t.TempDir()
	for p, s := range map[string]string{
		"usr/bin/tool":        "#!/bin/sh\n",
		"etc/motd":            "hi\n",
		"var/lib/dpkg/status": "Package: tool\nStatus: install ok installed\nArchitecture: all\nVersion: 1.0-1\n",
	} {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755)
		os.WriteFile(filepath.Join(dir, p), []byte(s), 0o644)
	}
	must(t, dir, "git", "init", "-q")
	must(t, dir, "git", "onesis", "init", "--commit", "-q")
	syscall.Chmod(filepath.Join(dir, "usr/bin/tool"), 0o4755)
	syscall.Chmod(filepath.Join(dir, "etc/motd"), 0o600)
	os.WriteFile(filepath.Join(dir, "var/lib/dpkg/status"), []byte("Package: tool\nStatus: install ok installed\nArchitecture: all\nVersion: 1.1-1\n"), 0o644)
	must(t, dir, "git", "onesis", "commit", "-qam", "tool 1.1, setuid")

	r := onesis(t, dir, "log", "-n", "1")
	for _, want := range []string{"tool 1.1, setuid", "usr/bin/tool: setuid bit added", "etc/motd: mode", "package > tool 1.0-1 -> 1.1-1"} {
		if r.code != 0 || !strings.Contains(r.out, want) {
			t.Errorf("log -n 1 lacks %q:\n%s%s", want, r.out, r.err)
		}
	}
	r = onesis(t, dir, "log", "--security", "-n", "1")
	if !strings.Contains(r.out, "setuid bit added") || strings.Contains(r.out, "etc/motd") {
		t.Errorf("log --security:\n%s", r.out)
	}
	r = onesis(t, dir, "log", "--json")
	var js []jsonLogCommit
	if err := json.Unmarshal([]byte(r.out), &js); err != nil || len(js) != 2 || len(js[0].Packages) != 1 {
		t.Errorf("log --json: %v, %+v", err, js)
	}
	if r := onesis(t, dir, "log", "no-such-rev"); r.code != 128 {
		t.Errorf("log no-such-rev: exit %d, want 128", r.code)
	}
}
