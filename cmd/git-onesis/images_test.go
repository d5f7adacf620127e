package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestImagesSync: variants off a base; the base moves (content and
// metadata); sync merges it into each variant (one fast-forward, one merge
// without a checkout, one in its worktree with metadata applied) and
// stops at a conflict, leaving later variants untouched.
func TestImagesSync(t *testing.T) {
	base := t.TempDir()
	top := filepath.Join(base, "img")
	put := func(dir, p, s string) {
		t.Helper()
		os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, p), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	put(top, "etc/motd", "base\n")
	put(top, "usr/bin/a", "a\n")
	put(top, "usr/bin/b", "b\n")
	must(t, top, "git", "init", "-q", "-b", "base")
	must(t, top, "git", "onesis", "init", "--commit", "-q")
	for _, v := range []string{"a-login", "b-gpu", "b2-plain", "c-bad", "d-late"} {
		if r := onesis(t, top, "images", "add", "--base", "base", v); r.code != 0 {
			t.Fatalf("images add %s: %s", v, r.err)
		}
	}
	// b-gpu: its own commit, checked out in a worktree.
	wt := filepath.Join(base, "gpu")
	must(t, top, "git", "worktree", "add", "-q", wt, "b-gpu")
	put(wt, "etc/gpu.conf", "cuda\n")
	syscall.Chmod(filepath.Join(wt, "usr/bin/b"), 0o4755)
	must(t, wt, "git", "add", "-A")
	must(t, wt, "git", "onesis", "commit", "-qm", "gpu bits")
	// b2-plain: its own metadata change, not checked out anywhere.
	must(t, top, "git", "checkout", "-q", "b2-plain")
	syscall.Chmod(filepath.Join(top, "usr/bin/b"), 0o700)
	must(t, top, "git", "onesis", "commit", "-qm", "b private")
	// c-bad: edits the line base will edit too.
	must(t, top, "git", "checkout", "-q", "c-bad")
	put(top, "etc/motd", "bad\n")
	must(t, top, "git", "onesis", "commit", "-qam", "bad motd")
	// d-late: its own harmless commit.
	must(t, top, "git", "checkout", "-q", "d-late")
	put(top, "etc/late", "late\n")
	must(t, top, "git", "add", "-A")
	must(t, top, "git", "onesis", "commit", "-qm", "late")
	dLate := strings.TrimSpace(must(t, top, "git", "rev-parse", "HEAD"))
	// The base moves: content and a metadata-only change.
	must(t, top, "git", "checkout", "-q", "base")
	put(top, "etc/motd", "base v2\n")
	syscall.Chmod(filepath.Join(top, "usr/bin/a"), 0o755)
	must(t, top, "git", "onesis", "commit", "-qam", "base v2")
	baseC := strings.TrimSpace(must(t, top, "git", "rev-parse", "HEAD"))

	// g1 boots b-gpu and booted its tip; old1 boots the checked-out
	// branch (base) and booted an older commit, which every branch
	// contains: it is listed under base only, the branch it boots.
	must(t, top, "git", "onesis", "node", "add", "g1", "--mac", "52:54:00:00:00:21", "--ip", "10.77.0.21", "--ref", "b-gpu")
	must(t, top, "git", "onesis", "node", "add", "old1", "--mac", "52:54:00:00:00:22", "--ip", "10.77.0.22")
	must(t, top, "git", "update-ref", "refs/onesis/booted/g1", "b-gpu")
	must(t, top, "git", "update-ref", "refs/onesis/booted/old1", "a-login")
	r := onesis(t, top, "images")
	if r.code != 0 || !strings.Contains(r.out, "b-gpu") || !strings.Contains(r.out, "base base: +1/-1 commits") {
		t.Errorf("images: exit %d\n%s%s", r.code, r.out, r.err)
	}
	for _, l := range strings.Split(r.out, "\n") {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		if hasG1 := strings.Contains(l, " g1"); (f[0] == "b-gpu") != hasG1 {
			t.Errorf("node g1 (boots b-gpu) listed wrongly: %q", l)
		}
		if hasOld1 := strings.Contains(l, "old1@"); (f[0] == "base") != hasOld1 {
			t.Errorf("node old1 (boots base, at an older commit) listed wrongly: %q", l)
		}
	}

	r = onesis(t, top, "images", "sync", "base")
	if r.code != 1 {
		t.Fatalf("sync with a conflict: exit %d, want 1\n%s%s", r.code, r.out, r.err)
	}
	for _, want := range []string{"a-login: fast-forwarded", "b-gpu: merged", "b2-plain: merged", "c-bad: CONFLICT", "etc/motd"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("sync report lacks %q:\n%s", want, r.out)
		}
	}
	if strings.Contains(r.out, "d-late") {
		t.Errorf("sync went past the conflict:\n%s", r.out)
	}
	if got := strings.TrimSpace(must(t, top, "git", "rev-parse", "a-login")); got != baseC {
		t.Errorf("a-login = %s, want the base %s", got, baseC)
	}
	if got := strings.TrimSpace(must(t, top, "git", "rev-parse", "d-late")); got != dLate {
		t.Error("d-late moved although sync stopped before it")
	}
	// b-gpu was merged in its worktree: base's content and metadata
	// arrived, and its own setuid bit stayed.
	if b, _ := os.ReadFile(filepath.Join(wt, "etc/motd")); string(b) != "base v2\n" {
		t.Errorf("gpu worktree etc/motd = %q", b)
	}
	wantMode(t, filepath.Join(wt, "usr/bin/a"), 0o755)
	wantMode(t, filepath.Join(wt, "usr/bin/b"), 0o4755)
	if r := onesis(t, wt, "status"); r.code != 0 {
		t.Errorf("status in the gpu worktree after sync: exit %d\n%s", r.code, r.out)
	}
	meta := must(t, top, "git", "show", "b-gpu:.gitmeta")
	if !strings.Contains(meta, "./usr/bin/a  mode=0755") || !strings.Contains(meta, "./usr/bin/b  mode=04755") {
		t.Errorf("merged .gitmeta lacks one side's change:\n%s", meta)
	}
	// b2-plain was merged without a checkout (git merge-tree) and the
	// .gitmeta merge driver combined both sides.
	meta = must(t, top, "git", "show", "b2-plain:.gitmeta")
	if !strings.Contains(meta, "./usr/bin/a  mode=0755") || !strings.Contains(meta, "./usr/bin/b  mode=0700") {
		t.Errorf("b2-plain's merged .gitmeta lacks one side's change:\n%s", meta)
	}
	if got := must(t, top, "git", "show", "b2-plain:etc/motd"); got != "base v2\n" {
		t.Errorf("b2-plain etc/motd = %q", got)
	}
	if r := onesis(t, top, "images", "sync", "nobase"); r.code != 128 {
		t.Errorf("sync of an unknown base: exit %d", r.code)
	}

	// The admin follows the report's hint for c-bad, as printed: a
	// worktree of its own and the merge there (which stops on the
	// conflict), the conflict fixed, 'git onesis commit', and sync again,
	// which now goes on to d-late.
	const hint = "resolve it by hand, in a worktree of its own: "
	i := strings.Index(r.out, hint)
	if i < 0 {
		t.Fatalf("no hint in the sync report:\n%s", r.out)
	}
	step, _, ok := strings.Cut(r.out[i+len(hint):], ";\n")
	if !ok || !strings.Contains(step, "git merge base") {
		t.Fatalf("hint step %q", step)
	}
	out, err := exec.Command("sh", "-c", "cd "+top+" && "+step).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "CONFLICT") {
		t.Fatalf("the hint's step (%s): %v, want git's conflict\n%s", step, err, out)
	}
	fields := strings.Fields(step) // git worktree add DIR c-bad && ...
	if len(fields) < 4 || fields[0] != "git" || fields[2] != "add" {
		t.Fatalf("hint step %q does not add a worktree", step)
	}
	bad := fields[3]
	put(bad, "etc/motd", "bad, then base v2\n")
	must(t, bad, "git", "add", "etc/motd")
	if r := onesis(t, bad, "commit", "-qm", "merge base into c-bad"); r.code != 0 {
		t.Fatalf("git onesis commit of the resolved merge: exit %d\n%s%s", r.code, r.out, r.err)
	}
	wantMode(t, filepath.Join(bad, "usr/bin/a"), 0o755) // base's metadata, applied by the merge
	r = onesis(t, top, "images", "sync", "base")
	if r.code != 0 || !strings.Contains(r.out, "c-bad: up to date") || !strings.Contains(r.out, "d-late: merged") {
		t.Fatalf("sync after the hint was followed: exit %d, want c-bad up to date and d-late merged\n%s%s", r.code, r.out, r.err)
	}
	if got := must(t, top, "git", "show", "d-late:etc/motd"); got != "base v2\n" {
		t.Errorf("d-late etc/motd = %q after sync", got)
	}
	if meta := must(t, top, "git", "show", "c-bad:.gitmeta"); !strings.Contains(meta, "./usr/bin/a  mode=0755") {
		t.Errorf("c-bad's merge commit lacks base's metadata change:\n%s", meta)
	}
}
