package git

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// debugIndex renders what ReadIndex parsed in the shape of
// 'git ls-files --debug' (with -t tags for skip-worktree), so the two can
// be compared line for line.
func debugIndex(ix *Index) string {
	var b strings.Builder
	for _, e := range ix.Entries {
		tag := "H"
		if e.SkipWorktree {
			tag = "S"
		}
		name := e.Path
		if strings.ContainsAny(name, "\t\n\"\\") {
			name = strconv.Quote(name) // git's C-style quoting, for these bytes
		}
		fmt.Fprintf(&b, "%s %s\n  ctime: %d:%d\n  mtime: %d:%d\n  dev: %d\tino: %d\n  uid: %d\tgid: %d\n  size: %d\tflags: ",
			tag, name, e.CtimeSec, e.CtimeNsec, e.MtimeSec, e.MtimeNsec, e.Dev, e.Ino, e.UID, e.GID, e.Size)
		b.WriteString("*\n")
	}
	return b.String()
}

// gitDebug is 'git ls-files -t --debug' with the flags value masked (it
// prints git's in-core flags, which include bits not stored on disk).
func gitDebug(t *testing.T, dir string) string {
	out := git(t, dir, "ls-files", "-t", "--debug")
	var b strings.Builder
	for _, l := range strings.SplitAfter(out, "\n") {
		if i := strings.Index(l, "flags: "); i >= 0 {
			l = l[:i+len("flags: ")] + "*\n"
		}
		b.WriteString(l)
	}
	return b.String()
}

// TestReadIndex parses indexes that real git wrote, in versions 2, 3 (with
// skip-worktree bits from a sparse checkout) and 4 (prefix-compressed
// paths), and compares every field with 'git ls-files --debug'.
func TestReadIndex(t *testing.T) {
	files := map[string]string{".gitmeta": "", "etc/motd": "hi\n", "etc/ssh/sshd_config": "x\n",
		"usr/bin/tool": "#!/bin/sh\n", "usr/share/doc/a/b/c/long-name-" + strings.Repeat("x", 40): "y\n",
		"odd name\twith tab": "z\n"}
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string)
		ver   int
		skip  bool
	}{
		{"v2", func(t *testing.T, dir string) {}, 2, false},
		{"v3 sparse", func(t *testing.T, dir string) {
			git(t, dir, "sparse-checkout", "set", "--no-cone", "/etc/", "/.gitmeta")
		}, 3, true},
		{"v4", func(t *testing.T, dir string) { git(t, dir, "update-index", "--index-version", "4") }, 4, false},
		{"v4 sparse", func(t *testing.T, dir string) {
			git(t, dir, "sparse-checkout", "set", "--no-cone", "/usr/")
			git(t, dir, "update-index", "--index-version", "4")
		}, 4, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := newRepo(t, files)
			tc.setup(t, dir)
			r := discover(t, dir)
			ix, err := ReadIndex(r.IndexFile(), r.HashLen())
			if err != nil {
				t.Fatal(err)
			}
			if ix.Version != tc.ver {
				t.Errorf("version %d, want %d", ix.Version, tc.ver)
			}
			if got, want := debugIndex(ix), gitDebug(t, dir); got != want {
				t.Errorf("parsed:\n%s\ngit ls-files --debug:\n%s", got, want)
			}
			skipped := 0
			for _, e := range ix.Entries {
				if e.SkipWorktree {
					skipped++
				}
			}
			if (skipped > 0) != tc.skip {
				t.Errorf("%d skip-worktree entries; want some: %v", skipped, tc.skip)
			}
		})
	}
}

// TestReadIndexSHA256 reads a SHA-256 repository's index (32-byte ids).
func TestReadIndexSHA256(t *testing.T) {
	dir := filepath.Join(tmp(t), "repo")
	git(t, tmp(t), "init", "-q", "--object-format=sha256", dir)
	write(t, filepath.Join(dir, "a/b"), "x\n")
	git(t, dir, "add", "-A")
	r := discover(t, dir)
	if r.HashLen() != 32 {
		t.Fatalf("HashLen = %d, want 32", r.HashLen())
	}
	ix, err := ReadIndex(r.IndexFile(), r.HashLen())
	if err != nil {
		t.Fatal(err)
	}
	if len(ix.Entries) != 1 || ix.Entries[0].Path != "a/b" || ix.Entries[0].Mode != 0o100644 {
		t.Fatalf("entries %+v", ix.Entries)
	}
}

// TestReadIndexSplitAndDamaged: a split index is named as such; damaged
// files are errors, never a panic; a missing index is empty.
func TestReadIndexSplitAndDamaged(t *testing.T) {
	dir := newRepo(t, map[string]string{"a": "1\n", "b/c": "2\n"})
	git(t, dir, "update-index", "--split-index")
	r := discover(t, dir)
	if _, err := ReadIndex(r.IndexFile(), 20); !errors.Is(err, ErrSplitIndex) {
		t.Errorf("split index: %v, want ErrSplitIndex", err)
	}
	git(t, dir, "update-index", "--no-split-index")
	good, err := os.ReadFile(r.IndexFile())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parseIndex(good, 20); err != nil {
		t.Fatalf("the unsplit index: %v", err)
	}
	for i := 0; i < len(good); i++ {
		if _, err := parseIndex(good[:i], 20); err == nil && i < 12+20 {
			t.Errorf("a %d-byte prefix parsed", i)
		}
	}
	bad := append([]byte(nil), good...)
	bad[11] = 0xff // entry count beyond the data
	if _, err := parseIndex(bad, 20); err == nil {
		t.Error("an index claiming more entries than it holds parsed")
	}
	if ix, err := ReadIndex(filepath.Join(dir, "no-such-index"), 20); err != nil || len(ix.Entries) != 0 {
		t.Errorf("missing index: %v, %v", ix, err)
	}
}

// TestIndexRewrites: the index copies WithAssumeValid and WithStat make
// are read by git (checksum right, in every index version and both hash
// sizes), with exactly the changes asked for: assume-unchanged bits as
// 'git ls-files -v' shows them, ctime and owner (or all the stat data, for
// a Full update) as 'ls-files --debug' shows them, and the index time kept (so are racy entries).
func TestIndexRewrites(t *testing.T) {
	for _, tc := range []struct {
		name  string
		init  []string
		setup []string
	}{
		{"v2", nil, nil},
		{"v4", nil, []string{"update-index", "--index-version", "4"}},
		{"sha256", []string{"--object-format=sha256"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(tmp(t), "repo")
			git(t, tmp(t), append(append([]string{"init", "-q"}, tc.init...), dir)...)
			for _, p := range []string{"a", "b/c", "b/d", "e"} {
				write(t, filepath.Join(dir, p), p+"\n")
			}
			git(t, dir, "add", "-A")
			git(t, dir, "commit", "-q", "-m", "one")
			if tc.setup != nil {
				git(t, dir, tc.setup...)
			}
			r := discover(t, dir)
			ix, err := ReadIndex(r.IndexFile(), r.HashLen())
			if err != nil {
				t.Fatal(err)
			}
			if got, want := ix.OID(1), git(t, dir, "rev-parse", ":b/c"); got != strings.TrimSpace(want) {
				t.Errorf("OID of b/c = %s; git says %s", got, want)
			}
			// Assume-valid on b/c and e.
			tmpIndex := filepath.Join(dir, ".git", "copy")
			if err := os.WriteFile(tmpIndex, ix.WithAssumeValid([]bool{false, true, false, true}).Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			got := git(t, dir, "-c", "core.fsmonitor=false", "--git-dir=.git", "--work-tree=.", "ls-files", "-v")
			cmd := exec.Command("git", "ls-files", "-v")
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "GIT_INDEX_FILE="+tmpIndex)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("git ls-files -v on the copy: %v\n%s", err, out)
			}
			if want := "H a\nh b/c\nH b/d\nh e\n"; string(out) != want {
				t.Errorf("copy: ls-files -v = %q; want %q (the original: %q)", out, want, got)
			}
			// New ctime and owner for b/d; a is racy.
			future := time.Now().Add(time.Hour)
			if err := os.Chtimes(filepath.Join(dir, "a"), future, future); err != nil {
				t.Fatal(err)
			}
			git(t, dir, "update-index", "--refresh")
			if ix, err = ReadIndex(r.IndexFile(), r.HashLen()); err != nil {
				t.Fatal(err)
			}
			err = r.UpdateIndexFile(nil, func(ix *Index) *IndexPatch {
				return ix.WithStat([]StatUpdate{
					{Entry: 1, CtimeSec: 111, CtimeNsec: 222, UID: 333, GID: 444, Full: true, MtimeSec: 555, MtimeNsec: 666, Dev: 777, Ino: 888, Size: 999},
					{Entry: 2, CtimeSec: 12345, CtimeNsec: 678, UID: 4321, GID: 8765},
				})
			})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(r.IndexFile() + ".lock"); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("index.lock left behind: %v", err)
			}
			dbg := git(t, dir, "ls-files", "--debug")
			if !strings.Contains(dbg, "b/d\n  ctime: 12345:678\n") || !strings.Contains(dbg, "uid: 4321\tgid: 8765") {
				t.Errorf("b/d not updated:\n%s", dbg)
			}
			if !strings.Contains(dbg, "b/c\n  ctime: 111:222\n  mtime: 555:666\n  dev: 777\tino: 888\n  uid: 333\tgid: 444\n  size: 999\tflags: 0\n") {
				t.Errorf("b/c's full stat data not updated:\n%s", dbg)
			}
			if ix2, err := ReadIndex(r.IndexFile(), r.HashLen()); err != nil || ix2.Mtime != ix.Mtime {
				t.Errorf("index time %v after the rewrite, %v before (%v): git's racy check would change", ix2.Mtime, ix.Mtime, err)
			}
			// b/c's made-up size makes git call it modified without
			// reading it (as git does for a size that differs); add
			// puts its real stat data back.
			git(t, dir, "add", "b/c")
			// git still finds a clean (its content is checked) and fsck is happy.
			if out := git(t, dir, "status", "--porcelain"); out != "" {
				t.Errorf("status after the rewrite: %q", out)
			}
			// A held lock is respected.
			os.WriteFile(r.IndexFile()+".lock", nil, 0o644)
			if err := r.UpdateIndexFile(ix, func(ix *Index) *IndexPatch { return ix.WithStat(nil) }); !errors.Is(err, ErrIndexLocked) {
				t.Errorf("with index.lock held: %v, want ErrIndexLocked", err)
			}
			os.Remove(r.IndexFile() + ".lock")
		})
	}
}
