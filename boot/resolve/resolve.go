// Package resolve is the one home of "which commit does a node boot":
// serve (boot scripts, pins, pruning), 'git onesis node list', 'class',
// 'exports' and 'sync' all ask it, so they cannot disagree. A node boots
// its maintenance work tree's HEAD, else its ref (or the one
// remote-tracking branch of that name), else serve --ref, else the branch
// checked out in the repository. Live gives the set of commits in use.
package resolve

import (
	"errors"
	"fmt"
	"strings"

	"github.com/onesis/git-onesis/boot/httpboot"
	"github.com/onesis/git-onesis/boot/inventory"
	"github.com/onesis/git-onesis/internal/git"
)

// Resolver resolves what a node boots with the real git, at every call,
// so a moved branch or a new checkout is followed without a restart:
// the node's ref, else Ref (serve --ref), else the branch checked out in
// Repo. A maintenance node boots its work tree; its commit (for kernel and
// initramfs) is that work tree's HEAD.
//
// Concurrent calls that resolve the same thing (the default, or one node
// ref) share git processes, but no call is answered from a resolution that
// started before it was made (see fresh): a boot storm costs a few git
// processes instead of two per node, and a request made just after a
// branch moved still sees the move.
type Resolver struct {
	Repo *git.Repo
	Ref  string

	shared fresh
}

// KeyRef is the setting serve reads for --ref when the flag is not given,
// so 'node list', 'exports', 'sync' and the lifecycle commands, which read
// it too, resolve as the running serve does without being told.
const KeyRef = "onesis.serve.ref"

// New returns the Resolver for r: ref when given (a command's --ref),
// else the onesis.serve.ref setting, else none (the checked-out branch).
func New(r *git.Repo, ref string) (*Resolver, error) {
	if ref == "" {
		v, _, err := r.Config(KeyRef)
		if err != nil {
			return nil, err
		}
		ref = v
	}
	return &Resolver{Repo: r, Ref: ref}, nil
}

// Branch returns the local branch whose moves change what node n boots:
// its maintenance work tree's branch; its ref when that names a local
// branch; for a node without either, Ref when that names a local branch,
// else the branch checked out in Repo. "" when the node boots a tag, a
// commit, a remote-tracking branch or a detached HEAD. 'upgrade' and
// 'images' use it to say which nodes a branch reaches.
func (g *Resolver) Branch(n *inventory.Node) (string, error) {
	switch {
	case n.Maintenance != "":
		wt, err := git.Discover(n.Maintenance)
		if err != nil || wt.CommonDir != g.Repo.CommonDir {
			return "", nil
		}
		return symbolicBranch(wt), nil
	case n.Ref != "":
		return g.localBranch(n.Ref), nil
	case g.Ref != "":
		return g.localBranch(g.Ref), nil
	}
	return symbolicBranch(g.Repo), nil
}

// localBranch returns name as a local branch ("main" for main or
// refs/heads/main), or "" when it names none.
func (g *Resolver) localBranch(name string) string {
	b := strings.TrimPrefix(name, "refs/heads/")
	if _, err := g.Repo.Run("rev-parse", "--verify", "--quiet", "refs/heads/"+b); err != nil {
		return ""
	}
	return b
}

// symbolicBranch is the branch checked out in r's work tree ("" when
// HEAD is detached).
func symbolicBranch(r *git.Repo) string {
	out, err := r.Run("symbolic-ref", "-q", "--short", "HEAD")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// Resolve returns the commit node n boots next, and where it came from.
// It implements httpboot.Resolver.
func (g *Resolver) Resolve(n *inventory.Node) (httpboot.Resolution, error) {
	switch {
	case n.Maintenance != "":
		wt, err := git.Discover(n.Maintenance)
		if err != nil {
			return httpboot.Resolution{}, fmt.Errorf("node %s: maintenance work tree %s: %w", n.Name, n.Maintenance, err)
		}
		if wt.CommonDir != g.Repo.CommonDir || wt.Top == "" {
			return httpboot.Resolution{}, fmt.Errorf("node %s: %s is not a work tree of the served repository %s", n.Name, n.Maintenance, g.Repo.CommonDir)
		}
		c, ok, err := wt.HeadCommit()
		if err != nil {
			return httpboot.Resolution{}, fmt.Errorf("node %s: maintenance work tree %s: %w", n.Name, n.Maintenance, err)
		}
		if !ok {
			return httpboot.Resolution{}, fmt.Errorf("node %s: maintenance work tree %s has no commit", n.Name, n.Maintenance)
		}
		return httpboot.Resolution{Commit: c, From: "worktree " + wt.Top}, nil
	case n.Ref != "":
		res, err := g.Rev(n.Ref)
		if err != nil {
			return httpboot.Resolution{}, fmt.Errorf("node %s: ref %s: %w", n.Name, n.Ref, err)
		}
		return res, nil
	}
	return g.Default()
}

// Rev resolves name as a node's ref is resolved: the revision itself,
// else the one remote-tracking branch of that name (a boot server's clone
// kept by 'git onesis sync' has the central branches only as those).
// 'node add --ref', 'class --rev' and 'node list' use it so they name the
// commit serve boots.
func (g *Resolver) Rev(name string) (httpboot.Resolution, error) {
	return g.shared.do("ref\x00"+name, func() (httpboot.Resolution, error) { return g.resolveRef(name) })
}

// resolveRef resolves a node's ref: the ref itself, else the one
// remote-tracking branch of that name.
func (g *Resolver) resolveRef(name string) (httpboot.Resolution, error) {
	c, err := g.Repo.ResolveRev(name)
	if err == nil {
		return httpboot.Resolution{Commit: c, From: "node ref " + name}, nil
	}
	// A boot server that is a clone of the central repository has the
	// central branches as remote-tracking refs only (git onesis sync
	// fetches them): use the one remote that has the branch.
	if ref, ok := g.remoteBranch(name); ok {
		if c, err := g.Repo.ResolveRev(ref); err == nil {
			return httpboot.Resolution{Commit: c, From: "node ref " + name + " (" + strings.TrimPrefix(ref, "refs/remotes/") + ")"}, nil
		}
	}
	return httpboot.Resolution{}, err
}

// remoteBranch finds refs/remotes/<remote>/<name> when exactly one remote
// has a branch called name.
func (g *Resolver) remoteBranch(name string) (string, bool) {
	if strings.ContainsAny(name, "*?[\\") || strings.HasPrefix(name, "refs/") {
		return "", false
	}
	out, err := g.Repo.Run("for-each-ref", "--format=%(refname)", "refs/remotes/*/"+name)
	if err != nil {
		return "", false
	}
	var found []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		// fnmatch's * does not cross '/': the remote is one component.
		if l != "" && strings.Count(strings.TrimPrefix(l, "refs/remotes/"), "/") == strings.Count(name, "/")+1 {
			found = append(found, l)
		}
	}
	if len(found) != 1 {
		return "", false
	}
	return found[0], true
}

// Default resolves what a node without its own ref boots: Ref, else HEAD.
func (g *Resolver) Default() (httpboot.Resolution, error) {
	return g.shared.do("default", g.resolveDefault)
}

func (g *Resolver) resolveDefault() (httpboot.Resolution, error) {
	if g.Ref != "" {
		c, err := g.Repo.ResolveRev(g.Ref)
		if err != nil {
			return httpboot.Resolution{}, fmt.Errorf("serve --ref %s: %w", g.Ref, err)
		}
		return httpboot.Resolution{Commit: c, From: "serve --ref " + g.Ref}, nil
	}
	c, ok, err := g.Repo.HeadCommit()
	if err != nil {
		return httpboot.Resolution{}, err
	}
	if !ok {
		return httpboot.Resolution{}, errors.New("the checked-out branch has no commit yet; commit the image first")
	}
	from := "HEAD (detached)"
	if b := symbolicBranch(g.Repo); b != "" {
		from = "branch " + b
	}
	return httpboot.Resolution{Commit: c, From: from}, nil
}
