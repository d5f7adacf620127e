package main

import (
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The tests here drive everyday git commands on an image repo with the
// hooks installed, and check the tree afterwards with find(1) and
// getfattr(1), never with git-onesis itself.

// view is the tree as find and getfattr see it (.git left out).
func view(t *testing.T, root string) string {
	t.Helper()
	return findListing(t, root) + "\n" + xattrListing(t, root)
}

// sameView fails t, naming the lines that differ, unless two views match.
func sameView(t *testing.T, what, got, want string) {
	t.Helper()
	if got == want {
		return
	}
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	inW := map[string]bool{}
	for _, l := range w {
		inW[l] = true
	}
	inG := map[string]bool{}
	for _, l := range g {
		inG[l] = true
	}
	var diff []string
	for _, l := range g {
		if !inW[l] {
			diff = append(diff, "+ "+l)
		}
	}
	for _, l := range w {
		if !inG[l] {
			diff = append(diff, "- "+l)
		}
	}
	t.Errorf("%s: the tree differs from what .gitmeta records (+ tree, - expected):\n%s", what, strings.Join(diff, "\n"))
}

// hookedImage is the fixture committed with git-onesis (hooks installed),
// and its view right after the commit.
func hookedImage(t *testing.T) (string, string) {
	t.Helper()
	needRoot(t)
	for _, tool := range []string{"getfattr", "setfattr", "setfacl", "setcap"} {
		needTool(t, tool)
	}
	img := filepath.Join(t.TempDir(), "image")
	os.Mkdir(img, 0o755)
	fixture(t, img)
	if r := onesis(t, img, "init", "--commit", "-q"); r.code != 0 {
		t.Fatalf("init: %s", r.err)
	}
	return img, view(t, img)
}

// metaCommit makes a metadata-only commit on a new branch from main and
// returns to main; it returns the view of that branch.
func metaCommit(t *testing.T, img, branch string, change func()) string {
	t.Helper()
	must(t, img, "git", "checkout", "-q", "-b", branch)
	change()
	if r := onesis(t, img, "commit", "-q", "-m", branch); r.code != 0 {
		t.Fatalf("commit on %s: %s", branch, r.err)
	}
	v := view(t, img)
	must(t, img, "git", "checkout", "-q", "main")
	return v
}

func appendTo(t *testing.T, p, s string) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(s)
	f.Close()
}

// TestRestoreKeepsSecrets: 'git checkout -- FILE' and 'git restore' (the
// seed's "revert the tampered file" step) bring back the recorded mode,
// owner, ACL and xattrs of what they rewrite, not 0644 root:root.
func TestRestoreKeepsSecrets(t *testing.T) {
	img, orig := hookedImage(t)
	for _, args := range [][]string{
		{"checkout", "--", "etc/secret", "etc/shadow", "home/alice/.profile"},
		{"restore", "etc/secret", "etc/shadow", "home/alice/.profile"},
		{"restore", "--staged", "--worktree", "etc/secret", "etc/shadow", "home/alice/.profile"},
		{"checkout", "HEAD", "--", "etc"},
	} {
		for _, p := range []string{"etc/secret", "etc/shadow", "home/alice/.profile"} {
			appendTo(t, filepath.Join(img, p), "tampered\n")
		}
		must(t, img, "git", "add", "-A")
		if args[0] == "restore" && args[1] != "--staged" {
			must(t, img, "git", "reset", "-q")
		}
		must(t, img, "git", args...)
		sameView(t, "git "+strings.Join(args, " "), view(t, img), orig)
	}
}

// TestNoCheckoutClone: 'clone --no-checkout', 'git onesis install', then
// the first checkout, applies everything (post-checkout sees old == new).
func TestNoCheckoutClone(t *testing.T) {
	img, orig := hookedImage(t)
	clone := filepath.Join(t.TempDir(), "clone")
	must(t, img, "git", "clone", "-q", "--no-checkout", img, clone)
	if r := onesis(t, clone, "install", "-q"); r.code != 0 {
		t.Fatalf("install: %s", r.err)
	}
	must(t, clone, "git", "checkout", "-q", "main")
	sameView(t, "no-checkout clone, then checkout", view(t, clone), orig)
}

// TestCherryPickRevert: a metadata change picked or reverted reaches the
// tree, and no advice to record the tree over it is printed.
func TestCherryPickRevert(t *testing.T) {
	img, orig := hookedImage(t)
	side := metaCommit(t, img, "side", func() {
		unix.Chmod(filepath.Join(img, "etc/secret"), 0o640)
		os.Chown(filepath.Join(img, "etc/secret"), 0, 42)
		unix.Chmod(filepath.Join(img, "usr/bin/su"), 0o755)
	})
	r := runIn(t, img, "git", "cherry-pick", "side")
	if r.code != 0 {
		t.Fatalf("cherry-pick: %s", r.err)
	}
	if strings.Contains(r.err, "--amend") || strings.Contains(r.err, "does not match") {
		t.Errorf("cherry-pick printed advice to record the tree: %s", r.err)
	}
	sameView(t, "cherry-pick", view(t, img), side)
	r = runIn(t, img, "git", "revert", "--no-edit", "HEAD")
	if r.code != 0 || strings.Contains(r.err, "--amend") {
		t.Fatalf("revert: %d %s", r.code, r.err)
	}
	sameView(t, "revert", view(t, img), orig)
	if st := onesis(t, img, "status"); st.code != 0 {
		t.Errorf("status after revert: %d\n%s", st.code, st.out)
	}
}

// TestStashKeepsSecrets: stash and stash pop/apply rewrite a 0600 file;
// it keeps its recorded mode both ways.
func TestStashKeepsSecrets(t *testing.T) {
	img, orig := hookedImage(t)
	for _, restore := range []string{"pop", "apply"} {
		appendTo(t, filepath.Join(img, "etc/secret"), "more\n")
		must(t, img, "git", "stash", "-q")
		sameView(t, "git stash", view(t, img), orig)
		must(t, img, "git", "stash", restore, "-q")
		assertMode(t, filepath.Join(img, "etc/secret"), 0o600, 0, 0)
		if b, _ := os.ReadFile(filepath.Join(img, "etc/secret")); !strings.Contains(string(b), "more") {
			t.Fatalf("stash %s did not bring the change back", restore)
		}
		must(t, img, "git", "checkout", "-q", "--", "etc/secret")
		if restore == "apply" {
			must(t, img, "git", "stash", "drop", "-q")
		}
		sameView(t, "after stash "+restore, view(t, img), orig)
	}
}

// TestSparseCommitKeepsEntries: a commit from a sparse checkout keeps every
// .gitmeta entry outside the cone exactly as HEAD has it, status is clean,
// and leaving the sparse checkout restores everything.
func TestSparseCommitKeepsEntries(t *testing.T) {
	img, orig := hookedImage(t)
	before := must(t, img, "git", "show", "HEAD:.gitmeta")
	must(t, img, "git", "sparse-checkout", "set", "etc")
	if st := onesis(t, img, "status"); st.code != 0 {
		t.Errorf("status in a sparse checkout: %d\n%s", st.code, st.out)
	}
	appendTo(t, filepath.Join(img, "etc/passwd"), "carol:x:1001:1001::/:/bin/sh\n")
	must(t, img, "git", "commit", "-q", "-am", "sparse commit")
	after := must(t, img, "git", "show", "HEAD:.gitmeta")
	if before != after {
		t.Errorf("a sparse commit changed .gitmeta:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	must(t, img, "git", "sparse-checkout", "disable")
	sameView(t, "sparse-checkout disable", view(t, img), orig)
}

// TestSparseCommitRefusesUnseen: a file staged while the sparse checkout
// held it, then left out of the work tree by narrowing the checkout, has
// no entry to keep and no file to read: the commit is refused with advice,
// and following the advice commits it with its metadata (found by the
// model test, seed 11).
func TestSparseCommitRefusesUnseen(t *testing.T) {
	img, _ := hookedImage(t)
	os.MkdirAll(filepath.Join(img, "opt/new"), 0o755)
	p := filepath.Join(img, "opt/new/tool")
	os.WriteFile(p, []byte("x\n"), 0o644)
	os.Chmod(p, 0o750)
	os.Chown(p, 0, 1234)
	must(t, img, "git", "add", "opt/new/tool")
	must(t, img, "git", "sparse-checkout", "set", "etc")
	if _, err := os.Lstat(p); err == nil {
		t.Skip("git kept the staged file in the work tree; nothing unseen to test")
	}
	head := must(t, img, "git", "rev-parse", "HEAD")
	r := runEnv(t, img, nil, "git", "commit", "-q", "-m", "unseen")
	if r.code == 0 || !strings.Contains(r.err, "opt/new/tool") || !strings.Contains(r.err, "'git sparse-checkout add opt/new'") {
		t.Fatalf("commit of an unseen staged file: exit %d\n%s", r.code, r.err)
	}
	if now := must(t, img, "git", "rev-parse", "HEAD"); now != head {
		t.Fatalf("the refused commit moved HEAD")
	}
	if st := onesis(t, img, "status"); st.code == 128 {
		t.Errorf("status fails in that state: %s", st.err)
	}
	// The advice, followed as printed.
	must(t, img, "git", "sparse-checkout", "add", "opt/new")
	os.Chmod(p, 0o750) // the file git brought back has git's mode
	os.Chown(p, 0, 1234)
	must(t, img, "git", "commit", "-q", "-m", "now seen")
	if m := must(t, img, "git", "show", "HEAD:.gitmeta"); !strings.Contains(m, "./opt/new/tool  mode=0750  uid=0  gid=1234") {
		t.Errorf("the committed .gitmeta lacks the file's entry:\n%s", m)
	}
}

// TestHardLinkSplitConverges: a branch where a hard link was split (rm,
// cp -p, commit) checked out in a tree that had them linked gets two
// inodes, and status is clean.
func TestHardLinkSplitConverges(t *testing.T) {
	img, _ := hookedImage(t)
	split := metaCommit(t, img, "split", func() {
		p := filepath.Join(img, "usr/lib/libfoo-hard.so")
		os.Remove(p)
		must(t, img, "cp", "-p", filepath.Join(img, "usr/lib/libfoo.so.1"), p)
		must(t, img, "git", "add", "-A")
	})
	wt := filepath.Join(t.TempDir(), "wt")
	must(t, img, "git", "worktree", "add", "-q", "--detach", wt, "main")
	a, _ := inode(t, filepath.Join(wt, "usr/lib/libfoo.so.1"))
	b, _ := inode(t, filepath.Join(wt, "usr/lib/libfoo-hard.so"))
	if a != b {
		t.Fatalf("main's hard link was not made in the new worktree")
	}
	must(t, wt, "git", "checkout", "-q", "split")
	a, _ = inode(t, filepath.Join(wt, "usr/lib/libfoo.so.1"))
	b, _ = inode(t, filepath.Join(wt, "usr/lib/libfoo-hard.so"))
	if a == b {
		t.Errorf("the split hard link is still one inode after checkout")
	}
	if st := onesis(t, wt, "status"); st.code != 0 {
		t.Errorf("status after checking out the split: %d\n%s", st.code, st.out)
	}
	sameView(t, "split branch in another worktree", view(t, wt), split)
}

// TestDiscardingCommandsUndoDrift: reset --hard, checkout -f and switch
// --discard-changes undo metadata-only drift as they undo content drift,
// even when git did not rewrite the file (its index entry refreshed);
// reset --keep and a plain checkout keep it, as git keeps local changes.
func TestDiscardingCommandsUndoDrift(t *testing.T) {
	img, orig := hookedImage(t)
	must(t, img, "git", "branch", "other")
	drift := func() {
		unix.Chmod(filepath.Join(img, "etc/secret"), 0o644)
		os.Chown(filepath.Join(img, "usr/bin/wall"), 0, 0)
		must(t, img, "git", "status", "--porcelain") // refreshes the index
	}
	for _, args := range [][]string{
		{"reset", "-q", "--hard"},
		{"checkout", "-q", "-f"},
		{"checkout", "-q", "-f", "other"},
		{"switch", "-q", "--discard-changes", "main"},
	} {
		drift()
		must(t, img, "git", args...)
		sameView(t, "git "+strings.Join(args, " "), view(t, img), orig)
	}
	for _, args := range [][]string{
		{"reset", "-q", "--keep", "HEAD"},
		{"checkout", "-q", "other"},
		{"checkout", "-q", "main"},
	} {
		drift()
		must(t, img, "git", args...)
		assertMode(t, filepath.Join(img, "etc/secret"), 0o644, 0, 0)
	}
	must(t, img, "git", "reset", "-q", "--hard")
	sameView(t, "reset --hard", view(t, img), orig)
}

// TestSquashAmPull: merge --squash, am and pull bring a metadata change
// to the tree.
func TestSquashAmPull(t *testing.T) {
	img, orig := hookedImage(t)
	side := metaCommit(t, img, "side", func() {
		unix.Chmod(filepath.Join(img, "etc/secret"), 0o400)
		os.Chown(filepath.Join(img, "home/alice"), 1234, 1234)
	})
	must(t, img, "git", "merge", "-q", "--squash", "side")
	sameView(t, "merge --squash", view(t, img), side)
	must(t, img, "git", "reset", "-q", "--hard")
	sameView(t, "reset --hard after the squash", view(t, img), orig)

	patches := t.TempDir()
	must(t, img, "git", "format-patch", "-q", "-o", patches, "main..side")
	ps, _ := filepath.Glob(filepath.Join(patches, "*.patch"))
	must(t, img, "git", append([]string{"am", "-q"}, ps...)...)
	sameView(t, "am", view(t, img), side)
	must(t, img, "git", "reset", "-q", "--hard", "HEAD~1")

	clone := filepath.Join(t.TempDir(), "clone")
	must(t, img, "git", "clone", "-q", img, clone)
	if r := onesis(t, clone, "install", "-q"); r.code != 0 {
		t.Fatal(r.err)
	}
	sameView(t, "clone after install", view(t, clone), orig)
	must(t, img, "git", "merge", "-q", "--ff-only", "side")
	must(t, clone, "git", "pull", "-q", "--ff-only")
	sameView(t, "pull", view(t, clone), side)
}

// TestPartialCommitKeepsUnseen: 'git commit PATH' commits the named
// path's metadata and HEAD's for everything else, however the tree has
// drifted; the drift stays in the work tree's .gitmeta, uncommitted.
func TestPartialCommitKeepsUnseen(t *testing.T) {
	img, _ := hookedImage(t)
	before := must(t, img, "git", "show", "HEAD:.gitmeta")
	unix.Chmod(filepath.Join(img, "usr/bin/ping"), 0o700) // unrelated drift
	appendTo(t, filepath.Join(img, "etc/passwd"), "carol:x:1001:1001::/:/bin/sh\n")
	unix.Chmod(filepath.Join(img, "etc/passwd"), 0o640)
	must(t, img, "git", "commit", "-q", "-m", "passwd only", "etc/passwd")
	after := must(t, img, "git", "show", "HEAD:.gitmeta")
	if !strings.Contains(after, "./etc/passwd  mode=0640") {
		t.Errorf("the named path's metadata was not committed")
	}
	line := func(m, p string) string {
		for _, l := range strings.Split(m, "\n") {
			if strings.HasPrefix(l, p+"  ") {
				return l
			}
		}
		return ""
	}
	if got, want := line(after, "./usr/bin/ping"), line(before, "./usr/bin/ping"); got != want {
		t.Errorf("an unnamed path's drift was committed:\n%s\nwant\n%s", got, want)
	}
	if n1, n2 := strings.Count(before, "\n"), strings.Count(after, "\n"); n1 != n2 {
		t.Errorf(".gitmeta went from %d to %d lines", n1, n2)
	}
	if r := runIn(t, img, "git", "diff", "--cached", "--quiet", "HEAD", "--", ".gitmeta"); r.code != 0 {
		t.Errorf("after a partial commit the index's .gitmeta differs from HEAD's")
	}
	if wt, _ := os.ReadFile(filepath.Join(img, ".gitmeta")); !strings.Contains(string(wt), "./usr/bin/ping  mode=0700") {
		t.Errorf("the work tree's .gitmeta lost the uncommitted drift")
	}
}

// TestInstallAllOrNothing: a foreign pre-commit hook stops 'install' from
// writing any hook, and the message says so.
func TestInstallAllOrNothing(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "repo")
	must(t, ".", "git", "init", "-q", repo)
	hooksDir := filepath.Join(repo, ".git", "hooks")
	os.MkdirAll(hooksDir, 0o755)
	os.WriteFile(filepath.Join(hooksDir, "pre-commit"), []byte("#!/bin/sh\necho mine\n"), 0o755)
	r := onesis(t, repo, "install", "--no-apply")
	if r.code != 128 || !strings.Contains(r.err, "no hook was installed") {
		t.Errorf("install over a foreign hook: exit %d\n%s", r.code, r.err)
	}
	ents, _ := os.ReadDir(hooksDir)
	if len(ents) != 1 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("hooks written although the install was refused: %v", names)
	}
	if out := runIn(t, repo, "git", "config", "onesis.enabled"); out.code == 0 {
		t.Errorf("onesis.enabled set by a refused install")
	}
}

// TestStaleIndexLock: after a git process was killed holding the index
// lock (kill -9 during 'git onesis record'), record names the lock file
// and the way out, and works once it is removed.
func TestStaleIndexLock(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "repo")
	must(t, ".", "git", "init", "-q", repo)
	os.WriteFile(filepath.Join(repo, "f"), []byte("x\n"), 0o644)
	if r := onesis(t, repo, "init", "-q"); r.code != 0 {
		t.Fatal(r.err)
	}
	lock := filepath.Join(repo, ".git", "index.lock")
	os.WriteFile(lock, nil, 0o644)
	os.Chmod(filepath.Join(repo, "f"), 0o600)
	r := onesis(t, repo, "record", "-q")
	if r.code != 128 || !strings.Contains(r.err, "rm "+lock) || !strings.Contains(r.err, "killed") {
		t.Errorf("record with a stale index.lock: exit %d\n%s", r.code, r.err)
	}
	os.Remove(lock)
	if r := onesis(t, repo, "record", "-q"); r.code != 0 {
		t.Errorf("record after removing the lock: exit %d\n%s", r.code, r.err)
	}
}

// TestRebaseQuiet: a rebase of metadata commits prints no warning at any
// step (the sequencer commits without pre-commit, by design), and ends
// with the tree as its tip records.
func TestRebaseQuiet(t *testing.T) {
	img, _ := hookedImage(t)
	must(t, img, "git", "checkout", "-q", "-b", "topic")
	for i, p := range []string{"etc/secret", "usr/bin/ping"} {
		mode := uint32(0o400) // the exec bit as git has it: metadata-only changes
		if p == "usr/bin/ping" {
			mode = 0o500
		}
		unix.Chmod(filepath.Join(img, p), mode)
		if r := onesis(t, img, "commit", "-q", "-m", "topic "+string(rune('a'+i))); r.code != 0 {
			t.Fatal(r.err)
		}
	}
	must(t, img, "git", "checkout", "-q", "main")
	os.Chown(filepath.Join(img, "home/alice/.profile"), 1234, 1234)
	if r := onesis(t, img, "commit", "-q", "-m", "main moves"); r.code != 0 {
		t.Fatal(r.err)
	}
	must(t, img, "git", "checkout", "-q", "topic")
	r := runIn(t, img, "git", "rebase", "-q", "main")
	if r.code != 0 {
		t.Fatalf("rebase: %s\n%s", r.err, must(t, img, "git", "status", "--short"))
	}
	if strings.Contains(r.err, "warning") || strings.Contains(r.err, "does not match") {
		t.Errorf("rebase printed warnings:\n%s", r.err)
	}
	assertMode(t, filepath.Join(img, "etc/secret"), 0o400, 0, 0)
	assertMode(t, filepath.Join(img, "home/alice/.profile"), 0o644, 1234, 1234)
	if st := onesis(t, img, "status"); st.code != 0 {
		t.Errorf("status after rebase: %d\n%s", st.code, st.out)
	}
}

// TestSecretWindow measures how long a recorded 0600 file stays readable by
// everyone when plain 'git checkout' writes it under umask 022 and the hook
// closes it afterwards: from the moment git wrote its content (mtime) to
// the chmod by apply (ctime). The times are logged, never asserted. What
// is asserted: the hook closes every one, and 'git onesis checkout' (git
// under umask 077) writes them 0600, so no chmod follows the write and
// there is no window at all (ctime equals mtime).
func TestSecretWindow(t *testing.T) {
	img, _ := hookedImage(t)
	must(t, img, "git", "checkout", "-q", "-b", "secrets")
	const n = 300
	var names []string
	for i := 0; i < n; i++ {
		p := filepath.Join("srv", "keys", strconv.Itoa(i/50), "key-"+strconv.Itoa(i))
		os.MkdirAll(filepath.Join(img, filepath.Dir(p)), 0o700)
		os.WriteFile(filepath.Join(img, p), []byte("secret "+strconv.Itoa(i)+"\n"), 0o600)
		names = append(names, p)
	}
	must(t, img, "git", "add", "srv")
	if r := onesis(t, img, "commit", "-q", "-m", "secrets"); r.code != 0 {
		t.Fatal(r.err)
	}
	window := func(p string) (open time.Duration, mode uint32) {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(img, p), &st); err != nil {
			t.Fatal(err)
		}
		return time.Duration(st.Ctim.Nano() - st.Mtim.Nano()), st.Mode & 0o7777
	}
	for _, how := range []string{"git checkout (umask 022, hooks)", "git onesis checkout"} {
		must(t, img, "git", "checkout", "-q", "main")
		old := unix.Umask(0o022)
		var r result
		if how == "git onesis checkout" {
			r = onesis(t, img, "checkout", "-q", "secrets")
		} else {
			r = runIn(t, img, "git", "checkout", "-q", "secrets")
		}
		unix.Umask(old)
		if r.code != 0 {
			t.Fatalf("%s: %s", how, r.err)
		}
		var ws []time.Duration
		for _, p := range names {
			w, mode := window(p)
			if mode != 0o600 {
				t.Errorf("%s: %s is %04o after the command", how, p, mode)
			}
			ws = append(ws, w)
		}
		sort.Slice(ws, func(i, j int) bool { return ws[i] < ws[j] })
		t.Logf("%s: %d secret files world-readable with their content for median %v, max %v (write to chmod)", how, n, ws[n/2], ws[n-1])
		if how == "git onesis checkout" && ws[n-1] != 0 {
			t.Errorf("git onesis checkout: a secret was chmod-ed %v after git wrote it, so it was written with another mode", ws[n-1])
		}
	}
}

// trampolineWentOn reads a GIT_TRACE file and reports, per hook, how many
// times its trampoline went past the first line that starts a process
// (the onesis.enabled check): a hook that stopped at its done check
// (hooks.Body) counts 0.
func trampolineWentOn(t *testing.T, trace string) map[string]int {
	t.Helper()
	b, err := os.ReadFile(trace)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	got, hook := map[string]int{}, ""
	for _, l := range strings.Split(string(b), "\n") {
		if _, after, ok := strings.Cut(l, "run_command: "); ok {
			for _, f := range strings.Fields(after) {
				if strings.Contains(f, "/hooks/") {
					hook = filepath.Base(f)
					got[hook] += 0
					break
				}
			}
		} else if strings.Contains(l, "git config --type=bool onesis.enabled") {
			got[hook]++
		}
	}
	return got
}

// TestCheckoutHookStopsInShell: a checkout's post-index-change hook
// applies what git wrote and leaves a note naming the git process; the
// post-checkout trampoline that git runs next stops in the shell, without
// starting git-onesis, and the tree is still right. The trampoline goes on
// to git-onesis when the note names another process, when the index is
// not the file post-index-change saw, and when GIT_DIR is set. Under 'git
// onesis checkout' neither hook goes on: the command converges itself.
func TestCheckoutHookStopsInShell(t *testing.T) {
	img, orig := hookedImage(t)
	other := metaCommit(t, img, "other", func() {
		if err := os.Chmod(filepath.Join(img, "etc/secret"), 0o640); err != nil {
			t.Fatal(err)
		}
	})
	trace := filepath.Join(t.TempDir(), "trace")
	traced := []string{"GIT_TRACE=" + trace}
	checkout := func(env []string, branch, want string) map[string]int {
		t.Helper()
		os.Remove(trace)
		if r := runEnv(t, img, append(traced, env...), "git", "checkout", "-q", branch); r.code != 0 {
			t.Fatalf("git checkout %s: exit %d: %s", branch, r.code, r.err)
		}
		sameView(t, "git checkout "+branch, view(t, img), want)
		return trampolineWentOn(t, trace)
	}
	if got := checkout(nil, "other", other); got["post-index-change"] != 1 || got["post-checkout"] != 0 {
		t.Errorf("checkout: trampolines that went on to git-onesis %v; want post-index-change once and post-checkout not", got)
	}
	gitDir := filepath.Join(img, ".git")
	if got := checkout([]string{"GIT_DIR=" + gitDir, "GIT_WORK_TREE=" + img}, "main", orig); got["post-checkout"] != 1 {
		t.Errorf("checkout with GIT_DIR set: trampolines that went on %v; want post-checkout once", got)
	}
	// git onesis checkout converges in its own process: both hooks stand
	// aside at their first line.
	os.Remove(trace)
	if r := runEnv(t, img, traced, "git", "onesis", "checkout", "-q", "other"); r.code != 0 {
		t.Fatalf("git onesis checkout other: exit %d: %s", r.code, r.err)
	}
	sameView(t, "git onesis checkout other", view(t, img), other)
	if got := trampolineWentOn(t, trace); len(got) != 2 || got["post-index-change"] != 0 || got["post-checkout"] != 0 {
		t.Errorf("git onesis checkout: trampolines run and how often they went on %v; want post-index-change and post-checkout, neither going on", got)
	}
	must(t, img, "git", "checkout", "-q", "main")
	sameView(t, "git checkout main", view(t, img), orig)

	// The trampoline alone, its parent being this test: the note must
	// name this process and the index must be the file seen.
	head := strings.TrimSpace(must(t, img, "git", "rev-parse", "HEAD"))
	note := filepath.Join(gitDir, "onesis", "converged")
	wentOn := func(pid int) bool {
		t.Helper()
		if err := os.WriteFile(note, []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Remove(trace)
		if r := runEnv(t, img, traced, "sh", filepath.Join(gitDir, "hooks", "post-checkout"), head, head, "1"); r.code != 0 {
			t.Fatalf("post-checkout: exit %d: %s", r.code, r.err)
		}
		return trampolineWentOn(t, trace)[""] > 0
	}
	must(t, img, "git", "checkout", "-q", "main") // index.seen is the index again
	if wentOn(os.Getpid()) {
		t.Error("post-checkout went on to git-onesis with a note naming its parent and the index seen")
	}
	if !wentOn(os.Getpid() + 1) {
		t.Error("post-checkout stopped with a note naming another process")
	}
	idx := filepath.Join(gitDir, "index")
	b, err := os.ReadFile(idx)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(idx); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(idx, b, 0o644); err != nil { // same bytes, another file
		t.Fatal(err)
	}
	if !wentOn(os.Getpid()) {
		t.Error("post-checkout stopped though the index is not the file post-index-change saw")
	}
	sameView(t, "after the trampolines", view(t, img), orig)
}

// TestCommitHookStopsInShell: after a commit whose .gitmeta is the one
// pre-commit recorded and staged, the post-commit trampoline stops in
// the shell (one git rev-parse, no git-onesis) and removes the stamp.
// It goes on to git-onesis after 'git commit --no-verify' (no stamp:
// the unrecorded metadata is reported), after a partial commit (whose
// stamp says so) and with GIT_DIR set.
func TestCommitHookStopsInShell(t *testing.T) {
	img, _ := hookedImage(t)
	trace := filepath.Join(t.TempDir(), "trace")
	stamp := filepath.Join(img, ".git", "onesis", "staged")
	commit := func(env []string, args ...string) (map[string]int, result) {
		t.Helper()
		os.Remove(trace)
		r := runEnv(t, img, append([]string{"GIT_TRACE=" + trace}, env...), "git", append([]string{"commit", "-q"}, args...)...)
		if r.code != 0 {
			t.Fatalf("git commit %v: exit %d: %s", args, r.code, r.err)
		}
		return trampolineWentOn(t, trace), r
	}
	secret := filepath.Join(img, "etc/secret")
	change := func(mode os.FileMode) {
		t.Helper()
		appendTo(t, secret, "more\n")
		if err := os.Chmod(secret, mode); err != nil {
			t.Fatal(err)
		}
	}
	committedMode := func() string {
		t.Helper()
		for _, l := range strings.Split(must(t, img, "git", "show", "HEAD:.gitmeta"), "\n") {
			if strings.HasPrefix(l, "./etc/secret ") {
				return l
			}
		}
		t.Fatal("etc/secret is not in HEAD's .gitmeta")
		return ""
	}

	change(0o604)
	must(t, img, "git", "add", "etc/secret")
	got, _ := commit(nil, "-m", "plain")
	if got["pre-commit"] != 1 || got["post-commit"] != 0 {
		t.Errorf("plain commit: trampolines that went on %v; want pre-commit once and post-commit not", got)
	}
	if l := committedMode(); !strings.Contains(l, "mode=0604") {
		t.Errorf("the commit did not record the chmod: %s", l)
	}
	if _, err := os.Lstat(stamp); !os.IsNotExist(err) {
		t.Errorf("the stamp is still there after post-commit: %v", err)
	}

	// --no-verify: no stamp, so git-onesis runs and reports.
	change(0o640)
	must(t, img, "git", "add", "etc/secret")
	got, r := commit(nil, "--no-verify", "-m", "unverified")
	if got["post-commit"] != 1 || !strings.Contains(r.err, "without the pre-commit hook") {
		t.Errorf("commit --no-verify: trampolines that went on %v, stderr %q; want post-commit to go on and warn", got, r.err)
	}

	// A partial commit: the stamp's second line sends post-commit on.
	change(0o600)
	got, _ = commit(nil, "-m", "partial", "--", "etc/secret")
	if got["post-commit"] != 1 {
		t.Errorf("partial commit: trampolines that went on %v; want post-commit once", got)
	}
	if l := committedMode(); !strings.Contains(l, "mode=0600") {
		t.Errorf("the partial commit did not record the chmod: %s", l)
	}

	// GIT_DIR set: the shell cannot tell, git-onesis decides.
	change(0o644)
	must(t, img, "git", "add", "etc/secret")
	got, _ = commit([]string{"GIT_DIR=" + filepath.Join(img, ".git")}, "-m", "git dir")
	if got["post-commit"] != 1 {
		t.Errorf("commit with GIT_DIR: trampolines that went on %v; want post-commit once", got)
	}
	if l := committedMode(); !strings.Contains(l, "mode=0644") {
		t.Errorf("the commit with GIT_DIR did not record the chmod: %s", l)
	}
	if out := must(t, img, "git", "onesis", "status", "--porcelain"); out != "" {
		t.Errorf("status after the commits:\n%s", out)
	}
}
