// Package lifecycle owns the image lifecycle: an upgrade branch in its own
// linked worktree (start), moving production to it (promote), dropping it
// (abandon), and rolling production back through a new commit (rollback).
// It replaces the old recipe's full rsync copy of the image with a git
// worktree, and its "replay the rpm database" rollback with a commit whose
// tree is the old one.
//
// Every checkout it makes runs under umask 077 and is followed by an apply
// of .gitmeta, so no secret is world-readable in between, whether or not
// the repository's hooks are installed.
package lifecycle

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/onesis/git-onesis/boot/booted"
	"github.com/onesis/git-onesis/boot/inventory"
	"github.com/onesis/git-onesis/boot/invref"
	"github.com/onesis/git-onesis/boot/resolve"
	"github.com/onesis/git-onesis/internal/git"
	"github.com/onesis/git-onesis/internal/image"
	"github.com/onesis/git-onesis/meta"
)

// Worktree is one entry of `git worktree list`.
type Worktree struct {
	Dir    string
	Head   string // commit
	Branch string // short name; "" when detached
	Bare   bool
}

// Worktrees lists the repository's worktrees, the main one first.
func Worktrees(r *git.Repo) ([]Worktree, error) {
	out, err := r.Run("worktree", "list", "--porcelain", "-z")
	if err != nil {
		return nil, fmt.Errorf("listing worktrees: %w", err)
	}
	var (
		list []Worktree
		cur  *Worktree
	)
	for _, f := range strings.Split(string(out), "\x00") {
		switch {
		case f == "":
			cur = nil
		case strings.HasPrefix(f, "worktree "):
			list = append(list, Worktree{Dir: strings.TrimPrefix(f, "worktree ")})
			cur = &list[len(list)-1]
		case cur == nil:
		case strings.HasPrefix(f, "HEAD "):
			cur.Head = strings.TrimPrefix(f, "HEAD ")
		case strings.HasPrefix(f, "branch "):
			cur.Branch = strings.TrimPrefix(strings.TrimPrefix(f, "branch "), "refs/heads/")
		case f == "bare":
			cur.Bare = true
		}
	}
	return list, nil
}

// worktreeOf returns the worktree that has branch checked out, if any.
func worktreeOf(r *git.Repo, branch string) (*Worktree, error) {
	wts, err := Worktrees(r)
	if err != nil {
		return nil, err
	}
	for i := range wts {
		if wts[i].Branch == branch && !wts[i].Bare {
			return &wts[i], nil
		}
	}
	return nil, nil
}

// run runs git in r with the umask closed, so files git writes are private
// until .gitmeta is applied.
func run(r *git.Repo, args ...string) ([]byte, error) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	return r.Run(args...)
}

// applyAfter makes dir's metadata match its .gitmeta after git wrote into
// it: in full for a fresh checkout (before is ""), else what git wrote and
// what .gitmeta changed since the last apply (see image.Converge). It
// returns the apply result (nil when there was nothing to apply).
func applyAfter(dir, before string) (*meta.ApplyResult, error) {
	im, err := image.Open(dir)
	if err != nil {
		return nil, err
	}
	if before == "" {
		res, err := im.ApplyWorktreeMeta(image.ApplyOptions{})
		if errors.Is(err, image.ErrNoMeta) {
			return nil, nil
		}
		return res, err
	}
	cv, err := im.Converge(image.Wrote)
	if err != nil {
		return nil, err
	}
	return cv.Result, nil
}

// requireClean refuses to go on when dir has content changes or metadata
// drift that are not committed: promoting or rolling back would lose them.
func requireClean(dir, what string) error {
	im, err := image.Open(dir)
	if err != nil {
		return err
	}
	st, err := im.Status()
	if err != nil {
		return fmt.Errorf("checking %s for uncommitted changes: %w", dir, err)
	}
	if !st.Clean() || st.Unrecorded {
		n := len(st.Content) + len(st.Drift)
		return fmt.Errorf("%s in %s has %d uncommitted change(s); commit or discard them first ('git onesis status' there says how)", what, dir, n)
	}
	return nil
}

// StartOptions tune Start.
type StartOptions struct {
	From string // the branch or commit to start from; "" = HEAD
	Dir  string // where the worktree goes; "" = DefaultDir
	// Nodes are pointed at the new branch in serve's inventory: they boot
	// it read-only at their next boot, or, with Maintenance, boot the
	// worktree itself read-write.
	Nodes       []string
	Maintenance bool
}

// DefaultDir is where Start puts the worktree of upgrade branch name: a
// sibling of the main work tree, "<top>-<name>" ("/" in name becomes "-").
func DefaultDir(top, name string) string {
	return top + "-" + strings.ReplaceAll(name, "/", "-")
}

// StartResult says what Start made.
type StartResult struct {
	Branch, Dir, Commit string
	Apply               *meta.ApplyResult
	// Warnings say what is missing but does not stop the upgrade (package
	// lists that could not be copied).
	Warnings []string
}

// Start creates branch name at o.From and checks it out into a new linked
// worktree with its metadata applied. Git shares the object store, so this
// costs the image's checked-out files, not a second repository.
//
// Everything is checked before anything is made (the name, the start
// point, the directory, every node), and a failure after the worktree was
// made removes it and the branch again: a failed start leaves nothing to
// clean up and can simply be run again.
func Start(im *image.Image, name string, o StartOptions) (*StartResult, error) {
	if err := checkBranchName(im.Git, name); err != nil {
		return nil, err
	}
	if _, err := im.Git.ResolveRev("refs/heads/" + name); err == nil {
		return nil, fmt.Errorf("branch %q already exists; pick another name, or 'git onesis upgrade abandon %s' and delete it", name, name)
	}
	if len(o.Nodes) > 0 {
		inv, err := invref.Load(im.Git)
		if err != nil {
			return nil, err
		}
		for _, n := range o.Nodes {
			if inv.ByName(n) == nil {
				return nil, fmt.Errorf("no node %q in the inventory (see 'git onesis node list'); nothing was started", n)
			}
		}
	}
	from := o.From
	if from == "" {
		from = "HEAD"
	}
	commit, err := im.Git.ResolveRev(from)
	if err != nil {
		return nil, fmt.Errorf("starting upgrade %s: %w", name, err)
	}
	dir := o.Dir
	if dir == "" {
		dir = DefaultDir(im.Root, name)
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, err
	}
	if _, err := os.Lstat(dir); err == nil {
		return nil, fmt.Errorf("%s already exists; choose another place with --dir", dir)
	}
	if _, err := run(im.Git, "worktree", "add", "-q", "-b", name, "--", dir, commit); err != nil {
		return nil, fmt.Errorf("creating the worktree for %s: %w", name, err)
	}
	undo := func(cause error) error {
		_, err1 := im.Git.Run("worktree", "remove", "--force", "--force", "--", dir)
		_, err2 := im.Git.Run("branch", "-D", "--", name)
		if err := errors.Join(err1, err2); err != nil {
			return fmt.Errorf("%w; undoing the start also failed (remove %s and branch %s by hand): %v", cause, dir, name, err)
		}
		return fmt.Errorf("%w; the worktree and branch were removed again", cause)
	}
	res, err := applyAfter(dir, "")
	if err != nil {
		return nil, undo(fmt.Errorf("applying metadata in %s: %w", dir, err))
	}
	out := &StartResult{Branch: name, Dir: dir, Commit: commit, Apply: res}
	if err := copyPackageLists(im.Root, dir); err != nil {
		out.Warnings = append(out.Warnings, fmt.Sprintf("%v; run 'apt-get update' (or dnf's makecache) in the worktree before installing", err))
	}
	if len(o.Nodes) > 0 {
		if err := pointNodes(im.Git, o.Nodes, name, dir, o.Maintenance); err != nil {
			return nil, undo(err)
		}
	}
	return out, nil
}

// pointNodes sets the nodes' ref to branch (and, for maintenance, their
// work tree) in one inventory commit; every node must exist. What each
// booted before is kept in onesis.upgrade.<branch>.node, for Release.
func pointNodes(r *git.Repo, nodes []string, branch, dir string, maintenance bool) error {
	what := "boot upgrade " + branch
	if maintenance {
		what = "boot " + dir + " read-write (maintenance)"
	}
	msg := fmt.Sprintf("node set %s: %s", strings.Join(nodes, " "), what)
	var before []string
	_, err := invref.Update(r, msg, func(inv *inventory.Inventory) error {
		before = before[:0]
		for _, name := range nodes {
			n := inv.ByName(name)
			if n == nil {
				return fmt.Errorf("no node %q in the inventory (see 'git onesis node list')", name)
			}
			before = append(before, strings.TrimSpace(n.Name+" "+n.Ref))
			c := *n
			c.Ref = branch
			if maintenance {
				c.Maintenance = dir
			}
			if err := inv.Put(&c); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, b := range before {
		if _, err := r.Run("config", "--local", "--add", nodesKey(branch), b); err != nil {
			return fmt.Errorf("remembering what %s booted before the upgrade: %w", b, err)
		}
	}
	return nil
}

// nodesKey is the config key where pointNodes keeps "NODE [REF]": what
// each node pointed at upgrade name booted before.
func nodesKey(name string) string { return "onesis.upgrade." + name + ".node" }

// Released is a node Release moved off an upgrade.
type Released struct {
	Node string
	// Ref is what it boots now: its ref from before the upgrade, or ""
	// for serve's default (the checked-out production branch).
	Ref string
	// Was says what it pointed at: "maintenance DIR" or "ref NAME".
	Was string
}

// Release moves every node that boots upgrade name (its ref is the
// branch, or its maintenance work tree is dir) back to what it booted
// before 'upgrade start' pointed it there, in one inventory commit, and
// forgets the upgrade's record. Promote and Abandon call it, so no node
// is left booting an upgrade that is over or a work tree that is gone.
func Release(r *git.Repo, name, dir string) ([]Released, error) {
	prev := map[string]string{}
	if out, err := r.Run("config", "--local", "--get-all", nodesKey(name)); err == nil {
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if node, ref, _ := strings.Cut(l, " "); node != "" {
				prev[node] = ref
			}
		}
	}
	var done []Released
	_, err := invref.Update(r, "upgrade "+name+" over: nodes back to what they booted before", func(inv *inventory.Inventory) error {
		done = done[:0]
		for _, n := range inv.Nodes {
			onRef := n.Ref == name || n.Ref == "refs/heads/"+name
			onDir := dir != "" && n.Maintenance == dir
			if !onRef && !onDir {
				continue
			}
			c := *n
			rel := Released{Node: n.Name, Was: "ref " + n.Ref}
			if onDir {
				rel.Was = "maintenance " + n.Maintenance
				c.Maintenance = ""
			}
			c.Ref = prev[n.Name]
			rel.Ref = c.Ref
			if err := inv.Put(&c); err != nil {
				return err
			}
			done = append(done, rel)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("moving the nodes of upgrade %s back: %w", name, err)
	}
	if err := r.UnsetConfig(nodesKey(name)); err != nil {
		return done, err
	}
	return done, nil
}

func checkBranchName(r *git.Repo, name string) error {
	if name == "" || strings.HasPrefix(name, "-") {
		return fmt.Errorf("%q is not a valid branch name", name)
	}
	if _, err := r.Run("check-ref-format", "--branch", name); err != nil {
		return fmt.Errorf("%q is not a valid branch name", name)
	}
	return nil
}

// PromoteResult says what Promote did.
type PromoteResult struct {
	To, From    string // branch names
	Old, New    string // commits of To before and after
	FastForward bool
	Worktree    string // where To is checked out, "" if nowhere
	Apply       *meta.ApplyResult
	UpToDate    bool
	// Released are the nodes moved off the upgrade (see Release).
	Released []Released
}

// Promote moves production branch to to the upgrade branch name: a
// fast-forward when possible, otherwise a merge made in the worktree where
// to is checked out. It refuses when either side has uncommitted changes
// or drift.
func Promote(im *image.Image, name, to string) (*PromoteResult, error) {
	res := &PromoteResult{To: to, From: name}
	src, err := im.Git.ResolveRev("refs/heads/" + name)
	if err != nil {
		return nil, fmt.Errorf("no upgrade branch %q: %w", name, err)
	}
	if res.Old, err = im.Git.ResolveRev("refs/heads/" + to); err != nil {
		return nil, fmt.Errorf("no production branch %q: %w", to, err)
	}
	if wt, err := worktreeOf(im.Git, name); err != nil {
		return nil, err
	} else if wt != nil {
		if err := requireClean(wt.Dir, "upgrade "+name); err != nil {
			return nil, err
		}
	}
	wt, err := worktreeOf(im.Git, to)
	if err != nil {
		return nil, err
	}
	if wt != nil {
		res.Worktree = wt.Dir
		if err := requireClean(wt.Dir, to); err != nil {
			return nil, err
		}
	}
	upWT, err := worktreeOf(im.Git, name)
	if err != nil {
		return nil, err
	}
	release := func() error {
		dir := ""
		if upWT != nil {
			dir = upWT.Dir
		}
		res.Released, err = Release(im.Git, name, dir)
		return err
	}
	if res.Old == src {
		res.New, res.UpToDate = src, true
		return res, release()
	}
	_, err = im.Git.Run("merge-base", "--is-ancestor", res.Old, src)
	res.FastForward = err == nil
	switch {
	case wt != nil:
		r, err := git.Discover(wt.Dir)
		if err != nil {
			return nil, err
		}
		args := []string{"merge", "-q", "--no-edit", "--ff", "-m", fmt.Sprintf("Promote %s to %s", name, to), "refs/heads/" + name}
		if _, err := run(r, args...); err != nil {
			return nil, fmt.Errorf("merging %s into %s in %s (resolve there, then 'git onesis commit'): %w", name, to, wt.Dir, err)
		}
		if res.Apply, err = applyAfter(wt.Dir, res.Old); err != nil {
			return nil, fmt.Errorf("applying metadata in %s: %w", wt.Dir, err)
		}
	case res.FastForward:
		if _, err := im.Git.Run("update-ref", "-m", "onesis: promote "+name, "refs/heads/"+to, src, res.Old); err != nil {
			return nil, fmt.Errorf("moving %s to %s: %w", to, name, err)
		}
	default:
		return nil, fmt.Errorf("%s has commits that %s lacks and is not checked out anywhere; check %s out and run 'git merge %s'", to, name, to, name)
	}
	if res.New, err = im.Git.ResolveRev("refs/heads/" + to); err != nil {
		return nil, err
	}
	if err := release(); err != nil {
		return res, fmt.Errorf("%s now has %s, but: %w", to, name, err)
	}
	return res, nil
}

// Abandon removes the worktree of upgrade branch name and keeps the branch,
// so its history stays reviewable, and moves the nodes that boot the
// upgrade back (Release). Without force it refuses when the worktree has
// uncommitted changes.
func Abandon(im *image.Image, name string, force bool) (string, []Released, error) {
	if _, err := im.Git.ResolveRev("refs/heads/" + name); err != nil {
		return "", nil, fmt.Errorf("no upgrade branch %q: %w", name, err)
	}
	wt, err := worktreeOf(im.Git, name)
	if err != nil {
		return "", nil, err
	}
	if wt == nil {
		return "", nil, fmt.Errorf("upgrade %s has no worktree (already abandoned?)", name)
	}
	if wt.Dir == im.Root {
		return "", nil, fmt.Errorf("upgrade %s is checked out in this work tree; switch to another branch first", name)
	}
	if !force {
		if err := requireClean(wt.Dir, "upgrade "+name); err != nil {
			return "", nil, fmt.Errorf("%w (or pass --force)", err)
		}
	}
	// Nodes first: none may boot a work tree that is about to go.
	rel, err := Release(im.Git, name, wt.Dir)
	if err != nil {
		return "", nil, fmt.Errorf("%w; the worktree %s was not removed", err, wt.Dir)
	}
	args := []string{"worktree", "remove"}
	if force {
		// Twice: also when the worktree is locked.
		args = append(args, "--force", "--force")
	}
	if _, err := im.Git.Run(append(args, "--", wt.Dir)...); err != nil {
		return "", rel, fmt.Errorf("removing the worktree %s: %w", wt.Dir, err)
	}
	return wt.Dir, rel, nil
}

// RollbackResult says what Rollback did.
type RollbackResult struct {
	Branch   string
	Target   string // the commit whose tree production now has
	Old, New string // branch tip before and after
	Worktree string
	Apply    *meta.ApplyResult
	// StillOnNewer maps each node booting branch (see NodeBranches) whose
	// booted commit does not have the rolled-back tree to that commit.
	StillOnNewer map[string]string
	AlreadyThere bool
}

// Rollback moves branch back to rev's tree through a new commit on top of
// it, never by rewriting history, so the audit trail keeps both the bad
// commit and the way back. Where branch is checked out, the work tree is
// fast-forwarded and .gitmeta applied.
func Rollback(im *image.Image, rev, branch string) (*RollbackResult, error) {
	res := &RollbackResult{Branch: branch}
	var err error
	if res.Target, err = im.Git.ResolveRev(rev); err != nil {
		return nil, fmt.Errorf("rolling back: %w", err)
	}
	if res.Old, err = im.Git.ResolveRev("refs/heads/" + branch); err != nil {
		return nil, fmt.Errorf("no branch %q to roll back: %w", branch, err)
	}
	wt, err := worktreeOf(im.Git, branch)
	if err != nil {
		return nil, err
	}
	if wt != nil {
		res.Worktree = wt.Dir
		if err := requireClean(wt.Dir, branch); err != nil {
			return nil, err
		}
	}
	tree, err := im.Git.Run("rev-parse", "--verify", res.Target+"^{tree}")
	if err != nil {
		return nil, err
	}
	oldTree, err := im.Git.Run("rev-parse", "--verify", res.Old+"^{tree}")
	if err != nil {
		return nil, err
	}
	if string(tree) == string(oldTree) {
		res.New, res.AlreadyThere = res.Old, true
	} else {
		short := res.Target[:12]
		msg := fmt.Sprintf("Roll back %s to %s (%s)\n\nThe tree of %s, committed on top of %s so history keeps both.\n\nRolled-back-from: %s\nRolled-back-to: %s\n",
			branch, rev, short, res.Target, res.Old, res.Old, res.Target)
		out, err := im.Git.RunInput([]byte(msg), "commit-tree", strings.TrimSpace(string(tree)), "-p", res.Old)
		if err != nil {
			return nil, fmt.Errorf("making the rollback commit: %w", err)
		}
		res.New = strings.TrimSpace(string(out))
		if wt != nil {
			r, err := git.Discover(wt.Dir)
			if err != nil {
				return nil, err
			}
			if _, err := run(r, "merge", "-q", "--ff-only", res.New); err != nil {
				return nil, fmt.Errorf("moving %s in %s to the rollback commit: %w", branch, wt.Dir, err)
			}
			if res.Apply, err = applyAfter(wt.Dir, res.Old); err != nil {
				return nil, fmt.Errorf("applying metadata in %s: %w", wt.Dir, err)
			}
		} else if _, err := im.Git.Run("update-ref", "-m", "onesis: rollback to "+rev, "refs/heads/"+branch, res.New, res.Old); err != nil {
			return nil, fmt.Errorf("moving %s to the rollback commit: %w", branch, err)
		}
	}
	boots, err := booted.Read(im.Git)
	if err != nil {
		return nil, err
	}
	branches, err := NodeBranches(im.Git)
	if err != nil {
		return nil, err
	}
	res.StillOnNewer = map[string]string{}
	want := strings.TrimSpace(string(tree))
	for node, b := range boots {
		if branches[node] == branch && b.Tree != want {
			res.StillOnNewer[node] = b.Commit
		}
	}
	return res, nil
}

// NodeBranches returns, for each node of the inventory, the local branch
// it boots, as package resolve (serve's resolver) sees it from the main
// work tree, where serve runs: its ref when that names a local branch;
// the branch of its maintenance work tree; and, for a node with neither,
// onesis.serve.ref when set, else the branch checked out in the main
// work tree. A node booting a tag, a commit or a remote-tracking branch
// is on no branch ("").
func NodeBranches(r *git.Repo) (map[string]string, error) {
	inv, err := invref.Load(r)
	if err != nil {
		return nil, err
	}
	wts, err := Worktrees(r)
	if err != nil {
		return nil, err
	}
	main := r
	if len(wts) > 0 && !wts[0].Bare {
		if m, err := git.Discover(wts[0].Dir); err == nil {
			main = m
		}
	}
	res, err := resolve.New(main, "")
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(inv.Nodes))
	for _, n := range inv.Nodes {
		b, err := res.Branch(n)
		if err != nil {
			return nil, err
		}
		out[n.Name] = b
	}
	return out, nil
}
