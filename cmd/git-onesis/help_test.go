package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEveryCommandHasAManPage guards docs/man against drift: each public
// command needs docs/man/git-onesis-<name>.adoc.
func TestEveryCommandHasAManPage(t *testing.T) {
	for _, c := range commands() {
		if c.Hidden {
			continue
		}
		if c.Category == "" {
			t.Errorf("command %q has no category in 'git onesis --help' (add it to categories in main.go)", c.Name)
		}
		p := filepath.Join("..", "..", "docs", "man", "git-onesis-"+c.Name+".adoc")
		if _, err := os.Stat(p); err != nil {
			t.Errorf("command %q has no man page: %v", c.Name, err)
		}
	}
}

// TestGitHelp renders the man pages and checks that git's own help paths
// (`git onesis --help`, `git help onesis`) open ours.
func TestGitHelp(t *testing.T) {
	for _, tool := range []string{"asciidoctor", "man"} {
		needTool(t, tool)
	}
	man := t.TempDir()
	must(t, ".", "asciidoctor", "-b", "manpage", "-D", filepath.Join(man, "man1"), filepath.Join("..", "..", "docs", "man", "git-onesis.adoc"))
	env := []string{"MANPATH=" + man, "MANPAGER=cat", "PAGER=cat", "MANWIDTH=100"}
	for _, args := range [][]string{{"onesis", "--help"}, {"help", "onesis"}} {
		r := runEnv(t, t.TempDir(), env, "git", args...)
		if r.code != 0 || !strings.Contains(r.out, "git-onesis") || !strings.Contains(r.out, "NAME") {
			t.Errorf("git %s: exit %d\nstdout: %.300s\nstderr: %s", strings.Join(args, " "), r.code, r.out, r.err)
		}
	}
}
