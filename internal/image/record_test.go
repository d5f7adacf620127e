package image

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onesis/git-onesis/internal/testkit"
)

func TestMain(m *testing.M) { os.Exit(testkit.HermeticGit(m)) }

func gitOut(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestRecordStaging: Record stages .gitmeta whenever the index does not
// hold the work-tree file, and leaves the index alone when it does.
func TestRecordStaging(t *testing.T) {
	dir := t.TempDir()
	gitOut(t, dir, "init", "-q")
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	gitOut(t, dir, "add", "f")
	im, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	index := filepath.Join(im.Git.GitDir, "index")
	staged := func() string { return gitOut(t, dir, "rev-parse", ":.gitmeta") }
	worktree := func() string { return gitOut(t, dir, "hash-object", ".gitmeta") }
	indexMtime := func() int64 {
		st, err := os.Stat(index)
		if err != nil {
			t.Fatal(err)
		}
		return st.ModTime().UnixNano()
	}

	steps := []struct {
		name    string
		before  func()
		rewrite bool // the index file must be rewritten
	}{
		{"first record", func() {}, true},
		{"nothing changed", func() {}, false},
		{"unstaged by git rm --cached", func() { gitOut(t, dir, "rm", "-q", "--cached", ".gitmeta") }, true},
		{"index holds another blob", func() {
			blob := gitOut(t, dir, "hash-object", "-w", "f")
			gitOut(t, dir, "update-index", "--cacheinfo", "100644,"+blob+",.gitmeta")
		}, true},
		{"mode changed", func() {
			if err := os.Chmod(filepath.Join(dir, "f"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, true},
	}
	for _, s := range steps {
		s.before()
		before := indexMtime()
		if _, _, err := im.Record(true); err != nil {
			t.Fatalf("%s: Record: %v", s.name, err)
		}
		if got, want := staged(), worktree(); got != want {
			t.Errorf("%s: the index holds .gitmeta %s, the work tree %s", s.name, got, want)
		}
		if rewritten := indexMtime() != before; rewritten != s.rewrite {
			t.Errorf("%s: index rewritten = %v, want %v", s.name, rewritten, s.rewrite)
		}
	}
}
