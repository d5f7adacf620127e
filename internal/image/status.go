package image

import (
	"fmt"
	"os"
	"strings"

	"github.com/onesis/git-onesis/internal/git"
	"github.com/onesis/git-onesis/internal/trace"
	"github.com/onesis/git-onesis/meta"
)

// Drift is one difference between the recorded metadata and the tree.
type Drift struct {
	meta.Change
	// NotRoot is set when the difference is only ownership (or privileged
	// xattrs) that a non-root apply could not set: expected, not tampering.
	NotRoot bool
}

// Status is the combined report of content changes and metadata drift.
type Status struct {
	// Content holds git's view: modified, added, deleted and untracked
	// paths.
	Content []ContentChange
	// Drift holds metadata differences between .gitmeta and the tree.
	Drift []Drift
	// Unrecorded is set when the work tree's .gitmeta differs from the one
	// committed at HEAD (a record or commit is pending).
	Unrecorded bool
}

// ContentChange is one line of git's status.
type ContentChange struct {
	XY   string
	Path string
	Orig string
}

// Clean reports whether nothing changed (not-root entries do not count).
func (s *Status) Clean() bool {
	if len(s.Content) > 0 {
		return false
	}
	for _, d := range s.Drift {
		if !d.NotRoot {
			return false
		}
	}
	return true
}

// Status compares the work tree against .gitmeta and asks git for content
// changes.
func (im *Image) Status() (*Status, error) {
	// Parsing .gitmeta and git's own status walk run alongside the scan.
	type parsed struct {
		m   *meta.Manifest
		err error
	}
	pc := make(chan parsed, 1)
	go func() {
		m, err := im.ReadWorktreeMeta()
		pc <- parsed{m, err}
	}()
	type gitStatus struct {
		entries []git.StatusEntry
		err     error
	}
	ch := make(chan gitStatus, 1)
	go func() {
		defer trace.Region("git status")()
		e, err := im.Git.StatusPorcelain()
		ch <- gitStatus{e, err}
	}()
	cur, err := im.Scan()
	gs, rec := <-ch, <-pc
	if rec.err != nil {
		return nil, rec.err
	}
	if err != nil {
		return nil, err
	}
	recorded := rec.m
	st := &Status{}
	notRoot := os.Geteuid() != 0
	for _, c := range meta.Compare(recorded, cur) {
		if im.outside != nil && im.outside(c.Path) {
			continue // a sparse checkout leaves it out
		}
		st.Drift = append(st.Drift, Drift{Change: c, NotRoot: notRoot && NotRootDrift(c)})
	}
	if gs.err != nil {
		return nil, gs.err
	}
	for _, e := range gs.entries {
		st.Content = append(st.Content, ContentChange{XY: e.XY, Path: e.Path, Orig: e.Orig})
	}
	return st, nil
}

// NotRootDrift reports whether a difference between the recorded entry
// (Old) and the tree (New) is only what a non-root apply cannot or will not
// make: uid, gid, xattrs outside the user namespace, setuid and setgid,
// char and block devices it cannot create, and the owner's access to files
// and directories it keeps (see meta.ApplyResult.OwnerAccessKept). For a
// non-root user these are expected, not drift.
func NotRootDrift(c meta.Change) bool {
	if c.Kind == meta.Removed {
		return c.Old != nil && (c.Old.Type == meta.TypeChar || c.Old.Type == meta.TypeBlock)
	}
	if c.Kind != meta.Modified {
		return false
	}
	for _, f := range c.Fields() {
		switch {
		case f == "uid" || f == "gid":
		case strings.HasPrefix(f, "xattr.") && !strings.HasPrefix(f, "xattr.user."):
		case f == "mode" && c.Old != nil && c.New != nil && ownerAccessOnly(c.Old, c.New):
		default:
			return false
		}
	}
	return true
}

// ownerAccessOnly reports whether the tree's mode differs from the
// recorded one only by setuid/setgid (the kernel refuses them to a user
// outside the group) and by owner access bits the tree has in addition.
func ownerAccessOnly(rec, tree *meta.Entry) bool {
	kept := uint32(0)
	switch rec.Type {
	case meta.TypeFile:
		kept = 0o400
	case meta.TypeDir:
		kept = 0o700
	}
	diff := (rec.Mode ^ tree.Mode) &^ 0o6000
	return diff&^kept == 0 && rec.Mode&diff == 0
}

// AsRoot returns the tree manifest cur as root would have it: where cur
// differs from recorded only by what a non-root apply could not make
// (NotRootDrift), the recorded entry stands in for the tree's. It returns
// cur unchanged for root. A non-root reviewer's 'git onesis diff REV'
// then shows the changes between REV and the work tree, not thousands of
// "owner root -> you".
func AsRoot(recorded, cur *meta.Manifest) (*meta.Manifest, int) {
	if os.Geteuid() == 0 || recorded == nil {
		return cur, 0
	}
	out := &meta.Manifest{Entries: make([]meta.Entry, 0, len(cur.Entries))}
	idx := map[string]int{}
	for i := range cur.Entries {
		idx[cur.Entries[i].Path] = i
	}
	swapped := map[string]*meta.Entry{}
	var added []meta.Entry
	for _, c := range meta.Compare(recorded, cur) {
		if !NotRootDrift(c) {
			continue
		}
		if c.Kind == meta.Removed {
			added = append(added, c.Old.Clone())
		} else {
			swapped[c.Path] = c.Old
		}
	}
	for i := range cur.Entries {
		if e, ok := swapped[cur.Entries[i].Path]; ok {
			out.Entries = append(out.Entries, e.Clone())
		} else {
			out.Entries = append(out.Entries, cur.Entries[i])
		}
	}
	out.Entries = append(out.Entries, added...)
	if len(added) > 0 {
		out.Sort()
	}
	return out, len(swapped) + len(added)
}

// StatusAgainst compares the work tree with the commit rev names instead
// of HEAD: content as `git diff REV` sees it (plus untracked files), and
// metadata against REV's .gitmeta. .gitmeta itself is not reported as a
// content change: its differences are the metadata drift.
func (im *Image) StatusAgainst(rev string) (*Status, error) {
	commit, err := im.Git.ResolveRev(rev)
	if err != nil {
		return nil, err
	}
	recorded, err := im.MetaAt(commit)
	if err != nil {
		return nil, err
	}
	if recorded == nil {
		return nil, fmt.Errorf("%s has no %s to verify against", rev, MetaFile)
	}
	cur, err := im.Scan()
	if err != nil {
		return nil, err
	}
	st := &Status{}
	notRoot := os.Geteuid() != 0
	for _, c := range meta.Compare(recorded, cur) {
		st.Drift = append(st.Drift, Drift{Change: c, NotRoot: notRoot && NotRootDrift(c)})
	}
	out, err := im.Git.Run("diff", "--no-ext-diff", "--no-renames", "--name-status", "-z", commit, "--")
	if err != nil {
		return nil, fmt.Errorf("comparing the work tree with %s: %w", rev, err)
	}
	f := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	for i := 0; i+1 < len(f); i += 2 {
		if f[i+1] != MetaFile {
			st.Content = append(st.Content, ContentChange{XY: " " + f[i][:1], Path: f[i+1]})
		}
	}
	entries, err := im.Git.StatusPorcelain()
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if e.XY == "??" {
			st.Content = append(st.Content, ContentChange{XY: e.XY, Path: e.Path})
		}
	}
	return st, nil
}

// VerifySignature checks the GPG or SSH signature of the commit rev names
// with `git verify-commit`. The error carries git's explanation.
func (im *Image) VerifySignature(rev string) error {
	commit, err := im.Git.ResolveRev(rev)
	if err != nil {
		return err
	}
	cmd := im.Git.Cmd("verify-commit", "--", commit)
	out, err := cmd.CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if msg == "" {
			msg = "no signature"
		}
		return fmt.Errorf("commit %s (%s) has no valid signature: %s", commit[:12], rev, msg)
	}
	return nil
}
