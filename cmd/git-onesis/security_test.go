package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestDiffSecurity: one commit makes security-relevant and harmless
// changes; diff --security lists exactly the relevant ones, in words.
func TestDiffSecurity(t *testing.T) {
	needRoot(t)
	needTool(t, "setcap")
	dir := t.TempDir()
	for p, body := range map[string]string{
		"etc/passwd": "root:x:0:0::/root:/bin/sh\n", "etc/group": "root:x:0:\ndisk:x:6:\n",
		"etc/ssh/sshd_config": "PermitRootLogin no\n", "etc/motd": "hello\n",
		"usr/bin/tool": "#!/bin/sh\n", "usr/bin/ping": "#!/bin/sh\n", "srv/data": "x\n",
	} {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, p), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(filepath.Join(dir, "dev"), 0o755)
	must(t, dir, "git", "init", "-q")
	must(t, dir, "git", "onesis", "init", "--commit", "-q")

	unix.Chmod(filepath.Join(dir, "usr/bin/tool"), 0o4755)
	must(t, dir, "setcap", "cap_net_raw+ep", filepath.Join(dir, "usr/bin/ping"))
	unix.Chmod(filepath.Join(dir, "srv/data"), 0o666)
	if err := unix.Mknod(filepath.Join(dir, "dev/sda"), unix.S_IFBLK|0o660, int(unix.Mkdev(8, 0))); err != nil {
		t.Fatal(err)
	}
	os.Chown(filepath.Join(dir, "dev/sda"), 0, 6)
	os.WriteFile(filepath.Join(dir, "etc/ssh/sshd_config"), []byte("PermitRootLogin yes\n"), 0o644)
	unix.Chmod(filepath.Join(dir, "etc/motd"), 0o600) // harmless
	os.WriteFile(filepath.Join(dir, "etc/motd"), []byte("changed\n"), 0o600)

	// Against the work tree first, then between commits.
	for _, args := range [][]string{{"diff", "--security"}, nil} {
		if args == nil {
			must(t, dir, "git", "onesis", "commit", "-qam", "mixed changes")
			args = []string{"diff", "--security", "HEAD~1", "HEAD"}
		}
		r := onesis(t, dir, args...)
		if r.code != 0 {
			t.Fatalf("%v: exit %d\n%s", args, r.code, r.err)
		}
		for _, want := range []string{"usr/bin/tool: setuid bit added", "usr/bin/ping: capability cap_net_raw+ep added",
			"srv/data", "dev/sda", "etc/ssh/sshd_config: content changed"} {
			if !strings.Contains(r.out, want) {
				t.Errorf("%v lacks %q:\n%s", args, want, r.out)
			}
		}
		if strings.Contains(r.out, "etc/motd") {
			t.Errorf("%v lists the harmless etc/motd change:\n%s", args, r.out)
		}
	}
	if r := onesis(t, dir, "diff", "--security", "--exit-code", "HEAD", "HEAD"); r.code != 0 || r.out != "" {
		t.Errorf("no changes: exit %d, %q", r.code, r.out)
	}
	if r := onesis(t, dir, "diff", "--security", "--porcelain", "HEAD~1", "HEAD"); !strings.Contains(r.out, "m content etc/ssh/sshd_config") {
		t.Errorf("porcelain lacks the content record:\n%s", r.out)
	}
}
