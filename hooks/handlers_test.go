package hooks

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/onesis/git-onesis/internal/image"
)

// The handlers are called in process here, with the real git but no hook
// installed (the test template is empty), so each test drives exactly one
// handler and sees what it did. hooks_test.go covers the installed
// trampolines end to end.

// handlerRepo makes a repository whose etc/secret is 0600 and returns it
// opened as an image.
func handlerRepo(t *testing.T) (string, *image.Image) {
	t.Helper()
	dir := newRepo(t)
	if err := os.MkdirAll(filepath.Join(dir, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "etc/secret"), "a\n", 0o600)
	os.Chmod(filepath.Join(dir, "etc/secret"), 0o600)
	runGit(t, dir, "add", "-A")
	im, err := image.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir, im
}

// commitRecorded runs PreCommit, then git commit, then PostCommit, as the
// installed hooks would.
func commitRecorded(t *testing.T, dir string, im *image.Image, msg string) string {
	t.Helper()
	var stderr bytes.Buffer
	if err := PreCommit(im, nil, nil, &stderr); err != nil {
		t.Fatalf("PreCommit: %v\n%s", err, stderr.String())
	}
	runGit(t, dir, "commit", "-q", "-m", msg)
	if err := PostCommit(im, nil, nil, &stderr); err != nil {
		t.Fatalf("PostCommit: %v\n%s", err, stderr.String())
	}
	return stderr.String()
}

func mode(t *testing.T, p string) os.FileMode {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestHandlersTable(t *testing.T) {
	for _, n := range Names {
		if Handlers[n] == nil {
			t.Errorf("hook %s has no handler", n)
		}
		if _, ok := ArgCount[n]; !ok {
			t.Errorf("hook %s has no argument count", n)
		}
	}
	if len(Handlers) != len(Names) || len(ArgCount) != len(Names) {
		t.Errorf("%d handlers and %d argument counts for %d hooks", len(Handlers), len(ArgCount), len(Names))
	}
}

// TestPreCommitRecordsAndStamps: pre-commit records the tree into .gitmeta,
// stages it and stamps its blob id; post-commit finds the stamp matching
// and removes it, silently.
func TestPreCommitRecordsAndStamps(t *testing.T) {
	dir, im := handlerRepo(t)
	var stderr bytes.Buffer
	if err := PreCommit(im, nil, nil, &stderr); err != nil {
		t.Fatalf("PreCommit: %v\n%s", err, stderr.String())
	}
	gm := readFile(t, filepath.Join(dir, ".gitmeta"))
	if !strings.Contains(gm, "etc/secret") || !strings.Contains(gm, "0600") {
		t.Errorf(".gitmeta does not record etc/secret 0600:\n%s", gm)
	}
	if staged := runGit(t, dir, "diff", "--cached", "--name-only"); !strings.Contains(staged, ".gitmeta") {
		t.Errorf(".gitmeta not staged: %q", staged)
	}
	// The stamp is the blob id git gives .gitmeta, so post-commit can
	// compare by name.
	if got, want := readFile(t, stampPath(im)), runGit(t, dir, "hash-object", ".gitmeta"); got != want {
		t.Errorf("stamp %q, want %q", got, want)
	}
	runGit(t, dir, "commit", "-q", "-m", "one")
	stderr.Reset()
	if err := PostCommit(im, nil, nil, &stderr); err != nil || stderr.Len() != 0 {
		t.Errorf("PostCommit after a recorded commit: %v %q", err, stderr.String())
	}
	if _, err := os.Stat(stampPath(im)); !os.IsNotExist(err) {
		t.Errorf("stamp left behind: %v", err)
	}
}

// TestPostCommitWithoutPreCommit: a commit made with --no-verify (no
// stamp) whose tree differs from its .gitmeta is reported, with the fix.
func TestPostCommitWithoutPreCommit(t *testing.T) {
	dir, im := handlerRepo(t)
	commitRecorded(t, dir, im, "one")
	os.Chmod(filepath.Join(dir, "etc/secret"), 0o640)
	runGit(t, dir, "commit", "-q", "--allow-empty", "-m", "no-verify")
	var stderr bytes.Buffer
	if err := PostCommit(im, nil, nil, &stderr); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"without the pre-commit hook", "1 entries differ", "git onesis commit --amend --no-edit"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("PostCommit output lacks %q:\n%s", want, stderr.String())
		}
	}
}

// TestPreCommitConflict: during a merge, a .gitmeta with conflict markers
// stops the commit with the admin's way out.
func TestPreCommitConflict(t *testing.T) {
	dir, im := handlerRepo(t)
	commitRecorded(t, dir, im, "one")
	head := strings.TrimSpace(runGit(t, dir, "rev-parse", "HEAD"))
	gm := readFile(t, filepath.Join(dir, ".gitmeta"))
	writeFile(t, filepath.Join(dir, ".gitmeta"), gm+"<<<<<<< ours\n=======\n>>>>>>> theirs\n", 0o644)
	writeFile(t, filepath.Join(dir, ".git", "MERGE_HEAD"), head+"\n", 0o644)
	err := PreCommit(im, nil, nil, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "PERMISSIONS/OWNERSHIP CONFLICT in .gitmeta during merge") {
		t.Errorf("PreCommit with a conflicted .gitmeta: %v", err)
	}
}

// TestConvergeHandlers: after git wrote a file (a checkout to another
// branch), the handlers that run for commands that write the tree give it
// its recorded mode back; those for index-only commands, a nested run, or
// onesis.applyOnCheckout=false leave it alone.
func TestConvergeHandlers(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		run   func(im *image.Image, stdin *strings.Reader, stderr *bytes.Buffer) error
		apply bool
	}{
		{"post-merge", nil, func(im *image.Image, in *strings.Reader, e *bytes.Buffer) error {
			return PostMerge(im, []string{"0"}, in, e)
		}, true},
		{"post-rewrite rebase", nil, func(im *image.Image, in *strings.Reader, e *bytes.Buffer) error {
			return PostRewrite(im, []string{"rebase"}, in, e)
		}, true},
		{"post-rewrite amend", nil, func(im *image.Image, in *strings.Reader, e *bytes.Buffer) error {
			return PostRewrite(im, []string{"amend"}, in, e)
		}, false},
		// No git ancestor here: the caller is unknown, taken as a writer.
		{"post-checkout", nil, func(im *image.Image, in *strings.Reader, e *bytes.Buffer) error {
			return PostCheckout(im, []string{"0", "0", "1"}, in, e)
		}, true},
		{"post-index-change", nil, func(im *image.Image, in *strings.Reader, e *bytes.Buffer) error {
			return PostIndexChange(im, []string{"1", "0"}, in, e)
		}, true},
		{"post-index-change nested", func(t *testing.T, dir string) { t.Setenv(image.NestedEnv, "1") },
			func(im *image.Image, in *strings.Reader, e *bytes.Buffer) error {
				return PostIndexChange(im, []string{"1", "0"}, in, e)
			}, false},
		{"applyOnCheckout off", func(t *testing.T, dir string) { runGit(t, dir, "config", "onesis.applyOnCheckout", "false") },
			func(im *image.Image, in *strings.Reader, e *bytes.Buffer) error {
				return PostMerge(im, []string{"0"}, in, e)
			}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir, im := handlerRepo(t)
			commitRecorded(t, dir, im, "one")
			runGit(t, dir, "checkout", "-q", "-b", "two")
			writeFile(t, filepath.Join(dir, "etc/secret"), "b\n", 0o600)
			runGit(t, dir, "add", "-A")
			commitRecorded(t, dir, im, "two")
			runGit(t, dir, "checkout", "-q", "main") // git writes etc/secret 0644
			secret := filepath.Join(dir, "etc/secret")
			if m := mode(t, secret); m != 0o644 {
				t.Fatalf("git wrote etc/secret %v; the test needs 0644", m)
			}
			if tc.setup != nil {
				tc.setup(t, dir)
			}
			in := strings.NewReader("old new\n")
			var stderr bytes.Buffer
			if err := tc.run(im, in, &stderr); err != nil {
				t.Fatalf("%v\n%s", err, stderr.String())
			}
			want := os.FileMode(0o644)
			if tc.apply {
				want = 0o600
			}
			if m := mode(t, secret); m != want {
				t.Errorf("etc/secret is %v, want %v\n%s", m, want, stderr.String())
			}
			if stderr.Len() != 0 && os.Geteuid() == 0 {
				t.Errorf("a clean apply as root printed %q; the summary names problems only", stderr.String())
			}
			if strings.HasPrefix(tc.name, "post-rewrite") && in.Len() != 0 {
				t.Errorf("post-rewrite left %d bytes of its stdin unread (git would get SIGPIPE)", in.Len())
			}
		})
	}
}

// TestKindOf: an index-only git command applies nothing, a discarding one
// everything, any other writer what it wrote.
func TestKindOf(t *testing.T) {
	_, im := handlerRepo(t)
	for _, tc := range []struct {
		c    Caller
		want image.Kind
	}{
		{Caller{Known: true, Command: "add"}, image.IndexOnly},
		{Caller{Known: true, Command: "status"}, image.IndexOnly},
		{Caller{Known: true, Command: "checkout", Args: []string{"main"}}, image.Wrote},
		{Caller{Known: true, Command: "reset", Args: []string{"--hard"}}, image.Discarded},
		{Caller{}, image.Wrote},
	} {
		if got := KindOf(im, tc.c); got != tc.want {
			t.Errorf("KindOf(%+v) = %v, want %v", tc.c, got, tc.want)
		}
	}
	if !slices.Contains(Names, "post-index-change") {
		t.Error("post-index-change is not installed")
	}
}
