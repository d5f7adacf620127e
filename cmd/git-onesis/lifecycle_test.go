package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestUpgradePromoteRollback runs the lifecycle with real git and the
// installed hooks: start an upgrade worktree, change content, metadata and
// packages there, promote, roll back through a new commit, and abandon,
// checking metadata on disk at each step.
func TestUpgradePromoteRollback(t *testing.T) {
	base := t.TempDir()
	top := filepath.Join(base, "image-prod")
	files := map[string]string{
		"etc/hostname":        "node\n",
		"etc/secret":          "s3cret\n",
		"usr/bin/tool":        "#!/bin/sh\n",
		"var/lib/dpkg/status": "Package: tool\nStatus: install ok installed\nArchitecture: all\nVersion: 1.0-1\n",
	}
	for p, s := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(top, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(top, p), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	chmod(t, filepath.Join(top, "etc/secret"), 0o600)
	chmod(t, filepath.Join(top, "usr/bin/tool"), 0o4755)
	must(t, top, "git", "init", "-q")
	must(t, top, "git", "onesis", "init", "--commit")
	prod := strings.TrimSpace(must(t, top, "git", "symbolic-ref", "--short", "HEAD"))
	v1 := strings.TrimSpace(must(t, top, "git", "rev-parse", "HEAD"))

	// start: a worktree with the metadata applied, and a test node
	// pointed at it in serve's inventory.
	must(t, top, "git", "onesis", "node", "add", "t1", "--mac", "52:54:00:00:00:01", "--ip", "10.77.0.21")
	if r := onesis(t, top, "upgrade", "start", "--node", "nosuch", "up0"); r.code != 128 || !strings.Contains(r.err, `no node "nosuch"`) {
		t.Errorf("start --node nosuch: exit %d, %s", r.code, r.err)
	}
	r := onesis(t, top, "upgrade", "start", "--node", "t1", "up1")
	wt := top + "-up1"
	if r.code != 0 || !strings.Contains(r.out, "upgrade up1 started") || !strings.Contains(r.out, "node t1 boots up1") {
		t.Fatalf("upgrade start: exit %d\n%s%s", r.code, r.out, r.err)
	}
	if l := must(t, top, "git", "onesis", "node", "list", "--json"); !strings.Contains(l, `"ref": "up1"`) {
		t.Errorf("t1 was not pointed at up1:\n%s", l)
	}
	wantMode(t, filepath.Join(wt, "etc/secret"), 0o600)
	wantMode(t, filepath.Join(wt, "usr/bin/tool"), 0o4755)
	if r := onesis(t, top, "upgrade", "start", "up1"); r.code != 128 || !strings.Contains(r.err, "already exists") {
		t.Errorf("starting up1 twice: exit %d, %s", r.code, r.err)
	}

	// Patch in the worktree: content, a metadata-only change, a package.
	if err := os.WriteFile(filepath.Join(wt, "etc/hostname"), []byte("upgraded\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	chmod(t, filepath.Join(wt, "usr/bin/tool"), 0o755) // drop setuid
	if err := os.WriteFile(filepath.Join(wt, "var/lib/dpkg/status"), []byte("Package: tool\nStatus: install ok installed\nArchitecture: all\nVersion: 1.1-1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Uncommitted work blocks promote.
	if r := onesis(t, top, "upgrade", "promote", "up1"); r.code != 128 || !strings.Contains(r.err, "uncommitted") {
		t.Errorf("promote with uncommitted changes: exit %d, %s", r.code, r.err)
	}
	must(t, wt, "git", "onesis", "commit", "-qam", "upgrade tool")

	// promote: production fast-forwards; its work tree follows, metadata too.
	r = onesis(t, top, "upgrade", "promote", "up1")
	if r.code != 0 || !strings.Contains(r.out, prod+" fast-forwarded to up1") || !strings.Contains(r.out, "> tool 1.0-1 -> 1.1-1") ||
		!strings.Contains(r.out, "node t1 boots the default") {
		t.Fatalf("promote: exit %d\n%s%s", r.code, r.out, r.err)
	}
	v2 := strings.TrimSpace(must(t, top, "git", "rev-parse", "HEAD"))
	if v2 == v1 {
		t.Fatal("promote did not move production")
	}
	wantMode(t, filepath.Join(top, "usr/bin/tool"), 0o755)
	if b, _ := os.ReadFile(filepath.Join(top, "etc/hostname")); string(b) != "upgraded\n" {
		t.Errorf("production work tree after promote: etc/hostname = %q", b)
	}

	// Two nodes of production booted (serve writes these refs): n1 the
	// new commit, n2 the old one.
	must(t, top, "git", "onesis", "node", "add", "n1", "--mac", "52:54:00:00:00:11", "--ip", "10.77.0.31")
	must(t, top, "git", "onesis", "node", "add", "n2", "--mac", "52:54:00:00:00:12", "--ip", "10.77.0.32")
	must(t, top, "git", "update-ref", "refs/onesis/booted/n1", v2)
	must(t, top, "git", "update-ref", "refs/onesis/booted/n2", v1)

	// rollback: a new commit with v1's tree; history keeps v2.
	r = onesis(t, top, "rollback", v1)
	if r.code != 0 || !strings.Contains(r.out, "rolled back") || !strings.Contains(r.out, "< tool 1.1-1 -> 1.0-1") ||
		!strings.Contains(r.out, "node n1 still runs "+v2[:12]) || strings.Contains(r.out, "node n2") {
		t.Fatalf("rollback: exit %d\n%s%s", r.code, r.out, r.err)
	}
	if got := strings.TrimSpace(must(t, top, "git", "rev-parse", "HEAD~1")); got != v2 {
		t.Errorf("rollback rewrote history: HEAD~1 = %s, want %s", got, v2)
	}
	if a, b := must(t, top, "git", "rev-parse", "HEAD^{tree}"), must(t, top, "git", "rev-parse", v1+"^{tree}"); a != b {
		t.Errorf("rollback tree %s != %s", a, b)
	}
	wantMode(t, filepath.Join(top, "usr/bin/tool"), 0o4755)
	if r := onesis(t, top, "status"); r.code != 0 {
		t.Errorf("status after rollback: exit %d\n%s%s", r.code, r.out, r.err)
	}
	if r := onesis(t, top, "rollback", v1); r.code != 0 || !strings.Contains(r.out, "nothing to roll back") {
		t.Errorf("second rollback: exit %d\n%s", r.code, r.out)
	}

	// abandon: the worktree goes, the branch stays.
	if r := onesis(t, top, "upgrade", "abandon", "up1"); r.code != 0 {
		t.Fatalf("abandon: exit %d\n%s", r.code, r.err)
	}
	if _, err := os.Stat(wt); !os.IsNotExist(err) {
		t.Errorf("worktree %s still there after abandon: %v", wt, err)
	}
	must(t, top, "git", "rev-parse", "--verify", "refs/heads/up1")
	if r := onesis(t, top, "upgrade", "promote"); r.code != 129 {
		t.Errorf("promote without NAME: exit %d, want 129", r.code)
	}
}

// chmod sets raw POSIX mode bits (os.Chmod would drop 04000 and 02000,
// which Go spells os.ModeSetuid and os.ModeSetgid).
func chmod(t *testing.T, p string, m uint32) {
	t.Helper()
	if err := syscall.Chmod(p, m); err != nil {
		t.Fatal(err)
	}
}

// wantMode checks the permission bits of p, including setuid.
func wantMode(t *testing.T, p string, want os.FileMode) {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	got := fi.Mode().Perm()
	if fi.Mode()&os.ModeSetuid != 0 {
		got |= 0o4000
	}
	if fi.Mode()&os.ModeSetgid != 0 {
		got |= 0o2000
	}
	if got != want {
		t.Errorf("%s: mode %04o, want %04o", p, got, want)
	}
}
