package hooks

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/onesis/git-onesis/internal/image"
	"github.com/onesis/git-onesis/meta"
)

// InternalEnv is set by git-onesis itself around a 'git commit' it runs
// right after recording (init --commit, commit), so pre-commit does not scan
// the tree a second time.
const InternalEnv = "GIT_ONESIS_INTERNAL"

// zeroOID is what git passes as the old commit after a clone.
const zeroOID = "0000000000000000000000000000000000000000"

// Handler runs one hook. Args are the hook's arguments as git passed them.
type Handler func(im *image.Image, args []string, stdin io.Reader, stderr io.Writer) error

// Handlers maps hook names to their handlers.
var Handlers = map[string]Handler{
	"pre-commit":    PreCommit,
	"post-commit":   PostCommit,
	"post-checkout": PostCheckout,
	"post-merge":    PostMerge,
	"post-rewrite":  PostRewrite,
}

// ArgCount is the number of arguments git passes to each hook.
var ArgCount = map[string]int{
	"pre-commit": 0, "post-commit": 0, "post-checkout": 3, "post-merge": 1, "post-rewrite": 1,
}

func stampPath(im *image.Image) string { return filepath.Join(im.Git.GitDir, "onesis", "staged") }

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// PreCommit records .gitmeta for the index being committed and stages it.
// In the middle of a merge, cherry-pick, revert or rebase the (merged)
// .gitmeta is authoritative: it must be free of conflict markers, and it is
// applied to the tree before recording, so the other side's metadata is not
// overwritten by the tree's.
func PreCommit(im *image.Image, _ []string, _ io.Reader, stderr io.Writer) error {
	if os.Getenv(InternalEnv) != "recorded" {
		if state := im.Git.InProgress(); state != "" && state != "bisect" {
			m, err := im.ReadWorktreeMeta()
			if errors.Is(err, meta.ErrConflict) {
				return fmt.Errorf("PERMISSIONS/OWNERSHIP CONFLICT in .gitmeta during %s:\n%w\n"+
					"Edit .gitmeta to keep one line per path (or run 'git onesis record' to take the tree as it is), then commit again", state, err)
			}
			if err != nil && !errors.Is(err, image.ErrNoMeta) {
				return err
			}
			if m != nil {
				head, _ := im.MetaAt("HEAD")
				res, err := im.ApplyTree(m, image.ApplyOptions{Old: head})
				if err != nil {
					return err
				}
				printApply(stderr, res)
			}
		}
		if _, _, err := im.Record(true); err != nil {
			return err
		}
	}
	if err := checkSysimage(im); err != nil {
		return err
	}
	b, err := os.ReadFile(im.MetaPath())
	if err != nil {
		return fmt.Errorf("reading .gitmeta: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(stampPath(im)), 0o755); err != nil {
		return err
	}
	return os.WriteFile(stampPath(im), []byte(digest(b)+"\n"), 0o644)
}

// PostCommit checks that the committed .gitmeta is the one pre-commit
// recorded. A commit made with --no-verify skips pre-commit; then the tree
// is scanned and any difference is reported. It also puts the committed
// .gitmeta into the real index after 'git commit <paths>', which commits
// from a temporary index.
func PostCommit(im *image.Image, _ []string, _ io.Reader, stderr io.Writer) error {
	committed, ok, err := im.Git.ShowBlob("HEAD", image.MetaFile)
	if err != nil || !ok {
		return err
	}
	stamp, _ := os.ReadFile(stampPath(im))
	os.Remove(stampPath(im))
	if strings.TrimSpace(string(stamp)) != digest(committed) {
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
			fmt.Fprintf(stderr, "warning: this commit's .gitmeta does not match the tree in %d entries (was pre-commit skipped, e.g. --no-verify?)\n", len(ch))
			fmt.Fprintln(stderr, "warning: run 'git onesis commit --amend --no-edit' to record them")
		}
		return nil
	}
	wt, err := os.ReadFile(im.MetaPath())
	if err == nil && bytes.Equal(wt, committed) {
		if idx, ok, _ := im.Git.IndexBlob(image.MetaFile); !ok || !bytes.Equal(idx, committed) {
			return im.Git.Add(image.MetaFile)
		}
	}
	return nil
}

// PostCheckout applies .gitmeta after a branch checkout: incrementally when
// the previous commit is known (only entries that differ between the two
// .gitmeta files, plus files git rewrote), in full after a clone. File
// checkouts (flag 0) and checkouts inside a rebase are left alone; the
// rebase is handled by post-rewrite.
func PostCheckout(im *image.Image, args []string, _ io.Reader, stderr io.Writer) error {
	oldRev, newRev, flag := args[0], args[1], args[2]
	if flag != "1" || !applyOnCheckout(im) || im.Git.InProgress() == "rebase" {
		return nil
	}
	if oldRev == newRev {
		return nil
	}
	o := image.ApplyOptions{}
	if oldRev != zeroOID {
		o = incremental(im, oldRev, newRev)
	}
	return applyWorktree(im, o, stderr)
}

// PostMerge applies .gitmeta after a merge (including a pull), from
// ORIG_HEAD incrementally, or in full after a squash merge.
func PostMerge(im *image.Image, args []string, _ io.Reader, stderr io.Writer) error {
	if !applyOnCheckout(im) {
		return nil
	}
	o := image.ApplyOptions{}
	if args[0] != "1" {
		o = incremental(im, "ORIG_HEAD", "HEAD")
	}
	return applyWorktree(im, o, stderr)
}

// PostRewrite applies .gitmeta in full after a rebase (the tree went
// through several commits, so no single old manifest describes it). After
// 'commit --amend' there is nothing to do: pre-commit recorded.
func PostRewrite(im *image.Image, args []string, stdin io.Reader, stderr io.Writer) error {
	if stdin != nil {
		io.Copy(io.Discard, stdin)
	}
	if args[0] != "rebase" || !applyOnCheckout(im) {
		return nil
	}
	return applyWorktree(im, image.ApplyOptions{}, stderr)
}

func applyOnCheckout(im *image.Image) bool {
	ok, err := im.Git.ConfigBool("onesis.applyOnCheckout", true)
	return err != nil || ok
}

// incremental prepares an apply from oldRev's .gitmeta and the files that
// changed between the two commits; it falls back to a full apply when the
// old manifest cannot be read.
func incremental(im *image.Image, oldRev, newRev string) image.ApplyOptions {
	old, err := im.MetaAt(oldRev)
	if err != nil || old == nil {
		return image.ApplyOptions{}
	}
	paths, err := im.Git.DiffTreeNames(oldRev, newRev)
	if err != nil {
		return image.ApplyOptions{}
	}
	return image.ApplyOptions{Old: old, Paths: paths}
}

func applyWorktree(im *image.Image, o image.ApplyOptions, stderr io.Writer) error {
	m, err := im.ReadWorktreeMeta()
	if errors.Is(err, image.ErrNoMeta) {
		return nil
	}
	if err != nil {
		return err
	}
	res, err := im.ApplyTree(m, o)
	if err != nil {
		return err
	}
	printApply(stderr, res)
	if len(res.Errors) > 0 {
		return fmt.Errorf("%d .gitmeta entries could not be applied; see above, then 'git onesis status'", len(res.Errors))
	}
	return nil
}

func printApply(stderr io.Writer, res *meta.ApplyResult) {
	for _, s := range image.Summary(res) {
		fmt.Fprintln(stderr, "git-onesis: "+s)
	}
	for _, e := range res.Errors {
		fmt.Fprintln(stderr, "error: "+e.Error())
	}
}
