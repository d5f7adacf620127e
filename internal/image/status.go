package image

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"

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
//
// The tree is walked once. The scan's lstat of each tracked file is
// compared with the stat data git's index holds for it; where they agree
// (and the entry is not racy), git is handed a copy of the index with
// those entries marked assume-valid, so it neither lstats them again nor
// walks the tree for untracked files, which the scan has seen too (see
// contentStatus). Parsing .gitmeta runs alongside the scan.
func (im *Image) Status() (*Status, error) {
	type parsed struct {
		m   *meta.Manifest
		err error
	}
	pc := make(chan parsed, 1)
	go func() {
		m, err := im.ReadWorktreeMeta()
		pc <- parsed{m, err}
	}()
	cur, ex, err := im.scan(true)
	if err != nil {
		<-pc
		return nil, err
	}
	type gitStatus struct {
		entries []git.StatusEntry
		err     error
	}
	ch := make(chan gitStatus, 1)
	go func() {
		defer trace.Region("git status")()
		e, err := im.contentStatus(cur, ex)
		ch <- gitStatus{e, err}
	}()
	gs, rec := <-ch, <-pc
	if rec.err != nil {
		return nil, rec.err
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

// contentStatus returns git's status of the work tree, using what the scan
// saw so that git does not look at the tree a second time:
//
//   - a tracked file or symlink whose lstat during the scan matched its
//     index entry's stat data exactly (change and modification times,
//     inode, device, size, owner, type and executable bit), and whose entry
//     is not racy (modified before the index was written, as git's own
//     check requires), is clean by git's own rule; a copy of the index with
//     those entries marked assume-valid (CE_VALID) is given to 'git status',
//     which then lstats only the rest (changed, racy, deleted files);
//   - untracked files are the files and symlinks the scan found outside
//     the index, less what 'git check-ignore' says is ignored, so git is
//     run with --untracked-files=no and does not walk the tree.
//
// Where these shortcuts cannot be sure (a split or sparse index,
// submodules, a nested repository, core.ignoreCase) git is asked as
// before. A chmod, chown or setxattr moves ctime and a write moves mtime,
// so nothing changed after git last looked can match.
func (im *Image) contentStatus(cur *meta.Manifest, ex *scanExtra) ([]git.StatusEntry, error) {
	why := ex.fastPathBlocker(len(cur.Entries))
	if why == "" {
		if ic, err := im.Git.ConfigBool("core.ignoreCase", false); err != nil || ic {
			why = "core.ignoreCase"
		}
	}
	if why != "" {
		trace.Printf("status: git walks the tree itself (%s)", why)
		return im.Git.StatusPorcelain()
	}
	ix := ex.ix
	valid := make([]bool, len(ix.Entries))
	nvalid := 0
	j := 0
	for k := range ix.Entries {
		e := &ix.Entries[k]
		for j < len(cur.Entries) && meta.Less(cur.Entries[j].Path, e.Path) {
			j++
		}
		if j == len(cur.Entries) || cur.Entries[j].Path != e.Path {
			continue
		}
		if provenClean(ix, e, &ex.stats[j]) {
			valid[k] = true
			nvalid++
		}
	}
	var untracked []string
	if len(ex.untracked) > 0 {
		ignored, err := im.Git.CheckIgnored(ex.untracked)
		if err != nil {
			return nil, err
		}
		for _, p := range ex.untracked {
			if !ignored[p] {
				untracked = append(untracked, p)
			}
		}
		slices.Sort(untracked)
	}
	trace.Printf("status: %d of %d index entries proven unchanged by the scan; %d untracked files", nvalid, len(ix.Entries), len(untracked))
	head := nvalid > len(ix.Entries)-maxStatusPaths && im.indexIsHead(ix)
	if nvalid == len(ix.Entries) && head {
		// Nothing changed in the work tree (every entry proven), and
		// nothing is staged (the index's own tree is HEAD's): git
		// status would list nothing but the untracked files, so it is
		// not asked.
		trace.Printf("status: the index holds HEAD's tree; git status is not needed")
		statusSkips.Add(1)
		var entries []git.StatusEntry
		for _, p := range untracked {
			entries = append(entries, git.StatusEntry{XY: "??", Path: p})
		}
		return entries, nil
	}
	var entries []git.StatusEntry
	var err error
	if head && !anyIntentToAdd(ix) {
		// Nothing staged, and all but a few entries proven unchanged:
		// git status for those few says all there is to say. Limited to
		// them by pathspec, git looks at no other entry, so it reads the
		// index itself rather than an assume-valid copy (one write of
		// the whole file saved), and is spared comparing the whole
		// index with HEAD's tree.
		var rest []string
		for k := range ix.Entries {
			if !valid[k] {
				rest = append(rest, ix.Entries[k].Path)
			}
		}
		trace.Printf("status: the index holds HEAD's tree; git status for the %d entries not proven: %s", len(rest), traceList(rest))
		statusByPath.Add(1)
		entries, err = im.Git.StatusPorcelainPaths(rest)
	} else {
		entries, err = im.statusAssumeValid(ix, valid)
	}
	if err != nil {
		return nil, err
	}
	for _, p := range untracked {
		entries = append(entries, git.StatusEntry{XY: "??", Path: p})
	}
	return entries, nil
}

// statusAssumeValid runs git status on a copy of the index with the
// entries valid names marked assume-valid, so git lstats only the rest.
// Where the copy cannot be written (a git dir this user cannot write: a
// reviewer's status), git walks the tree itself.
func (im *Image) statusAssumeValid(ix *git.Index, valid []bool) ([]git.StatusEntry, error) {
	dir := filepath.Join(im.Git.GitDir, "onesis")
	os.MkdirAll(dir, 0o755)
	f, err := os.CreateTemp(dir, "status-index-")
	if err != nil {
		trace.Printf("status: %v; git walks the tree itself", err)
		return im.Git.StatusPorcelain()
	}
	defer os.Remove(f.Name())
	_, err = ix.WithAssumeValid(valid).WriteTo(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// The copy keeps the index time: an entry racy in the index (its
		// file written no earlier than the index, so its stat data cannot
		// prove it unchanged) stays racy, and git reads its content. A
		// fresh time would make git trust the stat data of a file
		// rewritten with the same size in the same clock tick.
		err = unix.UtimesNanoAt(unix.AT_FDCWD, f.Name(), []unix.Timespec{ix.Mtime, ix.Mtime}, 0)
	}
	if err != nil {
		return im.Git.StatusPorcelain()
	}
	return im.Git.WithIndex(f.Name()).StatusPorcelainTracked(true)
}

// maxStatusPaths is how many entries not proven unchanged status asks git
// about by name (git matches every index entry against every pathspec, so
// beyond a few dozen the whole status is cheaper).
const maxStatusPaths = 32

// anyIntentToAdd reports whether some entry was added with 'git add -N'
// (git status shows it as added, though the cache tree leaves it out).
func anyIntentToAdd(ix *git.Index) bool {
	for k := range ix.Entries {
		if ix.Entries[k].IntentToAdd {
			return true
		}
	}
	return false
}

// statusSkips counts the statuses that did not need git status (for
// tests).
var statusSkips, statusByPath atomic.Int64

// indexIsHead reports whether the index's entries make exactly HEAD's
// tree, as git's cache-tree extension records it (a stale or missing one,
// or no HEAD, is a no).
func (im *Image) indexIsHead(ix *git.Index) bool {
	id, ok := ix.TreeID()
	if !ok {
		return false
	}
	head, err := im.Git.Run("rev-parse", "--verify", "--quiet", "HEAD^{tree}")
	return err == nil && strings.TrimSpace(string(head)) == id
}

// fastPathBlocker says why contentStatus cannot use the scan, or "".
func (ex *scanExtra) fastPathBlocker(n int) string {
	switch {
	case ex == nil || ex.ix == nil:
		return "split index"
	case len(ex.stats) != n:
		return "sparse checkout"
	}
	for k := range ex.ix.Entries {
		e := &ex.ix.Entries[k]
		if e.Mode&0o170000 == 0o160000 {
			return "submodules"
		}
		if e.SkipWorktree {
			return "sparse checkout"
		}
	}
	for _, p := range ex.untracked {
		if p == ".git" || strings.HasPrefix(p, ".git/") || strings.Contains(p, "/.git/") || strings.HasSuffix(p, "/.git") {
			return "a nested repository"
		}
	}
	return ""
}

// provenClean reports whether the scan's lstat (sd) proves index entry e
// unchanged by git's own rule: a merged entry in the work tree whose stat
// data is what lstat said, and which is not racy.
func provenClean(ix *git.Index, e *git.IndexEntry, sd *meta.StatData) bool {
	return e.Stage == 0 && !e.SkipWorktree && !e.IntentToAdd && !ix.Racy(e) && statMatches(e, sd)
}

// statMatches reports whether the stat data git recorded for e is exactly
// what the scan's lstat said (sd): type and executable bit, times, inode,
// device, size and owner. It is stricter than git's own comparison, so a
// match means git would find the entry clean without reading it.
func statMatches(e *git.IndexEntry, sd *meta.StatData) bool {
	switch e.Mode & 0o170000 {
	case 0o100000:
		if sd.Mode&unix.S_IFMT != unix.S_IFREG || (e.Mode^sd.Mode)&0o100 != 0 {
			return false
		}
	case 0o120000:
		if sd.Mode&unix.S_IFMT != unix.S_IFLNK {
			return false
		}
	default:
		return false
	}
	return e.CtimeSec == sd.CtimeSec && e.CtimeNsec == sd.CtimeNsec &&
		e.MtimeSec == sd.MtimeSec && e.MtimeNsec == sd.MtimeNsec &&
		e.Ino == sd.Ino && e.Dev == sd.Dev && e.Size == sd.Size &&
		e.UID == sd.UID && e.GID == sd.GID
}
