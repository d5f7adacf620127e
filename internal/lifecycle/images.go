package lifecycle

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/onesis/git-onesis/boot/booted"
	"github.com/onesis/git-onesis/internal/git"
	"github.com/onesis/git-onesis/internal/image"
	"github.com/onesis/git-onesis/meta"
)

// baseKey is the config key that records a variant's base branch:
// onesis.image.<variant>.base.
func baseKey(variant string) string { return "onesis.image." + variant + ".base" }

// AddVariant creates branch variant at base and records base as its base,
// so `images` and `images sync` know the family.
func AddVariant(im *image.Image, variant, base string) error {
	if err := checkBranchName(im.Git, variant); err != nil {
		return err
	}
	if _, err := im.Git.ResolveRev("refs/heads/" + base); err != nil {
		return fmt.Errorf("no base branch %q: %w", base, err)
	}
	if _, err := im.Git.ResolveRev("refs/heads/" + variant); err != nil {
		if _, err := im.Git.Run("branch", "--no-track", "--", variant, "refs/heads/"+base); err != nil {
			return fmt.Errorf("creating branch %s: %w", variant, err)
		}
	} else if _, err := im.Git.Run("merge-base", "--is-ancestor", "refs/heads/"+base, "refs/heads/"+variant); err != nil {
		// An existing branch may join the family only if it grew from base.
		if _, err := im.Git.Run("merge-base", "refs/heads/"+base, "refs/heads/"+variant); err != nil {
			return fmt.Errorf("%s and %s share no history; a variant must branch off its base", variant, base)
		}
	}
	return im.Git.SetConfig(baseKey(variant), base)
}

// Variant is one image branch and how it stands against its base.
type Variant struct {
	Branch, Base string `json:",omitempty"`
	Commit       string
	// Ahead and Behind count commits against the base (0 without a base).
	Ahead, Behind int
	// Files, Metadata and Packages count what differs from the base's tip:
	// content paths (git diff), .gitmeta entries, and packages.
	Files, Metadata, Packages int
	// Nodes maps each node that boots this branch (see NodeBranches) to
	// the commit it last booted.
	Nodes map[string]string
}

// Images lists every local branch with its recorded base (if any) and
// its divergence from it. pkgDiff counts the packages that differ between
// two commits (nil to skip).
func Images(im *image.Image, pkgDiff func(a, b string) (int, error)) ([]Variant, error) {
	out, err := im.Git.Run("for-each-ref", "--format=%(refname:short) %(objectname)", "refs/heads/")
	if err != nil {
		return nil, fmt.Errorf("listing branches: %w", err)
	}
	boots, err := booted.Read(im.Git)
	if err != nil {
		return nil, err
	}
	branches, err := NodeBranches(im.Git)
	if err != nil {
		return nil, err
	}
	var vs []Variant
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		name, commit, ok := strings.Cut(l, " ")
		if !ok {
			continue
		}
		v := Variant{Branch: name, Commit: commit, Nodes: map[string]string{}}
		if b, ok, _ := im.Git.Config(baseKey(name)); ok {
			v.Base = b
		}
		for node, b := range boots {
			if branches[node] == name {
				v.Nodes[node] = b.Commit
			}
		}
		if v.Base != "" {
			if err := divergence(im, &v, pkgDiff); err != nil {
				return nil, err
			}
		}
		vs = append(vs, v)
	}
	sort.Slice(vs, func(i, j int) bool { return vs[i].Branch < vs[j].Branch })
	return vs, nil
}

func divergence(im *image.Image, v *Variant, pkgDiff func(a, b string) (int, error)) error {
	base := "refs/heads/" + v.Base
	if _, err := im.Git.ResolveRev(base); err != nil {
		return fmt.Errorf("variant %s names base %s, which no longer exists (git config --unset %s)", v.Branch, v.Base, baseKey(v.Branch))
	}
	out, err := im.Git.Run("rev-list", "--left-right", "--count", base+"..."+v.Commit)
	if err != nil {
		return err
	}
	f := strings.Fields(string(out))
	if len(f) == 2 {
		v.Behind, _ = strconv.Atoi(f[0])
		v.Ahead, _ = strconv.Atoi(f[1])
	}
	names, err := im.Git.Run("diff", "--no-renames", "--name-only", "-z", base, v.Commit, "--")
	if err != nil {
		return err
	}
	for _, p := range strings.Split(string(names), "\x00") {
		if p != "" && p != image.MetaFile {
			v.Files++
		}
	}
	a, err := im.MetaAt(base)
	if err != nil {
		return err
	}
	b, err := im.MetaAt(v.Commit)
	if err != nil {
		return err
	}
	if a == nil {
		a = &meta.Manifest{}
	}
	if b == nil {
		b = &meta.Manifest{}
	}
	v.Metadata = len(meta.Compare(a, b))
	if pkgDiff != nil {
		if v.Packages, err = pkgDiff(base, v.Commit); err != nil {
			return err
		}
	}
	return nil
}

// SyncResult is what Sync did to one variant.
type SyncResult struct {
	Variant  string
	Old, New string
	Status   string // "up to date", "fast-forwarded", "merged", "conflict"
	// Conflicts lists the conflicted paths and git's messages when Status
	// is "conflict".
	Conflicts []string
	Worktree  string
}

// Sync merges base into every variant recorded with that base, in name
// order, and stops at the first conflict (which it reports, leaving that
// variant and the ones after it untouched). Variants checked out in a
// worktree are merged there (umask 077, then apply); others are merged
// without a checkout (git merge-tree) and their branch moved.
func Sync(im *image.Image, base string) ([]SyncResult, error) {
	baseCommit, err := im.Git.ResolveRev("refs/heads/" + base)
	if err != nil {
		return nil, fmt.Errorf("no base branch %q: %w", base, err)
	}
	all, err := im.Git.ConfigAll("onesis.image.")
	if err != nil {
		return nil, err
	}
	var variants []string
	for k, v := range all {
		if strings.HasSuffix(k, ".base") && v == base {
			variants = append(variants, strings.TrimSuffix(strings.TrimPrefix(k, "onesis.image."), ".base"))
		}
	}
	if len(variants) == 0 {
		return nil, fmt.Errorf("no variant has %s as its base; add one with 'git onesis images add VARIANT --base %s'", base, base)
	}
	sort.Strings(variants)
	var res []SyncResult
	for _, name := range variants {
		r, err := syncOne(im, name, base, baseCommit)
		if err != nil {
			return res, err
		}
		res = append(res, r)
		if r.Status == "conflict" {
			break
		}
	}
	return res, nil
}

func syncOne(im *image.Image, name, base, baseCommit string) (SyncResult, error) {
	r := SyncResult{Variant: name}
	var err error
	if r.Old, err = im.Git.ResolveRev("refs/heads/" + name); err != nil {
		return r, fmt.Errorf("variant %s has no branch: %w", name, err)
	}
	if _, err := im.Git.Run("merge-base", "--is-ancestor", baseCommit, r.Old); err == nil {
		r.New, r.Status = r.Old, "up to date"
		return r, nil
	}
	msg := fmt.Sprintf("Sync %s from %s", name, base)
	wt, err := worktreeOf(im.Git, name)
	if err != nil {
		return r, err
	}
	if wt != nil {
		r.Worktree = wt.Dir
		if err := requireClean(wt.Dir, "variant "+name); err != nil {
			return r, err
		}
		wr, err := git.Discover(wt.Dir)
		if err != nil {
			return r, err
		}
		if out, err := run(wr, "merge", "--no-edit", "-m", msg, baseCommit); err != nil {
			r.Status = "conflict"
			r.Conflicts = conflictLines(string(out) + err.Error())
			// Leave the tree as it was: the report says what conflicts.
			wr.Run("merge", "--abort")
			return r, nil
		}
		if _, err := applyAfter(wt.Dir, r.Old); err != nil {
			return r, fmt.Errorf("applying metadata in %s: %w", wt.Dir, err)
		}
	} else if _, err := im.Git.Run("merge-base", "--is-ancestor", r.Old, baseCommit); err == nil {
		if _, err := im.Git.Run("update-ref", "-m", "onesis: "+msg, "refs/heads/"+name, baseCommit, r.Old); err != nil {
			return r, err
		}
	} else {
		out, err := im.Git.Run("merge-tree", "--write-tree", "--messages", "--name-only", r.Old, baseCommit)
		if err != nil {
			if strings.Contains(string(out), "CONFLICT") || exitOne(err) {
				r.Status = "conflict"
				r.Conflicts = conflictLines(string(out) + errText(err))
				return r, nil
			}
			return r, fmt.Errorf("merging %s into %s: %w", base, name, err)
		}
		tree := strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
		c, err := im.Git.RunInput([]byte(msg+"\n"), "commit-tree", tree, "-p", r.Old, "-p", baseCommit)
		if err != nil {
			return r, fmt.Errorf("committing the merge of %s into %s: %w", base, name, err)
		}
		newC := strings.TrimSpace(string(c))
		if _, err := im.Git.Run("update-ref", "-m", "onesis: "+msg, "refs/heads/"+name, newC, r.Old); err != nil {
			return r, err
		}
	}
	if r.New, err = im.Git.ResolveRev("refs/heads/" + name); err != nil {
		return r, err
	}
	r.Status = "merged"
	if r.New == baseCommit {
		r.Status = "fast-forwarded"
	}
	return r, nil
}

func exitOne(err error) bool {
	ge, ok := err.(*git.Error)
	return ok && ge.ExitCode() == 1
}

func errText(err error) string {
	if ge, ok := err.(*git.Error); ok {
		return ge.Stderr
	}
	return err.Error()
}

// conflictLines keeps git's CONFLICT messages (and the paths it lists).
func conflictLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		if strings.Contains(l, "CONFLICT") {
			out = append(out, l)
		}
	}
	if len(out) == 0 && strings.TrimSpace(s) != "" {
		out = append(out, strings.TrimSpace(s))
	}
	return out
}
