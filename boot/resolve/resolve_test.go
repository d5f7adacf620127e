package resolve

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/onesis/git-onesis/boot/inventory"
	"github.com/onesis/git-onesis/internal/git"
	"github.com/onesis/git-onesis/internal/testkit"
)

func TestMain(m *testing.M) { os.Exit(testkit.HermeticGit(m)) }

var (
	sh    = testkit.Sh
	write = testkit.WriteFile
)

// imageRepo makes a repository with one commit on main and a branch
// "testing" at it.
func imageRepo(t *testing.T) (dir string, r *git.Repo) {
	t.Helper()
	dir = testkit.Repo(t, map[string]string{"etc/hostname": "v1"})
	r, err := git.Discover(dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir, r
}

// twoCommits is imageRepo with a second commit on main: c1 (also
// testing), then c2.
func twoCommits(t *testing.T) (dir string, r *git.Repo, c1, c2 string) {
	dir, r = imageRepo(t)
	c1 = sh(t, dir, "git", "rev-parse", "HEAD")
	write(t, dir, "etc/hostname", "v2")
	sh(t, dir, "git", "commit", "-q", "-am", "v2")
	return dir, r, c1, sh(t, dir, "git", "rev-parse", "HEAD")
}

func TestResolverPrecedence(t *testing.T) {
	dir, r, c1, c2 := twoCommits(t)
	plain := &inventory.Node{Name: "a"}
	pinned := &inventory.Node{Name: "b", Ref: "testing"}

	g := &Resolver{Repo: r}
	check := func(n *inventory.Node, want, from string) {
		t.Helper()
		res, err := g.Resolve(n)
		if err != nil || res.Commit != want || res.From != from {
			t.Errorf("Resolve(%s) = %+v, %v; want %.7s from %q", n.Name, res, err, want, from)
		}
	}
	check(plain, c2, "branch main")
	check(pinned, c1, "node ref testing")
	g.Ref = "testing"
	check(plain, c1, "serve --ref testing")
	g.Ref = ""
	// A new checkout is followed at the next resolution, without restart.
	sh(t, dir, "git", "checkout", "-q", "testing")
	check(plain, c1, "branch testing")
	// So is a moved branch.
	write(t, dir, "etc/hostname", "v3")
	sh(t, dir, "git", "commit", "-q", "-am", "v3")
	c3 := sh(t, dir, "git", "rev-parse", "HEAD")
	check(plain, c3, "branch testing")
	check(pinned, c3, "node ref testing")
	// A maintenance node boots its linked worktree's HEAD.
	wt := filepath.Join(t.TempDir(), "update")
	sh(t, dir, "git", "worktree", "add", "-q", "-b", "update", wt, c2)
	wt, _ = filepath.EvalSymlinks(wt)
	check(&inventory.Node{Name: "m", Maintenance: wt, Ref: "testing"}, c2, "worktree "+wt)
	// A directory of another repository is refused.
	other := t.TempDir()
	sh(t, other, "git", "init", "-q")
	if _, err := g.Resolve(&inventory.Node{Name: "m", Maintenance: other}); err == nil || !strings.Contains(err.Error(), "not a work tree of the served repository") {
		t.Errorf("foreign work tree: %v", err)
	}
	if _, err := g.Resolve(&inventory.Node{Name: "x", Ref: "nosuch"}); err == nil || !strings.Contains(err.Error(), "node x: ref nosuch") {
		t.Errorf("bad ref: %v", err)
	}
}

// TestResolverRemoteBranch: on a boot server that is a clone, a node's ref
// names a central branch that exists only as a remote-tracking ref.
func TestResolverRemoteBranch(t *testing.T) {
	dir, _ := imageRepo(t)
	c1 := sh(t, dir, "git", "rev-parse", "testing")
	clone := filepath.Join(t.TempDir(), "server")
	sh(t, dir, "git", "clone", "-q", dir, clone)
	r, err := git.Discover(clone)
	if err != nil {
		t.Fatal(err)
	}
	g := &Resolver{Repo: r}
	res, err := g.Resolve(&inventory.Node{Name: "b", Ref: "testing"})
	if err != nil || res.Commit != c1 || res.From != "node ref testing (origin/testing)" {
		t.Errorf("Resolve on a clone = %+v, %v; want %.7s from origin/testing", res, err, c1)
	}
	// Two remotes with the branch: ambiguous, so an error, not a guess.
	sh(t, clone, "git", "remote", "add", "second", dir)
	sh(t, clone, "git", "fetch", "-q", "second")
	if _, err := g.Resolve(&inventory.Node{Name: "b", Ref: "testing"}); err == nil {
		t.Error("a branch on two remotes resolved without complaint")
	}
}

// TestResolverFollowsMovesUnderLoad: many concurrent resolutions with the
// real git while the branch moves; every call made after a move returns
// the new commit.
func TestResolverFollowsMovesUnderLoad(t *testing.T) {
	dir, r := imageRepo(t)
	commits := []string{sh(t, dir, "git", "rev-parse", "HEAD")}
	for i := 2; i <= 3; i++ {
		write(t, dir, "etc/hostname", fmt.Sprint("v", i))
		sh(t, dir, "git", "commit", "-q", "-am", fmt.Sprint("v", i))
		commits = append(commits, sh(t, dir, "git", "rev-parse", "HEAD"))
	}
	g := &Resolver{Repo: r}
	// Backwards, then forwards: each move is seen by the next calls.
	for _, c := range []string{commits[0], commits[2], commits[1], commits[2]} {
		sh(t, dir, "git", "update-ref", "refs/heads/main", c)
		var wg sync.WaitGroup
		errs := make(chan error, 40)
		for range 40 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := g.Default()
				if err != nil {
					errs <- err
				} else if res.Commit != c {
					errs <- fmt.Errorf("got %.12s (%s), want %.12s", res.Commit, res.From, c)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	}
}

// TestLive: the live set is the default, each non-maintenance node's ref
// (resolved once per ref) and each booted commit, with who uses each; a
// ref that names nothing is a warning, an unresolvable default an error
// that still returns the rest.
func TestLive(t *testing.T) {
	dir, r, c1, c2 := twoCommits(t)
	wt := filepath.Join(t.TempDir(), "w")
	sh(t, dir, "git", "worktree", "add", "-q", "-b", "w", wt, c1)
	nodes := []*inventory.Node{
		{Name: "a"}, {Name: "b", Ref: "testing"}, {Name: "c", Ref: "testing"},
		{Name: "d", Ref: "gone"}, {Name: "m", Ref: "testing", Maintenance: wt},
	}
	g := &Resolver{Repo: r}
	l, err := g.Live(nodes, map[string]string{"a": "0123456789012345678901234567890123456789", "b": c1})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		c2: {"branch main"},
		c1: {"node b (booted)", "node b (ref testing)", "node c (ref testing)"},
		"0123456789012345678901234567890123456789": {"node a (booted)"},
	}
	if fmt.Sprint(l.Users) != fmt.Sprint(want) {
		t.Errorf("Users = %v\nwant %v", l.Users, want)
	}
	if len(l.Warnings) != 1 || !strings.Contains(l.Warnings[0].Error(), "node d: ref gone") {
		t.Errorf("Warnings = %v", l.Warnings)
	}
	if got := l.Commits(); len(got) != 3 || got[0] > got[1] || got[1] > got[2] {
		t.Errorf("Commits = %v, want 3 sorted", got)
	}
	g.Ref = "nosuch"
	l, err = g.Live(nodes, nil)
	if err == nil || !strings.Contains(err.Error(), "serve --ref nosuch") || len(l.Users[c1]) != 2 {
		t.Errorf("Live with a bad default = %v, %v; want the error and the refs", l.Users, err)
	}
}

// TestBranchAndConfiguredRef: Branch names the local branch whose moves
// change what a node boots, for each kind of node, and New takes
// onesis.serve.ref when no --ref is given, so every command resolves as
// the running serve does.
func TestBranchAndConfiguredRef(t *testing.T) {
	dir, r, c1, _ := twoCommits(t)
	sh(t, dir, "git", "tag", "v1", c1)
	wt := filepath.Join(t.TempDir(), "maint")
	sh(t, dir, "git", "worktree", "add", "-q", "-b", "upgrade", wt, c1)
	g, err := New(r, "")
	if err != nil || g.Ref != "" {
		t.Fatalf("New without a setting: %+v, %v", g, err)
	}
	for _, tc := range []struct {
		name string
		ref  string // serve's ref
		node inventory.Node
		want string
	}{
		{"default: the checked-out branch", "", inventory.Node{Name: "a"}, "main"},
		{"a local branch ref", "", inventory.Node{Name: "b", Ref: "testing"}, "testing"},
		{"a full branch ref", "", inventory.Node{Name: "b", Ref: "refs/heads/testing"}, "testing"},
		{"a tag is no branch", "", inventory.Node{Name: "c", Ref: "v1"}, ""},
		{"a commit is no branch", "", inventory.Node{Name: "c", Ref: c1}, ""},
		{"maintenance: its work tree's branch", "", inventory.Node{Name: "d", Maintenance: wt}, "upgrade"},
		{"serve's ref wins over HEAD", "testing", inventory.Node{Name: "a"}, "testing"},
		{"serve's ref, a tag", "v1", inventory.Node{Name: "a"}, ""},
		{"a node ref wins over serve's", "testing", inventory.Node{Name: "b", Ref: "main"}, "main"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := &Resolver{Repo: r, Ref: tc.ref}
			if got, err := g.Branch(&tc.node); err != nil || got != tc.want {
				t.Errorf("Branch = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	sh(t, dir, "git", "config", KeyRef, "testing")
	if g, err := New(r, ""); err != nil || g.Ref != "testing" {
		t.Errorf("New with onesis.serve.ref=testing: %+v, %v", g, err)
	}
	if g, err := New(r, "main"); err != nil || g.Ref != "main" {
		t.Errorf("New with --ref main: %+v, %v", g, err)
	}
	g, _ = New(r, "")
	if res, err := g.Resolve(&inventory.Node{Name: "a"}); err != nil || res.Commit != c1 || res.From != "serve --ref testing" {
		t.Errorf("Resolve under onesis.serve.ref: %+v, %v", res, err)
	}
}
