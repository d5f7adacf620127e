package hooks

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeProc builds a /proc with a chain of processes, the first being the
// hook's parent, and points procRoot at it.
func fakeProc(t *testing.T, chain ...[]string) int {
	t.Helper()
	root := t.TempDir()
	old := procRoot
	procRoot = root
	t.Cleanup(func() { procRoot = old })
	base := 1000
	for i, argv := range chain {
		pid, ppid := base+i, base+i+1
		if i == len(chain)-1 {
			ppid = 1
		}
		dir := filepath.Join(root, fmt.Sprint(pid))
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, "cmdline"), []byte(strings.Join(argv, "\x00")+"\x00"), 0o644)
		// comm with a space and a parenthesis, as the kernel allows
		os.WriteFile(filepath.Join(dir, "stat"), []byte(fmt.Sprintf("%d (a b) c) S %d 0 0", pid, ppid)), 0o644)
	}
	return base
}

func TestFindCaller(t *testing.T) {
	aliases := func(name string) string {
		return map[string]string{"rh": "reset --hard", "sh": "!git reset --hard"}[name]
	}
	isRev := func(s string) bool { return s == "main" || s == "HEAD" }
	for _, tc := range []struct {
		name            string
		chain           [][]string
		cmd             string
		known, writes   bool
		discards, stash bool
	}{
		{"reset --hard via the trampoline", [][]string{{"git", "onesis", "post-index-change", "1", "0"}, {"git", "reset", "-q", "--hard", "HEAD~1"}, {"bash"}}, "reset", true, true, true, false},
		{"reset --keep", [][]string{{"git", "onesis", "post-index-change", "1", "0"}, {"git", "reset", "--keep", "HEAD"}}, "reset", true, true, false, false},
		{"global options", [][]string{{"git", "onesis", "x"}, {"/usr/bin/git", "-C", "/img", "-c", "a=b", "--no-pager", "reset", "--hard"}}, "reset", true, true, true, false},
		{"alias", [][]string{{"git", "onesis", "x"}, {"git", "rh"}}, "reset", true, true, true, false},
		{"stash's own reset --hard", [][]string{{"git", "onesis", "x"}, {"/usr/lib/git-core/git", "reset", "--hard", "-q", "--no-recurse-submodules"}, {"git", "stash"}, {"zsh"}}, "reset", true, true, false, true},
		{"git add", [][]string{{"git", "onesis", "x"}, {"git", "add", "f"}}, "add", true, false, false, false},
		{"commit", [][]string{{"git-onesis", "pre-commit"}, {"git", "onesis", "pre-commit"}, {"git", "commit", "-am", "x"}}, "commit", true, false, false, false},
		{"manual snippet: a shell between", [][]string{{"git", "onesis", "x"}, {"/bin/sh", ".git/hooks/post-index-change", "1", "0"}, {"git", "restore", "f"}}, "restore", true, true, false, false},
		{"checkout -f branch", [][]string{{"git", "onesis", "x"}, {"git", "checkout", "-qf", "main"}}, "checkout", true, true, true, false},
		{"checkout -f path", [][]string{{"git", "onesis", "x"}, {"git", "checkout", "-f", "etc/shadow"}}, "checkout", true, true, false, false},
		{"checkout -f -- path", [][]string{{"git", "onesis", "x"}, {"git", "checkout", "-f", "--", "etc"}}, "checkout", true, true, false, false},
		{"checkout -f", [][]string{{"git", "onesis", "x"}, {"git", "checkout", "-f"}}, "checkout", true, true, true, false},
		{"checkout branch", [][]string{{"git", "onesis", "x"}, {"git", "checkout", "main"}}, "checkout", true, true, false, false},
		{"switch --discard-changes", [][]string{{"git", "onesis", "x"}, {"git", "switch", "--discard-changes", "b1"}}, "switch", true, true, true, false},
		{"unknown command writes", [][]string{{"git", "onesis", "x"}, {"git", "frobnicate"}}, "frobnicate", true, true, false, false},
		{"no git above", [][]string{{"git", "onesis", "x"}, {"python3", "x.py"}}, "", false, true, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pid := fakeProc(t, tc.chain...)
			c := findCaller(pid, aliases)
			if c.Command != tc.cmd || c.Known != tc.known {
				t.Fatalf("caller %+v, want command %q known %v", c, tc.cmd, tc.known)
			}
			if got := c.WritesWorktree(); got != tc.writes {
				t.Errorf("WritesWorktree = %v", got)
			}
			if got := c.Discards(isRev); got != tc.discards {
				t.Errorf("Discards = %v", got)
			}
			if got := c.Under("stash"); got != tc.stash {
				t.Errorf("Under(stash) = %v", got)
			}
		})
	}
}

// TestFindCallerReal runs the real chain: git runs a hook script, the
// script runs this test binary's helper, which reports the caller.
func TestFindCallerLive(t *testing.T) {
	if os.Getenv("ONESIS_CALLER_HELPER") != "" {
		t.Skip("helper mode only")
	}
	c := FindCaller(nil)
	// 'go test' is our parent here: not git, so nothing is known.
	if c.Known {
		t.Errorf("under go test, caller %+v", c)
	}
}
