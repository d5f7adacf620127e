// Package hooks owns the git hook scripts git-onesis installs: their text,
// every earlier version of that text, and installing, upgrading and
// removing them without ever clobbering a hook someone else wrote.
//
// # Trampoline design
//
// Each hook is a short /bin/sh trampoline that re-enters the binary as
// `git-onesis <hook> "$@"`. The decisions behind it:
//
//   - Opt-in per repository. The first working line exits 0, silently and
//     without starting git-onesis, unless `onesis.enabled` reads as true in
//     the repository's git config (`git onesis install` sets it locally).
//     Hooks installed for every repository through a global or system
//     core.hooksPath are therefore invisible no-ops in repositories that
//     never opted in. The check costs one `git config` process; errors
//     (for example an unparsable value) count as "not enabled".
//   - Missing binary. pre-commit refuses the commit (exit 1): committing
//     without recording would commit a stale .gitmeta. post-commit,
//     post-checkout, post-merge and post-rewrite warn on stderr and exit 0:
//     post-checkout's status becomes the status of checkout, switch, clone
//     and worktree add, which must not fail over metadata, and the others
//     cannot change the outcome anyway; `git onesis apply` catches up
//     later. The message names the hook and the ways out: put git-onesis
//     on PATH, set onesis.enabled=false, or delete the hook.
//   - exec. The shell is replaced by git-onesis, so its exit status is the
//     hook's and post-rewrite's stdin reaches it untouched. It execs the
//     binary by its own name (v2), not through 'git onesis' (v1): a no-op
//     hook's cost is mostly process starts, and that saves one git.
//   - Done already (v3, post-checkout and post-merge). A git command that
//     writes the work tree runs post-index-change first, and that hook
//     does the work; the one that follows stops in the shell, with
//     builtins only, when the note post-index-change left names the same
//     git process and the index is the file it saw (doneCheck). Starting
//     git-onesis (a Go binary, git and config lookups) only to find
//     nothing to do was 70-80 ms of every checkout.
//   - Committed as recorded (v4, post-commit). When HEAD's .gitmeta is
//     the blob pre-commit staged, as the stamp it left says, the
//     trampoline removes the stamp and stops, at the cost of one 'git
//     rev-parse' (commitDoneCheck), before the opt-in check: only a
//     pre-commit that ran, opted in, leaves a stamp.
//   - Nested (v3, post-index-change and post-checkout). The git commands
//     git-onesis runs itself, with GIT_ONESIS_NESTED set, trigger hooks
//     that have nothing to do: an index refresh of ours, or the checkout
//     inside 'git onesis checkout', which converges in its own process
//     once git is done. The first line exits 0 on that variable.
//   - Recognition by exact text. The second line names the version. A file
//     is ours when its text (CRLF folded to LF, surrounding blank space
//     trimmed) equals Body or a body in OutdatedBodies; anything else is Foreign
//     and is never overwritten or removed without force. Every body ever
//     shipped must stay in OutdatedBodies so upgrades stay silent.
package hooks

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/renameio/v2"

	"github.com/onesis/git-onesis/internal/image"
)

// Names lists the hooks git-onesis installs.
var Names = []string{"pre-commit", "post-commit", "post-checkout", "post-merge", "post-rewrite", "post-index-change"}

// version is the tag in the second line of the current bodies.
const version = "v4"

// doneCheck is the trampoline line, since v3, with which post-checkout and
// post-merge stop at once when the post-index-change hook of the same git
// command (their parent, $PPID) has converged the work tree and the index
// is still the file it saw (image.ConvergedFile): what git-onesis would
// do then is find nothing to do. It holds only in a plain repository
// (.git a directory, no GIT_DIR, GIT_WORK_TREE, GIT_INDEX_FILE or
// GIT_COMMON_DIR), and every part is a shell builtin: no process starts.
const doneCheck = `[ -d .git ] && [ -z "$GIT_DIR$GIT_WORK_TREE$GIT_INDEX_FILE$GIT_COMMON_DIR" ] && ` +
	`read -r p 2>/dev/null <.git/onesis/converged && [ "$p" = "$PPID" ] && ` +
	`[ .git/index -ef .git/onesis/index.seen ] && exit 0`

// commitDoneCheck is the post-commit trampoline's line, since v4, with
// which it stops when the commit holds the .gitmeta that pre-commit
// recorded and staged: what the stamp pre-commit left names (one line,
// so not a partial commit) is HEAD's .gitmeta. git-onesis would remove
// the stamp and find nothing else to do. One git process, against a Go
// start, a repository lookup and that same question: about 90 ms of
// every commit on a large image. It holds only in a plain repository;
// git sets GIT_INDEX_FILE for commit hooks, to the real index here.
const commitDoneCheck = `[ -d .git ] && [ -z "$GIT_DIR$GIT_WORK_TREE$GIT_COMMON_DIR" ] && ` +
	`{ [ -z "$GIT_INDEX_FILE" ] || [ "$GIT_INDEX_FILE" -ef .git/index ]; } && ` +
	`{ read -r s && ! read -r x; } 2>/dev/null <.git/onesis/staged && [ -n "$s" ] && ` +
	`[ "$(git rev-parse -q --verify HEAD:.gitmeta 2>/dev/null)" = "$s" ] && rm -f .git/onesis/staged && exit 0`

// doneLine returns the line with which the named hook of the given
// version stops when the work is done already, or "".
func doneLine(name, tag string) string {
	switch {
	case tag >= "v3" && (name == "post-checkout" || name == "post-merge"):
		return doneCheck
	case tag >= "v4" && name == "post-commit":
		return commitDoneCheck
	}
	return ""
}

// nestedCheck is the first line, since v3, of the hooks a git command run
// by git-onesis itself triggers: an index refresh of ours
// (post-index-change), or 'git onesis checkout', which converges itself
// once git is done (post-index-change, post-checkout). With
// image.NestedEnv set the hook has nothing to do, and a shell builtin
// says so without starting a process.
const nestedCheck = `[ -z "$` + image.NestedEnv + `" ] || exit 0`

// hasNestedCheck lists the hooks whose trampoline starts with nestedCheck;
// their handlers return at once under image.NestedEnv as well.
var hasNestedCheck = map[string]bool{"post-index-change": true, "post-checkout": true}

// enabledCheck is the trampoline line that makes the hook a no-op in
// repositories that have not opted in.
const enabledCheck = `test "$(git config --type=bool onesis.enabled 2>/dev/null)" = true || exit 0`

// Body returns the current trampoline for the named hook, ending in a
// newline. Since v2 it execs git-onesis itself, which 'command -v' has
// just found on PATH, rather than 'git onesis': one git process fewer per
// hook, and git's own start is most of a no-op hook's cost.
func Body(name string) string { return body(name, version, "git-onesis") }

// body is the trampoline of the given version tag, calling the hook
// through call ("git onesis" in v1, "git-onesis" since v2), with
// nestedCheck and doneCheck first in the hooks that have them since v3.
func body(name, tag, call string) string {
	code, consequence := "0", "metadata was not updated; run 'git onesis apply' once it is installed"
	if name == "pre-commit" {
		code, consequence = "1", "refusing to commit without recording metadata in .gitmeta"
	}
	msg := fmt.Sprintf("git-onesis: %s hook: 'git-onesis' was not found on your PATH; %s. "+
		"Install git-onesis on your PATH, or stop using it in this repository with "+
		"'git config onesis.enabled false' or by deleting $0.", name, consequence)
	done := ""
	if tag >= "v3" && hasNestedCheck[name] {
		done += nestedCheck + "\n"
	}
	if l := doneLine(name, tag); l != "" {
		done += l + "\n"
	}
	return "#!/bin/sh\n" +
		"# git-onesis hook (" + tag + "); `git onesis install` manages this file.\n" +
		done +
		enabledCheck + "\n" +
		"command -v git-onesis >/dev/null 2>&1 || { printf >&2 '%s\\n' \"" + msg + "\"; exit " + code + "; }\n" +
		"exec " + call + " " + name + " \"$@\"\n"
}

// OutdatedBodies holds, per hook, every earlier body git-onesis has written,
// oldest first. Install upgrades these silently and Uninstall removes them.
var OutdatedBodies = map[string][]string{}

func init() {
	for _, n := range Names {
		// v0, the pre-release trampoline: no opt-in check, silent when
		// the binary is missing.
		OutdatedBodies[n] = append(OutdatedBodies[n], "#!/bin/sh\n"+
			"# git-onesis hook (v0)\n"+
			"command -v git-onesis >/dev/null 2>&1 || exit 0\n"+
			"exec git onesis "+n+" \"$@\"\n")
		// v1: the opt-in check and the missing-binary message, then
		// 'exec git onesis', which starts git once more.
		OutdatedBodies[n] = append(OutdatedBodies[n], body(n, "v1", "git onesis"))
		// v2: 'exec git-onesis', without v3's doneCheck.
		OutdatedBodies[n] = append(OutdatedBodies[n], body(n, "v2", "git-onesis"))
		// v3: doneCheck and nestedCheck, without v4's commitDoneCheck.
		OutdatedBodies[n] = append(OutdatedBodies[n], body(n, "v3", "git-onesis"))
	}
}

// State classifies what is at a hook's path.
type State int

// The states Inspect reports.
const (
	Missing  State = iota // no file
	Current               // the current Body
	Outdated              // a body from OutdatedBodies
	Foreign               // anything else: not ours
	Empty                 // a file with nothing but blank space
)

var stateNames = [...]string{"missing", "current", "outdated", "foreign", "empty"}

// String returns a lower-case name for s, as `git onesis env` prints it.
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// maxHook is the most Inspect reads; no body of ours is that long.
const maxHook = 4096

// normalize folds CRLF to LF and trims surrounding blank space, so an
// editor's touch does not turn our hook into a foreign one.
func normalize(b []byte) string {
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\r\n", "\n"))
}

// read returns the first maxHook+1 bytes at path.
func read(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		return nil, fmt.Errorf("hook %s is a directory", path)
	}
	return io.ReadAll(io.LimitReader(f, maxHook+1))
}

// Inspect reports the state of hook name in dir. It reads at most 4 KiB.
func Inspect(dir, name string) (State, error) {
	s, _, err := inspect(filepath.Join(dir, name), name)
	return s, err
}

// inspect is Inspect on a path, also returning what it read.
func inspect(path, name string) (State, []byte, error) {
	b, err := read(path)
	if errors.Is(err, os.ErrNotExist) {
		return Missing, nil, nil
	}
	if err != nil {
		return Missing, nil, fmt.Errorf("inspecting hook: %w", err)
	}
	if len(b) > maxHook {
		return Foreign, b, nil
	}
	text := normalize(b)
	switch {
	case text == "":
		return Empty, b, nil
	case text == normalize([]byte(Body(name))):
		return Current, b, nil
	}
	for _, old := range OutdatedBodies[name] {
		if text == normalize([]byte(old)) {
			return Outdated, b, nil
		}
	}
	return Foreign, b, nil
}

// The actions a Result reports.
const (
	ActionInstalled = "installed" // written where there was nothing, or an empty file
	ActionUpgraded  = "upgraded"  // an outdated body of ours replaced
	ActionUnchanged = "unchanged" // already current
	ActionRefused   = "refused"   // a foreign hook left in place (Err says why)
	ActionRemoved   = "removed"   // our hook deleted
	ActionLeft      = "left"      // a foreign hook kept by Uninstall
	// ActionNotWritten marks the hooks Install left as they were because
	// another was refused (it writes all of them or none).
	ActionNotWritten = "not written"
)

// Result is what Install or Uninstall did to one hook.
type Result struct {
	Name   string // hook name, e.g. "pre-commit"
	Path   string // the hook's file
	Action string // one of the Action constants
	Err    error  // why the hook was refused or could not be handled
}

// ExistsError reports a hook git-onesis did not write and will not
// overwrite without force.
type ExistsError struct {
	Path     string
	Contents string // what was read, at most 4 KiB
}

func (e *ExistsError) Error() string {
	return fmt.Sprintf("hook already exists: %s\n\n%s", e.Path, indent(strings.TrimRight(e.Contents, "\n")))
}

// indent prefixes every line of s with a tab.
func indent(s string) string {
	return "\t" + strings.ReplaceAll(s, "\n", "\n\t") + "\n"
}

// resolveHint ends Install's error when hooks were refused.
const resolveHint = "To resolve this, either:\n" +
	"  1: run `git onesis install --manual` for instructions on how to merge the hooks by hand, or\n" +
	"  2: run `git onesis install --force` to overwrite them."

// Install writes every hook in Names into dir, creating dir (mode 0755) if
// needed. Missing and empty hooks are installed, outdated bodies of ours
// upgraded, current ones left unchanged. It is all or nothing: when a
// foreign hook is in the way and force is not set, no hook is written, and
// the returned error (which wraps an *ExistsError per refusal) lists the
// foreign hooks and how to resolve the conflict. Callers should not enable
// git-onesis in the repository while Install reports an error.
func Install(dir string, force bool) ([]Result, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating hooks directory: %w", err)
	}
	type plan struct {
		res      Result
		state    State
		contents []byte
	}
	var plans []plan
	var errs []error
	for _, name := range Names {
		p := plan{res: Result{Name: name, Path: filepath.Join(dir, name)}}
		var err error
		p.state, p.contents, err = inspect(p.res.Path, name)
		switch {
		case err != nil:
			p.res.Err = err
		case p.state == Foreign && !force:
			p.res.Action = ActionRefused
			p.res.Err = &ExistsError{Path: p.res.Path, Contents: string(p.contents)}
		}
		if p.res.Err != nil {
			errs = append(errs, p.res.Err)
		}
		plans = append(plans, p)
	}
	if len(errs) > 0 {
		// Nothing is written: a half-installed set (post-checkout without
		// pre-commit, say) would record and apply inconsistently.
		var results []Result
		for _, p := range plans {
			if p.res.Err == nil {
				p.res.Action = ActionNotWritten
			}
			results = append(results, p.res)
		}
		var exists *ExistsError
		if errors.As(errors.Join(errs...), &exists) {
			errs = append(errs, errors.New(resolveHint))
		}
		return results, errors.Join(errs...)
	}
	var results []Result
	for _, p := range plans {
		res := p.res
		if p.state == Current {
			res.Action = ActionUnchanged
		} else {
			res.Action = ActionInstalled
			if p.state == Outdated || p.state == Foreign {
				res.Action = ActionUpgraded
			}
			// renameio replaces the file atomically: git never runs a
			// half-written hook.
			if err := renameio.WriteFile(res.Path, []byte(Body(res.Name)), 0o755); err != nil {
				res.Action = ""
				res.Err = fmt.Errorf("writing hook: %w", err)
				errs = append(errs, res.Err)
			}
		}
		results = append(results, res)
	}
	return results, errors.Join(errs...)
}

// Uninstall removes from dir every hook in Names that holds a body of ours
// (current or outdated) or is empty, and leaves foreign hooks in place
// (ActionLeft). Missing hooks are not reported.
func Uninstall(dir string) ([]Result, error) {
	var results []Result
	var errs []error
	for _, name := range Names {
		res := Result{Name: name, Path: filepath.Join(dir, name)}
		state, _, err := inspect(res.Path, name)
		switch {
		case err != nil:
			res.Err = err
		case state == Missing:
			continue
		case state == Foreign:
			res.Action = ActionLeft
		default:
			if err := os.Remove(res.Path); err != nil {
				res.Err = fmt.Errorf("removing hook: %w", err)
			} else {
				res.Action = ActionRemoved
			}
		}
		if res.Err != nil {
			errs = append(errs, res.Err)
		}
		results = append(results, res)
	}
	return results, errors.Join(errs...)
}

// snippet returns the lines to paste into an existing hook. Unlike Body it
// neither exits early nor execs, so the rest of the user's hook still runs.
func snippet(name string) string {
	call := "git onesis " + name + ` "$@"`
	if name == "pre-commit" {
		call += " || exit 1"
	}
	s := "if " + strings.TrimSuffix(enabledCheck, " || exit 0") + "; then\n" +
		"\t" + call + "\n" +
		"fi\n"
	if name == "post-rewrite" {
		s = "# git onesis reads the rewritten commits on stdin; if this hook reads stdin\n" +
			"# too, save it to a file first and feed that file to both.\n" + s
	}
	return s
}

// Manual returns instructions for merging git-onesis into existing hooks by
// hand: for each hook, where to add it and the indented lines to paste.
func Manual(dir string) string {
	var b bytes.Buffer
	for i, name := range Names {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "Add the following to '%s':\n\n%s", filepath.Join(dir, name), indent(strings.TrimSuffix(snippet(name), "\n")))
	}
	return b.String()
}
