package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestRepoAccess (issue 22, item 1): the objects of an image repository
// hold etc/shadow whatever its mode in the tree, so init makes the git
// directory readable by root only and says so; the reviewers' group is
// let in only when the admin names it; status warns when anyone can read
// the objects.
func TestRepoAccess(t *testing.T) {
	needRoot(t)
	base, nobodyHome, otherHome := adminBase(t)
	img := filepath.Join(base, "image")
	adminTree(t, img)
	r := onesis(t, img, "init", "--commit")
	if r.code != 0 || !strings.Contains(r.err, "readable by its owner only (core.sharedRepository=0600)") {
		t.Fatalf("init does not say who may read the repository: exit %d\n%s", r.code, r.err)
	}
	if st, err := os.Stat(filepath.Join(img, ".git")); err != nil || st.Mode().Perm()&0o077 != 0 {
		t.Errorf(".git after init: %v %v; want no access for group or others", st.Mode(), err)
	}
	if secretReadBy(t, otherID, otherID, otherHome, img) {
		t.Error("another local user reads etc/shadow from the objects after init")
	}
	if secretReadBy(t, nobodyID, nobodyID, nobodyHome, img) {
		t.Error("a reviewer reads etc/shadow before the admin named a reviewers' group")
	}
	if st := onesis(t, img, "status"); st.code != 0 || strings.Contains(st.err, "warning") {
		t.Errorf("status of a private repository: exit %d\n%s", st.code, st.err)
	}

	// The reviewers' group, named by the admin.
	r = onesis(t, img, "install", "--no-apply", "--reviewers", "65534")
	if r.code != 0 || !strings.Contains(r.err, "readable by its owner and group nogroup only (core.sharedRepository=0640)") {
		t.Fatalf("install --reviewers: exit %d\n%s", r.code, r.err)
	}
	if got := strings.TrimSpace(must(t, img, "git", "config", "onesis.reviewers")); got != "nogroup" {
		t.Errorf("onesis.reviewers = %q", got)
	}
	if !secretReadBy(t, nobodyID, nobodyID, nobodyHome, img) {
		t.Error("the reviewers' group cannot read the repository")
	}
	if secretReadBy(t, otherID, otherID, otherHome, img) {
		t.Error("a user outside the reviewers' group reads etc/shadow")
	}
	// A later install without --reviewers keeps the group.
	if r := onesis(t, img, "install", "--no-apply"); r.code != 0 || !strings.Contains(r.err, "group nogroup only") {
		t.Errorf("install without --reviewers dropped the group: %s", r.err)
	}

	// A repository opened to everyone by hand: status and verify warn.
	must(t, img, "git", "config", "core.sharedRepository", "all")
	must(t, img, "chmod", "-R", "a+rX", ".git")
	for _, cmd := range []string{"status", "verify"} {
		st := onesis(t, img, cmd)
		if st.code != 0 || !strings.Contains(st.err, "warning: every user of this machine can read this repository's objects") ||
			!strings.Contains(st.err, "git onesis install --reviewers GROUP") {
			t.Errorf("%s of a world-readable repository: exit %d, no warning:\n%s", cmd, st.code, st.err)
		}
	}
}

// TestReviewAfterPromoteAndSync (issue 22, item 2, and the proof's review
// flow): promote by merge and images sync run git under umask 077; with
// core.sharedRepository every object they write stays readable by the
// reviewers' group and no one else, so the README's review flow, run by
// an unprivileged reviewer afterwards, works end to end.
func TestReviewAfterPromoteAndSync(t *testing.T) {
	needRoot(t)
	base, nobodyHome, otherHome := adminBase(t)
	img := filepath.Join(base, "image")
	adminTree(t, img)
	if r := onesis(t, img, "init", "--commit", "-q", "--reviewers", "nogroup"); r.code != 0 {
		t.Fatalf("init: %s", r.err)
	}
	// A variant with its own commit, checked out in a worktree, and a
	// base that moves: images sync merges in that worktree.
	if r := onesis(t, img, "images", "add", "--base", "main", "compute"); r.code != 0 {
		t.Fatal(r.err)
	}
	cwt := filepath.Join(base, "compute")
	must(t, img, "git", "worktree", "add", "-q", cwt, "compute")
	writeTree(t, cwt, map[string]string{"etc/compute.conf": "ib\n"})
	must(t, cwt, "git", "add", "-A")
	must(t, cwt, "git", "onesis", "commit", "-qm", "compute bits")
	writeTree(t, img, map[string]string{"etc/motd": "v2\n"})
	must(t, img, "git", "onesis", "commit", "-qam", "motd v2")
	if r := onesis(t, img, "images", "sync", "main"); r.code != 0 || !strings.Contains(r.out, "compute: merged") {
		t.Fatalf("images sync: exit %d\n%s%s", r.code, r.out, r.err)
	}
	// An upgrade promoted by a merge (production moved meanwhile).
	if r := onesis(t, img, "upgrade", "start", "u1"); r.code != 0 {
		t.Fatalf("upgrade start: %s", r.err)
	}
	uwt := img + "-u1"
	writeTree(t, uwt, map[string]string{"var/lib/dpkg/status": "Package: tool\nStatus: install ok installed\nArchitecture: all\nVersion: 1.1-1\n"})
	must(t, uwt, "git", "onesis", "commit", "-qam", "tool 1.1")
	writeTree(t, img, map[string]string{"etc/motd": "v3\n"})
	must(t, img, "git", "onesis", "commit", "-qam", "motd v3")
	if r := onesis(t, img, "upgrade", "promote", "u1"); r.code != 0 || !strings.Contains(r.out, "u1 merged into main") {
		t.Fatalf("promote by merge: exit %d\n%s%s", r.code, r.out, r.err)
	}

	// Every object: group nogroup may read it, others may not.
	filepath.WalkDir(filepath.Join(img, ".git", "objects"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		st, _ := os.Stat(p)
		sys := st.Sys().(*syscall.Stat_t)
		if st.Mode().Perm()&0o040 == 0 || st.Mode().Perm()&0o007 != 0 || sys.Gid != nobodyID {
			t.Errorf("%s: mode %v gid %d; want group nogroup may read, others not", p, st.Mode(), sys.Gid)
		}
		return nil
	})

	// The README's review flow, as the reviewer.
	nb := func(dir string, args ...string) result {
		t.Helper()
		r := userRun(t, nobodyID, nobodyID, nobodyHome, dir, args...)
		if r.code != 0 {
			t.Errorf("reviewer: %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.out, r.err)
		}
		return r
	}
	nb(img, "git", "log", "--oneline", "main", "compute")
	nb(img, "git", "fsck", "--no-dangling")
	nb(nobodyHome, "git", "clone", "-q", img, "clone")
	clone := filepath.Join(nobodyHome, "clone")
	nb(clone, "git", "onesis", "install")
	if st := nb(clone, "git", "onesis", "status"); !strings.Contains(st.out, "nothing to report") {
		t.Errorf("reviewer's status:\n%s", st.out)
	}
	if ls := nb(clone, "git", "onesis", "ls", "etc/shadow", "usr/bin/tool"); !strings.Contains(strings.Join(strings.Fields(ls.out), " "), "-rw-r----- root shadow etc/shadow -rwsr-xr-x root root usr/bin/tool") {
		t.Errorf("reviewer's ls does not show the true owners:\n%s", ls.out)
	}
	if l := nb(clone, "git", "onesis", "log", "-n3"); !strings.Contains(l.out, "Promote u1 to main") || !strings.Contains(l.out, "package > tool 1.0-1 -> 1.1-1") {
		t.Errorf("reviewer's log:\n%s", l.out)
	}
	nb(clone, "git", "onesis", "packages", "diff", "HEAD~2", "HEAD")
	nb(clone, "git", "onesis", "diff", "--security", "HEAD~3", "HEAD")
	nb(clone, "git", "onesis", "export", "--format=tar", "--rev", "HEAD", "-o", filepath.Join(nobodyHome, "image.tar"))
	if secretReadBy(t, otherID, otherID, otherHome, img) {
		t.Error("a user outside the reviewers' group reads etc/shadow after promote and sync")
	}
}
