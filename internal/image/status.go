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
		d := Drift{Change: c}
		if notRoot && c.Kind == meta.Modified {
			d.NotRoot = onlyPrivileged(c)
		}
		st.Drift = append(st.Drift, d)
	}
	if gs.err != nil {
		return nil, gs.err
	}
	for _, e := range gs.entries {
		st.Content = append(st.Content, ContentChange{XY: e.XY, Path: e.Path, Orig: e.Orig})
	}
	return st, nil
}

// onlyPrivileged reports whether a change is limited to what a non-root
// user cannot apply: uid, gid, and xattrs outside the user namespace.
func onlyPrivileged(c meta.Change) bool {
	for _, f := range c.Fields() {
		switch {
		case f == "uid" || f == "gid":
		case strings.HasPrefix(f, "xattr.") && !strings.HasPrefix(f, "xattr.user."):
		case f == "mode" && c.Old != nil && c.New != nil && c.Old.Mode&^0o6000 == c.New.Mode&^0o6000:
			// The kernel refuses setuid/setgid on files a user does not own
			// as that group; treat as privileged.
		default:
			return false
		}
	}
	return true
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
		d := Drift{Change: c}
		if notRoot && c.Kind == meta.Modified {
			d.NotRoot = onlyPrivileged(c)
		}
		st.Drift = append(st.Drift, d)
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
