package image

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/onesis/git-onesis/internal/git"
)

// TestContentRefreshIsGits: for entries whose stat data does not prove
// them unchanged (a chmod's new ctime, an entry git smudged as racily
// clean, edits that keep or change the size, a new executable bit), the
// content refresher decides as git's own 'update-index --refresh' does:
// where it refreshes, the entry it writes is byte for byte the stat data
// git writes; where it keeps the entry, git keeps it too. Where git could
// convert the content first (core.autocrlf, a text attribute in a
// .gitattributes or info/attributes) or would not look (a symlink in the
// path), it leaves the entry to git.
func TestContentRefreshIsGits(t *testing.T) {
	for _, tc := range []struct {
		name string
		path string
		do   func(t *testing.T, dir string, smudge func(string))
		want contentVerdict
	}{
		{"chmod: new ctime", "a", func(t *testing.T, dir string, _ func(string)) { os.Chmod(filepath.Join(dir, "a"), 0o600) }, gitRefreshes},
		{"smudged, content the same", "a", func(t *testing.T, dir string, smudge func(string)) { smudge("a") }, gitRefreshes},
		{"smudged symlink", "l", func(t *testing.T, dir string, smudge func(string)) { smudge("l") }, gitRefreshes},
		{"same size, new content", "a", func(t *testing.T, dir string, _ func(string)) {
			os.WriteFile(filepath.Join(dir, "a"), []byte("A\n"), 0o644)
		}, gitKeeps},
		{"smudged, same size, new content", "a", func(t *testing.T, dir string, smudge func(string)) {
			smudge("a")
			os.WriteFile(filepath.Join(dir, "a"), []byte("A\n"), 0o644)
		}, gitKeeps},
		{"size differs", "a", func(t *testing.T, dir string, _ func(string)) {
			os.WriteFile(filepath.Join(dir, "a"), []byte("aa\n"), 0o644)
		}, gitKeeps},
		{"executable bit", "a", func(t *testing.T, dir string, _ func(string)) { os.Chmod(filepath.Join(dir, "a"), 0o755) }, gitKeeps},
		{"drivers only in info/attributes", "a", func(t *testing.T, dir string, _ func(string)) {
			mustWrite(t, filepath.Join(dir, ".git", "info", "attributes"), "# ours\n/.gitmeta diff=gitmeta merge=gitmeta\n")
			os.Chmod(filepath.Join(dir, "a"), 0o600)
		}, gitRefreshes},
		{"core.autocrlf", "a", func(t *testing.T, dir string, _ func(string)) {
			gitOut(t, dir, "config", "core.autocrlf", "true")
			os.Chmod(filepath.Join(dir, "a"), 0o600)
		}, askGit},
		{"text in info/attributes", "a", func(t *testing.T, dir string, _ func(string)) {
			mustWrite(t, filepath.Join(dir, ".git", "info", "attributes"), "* text=auto\n")
			os.Chmod(filepath.Join(dir, "a"), 0o600)
		}, askGit},
		{"untracked .gitattributes above", "d/f", func(t *testing.T, dir string, _ func(string)) {
			mustWrite(t, filepath.Join(dir, ".gitattributes"), "f filter=x\n")
			os.Chmod(filepath.Join(dir, "d/f"), 0o600)
		}, askGit},
		{"symlink in the path", "d/f", func(t *testing.T, dir string, _ func(string)) {
			os.Rename(filepath.Join(dir, "d"), filepath.Join(dir, "d2"))
			os.Symlink("d2", filepath.Join(dir, "d"))
		}, askGit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			gitOut(t, dir, "init", "-q", "-b", "main")
			os.Mkdir(filepath.Join(dir, ".git", "info"), 0o755) // no templates here
			os.Mkdir(filepath.Join(dir, "d"), 0o755)
			for n, s := range map[string]string{"a": "a\n", "d/f": "f\n"} {
				os.WriteFile(filepath.Join(dir, n), []byte(s), 0o644)
			}
			os.Symlink("a", filepath.Join(dir, "l"))
			gitOut(t, dir, "add", "-A")
			gitOut(t, dir, "commit", "-q", "-m", "one")
			ageFiles(t, dir, "a", "d/f")
			im, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			tc.do(t, dir, func(p string) { smudge(t, im, p) })
			index := filepath.Join(dir, ".git", "index")
			saved, err := os.ReadFile(index)
			if err != nil {
				t.Fatal(err)
			}
			before := gitOut(t, dir, "ls-files", "--debug", "--", tc.path)

			var ours string
			err = im.Git.UpdateIndexFile(nil, func(ix *git.Index) *git.IndexPatch {
				cr := im.newContentRefresher(ix)
				defer cr.close()
				u, v := cr.decide(entryIndex(ix, tc.path))
				if v != tc.want {
					t.Errorf("verdict %d; want %d", v, tc.want)
				}
				if v != gitRefreshes {
					return nil
				}
				return ix.WithStat([]git.StatUpdate{u})
			})
			if err != nil {
				t.Fatal(err)
			}
			ours = gitOut(t, dir, "ls-files", "--debug", "--", tc.path)
			if tc.want == askGit {
				if ours != before {
					t.Errorf("left to git, yet the entry changed:\n%s\nwas\n%s", ours, before)
				}
				return
			}
			// git's own refresh, from the same index.
			if err := os.WriteFile(index, saved, 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("git", "update-index", "-q", "--refresh")
			cmd.Dir = dir
			cmd.Run() // exit 1 when something needs an update: that is a case here
			theirs := gitOut(t, dir, "ls-files", "--debug", "--", tc.path)
			if ours != theirs {
				t.Errorf("our entry:\n%s\ngit's refresh:\n%s", ours, theirs)
			}
			if tc.want == gitKeeps && ours != before {
				t.Errorf("kept, yet the entry changed:\n%s\nwas\n%s", ours, before)
			}
		})
	}
}

func entryIndex(ix *git.Index, p string) int {
	for k := range ix.Entries {
		if ix.Entries[k].Path == p {
			return k
		}
	}
	panic("no index entry " + p)
}

func mustWrite(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestApplyRefreshesSmudgedEntries: an apply that chmods files whose index
// entries git smudged as racily clean (size 0) leaves the index as git's
// refresh would: the clean file's entry gets its real stat data in place,
// with no git process run for it, and the file edited with the same size
// stays modified for git.
func TestApplyRefreshesSmudgedEntries(t *testing.T) {
	dir, im := convergeRepo(t)
	p := func(n string) string { return filepath.Join(dir, n) }
	ageFiles(t, dir, ".gitmeta", "secret", "group", "public")
	smudge(t, im, "secret")
	smudge(t, im, "group")
	os.WriteFile(p("group"), []byte("GROUP\n"), 0o640)
	m, err := im.ReadWorktreeMeta()
	if err != nil {
		t.Fatal(err)
	}
	for i := range m.Entries {
		if e := &m.Entries[i]; e.Path == "secret" || e.Path == "group" {
			e.Mode = 0o400
		}
	}
	// A git on PATH that fails: the refresh must not need it. The
	// settings are read first, as the hooks read them (one 'git config
	// --list'); the checks after the apply use the real git again.
	if err := im.Git.CacheConfig(); err != nil {
		t.Fatal(err)
	}
	im.Git.HashLen()
	fake := t.TempDir()
	mustWrite(t, filepath.Join(fake, "git"), "#!/bin/sh\necho 'git must not run' >&2\nexit 2\n")
	os.Chmod(filepath.Join(fake, "git"), 0o755)
	path := os.Getenv("PATH")
	t.Setenv("PATH", fake+string(os.PathListSeparator)+path)
	res, err := im.ApplyTree(m, ApplyOptions{})
	os.Setenv("PATH", path)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Touched) != 2 {
		t.Fatalf("touched %q; want secret and group", res.Touched)
	}
	var st unix.Stat_t
	unix.Lstat(p("secret"), &st)
	want := fmt.Sprintf("secret\n  ctime: %d:%d\n  mtime: %d:%d\n  dev: %d\tino: %d\n  uid: %d\tgid: %d\n  size: %d\tflags: 0",
		st.Ctim.Sec, st.Ctim.Nsec, st.Mtim.Sec, st.Mtim.Nsec, uint32(st.Dev), st.Ino, st.Uid, st.Gid, st.Size)
	if got := gitOut(t, dir, "ls-files", "--debug", "secret"); got != want {
		t.Errorf("index entry of secret:\n%s\nwant the file's stat data:\n%s", got, want)
	}
	if got := gitOut(t, dir, "diff-files", "--name-only"); got != "group" {
		t.Errorf("git diff-files after the apply: %q; want only the edited group", got)
	}
	if got := gitOut(t, dir, "ls-files", "--debug", "group"); !strings.Contains(got, "size: 0\t") {
		t.Errorf("the edited group's entry changed:\n%s", got)
	}
}

// ageFiles dates the files an hour back and refreshes the index, so their
// entries are not racy, then waits past the second, so a change from here
// on moves their ctime by whole seconds (what any build of git compares).
func ageFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	old := time.Now().Add(-time.Hour)
	for _, n := range names {
		os.Chtimes(filepath.Join(dir, n), old, old)
	}
	gitOut(t, dir, "update-index", "--refresh")
	time.Sleep(1100 * time.Millisecond)
}

// smudge sets p's index entry size to 0, as git smudges a racily clean
// entry, keeping the rest of its stat data.
func smudge(t *testing.T, im *Image, p string) {
	t.Helper()
	err := im.Git.UpdateIndexFile(nil, func(ix *git.Index) *git.IndexPatch {
		k := entryIndex(ix, p)
		e := ix.Entries[k]
		return ix.WithStat([]git.StatUpdate{{Entry: k, Full: true, CtimeSec: e.CtimeSec, CtimeNsec: e.CtimeNsec, MtimeSec: e.MtimeSec, MtimeNsec: e.MtimeNsec, Dev: e.Dev, Ino: e.Ino, UID: e.UID, GID: e.GID}})
	})
	if err != nil {
		t.Fatal(err)
	}
}
