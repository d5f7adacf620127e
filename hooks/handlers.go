package hooks

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/onesis/git-onesis/internal/git"
	"github.com/onesis/git-onesis/internal/image"
	"github.com/onesis/git-onesis/meta"
)

// RecordedEnv is the InternalEnv setting for a 'git commit' run right
// after git-onesis recorded and staged .gitmeta as blob id (pre-commit
// then neither records again nor reads .gitmeta back to name it).
func RecordedEnv(id string) string { return InternalEnv + "=recorded:" + id }

// InternalEnv is set by git-onesis itself around a 'git commit' it runs
// right after recording (init --commit, commit), so pre-commit does not scan
// the tree a second time.
const InternalEnv = "GIT_ONESIS_INTERNAL"

// Handler runs one hook. Args are the hook's arguments as git passed them.
type Handler func(im *image.Image, args []string, stdin io.Reader, stderr io.Writer) error

// Handlers maps hook names to their handlers.
var Handlers = map[string]Handler{
	"pre-commit":        PreCommit,
	"post-commit":       PostCommit,
	"post-checkout":     PostCheckout,
	"post-merge":        PostMerge,
	"post-rewrite":      PostRewrite,
	"post-index-change": PostIndexChange,
}

// ArgCount is the number of arguments git passes to each hook.
var ArgCount = map[string]int{
	"pre-commit": 0, "post-commit": 0, "post-checkout": 3, "post-merge": 1, "post-rewrite": 1,
	"post-index-change": 2,
}

func stampPath(im *image.Image) string { return filepath.Join(im.Git.GitDir, "onesis", "staged") }

// blobID is the object id git gives b as a blob, so post-commit can
// compare what pre-commit staged with what was committed by name, without
// reading the committed blob back.
func blobID(im *image.Image, b []byte) string {
	hdr := fmt.Sprintf("blob %d\x00", len(b))
	var h hash.Hash = sha1.New()
	if im.Git.HashLen() == 32 {
		h = sha256.New()
	}
	h.Write([]byte(hdr))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

// caller finds the git command the hook runs for, expanding its aliases
// with the repository's configuration.
func caller(im *image.Image) Caller {
	return FindCaller(func(name string) string {
		v, ok, err := im.Git.Config("alias." + name)
		if err != nil || !ok {
			return ""
		}
		return v
	})
}

// KindOf classifies what the git command c did to the work tree.
func KindOf(im *image.Image, c Caller) image.Kind {
	switch {
	case !c.WritesWorktree():
		return image.IndexOnly
	case c.Discards(func(s string) bool {
		_, err := im.Git.ResolveRev(s + "^{commit}")
		return err == nil
	}):
		return image.Discarded
	}
	return image.Wrote
}

// converge applies what the caller's writes need and prints the summary.
func converge(im *image.Image, kind image.Kind, stderr io.Writer) error {
	_, err := convergeDone(im, kind, stderr)
	return err
}

// convergeDone is converge, also reporting whether the work tree is now in
// step with the index: false when the running git command still holds the
// index and a later hook has the work to do.
func convergeDone(im *image.Image, kind image.Kind, stderr io.Writer) (bool, error) {
	if !applyOnCheckout(im) {
		return true, nil // every later hook leaves the tree alone too
	}
	cv, err := im.Converge(kind)
	if err != nil {
		return false, err
	}
	if cv.Result == nil {
		return !cv.Deferred, nil
	}
	printApply(stderr, cv.Result)
	if n := len(cv.Result.Errors); n > 0 {
		return false, fmt.Errorf("%d .gitmeta entries could not be applied; see above, then 'git onesis status'", n)
	}
	return true, nil
}

// PostIndexChange runs after every write of the index. git passes no word
// of the command, so the caller is read from the process tree: after a
// command that wrote files into the work tree (checkout, restore, reset,
// stash, cherry-pick, revert, merge, am, sparse-checkout, ...), the files
// git wrote and the entries whose .gitmeta lines changed get their recorded
// metadata; after reset --hard, checkout -f and switch --discard-changes,
// the whole tree does. After add, status and commit nothing is applied.
//
// When it succeeds it leaves a note naming its git process
// (image.ConvergedFile), so the post-checkout or post-merge hook that the
// same command runs next can stop in the shell, without starting
// git-onesis to find that there is nothing left to do.
func PostIndexChange(im *image.Image, _ []string, _ io.Reader, stderr io.Writer) error {
	if os.Getenv(image.NestedEnv) != "" {
		return nil // our own index refresh
	}
	im.ForgetConverged()
	done, err := convergeDone(im, KindOf(im, caller(im)), stderr)
	if err == nil && done {
		// This process was exec'd by the trampoline, so its parent is
		// the git command, the $PPID of the trampolines it runs next.
		im.NoteConverged(os.Getppid())
	}
	return err
}

// PreCommit records .gitmeta for the index being committed and stages it.
// In the middle of a merge, cherry-pick, revert or rebase the (merged)
// .gitmeta is authoritative: it must be free of conflict markers, and it is
// applied to what git wrote before recording, so the other side's metadata
// is not overwritten by the tree's. A partial commit ('git commit PATHS')
// commits HEAD's entries for every path it does not name.
func PreCommit(im *image.Image, _ []string, _ io.Reader, stderr io.Writer) error {
	committed, recorded := []byte(nil), []byte(nil)
	partial := false
	internal, recordedID, _ := strings.Cut(os.Getenv(InternalEnv), ":")
	if internal != "recorded" {
		if state := im.Git.InProgress(); state != "" && state != "bisect" {
			if _, err := im.ReadWorktreeMeta(); errors.Is(err, meta.ErrConflict) {
				return fmt.Errorf("PERMISSIONS/OWNERSHIP CONFLICT in .gitmeta during %s:\n%w\n"+
					"Edit .gitmeta to keep one line per path (or run 'git onesis record' to take the tree as it is), then commit again", state, err)
			} else if err != nil && !errors.Is(err, image.ErrNoMeta) {
				return err
			}
			if err := converge(im, image.Wrote, stderr); err != nil {
				return err
			}
		}
		partial = isPartialCommit()
		rec := im
		if partial {
			// The work tree's .gitmeta describes the index git keeps after
			// the commit (the real one, locked meanwhile), not the
			// temporary one being committed.
			c := *im
			c.Git = im.Git.WithIndex(filepath.Join(im.Git.GitDir, "index.lock"))
			rec = &c
		}
		if _, _, err := rec.Record(!partial); err != nil {
			return err
		}
		recorded = rec.Recorded()
		if partial {
			b, err := partialCommit(im, caller(im), stderr)
			if err != nil {
				return err
			}
			committed = b
		}
	}
	if err := checkSysimage(im); err != nil {
		return err
	}
	if committed == nil && !partial && recorded != nil {
		committed = recorded // what Record just wrote, not read back
	}
	stamp := ""
	if committed == nil && recordedID != "" && git.IsOID(recordedID) {
		// git-onesis recorded and staged .gitmeta just before this
		// commit, and says which blob that is: not read back.
		stamp = recordedID + "\n"
	}
	if committed == nil && stamp == "" {
		b, err := os.ReadFile(im.MetaPath())
		if err != nil {
			return fmt.Errorf("reading .gitmeta: %w", err)
		}
		committed = b
	}
	if err := os.MkdirAll(filepath.Dir(stampPath(im)), 0o755); err != nil {
		return err
	}
	if stamp == "" {
		stamp = blobID(im, committed) + "\n"
	}
	if partial {
		stamp += "partial\n"
	}
	return os.WriteFile(stampPath(im), []byte(stamp), 0o644)
}

// PostCommit checks that the committed .gitmeta is the one pre-commit
// recorded. Commits made without pre-commit are of two kinds: the
// sequencer's (cherry-pick, revert, rebase, am), whose .gitmeta is the
// merged one and whose tree the post-index-change hook already applied, so
// only a last convergence runs; and 'git commit --no-verify', after which
// the tree is scanned and unrecorded metadata is reported. It also puts
// the committed .gitmeta into the real index after 'git commit <paths>',
// which commits from a temporary index, when the work tree holds it.
func PostCommit(im *image.Image, _ []string, _ io.Reader, stderr io.Writer) error {
	stampBytes, _ := os.ReadFile(stampPath(im))
	os.Remove(stampPath(im))
	stamp, rest, _ := strings.Cut(string(stampBytes), "\n")
	// The usual case, pre-commit's .gitmeta committed and staged, is told
	// by object names alone: the blob is not read back.
	// The staged one is read from the index in process: 'rev-parse
	// :.gitmeta' would have git read the whole index.
	if id, err := im.Git.Run("rev-parse", "HEAD:"+image.MetaFile); err == nil && stamp != "" && strings.TrimSpace(rest) == "" {
		head := strings.TrimSpace(string(id))
		staged, _, _ := im.Git.IndexID(image.MetaFile)
		if head == stamp {
			if staged != head {
				if wt, err := os.ReadFile(im.MetaPath()); err == nil && blobID(im, wt) == head {
					return im.Git.WithEnv(image.NestedEnv + "=1").Add(image.MetaFile)
				}
			}
			return nil
		}
	}
	committed, ok, err := im.Git.ShowBlob("HEAD", image.MetaFile)
	if err != nil || !ok {
		return err
	}
	if stamp != blobID(im, committed) {
		c := caller(im)
		if c.Known && c.Command != "commit" {
			return converge(im, image.Wrote, stderr)
		}
		m, err := meta.ParseBytes(committed)
		if err != nil {
			fmt.Fprintf(stderr, "warning: the committed .gitmeta does not parse: %v\n", err)
			return nil
		}
		cur, err := im.Scan()
		if err != nil {
			return err
		}
		if ch := meta.Compare(m, cur); len(ch) > 0 {
			fmt.Fprintf(stderr, "warning: this commit was made without the pre-commit hook (--no-verify?), so the tree's metadata was not recorded: %d entries differ from its .gitmeta; 'git onesis status' lists them\n", len(ch))
			fmt.Fprintln(stderr, "warning: to record them into this commit, as pre-commit would have: git onesis commit --amend --no-edit")
		}
		return nil
	}
	if strings.TrimSpace(rest) == "partial" {
		return carryPartial(im, committed)
	}
	wt, err := os.ReadFile(im.MetaPath())
	if err == nil && bytes.Equal(wt, committed) {
		if idx, ok, _ := im.Git.IndexBlob(image.MetaFile); !ok || !bytes.Equal(idx, committed) {
			return im.Git.WithEnv(image.NestedEnv + "=1").Add(image.MetaFile)
		}
	}
	return nil
}

// PostCheckout runs after every checkout, switch and restore, file
// checkouts (flag 0) included, and after clone and worktree add. The
// post-index-change hook has usually done the work already; this one
// catches up when it did not run (an older install, a git without it).
//
// Under image.NestedEnv it does nothing: the git-onesis command that ran
// the checkout (git onesis checkout) converges once git is done.
func PostCheckout(im *image.Image, _ []string, _ io.Reader, stderr io.Writer) error {
	if os.Getenv(image.NestedEnv) != "" {
		return nil
	}
	return converge(im, KindOf(im, caller(im)), stderr)
}

// PostMerge runs after a merge or pull (squash included).
func PostMerge(im *image.Image, _ []string, _ io.Reader, stderr io.Writer) error {
	return converge(im, image.Wrote, stderr)
}

// PostRewrite runs after a rebase and after 'commit --amend'. After a
// rebase the tree went through several commits; after an amend nothing was
// written and only the index is noted.
func PostRewrite(im *image.Image, args []string, stdin io.Reader, stderr io.Writer) error {
	if stdin != nil {
		io.Copy(io.Discard, stdin)
	}
	kind := image.IndexOnly
	if args[0] == "rebase" {
		kind = image.Wrote
	}
	return converge(im, kind, stderr)
}

func applyOnCheckout(im *image.Image) bool {
	ok, err := im.Git.ConfigBool("onesis.applyOnCheckout", true)
	return err != nil || ok
}

func printApply(stderr io.Writer, res *meta.ApplyResult) {
	for _, s := range image.Summary(res) {
		fmt.Fprintln(stderr, "git-onesis: "+s)
	}
	for _, e := range res.Errors {
		fmt.Fprintln(stderr, "error: "+e.Error())
	}
}
