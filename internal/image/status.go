package image

import (
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
