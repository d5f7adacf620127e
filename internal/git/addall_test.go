package git

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// addAllTree fills dir with what git add -A must treat each in its own
// way: files in nested directories, an executable, symlinks (one to a
// directory), names with spaces, a newline and a non-ASCII byte, an
// ignored file and directory, and a text attribute that converts CRLF.
func addAllTree(t *testing.T, dir string) {
	t.Helper()
	for i := range 40 {
		write(t, filepath.Join(dir, fmt.Sprintf("d%02d/sub/f%d", i%7, i)), fmt.Sprintf("file %d\n", i))
	}
	write(t, filepath.Join(dir, "bin/tool"), "#!/bin/sh\n")
	if err := os.Chmod(filepath.Join(dir, "bin/tool"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, l := range [][2]string{{"../d01", "bin/d01"}, {"tool", "bin/alias"}, {"/nowhere", "dangling"}} {
		if err := os.Symlink(l[0], filepath.Join(dir, l[1])); err != nil {
			t.Fatal(err)
		}
	}
	write(t, filepath.Join(dir, "with space/a b"), "x")
	write(t, filepath.Join(dir, "odd/new\nline"), "y")
	write(t, filepath.Join(dir, "odd/caf\xe9"), "z")
	write(t, filepath.Join(dir, ".gitignore"), "*.log\n/cache/\n")
	write(t, filepath.Join(dir, "var/app.log"), "ignored")
	write(t, filepath.Join(dir, "cache/blob"), "ignored")
	write(t, filepath.Join(dir, ".gitattributes"), "*.txt text eol=lf\n")
	write(t, filepath.Join(dir, "doc/readme.txt"), "one\r\ntwo\r\n")
}

// stagedAs is what git says the index holds, with stat data, and the tree
// it makes.
func stagedAs(t *testing.T, dir, index string) (entries, tree string) {
	t.Helper()
	run := func(args ...string) string {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_INDEX_FILE="+index)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	return run("ls-files", "-s", "-z"), run("write-tree")
}

func TestAddAllMatchesGitAdd(t *testing.T) {
	old := addAllMinPaths
	addAllMinPaths = 1
	t.Cleanup(func() { addAllMinPaths = old })
	for _, tc := range []struct {
		name    string
		setup   func(t *testing.T, dir string)
		workers int
		want    int // git processes AddAll reports
	}{
		{"split in chunks", nil, 3, 3},
		{"one worker runs git add", nil, 1, 1},
		{"an index already exists", func(t *testing.T, dir string) { git(t, dir, "add", "bin/tool") }, 3, 1},
		{"index.version 4 asked for", func(t *testing.T, dir string) { git(t, dir, "config", "index.version", "4") }, 3, 1},
		{"feature.manyFiles", func(t *testing.T, dir string) { git(t, dir, "config", "feature.manyFiles", "true") }, 3, 1},
		{"a nested repository", func(t *testing.T, dir string) {
			git(t, dir, "init", "-q", "nested")
			write(t, filepath.Join(dir, "nested/f"), "n")
			git(t, filepath.Join(dir, "nested"), "add", "f")
			git(t, filepath.Join(dir, "nested"), "commit", "-q", "-m", "nested")
		}, 3, 1},
		{"SHA-256", nil, 2, 2},
		{"core.sharedRepository 0600", func(t *testing.T, dir string) { git(t, dir, "config", "core.sharedRepository", "0600") }, 2, 2},
		{"core.sharedRepository group", func(t *testing.T, dir string) { git(t, dir, "config", "core.sharedRepository", "group") }, 2, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(tmp(t), "img")
			args := []string{"init", "-q"}
			if tc.name == "SHA-256" {
				args = append(args, "--object-format=sha256")
			}
			git(t, tmp(t), append(args, dir)...)
			addAllTree(t, dir)
			// A hook that notes every index git writes: the chunks'
			// temporary indexes are not for hooks to see.
			hookLog := filepath.Join(tmp(t), "hook.log")
			write(t, filepath.Join(dir, ".git/hooks/post-index-change"), "#!/bin/sh\necho \"$GIT_INDEX_FILE\" >>"+hookLog+"\n")
			os.Chmod(filepath.Join(dir, ".git/hooks/post-index-change"), 0o755)
			if tc.setup != nil {
				tc.setup(t, dir)
			}
			// What git add -A stages, into another index, first: the
			// objects are then shared, which AddAll must not depend on.
			ref := filepath.Join(tmp(t), "ref-index")
			if _, err := os.Stat(filepath.Join(dir, ".git/index")); err == nil {
				b, _ := os.ReadFile(filepath.Join(dir, ".git/index"))
				os.WriteFile(ref, b, 0o644)
			}
			cmd := exec.Command("git", "add", "-A")
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "GIT_INDEX_FILE="+ref)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("git add -A: %v\n%s", err, out)
			}
			wantEntries, wantTree := stagedAs(t, dir, ref)

			got, err := discover(t, dir).AddAll(tc.workers)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("AddAll staged with %d git processes, want %d", got, tc.want)
			}
			if b, _ := os.ReadFile(hookLog); strings.Contains(string(b), "onesis-add-") {
				t.Errorf("post-index-change ran for a chunk's index:\n%s", b)
			}
			idx := filepath.Join(dir, ".git/index")
			if a, b := mode(t, idx), mode(t, ref); a != b {
				t.Errorf("AddAll wrote the index with mode %v; git add -A writes %v", a, b)
			}
			gotEntries, gotTree := stagedAs(t, dir, idx)
			if gotEntries != wantEntries || gotTree != wantTree {
				t.Errorf("AddAll staged\n%q (tree %s)\ngit add -A stages\n%q (tree %s)", gotEntries, gotTree, wantEntries, wantTree)
			}
			// The stat data is git's own: nothing looks modified, and the
			// joined index passes git's own checks.
			if out := git(t, dir, "diff-files", "--name-only"); out != "" {
				t.Errorf("after AddAll git diff-files lists %q", out)
			}
			if out := git(t, dir, "status", "--porcelain"); strings.Contains(out, "?? ") || strings.Contains(out, " M ") {
				t.Errorf("after AddAll git status says\n%s", out)
			}
			git(t, dir, "commit", "-q", "-m", "image")
			git(t, dir, "fsck", "--no-progress")
			if ents, _ := os.ReadDir(filepath.Join(dir, ".git")); len(ents) > 0 {
				for _, e := range ents {
					if strings.HasPrefix(e.Name(), "onesis-add-") || e.Name() == "index.lock" {
						t.Errorf("AddAll left %s behind", e.Name())
					}
				}
			}
		})
	}
}

// A chunk git refuses (here: a file whose required clean filter fails)
// sends AddAll to git add -A, whose error is the one returned.
func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode()
}

func TestMallocKeepEnv(t *testing.T) {
	for _, tc := range []struct{ env, want string }{
		{"", "GLIBC_TUNABLES=" + mallocKeep},
		{"glibc.malloc.arena_max=2", "GLIBC_TUNABLES=glibc.malloc.arena_max=2:" + mallocKeep},
		{"glibc.malloc.trim_threshold=4096", "GLIBC_TUNABLES=glibc.malloc.trim_threshold=4096"},
	} {
		t.Setenv("GLIBC_TUNABLES", tc.env)
		if got := MallocKeepEnv(); got != tc.want {
			t.Errorf("with GLIBC_TUNABLES=%q: %q, want %q", tc.env, got, tc.want)
		}
	}
}

func TestAddAllFallsBackOnFailure(t *testing.T) {
	old := addAllMinPaths
	addAllMinPaths = 1
	t.Cleanup(func() { addAllMinPaths = old })
	dir := filepath.Join(tmp(t), "img")
	git(t, tmp(t), "init", "-q", dir)
	addAllTree(t, dir)
	git(t, dir, "config", "filter.refuse.clean", "false")
	git(t, dir, "config", "filter.refuse.required", "true")
	write(t, filepath.Join(dir, ".gitattributes"), "secret filter=refuse\n")
	write(t, filepath.Join(dir, "secret"), "s")
	n, err := discover(t, dir).AddAll(2)
	if err == nil || !strings.Contains(err.Error(), "secret") || n != 1 {
		t.Fatalf("AddAll with a file git refuses: %d processes, %v; want git add -A's error naming the file", n, err)
	}
	if _, err := os.Stat(filepath.Join(dir, ".git/index.lock")); err == nil {
		t.Error("index.lock left behind")
	}
}
