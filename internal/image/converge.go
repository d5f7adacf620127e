package image

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/onesis/git-onesis/internal/git"
	"github.com/onesis/git-onesis/internal/hugemem"
	"github.com/onesis/git-onesis/internal/trace"
	"github.com/onesis/git-onesis/meta"
)

// What the hooks remember about each work tree, in its own git dir (so
// linked worktrees keep their own):
//
//   - AppliedFile: the .gitmeta that was last applied to the tree (or
//     recorded from it). The next apply visits only the entries whose lines
//     differ from it, plus the paths the last one could not fix
//     (RetryFile). When it is missing (a fresh clone, a new worktree, an
//     apply that was interrupted) the next apply is a full one.
//   - SeenIndexFile: the index as the hooks last saw it, kept as a hard
//     link to the file git wrote (git replaces the index by rename, never
//     in place). The entries whose inode changed between it and the
//     current index are the files git wrote since.
//   - ConvergedFile: the process id of the git command whose
//     post-index-change hook last converged, written only when that hook
//     succeeded (NoteConverged). The post-checkout and post-merge
//     trampolines that the same git command runs next stop in the shell
//     when it names their parent and the index is still the file seen
//     (hooks.Body): the converge they would run finds nothing to do, and
//     starting git-onesis to find that out is most of their cost.
const (
	AppliedFile   = "onesis/applied"
	SeenIndexFile = "onesis/index.seen"
	ConvergedFile = "onesis/converged"
)

// Kind says what the git command behind a hook did to the work tree.
type Kind int

// The kinds of git command the hooks tell apart.
const (
	// IndexOnly commands write the index but no file of the work tree
	// (add, status, commit): nothing is applied.
	IndexOnly Kind = iota
	// Wrote commands wrote files into the work tree (checkout, restore,
	// reset, merge, stash, cherry-pick, ...): the files git wrote, and the
	// entries whose .gitmeta lines changed, get their recorded metadata.
	// Metadata drift on files git left alone stays, as content changes do.
	Wrote
	// Discarded commands threw every local change away (reset --hard,
	// checkout -f, switch --discard-changes): the whole tree gets its
	// recorded metadata back.
	Discarded
)

// Converged reports what Converge did.
type Converged struct {
	Result *meta.ApplyResult // nil when nothing was applied
	Full   bool              // every entry was visited
	// Skipped says why nothing was applied, or is "".
	Skipped string
	// Deferred: the running git command still holds the index, so the
	// work is left to a later hook.
	Deferred bool
}

// Converge brings the work tree's metadata in step with its .gitmeta after
// a git command of the given kind, and remembers what it applied (see
// AppliedFile). Hooks call it; it is cheap when there is nothing to do.
func (im *Image) Converge(kind Kind) (*Converged, error) {
	idx := im.Git.IndexFile()
	if os.Getenv("GIT_INDEX_FILE") == "" {
		if _, err := os.Lstat(idx + ".lock"); err == nil {
			// The command that runs this hook still holds the index
			// (commit -a): a later hook sees what it writes.
			return &Converged{Skipped: "the index is locked by the running git command", Deferred: true}, nil
		}
	}
	if kind == IndexOnly {
		// During a merge, cherry-pick, revert, rebase or am the index
		// keeps collecting what git wrote until the commit applies it.
		if p := im.Git.InProgress(); p == "" || p == "bisect" {
			im.saveSeen(idx)
		}
		return &Converged{Skipped: "the git command wrote no file of the work tree"}, nil
	}
	if _, err := os.Lstat(im.MetaPath()); errors.Is(err, os.ErrNotExist) {
		im.forgetApplied()
		im.saveSeen(idx)
		return &Converged{Skipped: "no .gitmeta in the work tree"}, nil
	}
	if kind == Wrote && im.seenIsCurrent(idx) && len(im.loadRetry()) == 0 {
		// No git command wrote the index since the last hook (it is the
		// very file seen then), so none wrote a file either: with
		// .gitmeta as last applied there is nothing to do, and the index
		// need not be read (post-checkout after post-index-change). The
		// two files are compared in step, neither read whole.
		if sameFiles(im.statePath(AppliedFile), im.MetaPath()) {
			return &Converged{Skipped: "the index and .gitmeta are as the last apply left them"}, nil
		}
	}
	full := kind == Discarded
	var ix *git.Index
	split := false
	o := ApplyOptions{}
	var applied []byte
	if !full {
		var release func()
		applied, release = im.mapApplied()
		defer release() // after the parse below is waited for
	}
	// Which files git wrote since the last hook is found (from the index
	// last seen and the current one) beside the reading and comparing of
	// .gitmeta.
	var (
		cwg      sync.WaitGroup
		changes  *git.IndexChanges
		cerr     error
		seenAt   unix.Timespec
		compared bool
	)
	if !full && applied != nil {
		if seen, at, ok := im.seenFile(); ok {
			compared, seenAt = true, at
			cwg.Add(1)
			go func() {
				defer cwg.Done()
				end := trace.Region("compare the index with the one last seen")
				changes, cerr = git.IndexChangesBetween(seen, idx, im.Git.HashLen())
				end()
			}()
		}
	}
	defer cwg.Wait()
	b, err := hugemem.ReadFile(im.MetaPath())
	if errors.Is(err, os.ErrNotExist) {
		im.forgetApplied()
		im.saveSeen(idx)
		return &Converged{Skipped: "no .gitmeta in the work tree"}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading .gitmeta: %w", err)
	}
	// .gitmeta is parsed beside the comparison of the indexes, unless it
	// is what was last applied (then the comparison may well show there
	// is nothing to do, and nothing need be parsed).
	var (
		pwg     sync.WaitGroup
		pm      *meta.Manifest
		perr    error
		pd      *meta.LineDiff
		pdok    bool
		pix     *meta.Indexed
		started bool
	)
	parse := func(incremental bool) {
		if incremental {
			// Only the lines that differ from the applied record are
			// parsed, of either file; the other entries of .gitmeta are
			// located, and parsed when the apply visits them (Subset).
			end := trace.Region("compare .gitmeta with the last applied")
			if pd, pdok = meta.DiffLines(applied, b); pdok {
				pix, _ = meta.IndexCanonical(b) // b is ours and read-only from here
			}
			end()
			if pix != nil {
				return
			}
		}
		end := trace.Region("parse .gitmeta")
		pm, perr = meta.ParseOwned(b) // b is ours and read-only from here
		end()
	}
	if full || applied == nil || !bytes.Equal(applied, b) {
		started = true
		pwg.Add(1)
		incremental := !full && applied != nil
		go func() {
			defer pwg.Done()
			parse(incremental)
		}()
	}
	defer pwg.Wait() // before applied is unmapped
	if !full {
		cwg.Wait()
		if !compared {
			full = true
		} else {
			d, err := changes, cerr
			switch {
			case errors.Is(err, git.ErrSplitIndex):
				trace.Printf("converge: %v; applying in full", err)
				full, split = true, true
			case err != nil:
				// A damaged index is reported by the full read below.
				trace.Printf("converge: %v; applying in full", err)
				full = true
			default:
				o.Paths = writtenSince(im.Root, d, seenAt)
				o.IndexView = d.Newer
				trace.Printf("converge: %d files written by git since the last hook: %s", len(o.Paths), traceList(o.Paths))
				o.Paths = append(o.Paths, im.loadRetry()...)
				if len(o.Paths) == 0 && bytes.Equal(applied, b) {
					// post-checkout after post-index-change, say: the
					// first hook did the work.
					im.saveSeen(idx)
					return &Converged{Skipped: "nothing written and .gitmeta unchanged since the last apply"}, nil
				}
				if d.SkipWorktree {
					// A sparse checkout: what it leaves out is read
					// from the whole index.
					if ix, err = git.ReadIndex(idx, im.Git.HashLen()); err != nil {
						return nil, err
					}
				}
			}
		}
	}
	if full && !split {
		end := trace.Region("read the index")
		var err error
		ix, err = git.ReadIndex(idx, im.Git.HashLen())
		end()
		if errors.Is(err, git.ErrSplitIndex) {
			trace.Printf("converge: %v; applying in full", err)
			ix = nil
		} else if err != nil {
			return nil, err
		}
	}
	if full {
		o.Paths = nil
	}
	o.Outside, o.Index = sparseScope(ix), ix
	if !started {
		parse(!full && applied != nil)
	}
	pwg.Wait()
	m, err := pm, perr
	if m == nil && err == nil && pix != nil && !full {
		// The entries the apply visits, and only those, are parsed.
		if m, err = subset(pix, pd, o.Paths); err != nil {
			trace.Printf("converge: %v; parsing .gitmeta whole", err)
			m, err = nil, nil
		}
	}
	if m == nil && err == nil {
		end := trace.Region("parse .gitmeta")
		m, err = meta.ParseOwned(b)
		end()
	}
	if err == nil && applied != nil && !full {
		// A record that is not canonical is parsed whole.
		if pdok {
			o.Old, o.OldPartial, o.Changed = pd.Old, true, pd.Changed
			trace.Printf("converge: %d .gitmeta lines changed, %d applied lines gone or changed", len(pd.Changed), len(pd.Old.Entries))
		} else if o.Old, err = meta.ParseBytes(applied); err != nil {
			trace.Printf("converge: %s: %v", AppliedFile, err)
			o.Old, err = nil, nil
		}
	}
	if errors.Is(err, meta.ErrConflict) {
		// A conflicted merge: the files git wrote are applied once
		// .gitmeta is resolved (pre-commit), so the index is not marked seen.
		return &Converged{Skipped: ".gitmeta has conflict markers"}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", im.MetaPath(), err)
	}
	// An apply that is cut off leaves no record, so the next one is full.
	im.forgetApplied()
	// Once the apply is done, the record of it is written while git's
	// index is refreshed. What failed is tried again by the next apply
	// (saveRetry); the rest is done.
	//
	// The index last seen is let go meanwhile too: it is usually the file
	// git replaced, kept alive by that link alone, and freeing a large
	// index's blocks and pages takes the kernel 10-20 ms, which the
	// rename in saveSeen would otherwise spend at the end. From here
	// every way out either saves the index as seen or forgets the
	// applied record (the next apply is then full, seen or not).
	var saved sync.WaitGroup
	o.Applied = func() {
		saved.Add(1)
		go func() {
			defer saved.Done()
			im.saveApplied(b)
			os.Remove(im.statePath(SeenIndexFile))
		}()
	}
	res, err := im.ApplyTree(m, o)
	saved.Wait()
	if err != nil {
		im.forgetApplied()
		return nil, err
	}
	im.saveRetry(res)
	im.saveSeen(idx)
	return &Converged{Result: res, Full: o.Old == nil}, nil
}

// subsetMax is the share of .gitmeta's entries (one in subsetMax) up to
// which an incremental apply parses only the entries it visits.
var subsetMax = 8

// subset parses the entries of .gitmeta that an incremental apply
// visits: the lines that changed since the last apply (d), the lines the
// last apply had that are gone or changed (their hard-link secondaries
// are checked against what replaced them), and the files git wrote with
// their parent directories, each with its hard-link group. It returns an
// error (the caller parses the file whole) when that is more than one
// entry in subsetMax, or a line it parses is not valid.
func subset(ix *meta.Indexed, d *meta.LineDiff, written []string) (*meta.Manifest, error) {
	paths := withParents(written)
	paths = append(paths, d.Changed...)
	for i := range d.Old.Entries {
		paths = append(paths, d.Old.Entries[i].Path)
	}
	if len(paths) > ix.Len()/subsetMax {
		return nil, fmt.Errorf("the apply visits %d of %d entries", len(paths), ix.Len())
	}
	end := trace.Region("parse the entries to apply")
	defer end()
	return ix.Subset(paths)
}

// RetryFile lists, NUL-terminated, the paths the last apply could not fix;
// the next incremental apply visits them again.
const RetryFile = "onesis/retry"

func (im *Image) loadRetry() []string {
	b, err := os.ReadFile(im.statePath(RetryFile))
	if err != nil || len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
}

func (im *Image) saveRetry(res *meta.ApplyResult) {
	p := im.statePath(RetryFile)
	var b []byte
	for _, e := range res.Errors {
		var ae *meta.ApplyError
		if errors.As(e, &ae) {
			b = append(append(b, ae.Path...), 0)
		}
	}
	if len(b) == 0 {
		os.Remove(p)
		return
	}
	if err := os.WriteFile(p+".tmp", b, 0o644); err == nil {
		os.Rename(p+".tmp", p)
	}
}

// ApplyWorktreeMeta applies the work tree's .gitmeta (in full unless o
// says otherwise), leaving alone what a sparse checkout keeps out of the
// tree, and remembers it as applied (what failed is retried by the next
// apply). It returns
// ErrNoMeta when there is no .gitmeta.
func (im *Image) ApplyWorktreeMeta(o ApplyOptions) (*meta.ApplyResult, error) {
	b, err := hugemem.ReadFile(im.MetaPath())
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNoMeta
	}
	if err != nil {
		return nil, fmt.Errorf("reading .gitmeta: %w", err)
	}
	m, err := meta.ParseOwned(b) // b is ours and read-only from here
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", im.MetaPath(), err)
	}
	if o.Outside == nil {
		if ix, err := git.ReadIndex(im.Git.IndexFile(), im.Git.HashLen()); err == nil {
			o.Outside = sparseScope(ix)
		}
	}
	if !o.DryRun {
		im.forgetApplied()
	}
	res, err := im.ApplyTree(m, o)
	if err != nil {
		return res, err
	}
	if !o.DryRun {
		im.MarkApplied(b)
		im.saveRetry(res)
	}
	return res, nil
}

// MarkApplied remembers that the tree now matches the .gitmeta bytes b,
// after a full apply or a record.
func (im *Image) MarkApplied(b []byte) {
	im.saveApplied(b)
	if os.Getenv("GIT_INDEX_FILE") == "" {
		im.saveSeen(im.Git.IndexFile())
	}
}

func (im *Image) statePath(name string) string {
	return filepath.Join(im.Git.GitDir, filepath.FromSlash(name))
}

func (im *Image) forgetApplied() { os.Remove(im.statePath(AppliedFile)) }

// NoteConverged records that the hook of git process pid has just
// converged the work tree with the index as it is now (see ConvergedFile).
// It is written by rename, so a trampoline reads either the old note or
// the new one.
func (im *Image) NoteConverged(pid int) {
	p := im.statePath(ConvergedFile)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return
	}
	tmp := fmt.Sprintf("%s.%d", p, os.Getpid())
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(pid)+"\n"), 0o644); err == nil {
		if err = os.Rename(tmp, p); err == nil {
			return
		}
	}
	os.Remove(tmp)
	os.Remove(p)
}

// ForgetConverged removes the note NoteConverged writes: a hook that is
// about to converge, and may fail, withdraws it first.
func (im *Image) ForgetConverged() { os.Remove(im.statePath(ConvergedFile)) }

// mapApplied returns the .gitmeta last applied, or nil, mapped read-only
// rather than copied (the page cache's pages, not fresh memory: most of
// what reading a large file costs), and the func that unmaps it once
// nothing refers to it (parsing copies out what it keeps). The record is
// only ever replaced by rename, so the mapping stays whole.
func (im *Image) mapApplied() ([]byte, func()) {
	f, err := os.Open(im.statePath(AppliedFile))
	if err != nil {
		return nil, func() {}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return nil, func() {}
	}
	if n := fi.Size(); n > 0 && n == int64(int(n)) {
		if b, err := unix.Mmap(int(f.Fd()), 0, int(n), unix.PROT_READ, unix.MAP_SHARED); err == nil {
			return b, func() { unix.Munmap(b) }
		}
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, func() {}
	}
	return b, func() {}
}

// saveApplied writes b as the applied record (write and rename: a reader
// never sees half of it; not synced, as a lost record only costs a full
// apply).
func (im *Image) saveApplied(b []byte) {
	p := im.statePath(AppliedFile)
	if sameAs(p, b) {
		return // a commit with no metadata change, say
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".applied-*")
	if err != nil {
		return
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), p)
	}
	if err != nil {
		os.Remove(f.Name())
		trace.Printf("converge: saving %s: %v", AppliedFile, err)
	}
}

// seenFile returns the index file as the hooks last saw it, with the time
// git wrote it, or false when there is none.
func (im *Image) seenFile() (string, unix.Timespec, bool) {
	p := im.statePath(SeenIndexFile)
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return "", unix.Timespec{}, false
	}
	return p, st.Mtim, true
}

// seenIsCurrent reports whether the index last seen is still the index
// file idx: the same inode (a hard link) with the same modification time.
func (im *Image) seenIsCurrent(idx string) bool {
	var a, b unix.Stat_t
	return unix.Stat(idx, &a) == nil && unix.Lstat(im.statePath(SeenIndexFile), &b) == nil &&
		a.Dev == b.Dev && a.Ino == b.Ino && a.Mtim == b.Mtim
}

// saveSeen keeps the current index file as the one last seen: a hard link
// where the file system allows it, a copy otherwise.
func (im *Image) saveSeen(idx string) {
	p := im.statePath(SeenIndexFile)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return
	}
	var si, sp unix.Stat_t
	if unix.Stat(idx, &si) == nil && unix.Lstat(p, &sp) == nil && si.Dev == sp.Dev && si.Ino == sp.Ino {
		return // seen already: the very file (post-checkout after post-index-change)
	}
	tmp := fmt.Sprintf("%s.%d", p, os.Getpid())
	os.Remove(tmp)
	if err := os.Link(idx, tmp); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			os.Remove(p) // no index yet
			return
		}
		if err := copyFile(idx, tmp); err != nil {
			os.Remove(tmp)
			return
		}
	}
	// rename(2) of one hard link onto another of the same file does
	// nothing and succeeds, leaving tmp behind (a whole index kept alive
	// under a name nobody reads), so tmp is removed after it either way.
	os.Rename(tmp, p)
	os.Remove(tmp)
	removeStaleSeen(p)
}

// removeStaleSeen deletes the temporary links saveSeen of a process that
// is gone left next to p: before the fix above, every save of an index
// already seen left one, and a hook killed between link and rename still
// can. Each pins a whole index file.
func removeStaleSeen(p string) {
	dir, base := filepath.Split(p)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), base+".")
		if !ok {
			continue
		}
		pid, err := strconv.Atoi(rest)
		if err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if unix.Kill(pid, 0) == unix.ESRCH {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// compareChunk is how much of each file sameFiles holds at once.
const compareChunk = 1 << 20

// sameFiles reports whether the regular files at a and b exist and hold
// the same bytes. It reads them in step, a chunk at a time, and stops at
// the first difference (different sizes need no read at all).
func sameFiles(a, b string) bool {
	fa, err := os.Open(a)
	if err != nil {
		return false
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return false
	}
	defer fb.Close()
	sa, err1 := fa.Stat()
	sb, err2 := fb.Stat()
	if err1 != nil || err2 != nil || !sa.Mode().IsRegular() || !sb.Mode().IsRegular() || sa.Size() != sb.Size() {
		return false
	}
	ba, bb := make([]byte, compareChunk), make([]byte, compareChunk)
	for {
		na, erra := io.ReadFull(fa, ba)
		nb, errb := io.ReadFull(fb, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return false
		}
		endA, endB := erra == io.EOF || erra == io.ErrUnexpectedEOF, errb == io.EOF || errb == io.ErrUnexpectedEOF
		switch {
		case endA && endB:
			return true
		case endA || endB || erra != nil || errb != nil:
			return false
		}
	}
}

// sameAs reports whether the regular file at p holds exactly b, reading
// it a chunk at a time.
func sameAs(p string, b []byte) bool {
	same, err := meta.SameBytes(p, b)
	return err == nil && same
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// writtenSince lists the paths git wrote between two index versions (d):
// an entry that is new or was rewritten (git writes a file by creating it
// afresh: a new inode, or new content time), still exactly as git
// recorded it (same inode, size, mtime and ctime, so nobody changed it
// after git did), plus the paths that left the index (their parent
// directories may have gone with them). A change of ctime alone is a
// chmod, chown or setxattr that git's refresh noticed: metadata drift,
// which is not git's doing, so d does not list it.
func writtenSince(root string, d *git.IndexChanges, seenAt unix.Timespec) []string {
	var out []string
	for _, p := range d.Removed {
		out = append(out, strings.TrimSuffix(p, "/"))
	}
	for k := range d.Changed {
		if e := &d.Changed[k]; asWritten(root, e) || unstatted(root, e, seenAt) {
			out = append(out, e.Path)
		}
	}
	slices.Sort(out)
	return out
}

// unstatted catches a file git wrote without recording its stat data in
// the index ('git stash apply' writes the merged files, then puts entries
// without stat data back; sparse checkouts keep none for what they leave
// out): the entry has none, and the file was written after the index the
// hooks last saw (its mtime is not older), with no metadata change since
// (ctime equals mtime).
func unstatted(root string, now *git.IndexEntry, since unix.Timespec) bool {
	if now.Ino != 0 || now.SparseDir() {
		return false
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(root, now.Path), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return false
	}
	return st.Ctim == st.Mtim && (st.Mtim.Sec > since.Sec || st.Mtim.Sec == since.Sec && st.Mtim.Nsec >= since.Nsec)
}

// asWritten reports whether the file at e.Path is the one git last wrote
// or checked (its stat data is what the index recorded).
func asWritten(root string, e *git.IndexEntry) bool {
	if e.SparseDir() || e.Ino == 0 {
		return false
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(root, e.Path), &st); err != nil {
		return false
	}
	return uint32(st.Ino) == e.Ino && uint32(st.Size) == e.Size &&
		uint32(st.Mtim.Sec) == e.MtimeSec && uint32(st.Mtim.Nsec) == e.MtimeNsec &&
		uint32(st.Ctim.Sec) == e.CtimeSec && uint32(st.Ctim.Nsec) == e.CtimeNsec
}

// sparseScope returns the paths a sparse checkout leaves out of the work
// tree, or nil when the index marks none: files with the skip-worktree
// bit, directories of a sparse index, and every directory whose tracked
// files are all outside (with everything below it).
func sparseScope(ix *git.Index) func(string) bool {
	if ix == nil {
		return nil
	}
	var files map[string]bool
	var dirPrefixes []string
	type count struct{ all, out int }
	var dirs map[string]*count
	for k := range ix.Entries {
		e := &ix.Entries[k]
		if !e.SkipWorktree {
			continue
		}
		if files == nil {
			files, dirs = map[string]bool{}, map[string]*count{}
		}
		if e.SparseDir() {
			dirPrefixes = append(dirPrefixes, e.Path)
		} else {
			files[e.Path] = true
		}
	}
	if files == nil {
		return nil
	}
	for k := range ix.Entries {
		e := &ix.Entries[k]
		if e.Stage > 1 {
			continue
		}
		p := strings.TrimSuffix(e.Path, "/")
		for d := meta.Parent(p); d != "."; d = meta.Parent(d) {
			c := dirs[d]
			if c == nil {
				c = &count{}
				dirs[d] = c
			}
			c.all++
			if e.SkipWorktree {
				c.out++
			}
		}
	}
	outDirs := map[string]bool{}
	for d, c := range dirs {
		if c.all == c.out {
			outDirs[d] = true
		}
	}
	for _, p := range dirPrefixes {
		outDirs[strings.TrimSuffix(p, "/")] = true
	}
	return func(p string) bool {
		if files[p] {
			return true
		}
		for d := p; d != "."; d = meta.Parent(d) {
			if outDirs[d] {
				return true
			}
		}
		return false
	}
}

// traceList shows at most ten paths, for the trace.
func traceList(paths []string) string {
	if len(paths) > 10 {
		return fmt.Sprintf("%q and %d more", paths[:10], len(paths)-10)
	}
	return fmt.Sprintf("%q", paths)
}
