package testkit

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// HermeticGit runs the tests of m with git made hermetic: no repository,
// config or template inherited from the environment (an empty template, so
// no hook is installed by 'git init'), no repository found above the
// temporary directory, a fresh HOME, and a fixed author and committer.
// Call it from TestMain: os.Exit(HermeticGit(m)).
func HermeticGit(m *testing.M) int {
	home, err := os.MkdirTemp("", "git-onesis-test-home")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(home)
	tmpl := filepath.Join(home, "empty-template")
	if err := os.Mkdir(tmpl, 0o755); err != nil {
		panic(err)
	}
	for _, k := range []string{"GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR",
		"GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_CONFIG_PARAMETERS",
		"GIT_CONFIG_COUNT", "GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM", "XDG_CONFIG_HOME"} {
		os.Unsetenv(k)
	}
	for k, v := range map[string]string{
		"HOME": home, "GIT_CONFIG_NOSYSTEM": "1", "GIT_TEMPLATE_DIR": tmpl, "GIT_CEILING_DIRECTORIES": os.TempDir(),
		"GIT_AUTHOR_NAME": "Ada Admin", "GIT_AUTHOR_EMAIL": "ada@example.invalid",
		"GIT_COMMITTER_NAME": "Ada Admin", "GIT_COMMITTER_EMAIL": "ada@example.invalid", "LC_ALL": "C",
	} {
		os.Setenv(k, v)
	}
	return m.Run()
}

// Sh runs a command in dir and returns its trimmed combined output; a
// failure fails the test.
func Sh(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// WriteFile writes body to root/rel, creating its directories.
func WriteFile(t testing.TB, root, rel, body string) {
	t.Helper()
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Repo makes a git repository in a new directory (symlinks resolved) with
// files committed on branch main and a branch "testing" at that commit,
// and returns the directory.
func Repo(t testing.TB, files map[string]string) string {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	Sh(t, dir, "git", "init", "-q", "-b", "main")
	for rel, body := range files {
		WriteFile(t, dir, rel, body)
	}
	Sh(t, dir, "git", "add", "-A")
	Sh(t, dir, "git", "commit", "-q", "-m", "v1")
	Sh(t, dir, "git", "branch", "testing")
	return dir
}
