package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onesis/git-onesis/internal/testkit"
)

// TestVerifyRevAndSignature: verify --rev compares the tree with another
// commit, and --require-signature accepts an SSH-signed commit and refuses
// an unsigned one, with real git and ssh-keygen.
func TestVerifyRevAndSignature(t *testing.T) {
	needTool(t, "ssh-keygen")
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "etc"), 0o755)
	os.WriteFile(filepath.Join(dir, "etc/motd"), []byte("v1\n"), 0o644)
	must(t, dir, "git", "init", "-q")
	key := testkit.SSHKey(t)
	testkit.SSHSigning(t, dir, key, key)
	must(t, dir, "git", "onesis", "init", "-q")
	must(t, dir, "git", "add", "-A")
	must(t, dir, "git", "commit", "-q", "-S", "-m", "signed v1")
	must(t, dir, "git", "tag", "v1")
	os.WriteFile(filepath.Join(dir, "etc/motd"), []byte("v2\n"), 0o644)
	os.Chmod(filepath.Join(dir, "etc/motd"), 0o600)
	must(t, dir, "git", "onesis", "commit", "-qam", "unsigned v2")

	if r := onesis(t, dir, "verify"); r.code != 0 {
		t.Errorf("verify at HEAD: exit %d\n%s", r.code, r.out)
	}
	r := onesis(t, dir, "verify", "--rev", "v1", "--porcelain")
	if r.code != 1 || !strings.Contains(r.out, "C  M etc/motd") || !strings.Contains(r.out, "M mode etc/motd") {
		t.Errorf("verify --rev v1: exit %d, want 1 with a content and a mode difference:\n%s%s", r.code, r.out, r.err)
	}
	if r := onesis(t, dir, "verify", "--require-signature"); r.code != 1 || !strings.Contains(r.err, "has no valid signature") {
		t.Errorf("unsigned HEAD with --require-signature: exit %d\n%s", r.code, r.err)
	}
	must(t, dir, "git", "checkout", "-q", "v1")
	if r := onesis(t, dir, "verify", "--require-signature"); r.code != 0 {
		t.Errorf("signed v1 with --require-signature: exit %d\n%s%s", r.code, r.out, r.err)
	}
	must(t, dir, "git", "checkout", "-q", "-")
	must(t, dir, "git", "config", "onesis.requireSignature", "true")
	if r := onesis(t, dir, "verify"); r.code != 1 {
		t.Errorf("onesis.requireSignature=true on an unsigned HEAD: exit %d", r.code)
	}
	if r := onesis(t, dir, "verify", "--rev", "no-such"); r.code != 128 {
		t.Errorf("verify --rev no-such: exit %d, want 128", r.code)
	}
}
