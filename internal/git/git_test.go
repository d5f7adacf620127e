package git

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/onesis/git-onesis/internal/testkit"
)

// TestMain makes every git run hermetic: no user or system config, no
// templates, no repository inherited from the environment.
func TestMain(m *testing.M) { os.Exit(testkit.HermeticGit(m)) }

// git runs git in dir and fails the test on error.
func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// tmp returns a fresh directory with symlinks resolved, so paths compare
// equal to git's.
func tmp(t *testing.T) string {
	t.Helper()
	d, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// newRepo creates a repository with one commit holding files.
func newRepo(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(tmp(t), "repo")
	git(t, tmp(t), "init", "-q", "-b", "main", dir)
	for name, content := range files {
		write(t, filepath.Join(dir, name), content)
	}
	git(t, dir, "add", "-A")
	git(t, dir, "commit", "-q", "--allow-empty", "-m", "initial")
	return dir
}

func discover(t *testing.T, dir string) *Repo {
	t.Helper()
	r, err := Discover(dir)
	if err != nil {
		t.Fatalf("Discover(%s) = %v", dir, err)
	}
	return r
}

func TestDiscover(t *testing.T) {
	top := newRepo(t, map[string]string{"sub/dir/f": "x"})
	wt := filepath.Join(tmp(t), "wt")
	git(t, top, "worktree", "add", "-q", wt)
	bare := filepath.Join(tmp(t), "bare.git")
	git(t, top, "clone", "-q", "--bare", top, bare)

	// A work tree whose git dir lives elsewhere, named only by GIT_DIR.
	split := tmp(t)
	store := filepath.Join(split, "store.git")
	work := filepath.Join(split, "work")
	git(t, split, "init", "-q", "--separate-git-dir", store, work)
	os.Remove(filepath.Join(work, ".git"))
	os.MkdirAll(filepath.Join(work, "a", "b"), 0o755)

	tests := []struct {
		name string
		dir  string
		env  map[string]string
		want Repo
	}{
		{"top", top, nil, Repo{Top: top, GitDir: top + "/.git", CommonDir: top + "/.git"}},
		{"subdirectory", top + "/sub/dir", nil, Repo{Top: top, GitDir: top + "/.git", CommonDir: top + "/.git"}},
		{"linked worktree", wt, nil, Repo{Top: wt, GitDir: top + "/.git/worktrees/wt", CommonDir: top + "/.git"}},
		{"bare", bare, nil, Repo{GitDir: bare, CommonDir: bare, Bare: true}},
		{"inside git dir", top + "/.git", nil, Repo{GitDir: top + "/.git", CommonDir: top + "/.git"}},
		{"GIT_DIR and GIT_WORK_TREE absolute", work + "/a", map[string]string{"GIT_DIR": store, "GIT_WORK_TREE": work},
			Repo{Top: work, GitDir: store, CommonDir: store}},
		{"GIT_DIR and GIT_WORK_TREE relative", work + "/a/b", map[string]string{"GIT_DIR": "../../../store.git", "GIT_WORK_TREE": "../.."},
			Repo{Top: work, GitDir: store, CommonDir: store}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			r := discover(t, tt.dir)
			if got := *r; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Discover(%s) = %+v; want %+v", tt.dir, *r, tt.want)
			}
			// The runner must work from wherever Discover left it, even
			// when the environment held relative paths.
			if _, err := r.Run("rev-parse", "--git-dir"); err != nil {
				t.Errorf("Run after Discover: %v", err)
			}
		})
	}
}

func TestDiscoverNotRepo(t *testing.T) {
	_, err := Discover(tmp(t))
	if !errors.Is(err, ErrNotRepo) {
		t.Fatalf("Discover(empty dir) = %v; want ErrNotRepo", err)
	}
}

func TestRunError(t *testing.T) {
	r := discover(t, newRepo(t, nil))
	_, err := r.Run("rev-parse", "--verify", "no-such-rev")
	var ge *Error
	if !errors.As(err, &ge) || ge.ExitCode() != 128 {
		t.Fatalf("Run(bad rev) = %v; want *Error with exit 128", err)
	}
	want := "git rev-parse --verify no-such-rev: fatal: Needed a single revision: exit status 128"
	if err.Error() != want {
		t.Errorf("error = %q; want %q", err, want)
	}
}

func TestHooksDir(t *testing.T) {
	tests := []struct {
		name      string
		hooksPath string // "" leaves core.hooksPath unset
		fromSub   bool
		worktree  bool
		want      func(top, home string) string
	}{
		{"default", "", false, false, func(top, _ string) string { return top + "/.git/hooks" }},
		{"linked worktree uses common dir", "", false, true, func(top, _ string) string { return top + "/.git/hooks" }},
		{"relative hooksPath", "my/hooks", false, false, func(top, _ string) string { return top + "/my/hooks" }},
		{"relative hooksPath from subdirectory", "my/hooks", true, false, func(top, _ string) string { return top + "/my/hooks" }},
		{"absolute hooksPath", "/srv/hooks", false, false, func(string, string) string { return "/srv/hooks" }},
		{"tilde hooksPath", "~/hooks", false, false, func(_, home string) string { return home + "/hooks" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			top := newRepo(t, map[string]string{"sub/f": "x"})
			if tt.hooksPath != "" {
				git(t, top, "config", "core.hooksPath", tt.hooksPath)
			}
			dir := top
			if tt.fromSub {
				dir = top + "/sub"
			}
			if tt.worktree {
				dir = filepath.Join(tmp(t), "wt")
				git(t, top, "worktree", "add", "-q", dir)
			}
			got, err := discover(t, dir).HooksDir()
			if want := tt.want(top, os.Getenv("HOME")); err != nil || got != want {
				t.Errorf("HooksDir() = %q, %v; want %q", got, err, want)
			}
		})
	}
	t.Run("bare", func(t *testing.T) {
		bare := filepath.Join(tmp(t), "b.git")
		git(t, tmp(t), "init", "-q", "--bare", bare)
		got, err := discover(t, bare).HooksDir()
		if err != nil || got != bare+"/hooks" {
			t.Errorf("HooksDir() = %q, %v; want %q", got, err, bare+"/hooks")
		}
	})
}

func TestConfig(t *testing.T) {
	top := newRepo(t, nil)
	write(t, top+"/extra.cfg", "[onesis]\n\tfromInclude = yes\n")
	git(t, top, "config", "include.path", "../extra.cfg")
	git(t, top, "config", "onesis.enabled", "on")
	git(t, top, "config", "onesis.bad", "maybe")
	git(t, top, "config", "--add", "onesis.multi", "one")
	git(t, top, "config", "--add", "onesis.multi", "two")
	git(t, top, "config", "other.key", "x")
	f, _ := os.OpenFile(top+"/.git/config", os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("[onesis \"Sub.Section\"]\n\tbare\n")
	f.Close()
	r := discover(t, top)

	for _, tt := range []struct {
		key    string
		want   string
		wantOK bool
	}{
		{"onesis.enabled", "on", true},
		{"onesis.multi", "two", true},
		{"onesis.missing", "", false},
	} {
		got, ok, err := r.Config(tt.key)
		if err != nil || got != tt.want || ok != tt.wantOK {
			t.Errorf("Config(%q) = %q, %v, %v; want %q, %v, nil", tt.key, got, ok, err, tt.want, tt.wantOK)
		}
	}

	for _, tt := range []struct {
		key     string
		def     bool
		want    bool
		wantErr bool
	}{
		{"onesis.enabled", false, true, false},
		{"onesis.fromInclude", false, true, false},
		{"onesis.missing", true, true, false},
		{"onesis.missing", false, false, false},
		{"onesis.bad", false, false, true},
	} {
		got, err := r.ConfigBool(tt.key, tt.def)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("ConfigBool(%q, %v) = %v, %v; want %v, error %v", tt.key, tt.def, got, err, tt.want, tt.wantErr)
		}
	}

	all, err := r.ConfigAll("onesis.")
	want := map[string]string{
		"onesis.enabled": "on", "onesis.bad": "maybe", "onesis.multi": "two",
		"onesis.frominclude": "yes", "onesis.Sub.Section.bare": "",
	}
	if err != nil || !reflect.DeepEqual(all, want) {
		t.Errorf("ConfigAll(onesis.) = %v, %v; want %v", all, err, want)
	}
	if all, err := r.ConfigAll("nothing."); err != nil || len(all) != 0 {
		t.Errorf("ConfigAll(nothing.) = %v, %v; want empty", all, err)
	}

	// Values given with `git -c` reach us through the environment.
	t.Setenv("GIT_CONFIG_PARAMETERS", "'onesis.enabled'='false'")
	if got, err := r.ConfigBool("onesis.enabled", true); err != nil || got {
		t.Errorf("ConfigBool with GIT_CONFIG_PARAMETERS = %v, %v; want false", got, err)
	}
}

func TestSetUnsetConfig(t *testing.T) {
	top := newRepo(t, nil)
	git(t, top, "config", "--add", "onesis.multi", "a")
	git(t, top, "config", "--add", "onesis.multi", "b")
	r := discover(t, top)
	if err := r.SetConfig("onesis.multi", "c"); err != nil {
		t.Fatalf("SetConfig: %v", err)
	}
	if got := git(t, top, "config", "--get-all", "onesis.multi"); got != "c\n" {
		t.Errorf("after SetConfig, values = %q; want \"c\\n\"", got)
	}
	for i := 0; i < 2; i++ { // the second call unsets an unset key
		if err := r.UnsetConfig("onesis.multi"); err != nil {
			t.Fatalf("UnsetConfig #%d: %v", i+1, err)
		}
	}
	if _, ok, _ := r.Config("onesis.multi"); ok {
		t.Error("onesis.multi still set after UnsetConfig")
	}
}

// oddNames are paths that break line-oriented parsing or UTF-8 assumptions.
var oddNames = []string{"with space", "new\nline", "tab\there", "bad\xff\xfeutf8", "quote\"d", "-dash"}

func TestNULSafePaths(t *testing.T) {
	top := newRepo(t, map[string]string{"plain": "p", ".gitignore": "*.log\nbuild/\n"})
	r := discover(t, top)
	old, _, _ := r.HeadCommit()
	for _, n := range oddNames {
		write(t, filepath.Join(top, "d", n), n)
		write(t, filepath.Join(top, "ign", n+".log"), n)
	}
	write(t, top+"/ign/not-ignored", "x") // so ign/ is listed file by file
	write(t, top+"/build/out/x", "x")
	write(t, top+"/all/only.log", "x") // a directory of ignored files only
	git(t, top, "add", "d")
	git(t, top, "commit", "-q", "-m", "odd")
	newc, _, _ := r.HeadCommit()

	var want []string
	for _, n := range oddNames {
		want = append(want, "d/"+n)
	}
	slices.Sort(want)

	got, err := r.LsFiles()
	if wantAll := slices.Sorted(slices.Values(append([]string{".gitignore", "plain"}, want...))); err != nil || !slices.Equal(slices.Sorted(slices.Values(got)), wantAll) {
		t.Errorf("LsFiles() = %q, %v; want %q", got, err, wantAll)
	}

	got, err = r.DiffTreeNames(old, newc)
	if err != nil || !slices.Equal(slices.Sorted(slices.Values(got)), want) {
		t.Errorf("DiffTreeNames = %q, %v; want %q", got, err, want)
	}

	var wantIgn []string
	for _, n := range oddNames {
		wantIgn = append(wantIgn, "ign/"+n+".log")
	}
	wantIgn = append(wantIgn, "build/", "all/")
	slices.Sort(wantIgn)
	got, err = r.IgnoredPaths()
	if err != nil || !slices.Equal(slices.Sorted(slices.Values(got)), wantIgn) {
		t.Errorf("IgnoredPaths() = %q, %v; want %q", got, err, wantIgn)
	}

	for _, n := range oddNames {
		b, ok, err := r.ShowBlob("HEAD", "d/"+n)
		if err != nil || !ok || string(b) != n {
			t.Errorf("ShowBlob(HEAD, %q) = %q, %v, %v", "d/"+n, b, ok, err)
		}
		b, ok, err = r.IndexBlob("d/" + n)
		if err != nil || !ok || string(b) != n {
			t.Errorf("IndexBlob(%q) = %q, %v, %v", "d/"+n, b, ok, err)
		}
	}
}

func TestDiffTreeNamesFromNothing(t *testing.T) {
	top := newRepo(t, map[string]string{"a": "1", "b/c": "2"})
	r := discover(t, top)
	for _, old := range []string{"", strings.Repeat("0", 40)} {
		got, err := r.DiffTreeNames(old, "HEAD")
		if want := []string{"a", "b/c"}; err != nil || !slices.Equal(got, want) {
			t.Errorf("DiffTreeNames(%q, HEAD) = %q, %v; want %q", old, got, err, want)
		}
	}
	if _, err := r.DiffTreeNames("HEAD", "nope"); err == nil {
		t.Error("DiffTreeNames(HEAD, nope) succeeded; want error")
	}
}

func TestShowBlobAndIndexBlob(t *testing.T) {
	top := newRepo(t, map[string]string{"f": "committed", "dir/g": "g", "*": "star"})
	write(t, top+"/f", "staged")
	git(t, top, "add", "f")
	// Record a conflict by hand: stages 1-3 for "c".
	oid := strings.TrimSpace(git(t, top, "hash-object", "-w", "f"))
	cmd := exec.Command("git", "update-index", "--index-info")
	cmd.Dir = top
	cmd.Stdin = strings.NewReader("100644 " + oid + " 1\tc\n100644 " + oid + " 2\tc\n100644 " + oid + " 3\tc\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("update-index: %v\n%s", err, out)
	}
	r := discover(t, top+"/dir") // paths stay top-relative from a subdirectory
	treeID := strings.TrimSpace(git(t, top, "rev-parse", "HEAD^{tree}"))
	commitID := strings.TrimSpace(git(t, top, "rev-parse", "HEAD"))

	for _, tt := range []struct {
		rev, path string
		want      string
		wantOK    bool
		wantErr   bool
	}{
		{"HEAD", "f", "committed", true, false},
		{"HEAD", "dir/g", "g", true, false},
		{"HEAD", "*", "star", true, false}, // literal, not a glob
		{"HEAD", "g", "", false, false},
		{"HEAD", "missing", "", false, false},
		{"HEAD", "dir", "", false, true},
		{"no-such-rev", "f", "", false, true},
		{"HEAD^{tree}", "f", "committed", true, false},
		{treeID, "f", "committed", true, false}, // a full id that is not a commit
		{commitID, "dir/g", "g", true, false},   // a full commit id: no rev-parse
	} {
		b, ok, err := r.ShowBlob(tt.rev, tt.path)
		if string(b) != tt.want || ok != tt.wantOK || (err != nil) != tt.wantErr {
			t.Errorf("ShowBlob(%q, %q) = %q, %v, %v; want %q, %v, error %v", tt.rev, tt.path, b, ok, err, tt.want, tt.wantOK, tt.wantErr)
		}
	}
	for _, tt := range []struct {
		path    string
		want    string
		wantOK  bool
		wantErr bool
	}{
		{"f", "staged", true, false},
		{"dir/g", "g", true, false},
		{"dir", "", false, false},
		{"missing", "", false, false},
		{"c", "", false, true},
	} {
		b, ok, err := r.IndexBlob(tt.path)
		if string(b) != tt.want || ok != tt.wantOK || (err != nil) != tt.wantErr {
			t.Errorf("IndexBlob(%q) = %q, %v, %v; want %q, %v, error %v", tt.path, b, ok, err, tt.want, tt.wantOK, tt.wantErr)
		}
	}
}

func TestRevs(t *testing.T) {
	top := filepath.Join(tmp(t), "r")
	git(t, tmp(t), "init", "-q", "-b", "main", top)
	r := discover(t, top)
	if c, ok, err := r.HeadCommit(); err != nil || ok || c != "" {
		t.Errorf("HeadCommit() on unborn branch = %q, %v, %v; want \"\", false, nil", c, ok, err)
	}
	git(t, top, "commit", "-q", "--allow-empty", "-m", "one")
	want := strings.TrimSpace(git(t, top, "rev-parse", "HEAD"))
	if c, ok, err := r.HeadCommit(); err != nil || !ok || c != want {
		t.Errorf("HeadCommit() = %q, %v, %v; want %q", c, ok, err, want)
	}
	git(t, top, "tag", "-a", "-m", "t", "v1")
	for _, tt := range []struct {
		rev     string
		wantErr bool
	}{
		{"HEAD", false}, {"main", false}, {"v1", false}, {want[:10], false},
		{"nope", true}, {"HEAD^{tree}", true}, {"--all", true},
	} {
		got, err := r.ResolveRev(tt.rev)
		if (err != nil) != tt.wantErr || (!tt.wantErr && got != want) {
			t.Errorf("ResolveRev(%q) = %q, %v; want %q, error %v", tt.rev, got, err, want, tt.wantErr)
		}
	}
}

func TestStatusPorcelain(t *testing.T) {
	top := newRepo(t, map[string]string{"mod": "1", "old": "o", "keep": "k"})
	write(t, top+"/mod", "2")
	git(t, top, "mv", "old", "renamed")
	write(t, top+"/new/deep/u", "u")
	write(t, top+"/new\nline", "n")
	write(t, top+"/x.log", "ignored")
	write(t, top+"/.gitignore", "*.log\n")
	r := discover(t, top)
	got, err := r.StatusPorcelain()
	if err != nil {
		t.Fatal(err)
	}
	want := []StatusEntry{
		{XY: " M", Path: "mod"},
		{XY: "R ", Path: "renamed", Orig: "old"},
		{XY: "??", Path: ".gitignore"},
		{XY: "??", Path: "new\nline"},
		{XY: "??", Path: "new/deep/u"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("StatusPorcelain() = %q; want %q", got, want)
	}
}

// diffFiles returns what `git diff-files` considers modified; it trusts the
// cached stat data and never refreshes it.
func diffFiles(t *testing.T, dir string) []string {
	t.Helper()
	return splitZ([]byte(git(t, dir, "diff-files", "-z", "--name-only")))
}

func TestRefreshIndex(t *testing.T) {
	past := time.Now().Add(-2 * time.Hour)
	names := []string{"a", "b", "c c", "d\nd", "sub/e"}
	top := filepath.Join(tmp(t), "r")
	git(t, tmp(t), "init", "-q", "-b", "main", top)
	for _, n := range names {
		write(t, filepath.Join(top, n), n)
		// Old mtimes keep entries out of git's "racily clean" window, so
		// git trusts the cached stat data instead of re-reading content.
		os.Chtimes(filepath.Join(top, n), past, past)
	}
	git(t, top, "add", "-A")
	git(t, top, "commit", "-q", "-m", "x")
	r := discover(t, top)

	// Pure ctime change: chmod to the same mode. git may compare whole
	// seconds only, so let the clock move on first.
	time.Sleep(1100 * time.Millisecond)
	for _, n := range []string{"a", "c c"} {
		os.Chmod(filepath.Join(top, n), 0o644)
	}
	// mtime change, same content.
	for _, n := range []string{"d\nd", "sub/e"} {
		os.Chtimes(filepath.Join(top, n), past.Add(time.Minute), past.Add(time.Minute))
	}
	// Real content change, must stay visible and unstaged.
	write(t, top+"/b", "changed")
	os.Chtimes(filepath.Join(top, "b"), past, past)

	if got, want := diffFiles(t, top), []string{"a", "b", "c c", "d\nd", "sub/e"}; !slices.Equal(got, want) {
		t.Fatalf("before refresh diff-files = %q; want %q (test premise)", got, want)
	}
	// A directory is not an index entry: it is skipped, not walked.
	if err := r.RefreshIndex([]string{"a", "d\nd", "sub", "untracked"}); err != nil {
		t.Fatalf("RefreshIndex(a, d\\nd, sub, untracked): %v", err)
	}
	if got, want := diffFiles(t, top), []string{"b", "c c", "sub/e"}; !slices.Equal(got, want) {
		t.Errorf("after RefreshIndex(paths) diff-files = %q; want %q", got, want)
	}
	if err := r.RefreshIndex(nil); err != nil {
		t.Fatalf("RefreshIndex(nil): %v", err)
	}
	if got, want := diffFiles(t, top), []string{"b"}; !slices.Equal(got, want) {
		t.Errorf("after RefreshIndex(nil) diff-files = %q; want %q", got, want)
	}
	if staged := git(t, top, "diff", "--cached", "--name-only"); staged != "" {
		t.Errorf("RefreshIndex staged content: %q", staged)
	}
	// Untracked paths are skipped; a directory covers what is under it.
	os.Mkdir(top+"/dir", 0o755)
	if err := r.RefreshIndex([]string{"not-tracked", "dir", "dir/"}); err != nil {
		t.Errorf("RefreshIndex(untracked paths) = %v; want nil", err)
	}
}

func TestAddHonoursIndexFile(t *testing.T) {
	top := newRepo(t, map[string]string{"a": "a"})
	write(t, top+"/.gitmeta", "meta")
	write(t, top+"/*", "star")
	write(t, top+"/other", "o")
	// As in a commit hook: a relative GIT_INDEX_FILE, resolved by git
	// against the work-tree top.
	git(t, top, "read-tree", "--index-output=.git/alt-index", "HEAD")
	t.Setenv("GIT_INDEX_FILE", ".git/alt-index")
	r := discover(t, top)
	if err := r.Add(".gitmeta", "*"); err != nil {
		t.Fatalf("Add: %v", err)
	}
	got, err := r.LsFiles()
	if want := []string{"*", ".gitmeta", "a"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("LsFiles() with GIT_INDEX_FILE = %q, %v; want %q", got, err, want)
	}
	os.Unsetenv("GIT_INDEX_FILE")
	if got := git(t, top, "ls-files"); got != "a\n" {
		t.Errorf("default index = %q; want only \"a\\n\"", got)
	}
}

func TestInProgress(t *testing.T) {
	for _, tt := range []struct {
		markers []string
		want    string
	}{
		{nil, ""},
		{[]string{"rebase-merge/"}, "rebase"},
		{[]string{"rebase-apply/"}, "rebase"},
		{[]string{"rebase-apply/applying"}, "am"},
		{[]string{"MERGE_HEAD"}, "merge"},
		{[]string{"CHERRY_PICK_HEAD"}, "cherry-pick"},
		{[]string{"REVERT_HEAD"}, "revert"},
		{[]string{"BISECT_LOG"}, "bisect"},
	} {
		top := newRepo(t, nil)
		wt := filepath.Join(tmp(t), "wt")
		git(t, top, "worktree", "add", "-q", wt)
		r := discover(t, wt)
		for _, m := range tt.markers {
			if dir, ok := strings.CutSuffix(m, "/"); ok {
				os.MkdirAll(filepath.Join(r.GitDir, dir), 0o755)
			} else {
				write(t, filepath.Join(r.GitDir, m), "")
			}
		}
		if got := r.InProgress(); got != tt.want {
			t.Errorf("InProgress() with %q = %q; want %q", tt.markers, got, tt.want)
		}
		// Markers are per worktree: the main one is unaffected.
		if got := discover(t, top).InProgress(); got != "" {
			t.Errorf("main worktree InProgress() = %q; want \"\"", got)
		}
	}
}

func TestPruneUnderDirs(t *testing.T) {
	for _, tt := range []struct {
		in, want []string
	}{
		{nil, []string{}},
		{[]string{"a/", "a/x", "a/b/", "a/b/y", "ab", "ab/z", "c/d"}, []string{"a/", "ab", "ab/z", "c/d"}},
		{[]string{"x/y/", "x/y/z", "x/yy"}, []string{"x/y/", "x/yy"}},
	} {
		if got := pruneUnderDirs(slices.Clone(tt.in)); !slices.Equal(got, tt.want) {
			t.Errorf("pruneUnderDirs(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

// TestShowBlobInProcess reads blobs through go-git from loose objects, a
// pack, and a linked worktree, and checks the fallback to git when the
// environment moves the object store.
func TestShowBlobInProcess(t *testing.T) {
	top := newRepo(t, map[string]string{"etc/passwd": "root:x:0:0::/root:/bin/sh\n", "a b": "space"})
	git(t, top, "tag", "v1")
	write(t, top+"/etc/passwd", "changed\n")
	git(t, top, "commit", "-qam", "two")
	git(t, top, "tag", "v2")
	wt := filepath.Join(tmp(t), "wt")
	git(t, top, "worktree", "add", "-q", wt, "v1")

	check := func(name string, r *Repo) {
		t.Helper()
		for _, tt := range []struct{ rev, path, want string }{
			{"v2", "etc/passwd", "changed\n"},
			{"v1", "etc/passwd", "root:x:0:0::/root:/bin/sh\n"},
			{"v2~1", "a b", "space"},
		} {
			b, ok, err := r.ShowBlob(tt.rev, tt.path)
			if err != nil || !ok || string(b) != tt.want {
				t.Errorf("%s: ShowBlob(%q, %q) = %q, %v, %v; want %q", name, tt.rev, tt.path, b, ok, err, tt.want)
			}
			if o := r.Objects(); o.repo != nil {
				c, _ := r.ResolveRev(tt.rev)
				if b, ok, err := o.blobAt(c, tt.path); err != nil || !ok || string(b) != tt.want {
					t.Errorf("%s: go-git read of %s at %s = %q, %v, %v; want %q", name, tt.path, tt.rev, b, ok, err, tt.want)
				}
			}
		}
	}
	r := discover(t, top)
	if r.Objects().repo == nil {
		t.Fatal("go-git could not open the object store of a plain repository")
	}
	check("loose objects", r)
	git(t, top, "gc", "-q")
	objectsMu.Lock()
	delete(objectsCache, r.CommonDir) // reopen: the loose objects are gone
	objectsMu.Unlock()
	check("packed objects", r)
	wr := discover(t, wt)
	if wr.CommonDir != r.CommonDir || wr.Objects().repo == nil {
		t.Fatalf("linked worktree: common dir %q, go-git reader %v", wr.CommonDir, wr.Objects().repo != nil)
	}
	check("linked worktree", wr)

	// A moved object store: go-git cannot see it, git can.
	objDir := filepath.Join(r.CommonDir, "objects")
	t.Setenv("GIT_OBJECT_DIRECTORY", objDir)
	objectsMu.Lock()
	delete(objectsCache, r.CommonDir)
	objectsMu.Unlock()
	t.Cleanup(func() {
		objectsMu.Lock()
		delete(objectsCache, r.CommonDir)
		objectsMu.Unlock()
	})
	if r.Objects().repo != nil {
		t.Error("GIT_OBJECT_DIRECTORY is set, yet go-git is used")
	}
	check("GIT_OBJECT_DIRECTORY fallback", r)
}

// TestCacheConfig: answers from the snapshot CacheConfig takes are git's
// own (git config --get and --type=bool --get) for every form a value can
// take, case-insensitive names and case-sensitive subsections included.
func TestCacheConfig(t *testing.T) {
	dir := newRepo(t, map[string]string{"a": "1\n"})
	f, err := os.OpenFile(filepath.Join(dir, ".git", "config"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("[onesis]\n\tenabled = true\n\tapplyOnCheckout = off\n[t]\n\tbare\n\tempty =\n\tyes = YES\n\ttwo = 2\n\tzero = 0\n\tkilo = 1k\n\tword = hello\n[t \"Sub.Case\"]\n\tKey = v1\n\tkey = v2\n")
	f.Close()
	plain := discover(t, dir)
	cached := discover(t, dir)
	if err := cached.CacheConfig(); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"onesis.enabled", "ONESIS.Enabled", "onesis.applyoncheckout", "t.bare", "t.empty", "t.yes",
		"t.two", "t.zero", "t.kilo", "t.word", "t.Sub.Case.key", "t.Sub.Case.KEY", "t.sub.case.key", "t.missing", "core.bare"} {
		v1, ok1, err1 := plain.Config(k)
		v2, ok2, err2 := cached.Config(k)
		if v1 != v2 || ok1 != ok2 || (err1 == nil) != (err2 == nil) {
			t.Errorf("Config(%q): git %q %v %v; cached %q %v %v", k, v1, ok1, err1, v2, ok2, err2)
		}
		b1, err1 := plain.ConfigBool(k, true)
		b2, err2 := cached.ConfigBool(k, true)
		if b1 != b2 || (err1 == nil) != (err2 == nil) {
			t.Errorf("ConfigBool(%q): git %v %v; cached %v %v", k, b1, err1, b2, err2)
		}
	}
}

// TestDiscoverConfigured: the repository and the config snapshot are
// what Discover and CacheConfig give, from a subdirectory and with
// 'git -c' settings in the environment (GIT_CONFIG_PARAMETERS); outside a
// repository the error is Discover's.
func TestDiscoverConfigured(t *testing.T) {
	dir := newRepo(t, map[string]string{"sub/a": "1\n"})
	if out, err := exec.Command("git", "-C", dir, "config", "onesis.enabled", "true").CombinedOutput(); err != nil {
		t.Fatalf("git config: %v: %s", err, out)
	}
	t.Setenv("GIT_CONFIG_PARAMETERS", "'t.fromenv'='yes'")
	want := discover(t, dir)
	for _, from := range []string{dir, filepath.Join(dir, "sub")} {
		r, err := DiscoverConfigured(from)
		if err != nil {
			t.Fatalf("DiscoverConfigured(%s): %v", from, err)
		}
		if r.Top != want.Top || r.GitDir != want.GitDir || r.CommonDir != want.CommonDir || r.Bare != want.Bare {
			t.Errorf("DiscoverConfigured(%s) = %+v; want %+v", from, r, want)
		}
		if r.config == nil {
			t.Fatalf("DiscoverConfigured(%s) cached no config", from)
		}
		for _, k := range []string{"onesis.enabled", "t.fromenv"} {
			if ok, err := r.ConfigBool(k, false); err != nil || !ok {
				t.Errorf("from %s: ConfigBool(%s) = %v, %v; want true", from, k, ok, err)
			}
		}
	}
	if _, err := DiscoverConfigured(t.TempDir()); !errors.Is(err, ErrNotRepo) {
		t.Errorf("outside a repository: %v; want ErrNotRepo", err)
	}
}
