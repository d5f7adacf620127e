package image

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/onesis/git-onesis/internal/testkit"
)

func TestMain(m *testing.M) {
	// Every incremental apply in these tests parses only the entries it
	// visits, however small the image (the command tests in
	// cmd/git-onesis run with the default, which parses small files
	// whole).
	subsetMax = 1
	os.Exit(testkit.HermeticGit(m))
}

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

// TestRecordWhile: recording while git stages the tree gives what Record
// gives after it (the files the index holds once git is done, nothing it
// left out), and a failing git command is the error.
func TestRecordWhile(t *testing.T) {
	mk := func(t *testing.T) string {
		dir := t.TempDir()
		gitOut(t, dir, "init", "-q")
		for _, f := range []string{"etc/motd", "usr/bin/tool", "var/log/x.log", "a/b/c/d"} {
			os.MkdirAll(filepath.Join(dir, filepath.Dir(f)), 0o755)
			if err := os.WriteFile(filepath.Join(dir, f), []byte(f), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		os.WriteFile(filepath.Join(dir, ".gitignore"), []byte("*.log\n"), 0o644)
		os.Mkdir(filepath.Join(dir, "empty"), 0o700)
		os.Symlink("tool", filepath.Join(dir, "usr/bin/alias"))
		return dir
	}
	// What Record records after git add -A, in a twin of the tree.
	twin := mk(t)
	gitOut(t, twin, "add", "-A")
	im, err := Open(twin)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := im.Record(true); err != nil {
		t.Fatal(err)
	}
	want := gitOut(t, twin, "ls-files", "-s")

	dir := mk(t)
	im, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	_, m, err := im.RecordWhile(func() error {
		close(started)
		// The walk is under way before the index holds anything.
		time.Sleep(100 * time.Millisecond)
		_, err := im.Git.Run("add", "-A")
		return err
	})
	<-started
	if err != nil {
		t.Fatal(err)
	}
	if got := gitOut(t, dir, "ls-files", "-s"); got != want {
		t.Errorf("index after RecordWhile:\n%s\nwant (Record after git add -A):\n%s", got, want)
	}
	if m.Lookup("usr/bin/tool") == nil || m.Lookup("var/log/x.log") != nil || m.Lookup("empty") == nil {
		t.Errorf("manifest: tool %v, x.log %v, empty %v; want the tracked file, not the ignored one, and the empty directory",
			m.Lookup("usr/bin/tool"), m.Lookup("var/log/x.log"), m.Lookup("empty"))
	}

	boom := errors.New("git add failed")
	if _, _, err := im.RecordWhile(func() error { return boom }); !errors.Is(err, boom) {
		t.Errorf("a failing stage: %v, want its error", err)
	}
}
