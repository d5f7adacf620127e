package hooks

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Caller is the git command a hook runs for, read from the hook's ancestor
// processes. git passes hooks no word of which command ran them (a
// post-index-change after 'git reset --hard' and after 'git add' get the
// same arguments), so the handlers ask the kernel: /proc/<pid>/cmdline of
// the nearest git process above git-onesis that is not git-onesis itself.
type Caller struct {
	// Command is the git subcommand ("reset", "checkout", ...), after
	// global options and with a simple alias expanded; "" when unknown.
	Command string
	// Args are the subcommand's arguments.
	Args []string
	// Chain lists the subcommands of every git process above the caller,
	// nearest first ('git stash' runs 'git reset --hard' as a child).
	Chain []string
	// Known is false when no git process could be found above us.
	Known bool
}

// Under reports whether cmd is the caller or one of the git commands
// above it.
func (c Caller) Under(cmd string) bool {
	if c.Command == cmd {
		return true
	}
	for _, x := range c.Chain {
		if x == cmd {
			return true
		}
	}
	return false
}

// procRoot is where process information is read; tests point it elsewhere.
var procRoot = "/proc"

// maxAncestors bounds the walk up the process tree.
const maxAncestors = 12

// FindCaller reads the process tree above this process. aliases resolves a
// git alias to its expansion ("" when it is not one); nil resolves none.
func FindCaller(aliases func(name string) string) Caller {
	return findCaller(os.Getppid(), aliases)
}

func findCaller(pid int, aliases func(name string) string) Caller {
	var c Caller
	found := false
	for i := 0; i < maxAncestors && pid > 1; i++ {
		argv, ppid, err := readProc(pid)
		if err != nil {
			break
		}
		if len(argv) > 0 {
			switch {
			case isOnesis(argv):
				// ourselves: 'git onesis <hook>' or 'git-onesis <hook>'
			case isGit(argv[0]):
				cmd, args := gitSubcommand(argv[1:])
				if cmd != "" && !isBuiltin(cmd) && aliases != nil {
					if exp := aliases(cmd); exp != "" && !strings.HasPrefix(exp, "!") {
						words := strings.Fields(exp)
						cmd, args = words[0], append(words[1:], args...)
					}
				}
				if !found {
					c.Command, c.Args, c.Known, found = cmd, args, true, true
				} else {
					c.Chain = append(c.Chain, cmd)
				}
			case found:
				// The first process above git that is not git (the
				// user's shell, a script) ends the chain.
				return c
			case isShell(argv[0]):
				// a hook script that calls git-onesis without exec
			default:
				return c
			}
		}
		pid = ppid
	}
	return c
}

// readProc returns the argv and parent pid of pid.
func readProc(pid int) ([]string, int, error) {
	dir := filepath.Join(procRoot, strconv.Itoa(pid))
	cmdline, err := os.ReadFile(filepath.Join(dir, "cmdline"))
	if err != nil {
		return nil, 0, err
	}
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return nil, 0, err
	}
	// stat is "pid (comm) state ppid ...", and comm may hold spaces or
	// parentheses: the fields start after the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return nil, 0, fmt.Errorf("%s/stat: no command field", dir)
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 2 {
		return nil, 0, fmt.Errorf("%s/stat: too short", dir)
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return nil, 0, fmt.Errorf("%s/stat: parent pid %q: %w", dir, f[1], err)
	}
	var argv []string
	for _, a := range bytes.Split(bytes.TrimSuffix(cmdline, []byte{0}), []byte{0}) {
		argv = append(argv, string(a))
	}
	if len(cmdline) == 0 {
		argv = nil
	}
	return argv, ppid, nil
}

func isGit(argv0 string) bool { return filepath.Base(argv0) == "git" }

func isShell(argv0 string) bool {
	switch filepath.Base(strings.TrimPrefix(argv0, "-")) {
	case "sh", "dash", "bash", "ash", "busybox":
		return true
	}
	return false
}

// isOnesis recognises this program: 'git-onesis ...' or 'git onesis ...'.
func isOnesis(argv []string) bool {
	if filepath.Base(argv[0]) == "git-onesis" {
		return true
	}
	if isGit(argv[0]) {
		cmd, _ := gitSubcommand(argv[1:])
		return cmd == "onesis"
	}
	return false
}

// gitGlobalWithValue are git's global options whose value is the next
// argument when not given with '='.
var gitGlobalWithValue = map[string]bool{
	"-C": true, "-c": true, "--git-dir": true, "--work-tree": true, "--namespace": true,
	"--super-prefix": true, "--config-env": true,
}

// gitSubcommand skips git's global options and returns the subcommand and
// its arguments.
func gitSubcommand(args []string) (string, []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			return a, args[i+1:]
		}
		if gitGlobalWithValue[a] {
			i++
		}
	}
	return "", nil
}

// builtins are the git commands the hooks classify; anything else may be
// an alias.
var builtins = map[string]bool{}

func init() {
	for _, c := range append(append(append([]string{}, worktreeWriters...), indexOnly...), "onesis") {
		builtins[c] = true
	}
}

func isBuiltin(cmd string) bool { return builtins[cmd] }

// worktreeWriters are the git commands that write files into the work tree
// (and then the index). Everything else that writes the index only records
// what is already there.
var worktreeWriters = []string{
	"checkout", "switch", "restore", "reset", "stash", "cherry-pick", "revert",
	"merge", "pull", "rebase", "am", "apply", "sparse-checkout", "worktree",
	"read-tree", "checkout-index", "clone", "bisect", "submodule", "mergetool",
}

// indexOnly are commands known to write the index without writing files
// into the work tree ('rm' and 'mv' remove and rename, which apply cannot
// undo either way).
var indexOnly = []string{
	"add", "status", "commit", "update-index", "rm", "mv", "diff", "diff-files",
	"diff-index", "ls-files", "notes", "tag", "log", "show", "describe", "blame",
	"grep", "gc", "fetch", "push", "branch", "stage", "write-tree", "fsck",
}

// WritesWorktree reports whether the caller may have written files into
// the work tree. Unknown callers count as writers: a hook that does not
// know must not leave a secret world-readable.
func (c Caller) WritesWorktree() bool {
	if !c.Known || c.Command == "" {
		return true
	}
	for _, w := range worktreeWriters {
		if c.Under(w) {
			return true
		}
	}
	for _, x := range indexOnly {
		if c.Command == x {
			return false
		}
	}
	return true
}

// Discards reports whether the caller throws away every local change of
// the work tree: 'reset --hard', 'checkout -f' without paths, and 'switch
// --discard-changes' (or -f). Like git's content, the tree's metadata then
// returns to what .gitmeta records, including drift git did not rewrite.
// isRev tells a revision from a path for 'checkout -f X'. 'git stash' runs
// 'reset --hard' itself, but keeps no metadata drift in the stash, so under
// stash nothing is discarded beyond what git rewrites.
func (c Caller) Discards(isRev func(string) bool) bool {
	if !c.Known || c.Under("stash") {
		return false
	}
	opts, rest := splitOptions(c.Args)
	switch c.Command {
	case "reset":
		return hasOption(opts, "--hard", 0)
	case "switch":
		return hasOption(opts, "--discard-changes", 'f') || hasOption(opts, "--force", 'f')
	case "checkout":
		if !hasOption(opts, "--force", 'f') {
			return false
		}
		if rest.dashdash {
			return len(rest.after) == 0 && len(rest.before) <= 1
		}
		switch len(rest.before) {
		case 0:
			return true
		case 1:
			return isRev == nil || isRev(rest.before[0])
		}
	}
	return false
}

type operands struct {
	before, after []string // operands before and after "--"
	dashdash      bool
}

// splitOptions separates options from operands (before and after "--").
// It does not know which options take a separate value, so it is used
// only for commands whose value-taking options cannot matter here.
func splitOptions(args []string) ([]string, operands) {
	var opts []string
	var ops operands
	for i, a := range args {
		switch {
		case a == "--":
			ops.dashdash = true
			ops.after = args[i+1:]
			return opts, ops
		case strings.HasPrefix(a, "-") && a != "-":
			opts = append(opts, a)
		default:
			ops.before = append(ops.before, a)
		}
	}
	return opts, ops
}

// hasOption reports whether opts holds the long option, or the short one
// alone or bundled ("-qf").
func hasOption(opts []string, long string, short byte) bool {
	for _, o := range opts {
		if o == long {
			return true
		}
		if short != 0 && len(o) > 1 && o[0] == '-' && o[1] != '-' && strings.IndexByte(o[1:], short) >= 0 {
			return true
		}
	}
	return false
}
