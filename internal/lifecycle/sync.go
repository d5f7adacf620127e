package lifecycle

import (
	"fmt"
	"strings"

	"github.com/onesis/git-onesis/boot/invref"
	"github.com/onesis/git-onesis/boot/resolve"
	"github.com/onesis/git-onesis/internal/image"
)

// FetchResult says what FetchAndFollow did.
type FetchResult struct {
	Remote   string
	Branch   string // the checked-out branch; "" when detached
	Old, New string // its commit before and after
	Followed bool   // the work tree moved (fast-forward) and was applied
	Note     string // why it did not move, when it did not
	// Commits are the commits a boot from this server can ask for now:
	// HEAD and every node's ref, resolved (deduplicated, in that order).
	Commits []string
}

// FetchAndFollow keeps a boot server's clone current: it fetches remote
// (branches and the central node inventory, refs/onesis/inventory), then
// fast-forwards the checked-out branch to its upstream when the work tree
// is clean, under umask 077 and with .gitmeta applied. It never merges or
// discards local work: a branch that diverged, or a dirty tree, is left
// as it is and said so.
func FetchAndFollow(im *image.Image, remote string) (*FetchResult, error) {
	res := &FetchResult{Remote: remote}
	if remote == "" {
		res.Remote = "origin"
		if up, err := im.Git.Run("rev-parse", "--abbrev-ref", "--symbolic-full-name", "@{upstream}"); err == nil {
			if r, _, ok := strings.Cut(strings.TrimSpace(string(up)), "/"); ok {
				res.Remote = r
			}
		}
	}
	if _, err := im.Git.Run("fetch", "--quiet", "--prune", "--", res.Remote,
		"+refs/heads/*:refs/remotes/"+res.Remote+"/*",
		"+"+invref.Ref+":"+invref.Ref); err != nil {
		// A central repository without an inventory is fine: fetch the
		// branches alone.
		if _, err2 := im.Git.Run("fetch", "--quiet", "--prune", "--", res.Remote,
			"+refs/heads/*:refs/remotes/"+res.Remote+"/*"); err2 != nil {
			return nil, fmt.Errorf("fetching from %s: %w", res.Remote, err2)
		}
	}
	if b, err := im.Git.Run("symbolic-ref", "--quiet", "--short", "HEAD"); err == nil {
		res.Branch = strings.TrimSpace(string(b))
	}
	head, _, err := im.Git.HeadCommit()
	if err != nil {
		return nil, err
	}
	res.Old, res.New = head, head
	switch up, err := im.Git.ResolveRev("@{upstream}"); {
	case res.Branch == "":
		res.Note = "HEAD is detached; nothing to follow"
	case err != nil:
		res.Note = res.Branch + " has no upstream branch; nothing to follow"
	case up == head:
	default:
		if _, err := im.Git.Run("merge-base", "--is-ancestor", head, up); err != nil {
			res.Note = fmt.Sprintf("%s has commits its upstream lacks; not moved (merge by hand)", res.Branch)
			break
		}
		if err := requireClean(im.Root, res.Branch); err != nil {
			res.Note = err.Error() + "; not moved"
			break
		}
		if _, err := run(im.Git, "merge", "--quiet", "--ff-only", up); err != nil {
			return nil, fmt.Errorf("fast-forwarding %s: %w", res.Branch, err)
		}
		if _, err := applyAfter(im.Root, head); err != nil {
			return nil, fmt.Errorf("applying metadata after the fast-forward: %w", err)
		}
		res.New, res.Followed = up, true
	}
	seen := map[string]bool{}
	add := func(c string) {
		if c != "" && !seen[c] {
			seen[c] = true
			res.Commits = append(res.Commits, c)
		}
	}
	add(res.New)
	if inv, err := invref.Load(im.Git); err == nil {
		// Node refs resolve as serve resolves them (the branch, else its
		// one remote-tracking copy).
		g, err := resolve.New(im.Git, "")
		if err != nil {
			return nil, err
		}
		if g.Ref != "" { // onesis.serve.ref: what nodes without a ref boot
			if r, err := g.Default(); err == nil {
				add(r.Commit)
			}
		}
		refs := map[string]bool{} // nodes mostly share a few refs
		for _, n := range inv.Nodes {
			if n.Ref == "" || refs[n.Ref] {
				continue
			}
			refs[n.Ref] = true
			if r, err := g.Rev(n.Ref); err == nil {
				add(r.Commit)
			}
		}
	}
	return res, nil
}
