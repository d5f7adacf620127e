// Package invref keeps the node inventory in git: refs/onesis/inventory,
// whose tree holds one file, nodes (package inventory's format), so every
// change is a commit with its author. Load, LoadAt and Update read and
// change it (a compare-and-swap on the ref); Watcher follows it for serve.
// Package inventory itself knows nothing of git.
package invref

import (
	"errors"
	"fmt"
	"strings"

	"github.com/onesis/git-onesis/boot/inventory"
	"github.com/onesis/git-onesis/internal/git"
)

// Ref is the dedicated ref whose tree holds the inventory. It lives outside
// refs/heads, so it is shared by every branch and linked worktree of the
// repository and never checked out.
const Ref = "refs/onesis/inventory"

// File is the name of the inventory file in Ref's tree.
const File = "nodes"

// ErrConflict is returned by Update when the ref kept moving under it
// (another admin changing the inventory at the same moment).
var ErrConflict = errors.New("the inventory changed while it was being updated; try again")

// Head returns the commit Ref points at, or "" when it does not exist yet.
// It is one cheap `git rev-parse`, which is what Watcher polls.
func Head(r *git.Repo) (string, error) {
	out, err := r.Run("rev-parse", "--verify", "--quiet", Ref+"^{commit}")
	if err != nil {
		var ge *git.Error
		if errors.As(err, &ge) && ge.ExitCode() == 1 {
			return "", nil
		}
		return "", fmt.Errorf("reading %s: %w", Ref, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// Load reads the inventory at Ref. A missing ref is an empty inventory.
func Load(r *git.Repo) (*inventory.Inventory, error) {
	head, err := Head(r)
	if err != nil {
		return nil, err
	}
	return LoadAt(r, head)
}

// LoadAt reads the inventory as of commit ("" = empty). Errors name the
// commit and the file line: "inventory commit 1a2b3c4: nodes:3: ...".
func LoadAt(r *git.Repo, commit string) (*inventory.Inventory, error) {
	if commit == "" {
		return inventory.New(), nil
	}
	b, ok, err := r.ShowBlob(commit, File)
	if err != nil {
		return nil, fmt.Errorf("reading the node inventory: %w", err)
	}
	if !ok {
		return nil, fmt.Errorf("inventory commit %.12s has no %q file; repair with 'git onesis node' or reset %s", commit, File, Ref)
	}
	inv, err := inventory.Parse(File, b)
	if err != nil {
		return nil, fmt.Errorf("inventory commit %.12s: %w", commit, err)
	}
	inv.Commit = commit
	return inv, nil
}

// Update applies change to the current inventory and records the result as
// a new commit on Ref with message msg, authored by the admin (git's usual
// user.name/user.email or GIT_AUTHOR_* identity). The ref moves with a
// compare-and-swap on its old value; if another writer got in first, the
// change is re-applied to the new inventory, up to a few times. A change
// that leaves the file identical makes no commit. It returns the
// inventory as stored.
func Update(r *git.Repo, msg string, change func(*inventory.Inventory) error) (*inventory.Inventory, error) {
	for attempt := 0; attempt < 5; attempt++ {
		head, err := Head(r)
		if err != nil {
			return nil, err
		}
		cur, err := LoadAt(r, head)
		if err != nil {
			return nil, err
		}
		next := cur.Clone()
		if err := change(next); err != nil {
			return nil, err
		}
		data := next.Marshal()
		// Re-parse what will be stored: the file must always load.
		stored, err := inventory.Parse(File, data)
		if err != nil {
			return nil, fmt.Errorf("internal error: the inventory would not load back: %w", err)
		}
		if head != "" && string(data) == string(cur.Marshal()) {
			return cur, nil
		}
		commit, err := writeCommit(r, head, data, msg)
		if err != nil {
			return nil, err
		}
		_, err = r.Run("update-ref", "-m", "onesis: "+msg, Ref, commit, head)
		if err != nil {
			now, herr := Head(r)
			if herr == nil && now != head {
				continue // lost the race: re-apply on top of the new inventory
			}
			return nil, fmt.Errorf("moving %s: %w", Ref, err)
		}
		stored.Commit = commit
		return stored, nil
	}
	return nil, ErrConflict
}

// writeCommit stores data as the only file of a tree and commits it on top
// of parent ("" for the first commit).
func writeCommit(r *git.Repo, parent string, data []byte, msg string) (string, error) {
	out, err := r.RunInput(data, "hash-object", "-w", "--stdin")
	if err != nil {
		return "", fmt.Errorf("storing the node inventory: %w", err)
	}
	blob := strings.TrimSpace(string(out))
	out, err = r.RunInput([]byte("100644 blob "+blob+"\t"+File+"\n"), "mktree")
	if err != nil {
		return "", fmt.Errorf("storing the node inventory: %w", err)
	}
	tree := strings.TrimSpace(string(out))
	args := []string{"commit-tree", tree, "-m", msg}
	if parent != "" {
		args = append(args, "-p", parent)
	}
	out, err = r.Run(args...)
	if err != nil {
		return "", fmt.Errorf("committing the node inventory (is user.name/user.email set?): %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}
