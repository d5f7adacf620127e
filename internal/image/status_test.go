package image

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/onesis/git-onesis/internal/git"
	"github.com/onesis/git-onesis/meta"
)

// TestStatusContentIsGits: the content half of Status, which spares git a
// second look at the tree (assume-valid index entries, untracked files
// from the scan), reports exactly what 'git status' reports itself, step
// after step of content changes that stat data alone could hide (same
// size, mtime put back, racy entries), untracked and ignored files, a
// nested repository and staged changes.
func TestStatusContentIsGits(t *testing.T) {
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	write := func(n, s string) {
		t.Helper()
		os.MkdirAll(filepath.Dir(p(n)), 0o755)
		if err := os.WriteFile(p(n), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gitOut(t, dir, "init", "-q", "-b", "main")
	write(".gitignore", "/tmp/*\n*.log\n")
	write("etc/hostname", "node1\n")
	write("etc/motd", "hello\n")
	write("usr/bin/tool", "#!/bin/sh\n")
	os.Symlink("tool", p("usr/bin/alias"))
	im := recordAndCommit(t, dir)
	// Stat data older than the index: the shortcut applies from here on.
	old := time.Now().Add(-time.Hour)
	for _, n := range []string{".gitignore", ".gitmeta", "etc/hostname", "etc/motd", "usr/bin/tool"} {
		os.Chtimes(p(n), old, old)
	}
	ts := unix.NsecToTimespec(old.UnixNano())
	unix.UtimesNanoAt(unix.AT_FDCWD, p("usr/bin/alias"), []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
	gitOut(t, dir, "update-index", "--refresh")

	steps := []struct {
		name string
		do   func()
	}{
		{"clean", func() {}},
		{"same size, mtime put back", func() {
			// A second later, so that even a git comparing whole
			// seconds sees the new ctime.
			time.Sleep(1100 * time.Millisecond)
			var st unix.Stat_t
			unix.Lstat(p("etc/hostname"), &st)
			write("etc/hostname", "node2\n")
			unix.UtimesNano(p("etc/hostname"), []unix.Timespec{st.Atim, st.Mtim})
		}},
		{"chmod +x", func() { os.Chmod(p("etc/motd"), 0o755) }},
		{"deleted", func() { os.Remove(p("usr/bin/tool")) }},
		{"symlink retargeted", func() { os.Remove(p("usr/bin/alias")); os.Symlink("other", p("usr/bin/alias")) }},
		{"staged with the trees written, work tree changed", func() {
			// The index's own tree is valid but not HEAD's: git status
			// has a staged file to report beside the changed ones.
			write("etc/staged", "s\n")
			os.Chtimes(p("etc/staged"), old, old)
			gitOut(t, dir, "add", "etc/staged")
			gitOut(t, dir, "write-tree")
		}},
		{"untracked and ignored", func() {
			write("etc/new", "x")
			write("tmp/scratch", "x")
			write("var/log/boot.log", "x")
			os.Symlink("nowhere", p("etc/link"))
		}},
		{"staged add, rename and racy edit", func() {
			write("etc/issue", "issue\n")
			gitOut(t, dir, "add", "etc/issue")
			gitOut(t, dir, "mv", "etc/motd", "etc/motd2")
			// Written in the same second as the index: racy, so git must
			// read it.
			write("etc/issue", "ISSUE\n")
		}},
		{"nested repository", func() {
			gitOut(t, p(""), "init", "-q", "sub")
			write("sub/f", "x")
		}},
		{"file turned directory", func() { os.Remove(p("etc/hostname")); write("etc/hostname/x", "x") }},
		// git's own walk again: the index cannot be read in process.
		{"split index", func() { gitOut(t, dir, "update-index", "--split-index") }},
	}
	byPath0 := statusByPath.Load()
	for i, s := range steps {
		s.do()
		skips := statusSkips.Load()
		st, err := im.Status()
		if skipped := statusSkips.Load() != skips; skipped != (i == 0) {
			t.Errorf("%s: git status skipped: %v; want it skipped only when clean", s.name, skipped)
		}
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		want, err := im.Git.StatusPorcelain()
		if err != nil {
			t.Fatal(err)
		}
		got := make([]git.StatusEntry, len(st.Content))
		for i, c := range st.Content {
			got[i] = git.StatusEntry{XY: c.XY, Path: c.Path, Orig: c.Orig}
		}
		key := func(a, b git.StatusEntry) int {
			if a.Path < b.Path {
				return -1
			}
			if a.Path > b.Path {
				return 1
			}
			return 0
		}
		slices.SortFunc(got, key)
		slices.SortFunc(want, key)
		if !slices.Equal(got, want) {
			t.Errorf("%s: Status content %+v; git status says %+v", s.name, got, want)
		}
	}
	// The steps from "same size" to "symlink retargeted" change a few
	// entries with nothing staged: git is asked about those by name.
	if n := statusByPath.Load() - byPath0; n < 4 {
		t.Errorf("git status was asked by path %d times, want at least 4", n)
	}
}

// TestProvenClean: what lets Status mark an index entry assume-valid.
func TestProvenClean(t *testing.T) {
	ix := &git.Index{Mtime: unix.Timespec{Sec: 1000, Nsec: 500}}
	base := git.IndexEntry{Path: "f", Mode: 0o100644, CtimeSec: 900, MtimeSec: 900, Ino: 7, Dev: 1, Size: 3, UID: 0, GID: 0}
	sd := meta.StatData{CtimeSec: 900, MtimeSec: 900, Ino: 7, Dev: 1, Size: 3, Mode: unix.S_IFREG | 0o644}
	tests := []struct {
		name string
		e    func(e *git.IndexEntry)
		s    func(s *meta.StatData)
		want bool
	}{
		{"same", nil, nil, true},
		{"racy: modified in the index's second", func(e *git.IndexEntry) { e.MtimeSec = 1000 }, func(s *meta.StatData) { s.MtimeSec = 1000 }, false},
		{"racy: modified after the index", func(e *git.IndexEntry) { e.MtimeSec = 1001 }, func(s *meta.StatData) { s.MtimeSec = 1001 }, false},
		{"ctime moved (chmod, chown, setxattr)", nil, func(s *meta.StatData) { s.CtimeNsec = 1 }, false},
		{"mtime moved", nil, func(s *meta.StatData) { s.MtimeSec = 901 }, false},
		{"size", nil, func(s *meta.StatData) { s.Size = 4 }, false},
		{"inode", nil, func(s *meta.StatData) { s.Ino = 8 }, false},
		{"owner", nil, func(s *meta.StatData) { s.UID = 1000 }, false},
		{"executable bit", nil, func(s *meta.StatData) { s.Mode |= 0o100 }, false},
		{"group write only", nil, func(s *meta.StatData) { s.Mode |= 0o020 }, true},
		{"now a symlink", nil, func(s *meta.StatData) { s.Mode = unix.S_IFLNK | 0o777 }, false},
		{"unmerged", func(e *git.IndexEntry) { e.Stage = 2 }, nil, false},
		{"skip-worktree", func(e *git.IndexEntry) { e.SkipWorktree = true }, nil, false},
		{"intent to add", func(e *git.IndexEntry) { e.IntentToAdd = true }, nil, false},
		{"submodule", func(e *git.IndexEntry) { e.Mode = 0o160000 }, nil, false},
	}
	for _, tc := range tests {
		e, s := base, sd
		if tc.e != nil {
			tc.e(&e)
		}
		if tc.s != nil {
			tc.s(&s)
		}
		if got := provenClean(ix, &e, &s); got != tc.want {
			t.Errorf("%s: provenClean = %v; want %v", tc.name, got, tc.want)
		}
	}
}
