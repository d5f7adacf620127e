package git

import (
	"errors"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// changesByParsing is what IndexChangesBetween must find, worked out the
// plain way: both index files parsed whole, their merged entries merged
// by path.
func changesByParsing(t *testing.T, older, newer string) *IndexChanges {
	t.Helper()
	a, err := ReadIndex(older, 20)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ReadIndex(newer, 20)
	if err != nil {
		t.Fatal(err)
	}
	merged := func(ix *Index) map[string]IndexEntry {
		m := map[string]IndexEntry{}
		for _, e := range ix.Entries {
			if e.Stage == 0 {
				m[e.Path] = e
			}
		}
		return m
	}
	am, bm := merged(a), merged(b)
	c := &IndexChanges{Mtime: b.Mtime}
	for _, e := range a.Entries {
		if _, ok := bm[e.Path]; !ok && e.Stage == 0 {
			c.Removed = append(c.Removed, e.Path)
		}
	}
	for _, e := range b.Entries {
		if e.SkipWorktree {
			c.SkipWorktree = true
		}
		if e.Stage != 0 {
			continue
		}
		was, ok := am[e.Path]
		if !ok || was.Ino != e.Ino || was.Dev != e.Dev || was.MtimeSec != e.MtimeSec || was.MtimeNsec != e.MtimeNsec || e.Ino == 0 {
			c.Changed = append(c.Changed, e)
		}
	}
	return c
}

// TestIndexChangesBetween compares two index files in step, without
// parsing either whole, and must find exactly what parsing both finds:
// checked over random sequences of real git commands (checkouts that
// rewrite files, refreshes after touch and chmod, adds, removals, sparse
// checkouts, merge conflicts with their stages), in index versions 2, 3
// and 4, each step's index against the one before it.
func TestIndexChangesBetween(t *testing.T) {
	for _, ver := range []string{"2", "3", "4"} {
		t.Run("v"+ver, func(t *testing.T) {
			files := map[string]string{".gitmeta": "", "etc/motd": "hi\n", "etc/ssh/sshd_config": "x\n", "usr/bin/tool": "#!/bin/sh\n",
				".gitattributes": "# none\n", "usr/share/doc/.gitattributes": "# none\n", "usr/share/doc/not.gitattributes": "x\n"}
			for i := 0; i < 40; i++ {
				files[fmt.Sprintf("usr/share/doc/p%02d/f%s", i%7, strings.Repeat("n", i))] = fmt.Sprint(i)
			}
			dir := newRepo(t, files)
			git(t, dir, "update-index", "--index-version", ver)
			git(t, dir, "branch", "other")
			git(t, dir, "checkout", "-q", "other")
			write(t, filepath.Join(dir, "etc/motd"), "other\n")
			write(t, filepath.Join(dir, "usr/share/doc/p01/new"), "new\n")
			git(t, dir, "rm", "-q", "usr/bin/tool")
			git(t, dir, "add", "-A")
			git(t, dir, "commit", "-q", "-m", "other")
			git(t, dir, "checkout", "-q", "main")
			idx := filepath.Join(dir, ".git", "index")
			rng := rand.New(rand.NewSource(20261206))
			steps := []struct {
				name string
				run  func()
			}{
				{"checkout other", func() { git(t, dir, "checkout", "-q", "other") }},
				{"checkout main", func() { git(t, dir, "checkout", "-q", "main") }},
				{"touch and refresh", func() {
					p := filepath.Join(dir, "etc/ssh/sshd_config")
					now := time.Now().Add(time.Duration(rng.Intn(1000)) * time.Millisecond)
					os.Chtimes(p, now, now)
					git(t, dir, "update-index", "-q", "--refresh")
				}},
				{"chmod and refresh", func() {
					os.Chmod(filepath.Join(dir, "etc/motd"), 0o600)
					git(t, dir, "update-index", "-q", "--refresh")
				}},
				{"add a file", func() {
					write(t, filepath.Join(dir, fmt.Sprintf("var/new%d", len(files))), "n\n")
					files[fmt.Sprint(len(files))] = ""
					mayFail(dir, "add", "-A") // refused outside a sparse checkout
				}},
				{"remove a file", func() {
					out := strings.Fields(git(t, dir, "ls-files", "usr/share/doc"))
					if len(out) > 0 {
						mayFail(dir, "rm", "-q", "--cached", out[0])
					}
				}},
				{"reset --hard", func() { git(t, dir, "reset", "-q", "--hard") }},
				{"sparse on", func() { git(t, dir, "sparse-checkout", "set", "etc") }},
				{"sparse off", func() { git(t, dir, "sparse-checkout", "disable") }},
				{"conflict and abort", func() {
					mayFail(dir, "merge", "--abort")
					mayFail(dir, "sparse-checkout", "disable")
					git(t, dir, "checkout", "-q", "-f", "main")
					write(t, filepath.Join(dir, "etc/motd"), fmt.Sprintf("mine %d\n", rng.Int()))
					mayFail(dir, "commit", "-q", "-am", "mine")
					mayFail(dir, "merge", "-q", "other") // conflicts on etc/motd
				}},
				{"abort", func() { mayFail(dir, "merge", "--abort") }},
			}
			older := filepath.Join(t.TempDir(), "older")
			snap := func() {
				b, err := os.ReadFile(idx)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(older, b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			snap()
			var saw struct{ changed, removed, sparse, stages bool }
			order := rng.Perm(len(steps)) // every step at least once
			for i := 0; i < 30; i++ {
				order = append(order, rng.Intn(len(steps)))
			}
			for i, k := range order {
				s := steps[k]
				s.run()
				got, err := IndexChangesBetween(older, idx, 20)
				if err != nil {
					t.Fatalf("step %d (%s): %v", i, s.name, err)
				}
				want := changesByParsing(t, older, idx)
				checkView(t, got.Newer, idx, ver)
				got.Newer = nil
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("step %d (%s):\n got %+v\nwant %+v", i, s.name, got, want)
				}
				saw.changed = saw.changed || len(got.Changed) > 0
				saw.removed = saw.removed || len(got.Removed) > 0
				saw.sparse = saw.sparse || got.SkipWorktree
				saw.stages = saw.stages || strings.Contains(git(t, dir, "ls-files", "-u"), " 1\t")
				snap()
			}
			if !saw.changed || !saw.removed || !saw.sparse || !saw.stages {
				t.Errorf("the steps did not cover every kind of change: %+v", saw)
			}
			// The same file twice: only entries without stat data.
			got, err := IndexChangesBetween(idx, idx, 20)
			if err != nil || len(got.Removed) != 0 {
				t.Fatalf("an index against itself: %+v, %v", got, err)
			}
			for _, e := range got.Changed {
				if e.Ino != 0 {
					t.Errorf("an index against itself lists %s, which has stat data", e.Path)
				}
			}
		})
	}
}

// checkView checks the view IndexChangesBetween took of the index file
// at idx (of version ver): none for version 4, else Read of some paths
// (every third, all stages, one that is not there) finds what
// ReadIndexFunc finds with a keep of those paths and every
// .gitattributes file, and once git rewrites the index it is
// ErrIndexReplaced.
func checkView(t *testing.T, v *IndexView, idx, ver string) {
	t.Helper()
	if ver == "4" {
		if v != nil {
			t.Fatal("a view of a version 4 index, whose paths are prefix-compressed")
		}
		return
	}
	if v == nil {
		t.Fatal("no view of a version " + ver + " index")
	}
	all, err := ReadIndex(idx, 20)
	if err != nil {
		t.Fatal(err)
	}
	ask := map[string]bool{"no/such/path": true}
	for i, e := range all.Entries {
		if i%3 == 0 || e.Stage != 0 {
			ask[e.Path] = true
		}
	}
	var paths []string
	for p := range ask {
		paths = append(paths, p)
	}
	got, err := v.Read(paths)
	if err != nil {
		t.Fatalf("IndexView.Read: %v", err)
	}
	want, err := ReadIndexFunc(idx, 20, func(p []byte) bool { return ask[string(p)] || isAttributes(p) })
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Entries) < 3 || !reflect.DeepEqual(got.Entries, want.Entries) || !got.Partial || got.Mtime != want.Mtime {
		t.Fatalf("IndexView.Read:\n got %+v\nwant %+v", got.Entries, want.Entries)
	}
	attrs := 0
	for _, e := range got.Entries {
		if strings.HasSuffix(e.Path, "/.gitattributes") || e.Path == ".gitattributes" {
			attrs++
		}
		if strings.HasSuffix(e.Path, "not.gitattributes") && !ask[e.Path] {
			t.Fatalf("IndexView.Read took %s for an attributes file", e.Path)
		}
	}
	if attrs == 0 {
		t.Fatal("IndexView.Read left out the .gitattributes entries")
	}
}

// TestIndexViewReplaced: a view of an index file git has since replaced
// reads nothing.
func TestIndexViewReplaced(t *testing.T) {
	dir := newRepo(t, map[string]string{"a": "1\n", "b/c": "2\n"})
	idx := filepath.Join(dir, ".git", "index")
	c, err := IndexChangesBetween(idx, idx, 20)
	if err != nil || c.Newer == nil {
		t.Fatalf("IndexChangesBetween: %+v, %v", c, err)
	}
	if ix, err := c.Newer.Read([]string{"a"}); err != nil || len(ix.Entries) != 1 || ix.Entries[0].Path != "a" {
		t.Fatalf("Read(a) = %+v, %v", ix, err)
	}
	write(t, filepath.Join(dir, "d"), "3\n")
	git(t, dir, "add", "d")
	if _, err := c.Newer.Read([]string{"a"}); !errors.Is(err, ErrIndexReplaced) {
		t.Fatalf("Read after git add = %v, want ErrIndexReplaced", err)
	}
}

// TestIndexChangesBetweenEdges: a missing file is an empty index, a split
// index is ErrSplitIndex, and damage is an error, never a partial answer.
func TestIndexChangesBetweenEdges(t *testing.T) {
	dir := newRepo(t, map[string]string{"a": "1\n", "b/c": "2\n"})
	idx := filepath.Join(dir, ".git", "index")
	none := filepath.Join(dir, "no-such-index")
	c, err := IndexChangesBetween(none, idx, 20)
	if err != nil || len(c.Changed) != 2 || len(c.Removed) != 0 {
		t.Errorf("from no index: %+v, %v; want both entries changed", c, err)
	}
	c, err = IndexChangesBetween(idx, none, 20)
	if err != nil || len(c.Changed) != 0 || !reflect.DeepEqual(c.Removed, []string{"a", "b/c"}) {
		t.Errorf("to no index: %+v, %v; want both removed", c, err)
	}
	good, err := os.ReadFile(idx)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(dir, "cut")
	for _, n := range []int{0, 11, 40, len(good) - 30} {
		os.WriteFile(cut, good[:n], 0o644)
		if _, err := IndexChangesBetween(idx, cut, 20); err == nil {
			t.Errorf("an index cut to %d bytes compared", n)
		}
	}
	git(t, dir, "update-index", "--split-index")
	if _, err := IndexChangesBetween(cut, idx, 20); err == nil {
		t.Error("a damaged older index compared")
	}
	os.WriteFile(cut, good, 0o644)
	if _, err := IndexChangesBetween(cut, idx, 20); !errors.Is(err, ErrSplitIndex) {
		t.Errorf("split index: %v, want ErrSplitIndex", err)
	}
}

// TestReadIndexFunc keeps exactly the entries asked for, in order, with
// what ReadIndex reads for them, in every index version.
func TestReadIndexFunc(t *testing.T) {
	for _, ver := range []string{"2", "3", "4"} {
		dir := newRepo(t, map[string]string{"a": "1\n", "b/c": "2\n", "b/d": "3\n", "e/.gitattributes": "", "f": "4\n"})
		git(t, dir, "update-index", "--index-version", ver)
		idx := filepath.Join(dir, ".git", "index")
		all, err := ReadIndex(idx, 20)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]bool{"b/c": true, "e/.gitattributes": true, "f": true}
		sub, err := ReadIndexFunc(idx, 20, func(p []byte) bool { return want[string(p)] })
		if err != nil {
			t.Fatal(err)
		}
		var exp []IndexEntry
		for _, e := range all.Entries {
			if want[e.Path] {
				exp = append(exp, e)
			}
		}
		if !sub.Partial || all.Partial || !reflect.DeepEqual(sub.Entries, exp) || sub.Mtime != all.Mtime {
			t.Errorf("v%s: ReadIndexFunc kept %+v, want %+v", ver, sub.Entries, exp)
		}
		for k := range sub.Entries {
			if sub.OID(k) != all.OID(indexOf(all, sub.Entries[k].Path)) {
				t.Errorf("v%s: %s: object id differs", ver, sub.Entries[k].Path)
			}
		}
	}
}

func indexOf(ix *Index, p string) int {
	for k := range ix.Entries {
		if ix.Entries[k].Path == p {
			return k
		}
	}
	return -1
}

// mayFail runs git where failing is part of the step (a merge that
// conflicts, an abort with nothing to abort).
func mayFail(dir string, args ...string) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Run()
}

// TestTreeID reads the top tree of git's cache-tree extension: HEAD's tree
// after a commit, nothing once a path is staged (git marks it stale), and
// HEAD's again after git writes the trees, in every index version and
// for a missing index.
func TestTreeID(t *testing.T) {
	for _, ver := range []string{"2", "3", "4"} {
		dir := newRepo(t, map[string]string{"a": "1\n", "b/c": "2\n"})
		git(t, dir, "update-index", "--index-version", ver)
		git(t, dir, "commit", "-q", "--allow-empty", "-m", "v"+ver) // writes the trees
		idx := filepath.Join(dir, ".git", "index")
		read := func() (string, bool) {
			ix, err := ReadIndex(idx, 20)
			if err != nil {
				t.Fatal(err)
			}
			return ix.TreeID()
		}
		head := strings.TrimSpace(git(t, dir, "rev-parse", "HEAD^{tree}"))
		if id, ok := read(); !ok || id != head {
			t.Errorf("v%s after commit: %q, %v; want HEAD's tree %s", ver, id, ok, head)
		}
		write(t, filepath.Join(dir, "b/d"), "3\n")
		git(t, dir, "add", "b/d")
		if id, ok := read(); ok {
			t.Errorf("v%s with b/d staged: %q, want none (stale)", ver, id)
		}
		tree := strings.TrimSpace(git(t, dir, "write-tree"))
		if id, ok := read(); !ok || id != tree || tree == head {
			t.Errorf("v%s after write-tree: %q, %v; want %s", ver, id, ok, tree)
		}
	}
	if ix, err := ReadIndex(filepath.Join(t.TempDir(), "none"), 20); err != nil {
		t.Fatal(err)
	} else if id, ok := ix.TreeID(); ok {
		t.Errorf("a missing index has tree %q", id)
	}
}
