// Package image owns the operations on an image repository as a whole: a
// git work tree holding a root filesystem plus its .gitmeta. It joins the
// git runner (internal/git) to the metadata engine (meta): recording the
// tree into .gitmeta for what the index holds, applying .gitmeta back to the
// tree, and reporting drift. The CLI commands and the hook handlers are thin
// callers of this package.
package image

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/onesis/git-onesis/internal/git"
	"github.com/onesis/git-onesis/internal/hugemem"
	"github.com/onesis/git-onesis/internal/trace"
	"github.com/onesis/git-onesis/meta"
)

// MetaFile is the name of the metadata file at the top of the work tree.
const MetaFile = ".gitmeta"

// NestedEnv is set in the environment of the git commands git-onesis runs
// itself and converges after (an apply's index refresh, the checkout of
// 'git onesis checkout'), so the post-index-change and post-checkout hooks
// they trigger return at once: in the trampoline's first line since v3.
const NestedEnv = "GIT_ONESIS_NESTED"

// ErrBare is returned when an operation needs a work tree.
var ErrBare = errors.New("this operation must be run in a work tree (the repository is bare)")

// ErrNoMeta is returned when the work tree has no .gitmeta yet.
var ErrNoMeta = errors.New("no .gitmeta in this work tree; run 'git onesis init' or 'git onesis record' first")

// Image is an opened image repository.
type Image struct {
	Git *git.Repo
	// Root is the absolute path of the work tree.
	Root string
	// Progress, if set, receives running entry counts during scans.
	Progress func(n int)

	// metaTracked says whether the last Scan found .gitmeta in the index.
	metaTracked bool
	// outside is what the last Scan found a sparse checkout leaves out of
	// the work tree (nil: nothing).
	outside func(string) bool
	// unseen are tracked files outside the sparse checkout that the last
	// scan has no entry for (see unseenOutside).
	unseen []string
	// index is the index the last Scan read (nil for a split index).
	index *git.Index
	// recorded is what the last Record wrote to .gitmeta.
	recorded []byte
	// staging, while RecordWhile runs, waits for its git command.
	staging func() error
}

// scanExtra is what a scan for status keeps beside the manifest: what
// lstat said of each entry, the index it was read with, and the files and
// symlinks in the tree that the index does not hold.
type scanExtra struct {
	stats     []meta.StatData // index for index with the manifest's entries
	ix        *git.Index      // nil for a split index
	untracked []string        // unsorted
}

// indexPaths returns the set of paths the index holds (GIT_INDEX_FILE honoured),
// and what a sparse checkout leaves out of the tree. The index is read in
// process; a split index is listed by git.
func (im *Image) indexPaths() (*pathSet, func(string) bool, *git.Index, error) {
	ix, err := git.ReadIndex(im.Git.IndexFile(), im.Git.HashLen())
	if errors.Is(err, git.ErrSplitIndex) {
		paths, err := im.Git.LsFiles()
		if err != nil {
			return nil, nil, nil, err
		}
		return newPathSet(nil, paths), nil, nil, nil
	}
	if err != nil {
		return nil, nil, nil, err
	}
	return newPathSet(ix.Entries, nil), sparseScope(ix), ix, nil
}

// Open finds the repository containing dir and checks it has a work tree.
func Open(dir string) (*Image, error) { return open(git.Discover, dir) }

// OpenConfigured is Open for a short-lived process that sets no git
// config: the config is read once, by a git command run beside the one
// that finds the repository (git.DiscoverConfigured).
func OpenConfigured(dir string) (*Image, error) { return open(git.DiscoverConfigured, dir) }

func open(discover func(string) (*git.Repo, error), dir string) (*Image, error) {
	r, err := discover(dir)
	if err != nil {
		return nil, err
	}
	if r.Bare || r.Top == "" {
		return nil, ErrBare
	}
	return &Image{Git: r, Root: r.Top}, nil
}

// MetaPath is the absolute path of the work tree's .gitmeta.
func (im *Image) MetaPath() string { return filepath.Join(im.Root, MetaFile) }

// Enabled reports whether this repository opted in to git-onesis
// (onesis.enabled=true).
func (im *Image) Enabled() bool {
	ok, err := im.Git.ConfigBool("onesis.enabled", false)
	return err == nil && ok
}

// ReadWorktreeMeta parses the work tree's .gitmeta.
func (im *Image) ReadWorktreeMeta() (*meta.Manifest, error) {
	b, err := hugemem.ReadFile(im.MetaPath())
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNoMeta
	}
	if err != nil {
		return nil, fmt.Errorf("reading .gitmeta: %w", err)
	}
	end := trace.Region("parse .gitmeta")
	m, err := meta.ParseOwned(b) // b is ours and read-only from here
	end()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", im.MetaPath(), err)
	}
	return m, nil
}

// MetaAt parses .gitmeta as committed at rev. It returns (nil, nil) when
// the revision has no .gitmeta.
func (im *Image) MetaAt(rev string) (*meta.Manifest, error) {
	b, ok, err := im.Git.ShowBlob(rev, MetaFile)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, nil
	}
	m, err := meta.ParseOwned(b) // b is ours and read-only from here
	if err != nil {
		return nil, fmt.Errorf("reading .gitmeta at %s: %w", rev, err)
	}
	return m, nil
}

// StagedBlob is git.Repo.IndexBlob answered from the index the last Scan
// read, when there was one: a path the index does not hold costs no git
// process, and one it holds costs a cat-file, not a listing of the index.
func (im *Image) StagedBlob(path string) ([]byte, bool, error) {
	ix := im.index
	if ix == nil {
		return im.Git.IndexBlob(path)
	}
	k := sort.Search(len(ix.Entries), func(k int) bool { return ix.Entries[k].Path >= path })
	if k == len(ix.Entries) || ix.Entries[k].Path != path {
		return nil, false, nil
	}
	if ix.Entries[k].Stage != 0 || ix.Entries[k].SparseDir() {
		return im.Git.IndexBlob(path)
	}
	b, err := im.Git.Run("cat-file", "blob", ix.OID(k))
	if err != nil {
		return nil, false, fmt.Errorf("reading %s from the index: %w", path, err)
	}
	return b, true, nil
}

// MetaInIndex parses .gitmeta as staged in the index. It returns (nil, nil)
// when the index holds none.
func (im *Image) MetaInIndex() (*meta.Manifest, error) {
	b, ok, err := im.Git.IndexBlob(MetaFile)
	if err != nil || !ok {
		return nil, err
	}
	m, err := meta.ParseBytes(b)
	if err != nil {
		return nil, fmt.Errorf("reading the staged .gitmeta: %w", err)
	}
	return m, nil
}

// Scan walks the work tree and returns the manifest git-onesis would record:
// every path git does not ignore, with git-carried objects (files and
// symlinks) limited to those in the index (GIT_INDEX_FILE is honoured, so a
// partial commit records exactly what it commits).
//
// Ignore rules only matter for what the index cannot vouch for: directories
// with no tracked file below them, and devices, fifos and sockets. Those few
// candidates are checked with one 'git check-ignore' after the walk, which
// is much cheaper than asking git to walk the whole tree for ignored paths.
func (im *Image) Scan() (*meta.Manifest, error) {
	m, _, err := im.scan(false)
	return m, err
}

// scan is Scan; with extra set it also returns what status needs to spare
// git a second look at the tree (see scanExtra).
func (im *Image) scan(extra bool) (*meta.Manifest, *scanExtra, error) {
	// The index is read while the walk reads the tree: Keep is only
	// consulted once the walk is over.
	type lsResult struct {
		set     *pathSet
		outside func(string) bool
		ix      *git.Index
		err     error
	}
	lsDone := make(chan lsResult, 1)
	go func() {
		if im.staging != nil {
			// RecordWhile: git is still staging the tree; the walk goes
			// on meanwhile, and the index is read once git is done.
			end := trace.Region("wait for git add")
			err := im.staging()
			end()
			if err != nil {
				lsDone <- lsResult{err: err}
				return
			}
		}
		end := trace.Region("read the index")
		set, outside, ix, err := im.indexPaths()
		end()
		if err != nil {
			lsDone <- lsResult{err: fmt.Errorf("listing the index: %w", err)}
			return
		}
		im.metaTracked = set.has(MetaFile)
		// .gitmeta is recorded even before its first 'git add'.
		set.add(MetaFile)
		lsDone <- lsResult{set: set, outside: outside, ix: ix}
	}()
	var (
		ls     lsResult
		lsOnce sync.Once
	)
	index := func() lsResult {
		lsOnce.Do(func() { ls = <-lsDone })
		return ls
	}
	var (
		ex   *scanExtra
		exMu sync.Mutex
	)
	if extra {
		ex = &scanExtra{}
	}
	cache, cachePath := im.loadScanCache()
	opts := meta.ScanOptions{
		Progress: im.Progress,
		Cache:    cache,
		Stats:    extra,
		Keep: func(p string, t meta.Type) bool {
			if !t.GitCarries() {
				return true
			}
			r := index()
			if r.err != nil {
				return false
			}
			ok := r.set.has(p)
			if extra && (!ok || p == MetaFile && !im.metaTracked) {
				exMu.Lock()
				ex.untracked = append(ex.untracked, p)
				exMu.Unlock()
			}
			return ok
		},
	}
	if im.staging != nil {
		// git is hashing the tree on one CPU: one walker, on the other.
		opts.Workers = 1
	}
	end := trace.Region("scan")
	m, stats, err := meta.ScanStats(im.Root, opts)
	end()
	if r := index(); r.err != nil {
		return nil, nil, r.err
	}
	if err != nil {
		return nil, nil, err
	}
	if ex != nil {
		ex.stats, ex.ix = stats, index().ix
	}
	im.outside, im.index, im.unseen = index().outside, index().ix, nil
	if im.outside != nil {
		if ex != nil {
			ex.stats = nil // entries are added below: git looks for itself
		}
		if err := im.keepOutside(m); err != nil {
			return nil, nil, err
		}
	}
	if cache != nil {
		trace.Printf("scan cache: xattrs of %d of %d objects reused", cache.Hits(), len(m.Entries))
		end = trace.Region("save scan cache")
		if err := cache.Save(cachePath); err != nil {
			// Only speed is lost: the next scan reads every xattr again.
			trace.Printf("scan cache: %v", err)
		}
		end()
	}
	end = trace.Region("git check-ignore")
	var stp *[]meta.StatData
	if ex != nil {
		stp = &ex.stats
	}
	err = im.dropIgnored(m, stp)
	end()
	if err != nil {
		return nil, nil, err
	}
	trace.Printf("scan: %d entries", len(m.Entries))
	return m, ex, nil
}

// keepOutside adds to a scan what a sparse checkout keeps out of the work
// tree, exactly as .gitmeta records it (the work tree's .gitmeta, or
// HEAD's when that cannot be read): what the scan could not see is never
// recorded as gone. .gitmeta itself must be in the tree.
func (im *Image) keepOutside(m *meta.Manifest) error {
	if im.outside(MetaFile) {
		return fmt.Errorf("%s is outside the sparse checkout, so its entries cannot be kept; add it: git sparse-checkout add /%s (or disable the sparse checkout)", MetaFile, MetaFile)
	}
	base, err := im.ReadWorktreeMeta()
	if err != nil {
		if base, err = im.MetaAt("HEAD"); err != nil || base == nil {
			return nil
		}
	}
	var add []meta.Entry
	for _, e := range base.Entries {
		if im.outside(e.Path) && m.Lookup(e.Path) == nil {
			add = append(add, e)
		}
	}
	if len(add) > 0 {
		m.Entries = append(m.Entries, add...)
		m.Sort()
		trace.Printf("scan: kept %d entries a sparse checkout leaves out of the tree", len(add))
	}
	im.unseen = unseenOutside(im.index, m)
	return nil
}

// unseenOutside lists the tracked files a scan has no entry for: a file
// staged while the sparse checkout included it, then left out of the work
// tree when the checkout was narrowed, has no entry to keep and no file to
// read its owner and mode from. Record refuses to write such a .gitmeta
// (see unseenError); status leaves paths outside the checkout alone.
func unseenOutside(ix *git.Index, m *meta.Manifest) []string {
	if ix == nil {
		return nil
	}
	var missing []string
	for i := range ix.Entries {
		e := &ix.Entries[i]
		if e.Stage != 0 || !e.SkipWorktree || e.SparseDir() || e.Mode == 0o160000 {
			continue
		}
		if m.Lookup(e.Path) == nil {
			missing = append(missing, e.Path)
		}
	}
	return missing
}

// unseenError is Record's refusal for the files unseenOutside found, with
// advice that works in the checkout's mode (cone mode takes directories,
// the pattern mode patterns).
func (im *Image) unseenError() error {
	missing := im.unseen
	if len(missing) == 0 {
		return nil
	}
	shown := missing
	if len(shown) > 10 {
		shown = shown[:10]
	}
	more := ""
	if n := len(missing) - len(shown); n > 0 {
		more = fmt.Sprintf("\n\t... and %d more", n)
	}
	add := "/" + path.Dir(missing[0]) + "/"
	if cone, err := im.Git.ConfigBool("core.sparseCheckoutCone", true); err == nil && cone {
		add = path.Dir(missing[0])
	}
	return fmt.Errorf("these staged files are outside the sparse checkout and .gitmeta has no entry for them, so their owner and mode cannot be read:\n\t%s%s\n"+
		"Bring them back into the work tree and commit again ('git sparse-checkout add %s', and narrow it again afterwards), or unstage them ('git rm --cached -- PATH')",
		strings.Join(shown, "\n\t"), more, add)
}

// ScanCacheFile is where, inside a worktree's git dir, Scan keeps the
// extended attributes it read (see meta.ScanCache).
const ScanCacheFile = "onesis/scan-cache"

// loadScanCache returns the work tree's scan cache and its path, or nil
// when onesis.scanCache is false or the git dir cannot hold it. A damaged
// cache is treated as empty.
func (im *Image) loadScanCache() (*meta.ScanCache, string) {
	if on, err := im.Git.ConfigBool("onesis.scanCache", true); err != nil || !on {
		return nil, ""
	}
	path := filepath.Join(im.Git.GitDir, filepath.FromSlash(ScanCacheFile))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, ""
	}
	c, err := meta.LoadScanCache(path)
	if err != nil {
		trace.Printf("scan cache: %v (starting empty)", err)
	}
	return c, path
}

// dropIgnored removes ignored entries that the index cannot vouch for
// (empty-to-git directories, with everything under them, and specials),
// and their stat data from *stats when that is not nil.
func (im *Image) dropIgnored(m *meta.Manifest, stats *[]meta.StatData) error {
	var cands []string
	for i := range m.Entries {
		e := &m.Entries[i]
		if e.IsRoot() {
			continue
		}
		if (e.Type == meta.TypeDir && e.Empty) || !e.Type.GitCarries() && e.Type != meta.TypeDir {
			cands = append(cands, e.Path)
		}
	}
	ignored, err := im.Git.CheckIgnored(cands)
	if err != nil || len(ignored) == 0 {
		return err
	}
	gone := func(p string) bool {
		for q := p; q != "."; q = meta.Parent(q) {
			if ignored[q] {
				return true
			}
		}
		return false
	}
	kept := m.Entries[:0]
	var keptStats []meta.StatData
	if stats != nil && *stats != nil {
		keptStats = (*stats)[:0]
	}
	removed := map[string]string{} // removed hard-link primary -> new primary
	for i, e := range m.Entries {
		if gone(e.Path) {
			if e.Hardlink == "" {
				removed[e.Path] = ""
			}
			continue
		}
		if e.Hardlink != "" {
			if np, ok := removed[e.Hardlink]; ok {
				// The group's primary was ignored: promote this entry.
				if np == "" {
					removed[e.Hardlink] = e.Path
					e.Hardlink = ""
				} else {
					e.Hardlink = np
				}
			}
		}
		kept = append(kept, e)
		if keptStats != nil {
			keptStats = append(keptStats, (*stats)[i])
		}
	}
	m.Entries = kept
	if keptStats != nil {
		*stats = keptStats
	}
	return nil
}

// Record scans the tree and writes .gitmeta atomically (only when its bytes
// change). With stage set, .gitmeta is then added to the index. It reports
// whether the file changed.
func (im *Image) Record(stage bool) (bool, *meta.Manifest, error) {
	im.recorded = nil
	im.removeStaleTemps()
	// Create .gitmeta first, so its own entry is in the very first record.
	if _, err := os.Lstat(im.MetaPath()); errors.Is(err, os.ErrNotExist) {
		if err := os.WriteFile(im.MetaPath(), nil, 0o644); err != nil {
			return false, nil, fmt.Errorf("creating .gitmeta: %w", err)
		}
	}
	m, err := im.Scan()
	if err != nil {
		return false, nil, err
	}
	if err := im.unseenError(); err != nil {
		return false, nil, err
	}
	end := trace.Region("encode and write .gitmeta")
	b, err := m.Bytes()
	changed := false
	if err == nil {
		changed, err = meta.WriteBytes(im.MetaPath(), b, 0o644)
	}
	end()
	if err != nil {
		return false, nil, fmt.Errorf("writing .gitmeta: %w", err)
	}
	// The tree now matches .gitmeta by construction.
	im.saveApplied(b)
	im.recorded = b
	if stage {
		if !changed && im.metaTracked && im.metaStagedAsIs() {
			trace.Printf("git add .gitmeta: skipped, the index already holds it")
			return changed, m, nil
		}
		defer trace.Region("git add .gitmeta")()
		if err := im.Git.Add(MetaFile); err != nil {
			return changed, m, im.lockHint(err)
		}
	}
	return changed, m, nil
}

// RecordWhile is Record(true) for a tree that git is staging at the same
// time: stage runs the git command (git onesis init's 'git add -A') while
// the tree is walked on the other CPU. Which files are recorded depends on
// the index, and the walk consults it only once the whole tree is read
// (meta.ScanOptions.Keep), so the index is read when stage has returned:
// the result is Record's after stage, in about the time stage alone
// takes. A failure of stage is returned as it is.
func (im *Image) RecordWhile(stage func() error) (bool, *meta.Manifest, error) {
	done := make(chan error, 1)
	var once sync.Once
	var stageErr error
	im.staging = func() error {
		once.Do(func() { stageErr = <-done })
		return stageErr
	}
	defer func() { im.staging = nil }()
	go func() { done <- stage() }()
	changed, m, err := im.Record(true)
	// The walk may have failed before it waited: stage still finishes
	// before this returns, and its failure comes first.
	if serr := im.staging(); serr != nil {
		return false, nil, serr
	}
	return changed, m, err
}

// Recorded returns the .gitmeta bytes the last Record wrote (or found
// already there), or nil: what the file holds, without reading it back.
func (im *Image) Recorded() []byte { return im.recorded }

// lockHint turns git's "index.lock exists" failure into what to do about
// it; other errors are returned as they are.
func (im *Image) lockHint(err error) error {
	lock := im.Git.IndexFile() + ".lock"
	if _, serr := os.Lstat(lock); serr != nil || !strings.Contains(err.Error(), "index.lock") {
		return err
	}
	return fmt.Errorf("cannot stage .gitmeta: %s exists. Another git process is using the index, or one was killed while it did (an interrupted 'git onesis record', say). If no git process is running in this repository, remove it (rm %s) and run the command again: %w", lock, lock, err)
}

// metaStagedAsIs reports whether the index entry of .gitmeta matches the
// work-tree file (stat data, or content where git finds the stat data
// racy), so staging it again would change nothing. The index the scan
// read answers when its stat data for .gitmeta is exactly the file's and
// not racy; otherwise 'git diff-files' is asked, which reads the index
// without rewriting it, as 'git add' does even for an unchanged file.
func (im *Image) metaStagedAsIs() bool {
	if ix := im.index; ix != nil {
		k := sort.Search(len(ix.Entries), func(k int) bool { return ix.Entries[k].Path >= MetaFile })
		var st unix.Stat_t
		if k < len(ix.Entries) && ix.Entries[k].Path == MetaFile && unix.Lstat(im.MetaPath(), &st) == nil {
			if sd := meta.StatDataOf(&st); provenClean(ix, &ix.Entries[k], &sd) {
				return true
			}
		}
	}
	defer trace.Region("git diff-files .gitmeta")()
	_, err := im.Git.Run("--literal-pathspecs", "diff-files", "--quiet", "--", MetaFile)
	return err == nil
}

// staleTemp matches the temporary files an atomic write of .gitmeta leaves
// behind when it is killed before its rename.
var staleTemp = regexp.MustCompile(`^\.gitmeta[0-9]+$`)

// removeStaleTemps deletes such leftovers, so they neither show up as
// untracked files nor get recorded.
func (im *Image) removeStaleTemps() {
	ents, err := os.ReadDir(im.Root)
	if err != nil {
		return
	}
	for _, e := range ents {
		if e.Type().IsRegular() && staleTemp.MatchString(e.Name()) {
			os.Remove(filepath.Join(im.Root, e.Name()))
		}
	}
}

// ApplyOptions controls ApplyTree.
type ApplyOptions struct {
	// Old is the manifest previously applied (for an incremental apply).
	Old *meta.Manifest
	// OldPartial says Old holds only the entries whose .gitmeta lines
	// changed (meta.DiffLines), and Changed the paths whose lines are new
	// or changed.
	OldPartial bool
	Changed    []string
	// Paths are files git rewrote (always visited, their parent
	// directories too).
	Paths  []string
	DryRun bool
	Log    func(string)
	// Outside reports paths a sparse checkout leaves out (see
	// meta.ApplyOptions.Outside); nil when the checkout is not sparse.
	Outside func(string) bool
	// Index is the index as the caller read it, if it did: the refresh
	// after the apply reuses it while the file is unchanged.
	Index *git.Index
	// IndexView, if the caller walked the index without reading it
	// (git.IndexChangesBetween), lets the refresh read only the entries
	// it needs while the file is unchanged.
	IndexView *git.IndexView
	// Applied, if set, is called once the tree is applied (not in a dry
	// run, not after a failure that stopped the apply), before git's
	// index is refreshed.
	Applied func()
}

// ApplyTree makes the work tree match m, then refreshes git's index for the
// entries it touched so the next 'git status' does not re-hash them.
func (im *Image) ApplyTree(m *meta.Manifest, o ApplyOptions) (*meta.ApplyResult, error) {
	end := trace.Region("apply")
	paths := withParents(o.Paths)
	if len(o.Changed) > 0 {
		paths = append(paths, o.Changed...)
	}
	res, err := meta.Apply(im.Root, m, meta.ApplyOptions{Old: o.Old, OldPartial: o.OldPartial, Paths: paths, DryRun: o.DryRun, Log: o.Log, Outside: o.Outside})
	end()
	if err != nil {
		return res, err
	}
	if !o.DryRun && o.Applied != nil {
		o.Applied()
	}
	if !o.DryRun && len(res.Touched) > 0 {
		defer trace.Region("refresh index")()
		known := o.Index
		if known == nil && o.IndexView != nil {
			var err error
			if known, err = o.IndexView.Read(gitCarried(m, res.Touched)); err != nil {
				trace.Printf("refresh index: %v; reading it again", err)
				known = nil
			}
		}
		if err := im.refreshTouched(m, res, known); err != nil {
			return res, fmt.Errorf("refreshing the index after apply: %w", err)
		}
	}
	return res, nil
}

// refreshTouched brings git's index up to date for the files and symlinks
// an apply changed (the ctime trap: chown, chmod and setxattr move ctime,
// and git would then read each file again to learn its content did not
// change). Where the apply's own lstat before its change matched the
// entry's stat data exactly, and the file still has the inode, size and
// modification time git recorded, only the apply touched it since git
// last looked: the entry gets the new ctime and owner in place, in one
// write of the index under its lock. An entry that cannot be proven so is
// decided as git's refresh would decide it (contentRefresher: the file is
// read and compared with the entry's blob) where git would only hash the
// file's bytes. Whatever is left (and everything, when another git process
// holds the index) is left to git's own refresh.
func (im *Image) refreshTouched(m *meta.Manifest, res *meta.ApplyResult, known *git.Index) error {
	var rest []string
	patched, hashed, kept := 0, 0, 0
	// Unless the caller read the index whole, only the entries of what the
	// apply touched are read of it, and the attributes files
	// (plainContent looks for them).
	want := map[string]bool{}
	for _, p := range gitCarried(m, res.Touched) {
		want[p] = true
	}
	keep := func(p []byte) bool {
		return want[string(p)] || bytes.HasSuffix(p, []byte(".gitattributes")) && (len(p) == len(".gitattributes") || p[len(p)-len(".gitattributes")-1] == '/')
	}
	err := im.Git.UpdateIndexFileFunc(known, keep, func(ix *git.Index) *git.IndexPatch {
		rest = rest[:0]
		hashed, kept = 0, 0
		var ups []git.StatUpdate
		var cr *contentRefresher
		defer func() {
			if cr != nil {
				cr.close()
			}
		}()
		k := 0
		for t, p := range res.Touched {
			if e := m.Lookup(p); e == nil || !e.Type.GitCarries() {
				continue
			}
			for k < len(ix.Entries) && ix.Entries[k].Path < p {
				k++
			}
			if k == len(ix.Entries) || ix.Entries[k].Path != p {
				continue // not in the index: nothing for git to refresh
			}
			var before meta.StatData
			if t < len(res.Before) {
				before = res.Before[t]
			}
			if u, ok := im.metadataOnly(ix, k, &before); ok {
				ups = append(ups, u)
				continue
			}
			// Not provable from stat data (a file git wrote in the
			// index's own second, which git smudged): what git's refresh
			// would do, by reading the file as git would.
			if cr == nil {
				cr = im.newContentRefresher(ix)
			}
			switch u, v := cr.decide(k); v {
			case gitRefreshes:
				ups = append(ups, u)
				hashed++
			case gitKeeps:
				kept++
			default:
				rest = append(rest, p)
			}
		}
		patched = len(ups)
		if len(ups) == 0 {
			return nil
		}
		return ix.WithStat(ups)
	})
	if errors.Is(err, git.ErrIndexLocked) || errors.Is(err, git.ErrSplitIndex) {
		trace.Printf("refresh index: %v; git refreshes it", err)
		return im.Git.WithEnv(NestedEnv + "=1").RefreshIndex(gitCarried(m, res.Touched))
	}
	if err != nil {
		return err
	}
	trace.Printf("refresh index: %d entries updated in place (%d of them after reading the file), %d modified as git would leave them, %d left to git: %s", patched, hashed, kept, len(rest), traceList(rest))
	if len(rest) == 0 {
		return nil
	}
	// The refresh writes the index, which runs post-index-change: that
	// hook has nothing to do for our own refresh.
	return im.Git.WithEnv(NestedEnv + "=1").RefreshIndexEntries(rest)
}

// metadataOnly reports whether index entry k's file was changed only in
// its metadata since git recorded its stat data: before (the apply's
// lstat before its change) is exactly that stat data (for a racy entry,
// all but ctime and owner), and the file now has the same type,
// executable bit, inode, device, size and modification time. It returns
// the entry's new ctime and owner.
func (im *Image) metadataOnly(ix *git.Index, k int, before *meta.StatData) (git.StatUpdate, bool) {
	e := &ix.Entries[k]
	// Racy to the nanosecond, so to any build of git, sub-second time
	// stamps or not.
	racy := int64(e.MtimeSec) > ix.Mtime.Sec || int64(e.MtimeSec) == ix.Mtime.Sec && int64(e.MtimeNsec) >= ix.Mtime.Nsec
	if racy {
		// git checks a racy entry's content whatever its stat data says
		// (UpdateIndexFile keeps the index time): the new ctime only
		// spares it a false change of stat data.
		b := *before
		b.CtimeSec, b.CtimeNsec, b.UID, b.GID = e.CtimeSec, e.CtimeNsec, e.UID, e.GID
		before = &b
	}
	if e.Stage != 0 || e.SkipWorktree || e.IntentToAdd || e.AssumeValid || !statMatches(e, before) {
		return git.StatUpdate{}, false
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(im.Root, e.Path), &st); err != nil {
		return git.StatUpdate{}, false
	}
	now := meta.StatDataOf(&st)
	same := *before
	same.CtimeSec, same.CtimeNsec, same.UID, same.GID = now.CtimeSec, now.CtimeNsec, now.UID, now.GID
	same.Mode = same.Mode&^0o7677 | now.Mode&0o7677 // all but the owner's x bit may change
	if now != same {
		return git.StatUpdate{}, false
	}
	return git.StatUpdate{Entry: k, CtimeSec: now.CtimeSec, CtimeNsec: now.CtimeNsec, UID: now.UID, GID: now.GID}, true
}

// Summary renders the one-line summaries an apply leaves for the admin:
// ownership not applied as non-root, missing files, errors.
func Summary(res *meta.ApplyResult) []string {
	var out []string
	if res == nil {
		return nil
	}
	var skipped []string
	if res.OwnershipSkipped > 0 {
		skipped = append(skipped, "ownership of "+thousands(res.OwnershipSkipped)+" entries")
	}
	if res.DevicesSkipped > 0 {
		skipped = append(skipped, thousands(res.DevicesSkipped)+" devices")
	}
	if len(skipped) > 0 || res.OwnerAccessKept > 0 {
		line := "not applied (not root): " + strings.Join(skipped, ", ")
		if len(skipped) == 0 {
			line = "not applied (not root): nothing but modes"
		}
		if res.OwnerAccessKept > 0 {
			line += fmt.Sprintf("; %s files and directories keep their owner's access, which .gitmeta records without (root needs none)", thousands(res.OwnerAccessKept))
		}
		out = append(out, line+"; 'git onesis ls' shows what is recorded")
	}
	if n := len(res.Missing); n > 0 {
		ex := res.Missing[0]
		out = append(out, fmt.Sprintf("%s entries in .gitmeta are missing from the work tree (e.g. %s); check them out, or run 'git onesis record'", thousands(n), strings.TrimPrefix(meta.EscapePath(ex), "./")))
	}
	return out
}

func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// TopRelative turns a path given on the command line (relative to the
// current directory, or absolute) into a work-tree-relative path. Paths
// outside the work tree are an error.
func (im *Image) TopRelative(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	root, err := filepath.EvalSymlinks(im.Root)
	if err != nil {
		root = im.Root
	}
	if d, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil {
		abs = filepath.Join(d, filepath.Base(abs))
	}
	rel, err := filepath.Rel(root, abs)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("%s is outside the work tree %s", p, im.Root)
	}
	return filepath.ToSlash(rel), nil
}

// gitCarried keeps the touched paths that git has index entries for
// (files and symlinks): only those can look stat-dirty to git.
func gitCarried(m *meta.Manifest, touched []string) []string {
	var out []string
	for _, p := range touched {
		if e := m.Lookup(p); e != nil && e.Type.GitCarries() {
			out = append(out, p)
		}
	}
	return out
}

// withParents adds the parent directories of paths git rewrote: git creates
// missing directories with the umask, so they need their recorded mode too.
func withParents(paths []string) []string {
	if len(paths) == 0 {
		return paths
	}
	seen := make(map[string]bool, len(paths))
	out := make([]string, 0, len(paths)*2)
	for _, p := range paths {
		for q := p; q != "." && !seen[q]; q = meta.Parent(q) {
			seen[q] = true
			out = append(out, q)
		}
	}
	return out
}
