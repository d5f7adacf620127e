package meta

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// ApplyOptions controls Apply.
type ApplyOptions struct {
	// Old is the manifest the tree was last applied from. When set, Apply
	// is incremental: it visits only entries whose metadata differs between
	// Old and the new manifest, plus Paths (and the other members of any
	// hard-link group one of them belongs to). Entries in Old but not in the
	// new manifest whose type git does not carry (dir, char, block, fifo,
	// socket) are removed if they still match Old (directories only if
	// empty). Nil means a full apply visiting every entry.
	Old *Manifest
	// OldPartial says Old holds only the entries whose lines changed
	// (LineDiff.Old): an entry Old lacks is unchanged, not new, and the
	// caller names the changed and added entries in Paths.
	OldPartial bool
	// Paths are extra paths to visit even if their entries did not change
	// (files git rewrote during a checkout; git writes them with the
	// umask). Paths the manifest does not name are ignored.
	Paths []string
	// DryRun makes Apply report (through Log and the counters) what it
	// would change without changing anything. Touched stays empty.
	DryRun bool
	// Log, if set, gets one line per change made (verbose mode), e.g.
	// "chmod 04755 usr/bin/su"; in a dry run, per change it would make. A
	// change that was refused (a chown as non-root) is not logged.
	Log func(string)
	// Outside, if set, reports paths a sparse checkout leaves out of the
	// work tree. Such an entry is applied if its object is in the tree
	// anyway (git writes a skip-worktree file a merge touches), but never
	// created nor reported missing, and objects of Old there are never
	// removed.
	Outside func(path string) bool
}

// ApplyResult summarises Apply.
type ApplyResult struct {
	// Visited counts the entries examined; Changed those whose object Apply
	// changed or created; Created the objects it created (directories,
	// devices, fifos, sockets, symlinks, hard links); Removed the objects of
	// the old manifest it removed.
	Visited, Changed, Created, Removed int
	// OwnershipSkipped counts entries whose uid/gid (or xattrs in the
	// security, trusted or system namespaces) could not be set because we
	// are not root (EPERM as non-root); never an error.
	OwnershipSkipped int
	// DevicesSkipped counts char and block devices that could not be
	// created because we are not root; never an error.
	DevicesSkipped int
	// OwnerAccessKept counts, as non-root, files and directories given
	// their owner's access that .gitmeta records without it (see
	// applier.mode); never an error.
	OwnerAccessKept int
	// Missing lists paths of git-carried files/symlinks that the manifest
	// names but the tree lacks (apply cannot make content).
	Missing []string
	// Touched lists paths whose inode metadata Apply changed (callers
	// refresh git's index for them), in manifest order.
	Touched []string
	// Before holds, index for index with Touched, what lstat said of each
	// touched file or symlink before Apply changed it (the zero StatData
	// for other types), so a caller can prove only Apply changed it since
	// git last recorded its stat data.
	Before []StatData
	// Errors holds per-entry failures (*ApplyError); Apply carries on past
	// them.
	Errors []error
}

// ApplyError is one entry that Apply could not (fully) apply.
type ApplyError struct {
	Path string // manifest path, unescaped
	Op   string // what was being done: "chown", "chmod", "mknod", "apply", ...
	Err  error
}

// Error renders "<op> <escaped path>: <err>".
func (e *ApplyError) Error() string {
	return fmt.Sprintf("%s %s: %v", e.Op, displayPath(e.Path), e.Err)
}

// Unwrap returns the underlying error.
func (e *ApplyError) Unwrap() error { return e.Err }

// ErrGitDir is wrapped by the ApplyError for a path inside .git, which
// Apply never touches.
var ErrGitDir = errors.New("path is inside .git, which belongs to git; apply never touches it")

// Apply makes the metadata of the tree at root match m: it creates missing
// directories, devices, fifos, sockets, symlinks and hard links, and sets
// owner, mode and xattrs. It never follows a symlink, neither in a parent
// directory nor at the final name, so nothing outside root is ever touched.
// Work already matching the manifest costs one fstatat (plus one llistxattr)
// per entry. Per-entry failures go to ApplyResult.Errors; the returned error
// is for failures that stop the whole apply.
func Apply(root string, m *Manifest, opts ApplyOptions) (*ApplyResult, error) {
	if m == nil {
		return nil, errors.New("apply: no manifest given")
	}
	rootfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("apply: opening the work tree %s: %w", root, err)
	}
	defer unix.Close(rootfd)
	var st unix.Stat_t
	if err := unix.Stat(procFD(rootfd), &st); err != nil {
		return nil, fmt.Errorf("apply: %s is not accessible (%w); apply needs /proc mounted to reach files without following symlinks", procFD(rootfd), err)
	}
	a := &applier{
		rootfd:  rootfd,
		m:       m,
		opts:    opts,
		res:     &ApplyResult{},
		nonRoot: os.Geteuid() != 0,
		changed: make(map[int]bool),
		before:  make(map[int]StatData),
		pid:     os.Getpid(),
	}
	a.stack.root = rootfd
	a.aux.root = rootfd
	defer a.stack.close()
	defer a.aux.close()
	if opts.DryRun {
		a.dryDirs = make(map[string]bool)
	}

	a.order = sortedOrder(m)
	a.lookup = lookupFunc(m)
	a.primaries = make(map[string]bool)
	for i := range m.Entries {
		if h := m.Entries[i].Hardlink; h != "" {
			a.primaries[h] = true
		}
	}
	if opts.Old != nil {
		a.oldLookup = lookupFunc(opts.Old)
	}
	visit := a.visitSet()
	if visit == nil && len(m.Entries) >= precheckMin {
		clean := a.cleanSet()
		visit = make([]bool, len(clean))
		for i, c := range clean {
			visit[i] = !c
			if c {
				a.res.Visited++
			}
		}
	}

	if opts.Old != nil {
		a.removeStale()
	}
	for _, i := range a.order {
		if visit == nil || visit[i] {
			a.applyEntry(i)
		}
	}
	a.fixDirModes()

	for _, i := range a.order {
		if a.changed[i] && !opts.DryRun {
			a.res.Touched = append(a.res.Touched, m.Entries[i].Path)
			a.res.Before = append(a.res.Before, a.before[i])
		}
	}
	a.res.Changed = len(a.changed)
	return a.res, nil
}

type applier struct {
	rootfd    int
	m         *Manifest
	opts      ApplyOptions
	res       *ApplyResult
	nonRoot   bool
	stack     dirStack // parent chain of the entry being applied
	aux       dirStack // parent chain of hard-link primaries and removals
	order     []int    // entry indices in canonical order
	lookup    func(string) *Entry
	oldLookup func(string) *Entry
	primaries map[string]bool  // paths other entries name in hardlink=
	dirs      []int            // directories whose mode is fixed in the last pass
	changed   map[int]bool     // entries changed (or, in a dry run, that would be)
	before    map[int]StatData // files and symlinks: lstat before any change
	dryDirs   map[string]bool  // directories a dry run would have created
	pid       int
	tmpSeq    int
}

// sortedOrder returns the entry indices in canonical order, without
// reordering a manifest built out of order in code.
func sortedOrder(m *Manifest) []int {
	order := make([]int, len(m.Entries))
	sorted := true
	for i := range order {
		order[i] = i
		if i > 0 && !Less(m.Entries[i-1].Path, m.Entries[i].Path) {
			sorted = false
		}
	}
	if !sorted {
		sort.SliceStable(order, func(x, y int) bool { return Less(m.Entries[order[x]].Path, m.Entries[order[y]].Path) })
	}
	return order
}

// isSorted reports whether m's entries are in canonical order.
func isSorted(m *Manifest) bool {
	for i := 1; i < len(m.Entries); i++ {
		if !Less(m.Entries[i-1].Path, m.Entries[i].Path) {
			return false
		}
	}
	return true
}

// lookupFunc finds entries by path: binary search when m is sorted, a map
// otherwise.
func lookupFunc(m *Manifest) func(string) *Entry {
	for i := 1; i < len(m.Entries); i++ {
		if !Less(m.Entries[i-1].Path, m.Entries[i].Path) {
			idx := m.Index()
			return func(p string) *Entry { return idx[p] }
		}
	}
	return m.Lookup
}

// visitSet decides which entries an incremental apply visits; nil means
// all of them.
func (a *applier) visitSet() []bool {
	if a.opts.Old == nil {
		return nil
	}
	m, old := a.m, a.opts.Old
	visit := make([]bool, len(m.Entries))
	secondaries := make(map[string][]int)
	// Both manifests are sorted as a rule: walk them side by side.
	merge := isSorted(m) && isSorted(old)
	j := 0
	for i := range m.Entries {
		e := &m.Entries[i]
		var o *Entry
		if merge {
			for j < len(old.Entries) && Less(old.Entries[j].Path, e.Path) {
				j++
			}
			if j < len(old.Entries) && old.Entries[j].Path == e.Path {
				o = &old.Entries[j]
			}
		} else {
			o = a.oldLookup(e.Path)
		}
		if o == nil && !a.opts.OldPartial || o != nil && !o.Equal(e) {
			visit[i] = true
		}
		if e.Hardlink != "" {
			secondaries[e.Hardlink] = append(secondaries[e.Hardlink], i)
		}
	}
	var pos func(string) (int, bool)
	if isSorted(m) {
		pos = func(p string) (int, bool) {
			i := sort.Search(len(m.Entries), func(i int) bool { return !Less(m.Entries[i].Path, p) })
			return i, i < len(m.Entries) && m.Entries[i].Path == p
		}
	} else if len(a.opts.Paths) > 0 || len(secondaries) > 0 {
		idx := make(map[string]int, len(m.Entries))
		for i := range m.Entries {
			idx[m.Entries[i].Path] = i
		}
		pos = func(p string) (int, bool) { i, ok := idx[p]; return i, ok }
	}
	for _, p := range a.opts.Paths {
		if err := ValidPath(p); err != nil {
			a.fail(p, "apply", err)
			continue
		}
		if i, ok := pos(p); ok {
			visit[i] = true
		}
	}
	// A rewritten or changed member of a hard-link group means the whole
	// group has to be relinked.
	for primary, secs := range secondaries {
		pi, ok := pos(primary)
		if !ok {
			continue
		}
		hit := visit[pi]
		for _, s := range secs {
			hit = hit || visit[s]
		}
		if hit {
			visit[pi] = true
			for _, s := range secs {
				visit[s] = true
			}
		}
	}
	return visit
}

// outside reports whether a sparse checkout leaves path out of the tree.
func (a *applier) outside(path string) bool {
	return a.opts.Outside != nil && a.opts.Outside(path)
}

func (a *applier) logf(format string, args ...any) {
	if a.opts.Log != nil {
		a.opts.Log(fmt.Sprintf(format, args...))
	}
}

// act does f (nothing in a dry run) and logs the change only once it is
// done, so the log never claims a change that was refused.
func (a *applier) act(f func() error, format string, args ...any) error {
	err := a.do(f)
	if err == nil {
		a.logf(format, args...)
	}
	return err
}

// mode is the mode to give e's object. Root needs no permission bit to
// read or change anything; a non-root user does, on the very clone it
// owns: a file recorded 0000 (etc/shadow) would stop 'git status' and the
// tar export reading it, a directory recorded 0555 would stop git checking
// files out into it. So as non-root the owner keeps read access to files
// and full access to directories; status does not count it as drift.
func (a *applier) mode(e *Entry) uint32 {
	if !a.nonRoot {
		return e.Mode
	}
	switch e.Type {
	case TypeFile:
		return e.Mode | 0o400
	case TypeDir:
		return e.Mode | 0o700
	}
	return e.Mode
}

func (a *applier) fail(path, op string, err error) {
	a.res.Errors = append(a.res.Errors, &ApplyError{Path: path, Op: op, Err: err})
}

// checkEntry validates what a manifest built in code could get wrong.
func checkEntry(e *Entry) error {
	if err := checkApplyPath(e.Path); err != nil {
		return err
	}
	if e.Hardlink != "" {
		if err := checkApplyPath(e.Hardlink); err != nil {
			return fmt.Errorf("hardlink=: %w", err)
		}
		if e.Hardlink == e.Path {
			return errors.New("hardlink= names the entry itself")
		}
	}
	switch {
	case e.Type > TypeSocket:
		return fmt.Errorf("unknown type %d", e.Type)
	case e.Mode > 07777:
		return fmt.Errorf("mode %#o has bits beyond 07777", e.Mode)
	case e.UID == ^uint32(0) || e.GID == ^uint32(0):
		return errors.New("uid/gid 4294967295 is reserved (chown reads it as \"leave unchanged\")")
	case e.Type == TypeSymlink && (e.Link == "" || strings.IndexByte(e.Link, 0) >= 0):
		return errors.New("symlink target is empty or contains a NUL byte")
	case e.IsRoot() && e.Type != TypeDir && e.Type != TypeUnknown:
		return fmt.Errorf("the top of the tree is recorded as %s", typeNoun(e.Type))
	}
	for _, x := range e.Xattrs {
		if x.Name == "" || strings.IndexByte(x.Name, 0) >= 0 {
			return fmt.Errorf("bad xattr name %q", x.Name)
		}
	}
	return nil
}

// checkApplyPath is ValidPath plus the refusal of .git.
func checkApplyPath(p string) error {
	if err := ValidPath(p); err != nil {
		return err
	}
	first, _, _ := strings.Cut(p, "/")
	if first == ".git" {
		return ErrGitDir
	}
	return nil
}

// locate opens the parent of path on stack s and returns it with the final
// name; the top of the tree is (rootfd, "").
func (a *applier) locate(s *dirStack, path string) (int, string, error) {
	if path == "." {
		s.truncate(0)
		return a.rootfd, "", nil
	}
	fd, err := s.open(Parent(path))
	if err != nil {
		return -1, "", err
	}
	return fd, path[strings.LastIndexByte(path, '/')+1:], nil
}

// dryParentPending reports whether path's parent is missing only because a
// dry run did not really create it.
func (a *applier) dryParentPending(path string) bool {
	if a.dryDirs == nil {
		return false
	}
	return a.dryDirs[Parent(path)]
}

func (a *applier) applyEntry(i int) {
	e := &a.m.Entries[i]
	a.res.Visited++
	if err := checkEntry(e); err != nil {
		a.fail(e.Path, "apply", err)
		return
	}
	dirfd, name, err := a.locate(&a.stack, e.Path)
	if err != nil {
		var pe *parentError
		if errors.As(err, &pe) && pe.Err == errParentMissing && a.dryParentPending(e.Path) {
			a.dryCreate(i, e)
			return
		}
		if errors.As(err, &pe) && pe.Err == errParentMissing && a.outside(e.Path) {
			return // not checked out: nothing to apply, nothing missing
		}
		a.fail(e.Path, "apply", err)
		return
	}
	var st unix.Stat_t
	err = lstatAt(dirfd, name, &st)
	if err == unix.ENOENT && a.outside(e.Path) {
		return
	}
	if err == unix.ENOENT {
		if !a.create(i, e, dirfd, name) || a.opts.DryRun {
			return
		}
		err = lstatAt(dirfd, name, &st)
	}
	if err != nil {
		a.fail(e.Path, "lstat", err)
		return
	}
	if t := typeOf(st.Mode); t == TypeFile || t == TypeSymlink {
		defer a.noteBefore(i, StatDataOf(&st))
	}
	if !a.checkType(i, e, dirfd, name, &st) {
		return
	}
	if e.Hardlink != "" && !a.checkLink(i, e, dirfd, name, &st) {
		return
	}
	if e.Type == TypeFile && e.Hardlink == "" && st.Nlink > 1 && !a.primaries[e.Path] && !a.split(i, e, dirfd, name, &st) {
		return
	}
	have := typeOf(st.Mode) // checkType may have replaced the object

	// Owner first: the kernel clears setuid/setgid (and security.capability)
	// on chown, so mode and xattrs must come after it.
	chowned := false
	if st.Uid != e.UID || st.Gid != e.GID {
		switch err := a.act(func() error { return lchownAt(dirfd, name, e.UID, e.GID) }, "chown %d:%d %s", e.UID, e.GID, displayPath(e.Path)); {
		case err == nil:
			chowned = true
			a.changed[i] = true
		case a.nonRoot && (err == unix.EPERM || err == unix.EINVAL):
			// EINVAL: the id is not mapped in our user namespace.
			a.res.OwnershipSkipped++
		default:
			a.fail(e.Path, "chown", fmt.Errorf("setting owner %d:%d: %w", e.UID, e.GID, err))
		}
	}

	switch {
	case have == TypeSymlink:
		// Linux has no symlink modes.
	case have == TypeDir:
		// Fixed in a last pass, deepest first, so that a read-only
		// directory does not stop children being created.
		a.dirs = append(a.dirs, i)
	default:
		want := a.mode(e)
		if want != e.Mode {
			a.res.OwnerAccessKept++
		}
		if st.Mode&07777 != want || (chowned && e.Mode&06000 != 0) {
			if err := a.act(func() error { return chmodNoFollow(dirfd, name, want) }, "chmod %s %s", FormatMode(want), displayPath(e.Path)); err != nil {
				a.fail(e.Path, "chmod", fmt.Errorf("setting mode %s: %w", FormatMode(want), err))
			} else {
				a.changed[i] = true
			}
		}
	}

	// Legacy setgitperms entries record no xattrs; leave whatever is there.
	if e.Type != TypeUnknown {
		a.syncXattrs(i, e, dirfd, name)
	}
}

// noteBefore keeps what lstat said of entry i before it was changed.
func (a *applier) noteBefore(i int, sd StatData) {
	if a.changed[i] {
		a.before[i] = sd
	}
}

// do runs a change unless this is a dry run.
func (a *applier) do(f func() error) error {
	if a.opts.DryRun {
		return nil
	}
	return f()
}

// checkType compares the object's type with the entry. It may replace a
// special file or directory that Apply itself created from Old; anything
// else that differs is reported and left alone.
func (a *applier) checkType(i int, e *Entry, dirfd int, name string, st *unix.Stat_t) bool {
	have := typeOf(st.Mode)
	switch {
	case e.Type == TypeUnknown:
		if have == TypeSymlink {
			a.fail(e.Path, "apply", errors.New("is a symlink in the tree; a legacy setgitperms line is never applied to a symlink, nothing was changed"))
			return false
		}
		return true
	case have == e.Type:
	case (a.replaceable(e.Path, dirfd, name, st) || (special(have) && special(e.Type))) && !e.Type.GitCarries():
		return a.replace(i, e, dirfd, name, st, have, fmt.Sprintf("replacing %s with %s", typeNoun(have), typeNoun(e.Type)))
	default:
		a.fail(e.Path, "apply", fmt.Errorf("is %s in the tree but %s in .gitmeta; not changed", typeNoun(have), typeNoun(e.Type)))
		return false
	}
	switch e.Type {
	case TypeSymlink:
		target, err := readlinkAt(dirfd, name)
		if err != nil {
			a.fail(e.Path, "readlink", err)
			return false
		}
		if target != e.Link {
			a.fail(e.Path, "apply", fmt.Errorf("symlink points to %q in the tree but link=%q in .gitmeta; git carries symlinks, so it was not changed", target, e.Link))
			return false
		}
	case TypeChar, TypeBlock:
		if unix.Major(st.Rdev) != e.Major || unix.Minor(st.Rdev) != e.Minor {
			// A device node holds no data: one with the wrong numbers
			// (a swapped /dev/null, say) is always replaced.
			return a.replace(i, e, dirfd, name, st, have, fmt.Sprintf("replacing device %d,%d with %d,%d",
				unix.Major(st.Rdev), unix.Minor(st.Rdev), e.Major, e.Minor))
		}
	}
	return true
}

// replace removes the object at name (of type have) and creates e in its
// place; it reports whether e now exists and st describes it.
func (a *applier) replace(i int, e *Entry, dirfd int, name string, st *unix.Stat_t, have Type, what string) bool {
	if err := a.act(func() error { return removeAt(dirfd, name, have) }, "remove %s %s", have, displayPath(e.Path)); err != nil {
		a.fail(e.Path, "remove", fmt.Errorf("%s: %w", what, err))
		return false
	}
	a.res.Removed++
	if !a.create(i, e, dirfd, name) || a.opts.DryRun {
		return false
	}
	if err := lstatAt(dirfd, name, st); err != nil {
		a.fail(e.Path, "lstat", err)
		return false
	}
	return true
}

// special reports whether t is a device, fifo or socket: an object that
// holds no data, so replacing one with the recorded kind loses nothing.
func special(t Type) bool {
	return t == TypeChar || t == TypeBlock || t == TypeFifo || t == TypeSocket
}

// replaceable reports whether the object at path is one Apply made from
// the old manifest (a type git does not carry, still exactly as Old
// recorded it), so Apply may remove it.
func (a *applier) replaceable(path string, dirfd int, name string, st *unix.Stat_t) bool {
	if a.oldLookup == nil {
		return false
	}
	o := a.oldLookup(path)
	if o == nil {
		return false
	}
	return matchesOld(o, st)
}

// matchesOld reports whether st is still exactly what o recorded, for a
// type git does not carry.
func matchesOld(o *Entry, st *unix.Stat_t) bool {
	if o.Type == TypeUnknown || o.Type.GitCarries() || typeOf(st.Mode) != o.Type {
		return false
	}
	if st.Mode&07777 != o.Mode || st.Uid != o.UID || st.Gid != o.GID {
		return false
	}
	if o.Type == TypeChar || o.Type == TypeBlock {
		return unix.Major(st.Rdev) == o.Major && unix.Minor(st.Rdev) == o.Minor
	}
	return true
}

func removeAt(dirfd int, name string, t Type) error {
	if t == TypeDir {
		return unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR)
	}
	return unix.Unlinkat(dirfd, name, 0)
}

// create makes a missing object. It reports whether the object now exists
// (or, in a dry run, would).
func (a *applier) create(i int, e *Entry, dirfd int, name string) bool {
	if e.IsRoot() {
		a.fail(e.Path, "apply", errors.New("the top of the tree does not exist"))
		return false
	}
	disp := displayPath(e.Path)
	if e.Hardlink != "" && e.Type != TypeUnknown {
		ok, done := a.linkMissing(i, e, dirfd, name)
		if done {
			return ok
		}
	}
	var err error
	op := "mknod"
	switch e.Type {
	case TypeFile, TypeUnknown:
		a.res.Missing = append(a.res.Missing, e.Path)
		return false
	case TypeSymlink:
		op = "symlink"
		err = a.act(func() error { return unix.Symlinkat(e.Link, dirfd, name) }, "symlink %s -> %s", disp, e.Link)
	case TypeDir:
		op = "mkdir"
		err = a.act(func() error { return unix.Mkdirat(dirfd, name, 0o700) }, "mkdir %s", disp)
		if err == nil && a.dryDirs != nil {
			a.dryDirs[e.Path] = true
		}
	case TypeChar, TypeBlock:
		mode := uint32(unix.S_IFCHR)
		if e.Type == TypeBlock {
			mode = unix.S_IFBLK
		}
		err = a.act(func() error { return unix.Mknodat(dirfd, name, mode, int(unix.Mkdev(e.Major, e.Minor))) }, "mknod %s %d,%d %s", e.Type, e.Major, e.Minor, disp)
		if a.nonRoot && err == unix.EPERM {
			a.res.DevicesSkipped++
			return false
		}
	case TypeFifo:
		err = a.act(func() error { return unix.Mknodat(dirfd, name, unix.S_IFIFO, 0) }, "mkfifo %s", disp)
	case TypeSocket:
		err = a.act(func() error { return unix.Mknodat(dirfd, name, unix.S_IFSOCK, 0) }, "mksock %s", disp)
	}
	if err != nil {
		a.fail(e.Path, op, fmt.Errorf("creating %s: %w", typeNoun(e.Type), err))
		return false
	}
	a.res.Created++
	a.changed[i] = true
	return true
}

// dryCreate accounts, in a dry run, for an entry under a directory the dry
// run would have created.
func (a *applier) dryCreate(i int, e *Entry) {
	if err := checkEntry(e); err != nil {
		a.fail(e.Path, "apply", err)
		return
	}
	switch e.Type {
	case TypeFile, TypeUnknown:
		if e.Hardlink == "" {
			a.res.Missing = append(a.res.Missing, e.Path)
			return
		}
	case TypeDir:
		a.dryDirs[e.Path] = true
	}
	a.logf("create %s %s", e.Type, displayPath(e.Path))
	a.res.Created++
	a.changed[i] = true
}

// linkMissing creates a missing secondary hard link from its primary.
// done is false when the primary is unusable and the caller should create
// the object on its own.
func (a *applier) linkMissing(i int, e *Entry, dirfd int, name string) (ok, done bool) {
	pfd, pname, pst, err := a.primary(e)
	if err != nil {
		if e.Type == TypeFile {
			a.res.Missing = append(a.res.Missing, e.Path)
			return false, true
		}
		return false, false
	}
	if typeOf(pst.Mode) != e.Type {
		a.fail(e.Path, "link", fmt.Errorf("hard-link primary %s is %s in the tree, not %s; not linked", displayPath(e.Hardlink), typeNoun(typeOf(pst.Mode)), typeNoun(e.Type)))
		return false, true
	}
	if err := a.act(func() error { return unix.Linkat(pfd, pname, dirfd, name, 0) }, "link %s => %s", displayPath(e.Path), displayPath(e.Hardlink)); err != nil {
		a.fail(e.Path, "link", fmt.Errorf("linking to %s: %w", displayPath(e.Hardlink), err))
		return false, true
	}
	a.res.Created++
	a.changed[i] = true
	return true, true
}

// primary resolves the primary of e's hard-link group, safely, on the
// auxiliary stack.
func (a *applier) primary(e *Entry) (int, string, *unix.Stat_t, error) {
	pfd, pname, err := a.locate(&a.aux, e.Hardlink)
	if err != nil {
		return -1, "", nil, err
	}
	var st unix.Stat_t
	if err := lstatAt(pfd, pname, &st); err != nil {
		return -1, "", nil, err
	}
	if typeOf(st.Mode) == TypeSymlink || typeOf(st.Mode) == TypeDir {
		return -1, "", nil, fmt.Errorf("is %s", typeNoun(typeOf(st.Mode)))
	}
	return pfd, pname, &st, nil
}

// checkLink makes an existing secondary share its primary's inode. git
// checks hard links out as separate files; when the content is identical
// the secondary is replaced by a link (link to a temporary name, then
// rename over), otherwise it is reported and left alone.
func (a *applier) checkLink(i int, e *Entry, dirfd int, name string, st *unix.Stat_t) bool {
	pfd, pname, pst, err := a.primary(e)
	if err != nil {
		a.fail(e.Path, "link", fmt.Errorf("hard-link primary %s: %w; not linked", displayPath(e.Hardlink), err))
		return true // the entry's own metadata can still be applied
	}
	if pst.Dev == st.Dev && pst.Ino == st.Ino {
		return true
	}
	if typeOf(pst.Mode) != typeOf(st.Mode) {
		a.fail(e.Path, "link", fmt.Errorf("hard-link primary %s is %s in the tree, not %s; not linked", displayPath(e.Hardlink), typeNoun(typeOf(pst.Mode)), typeNoun(typeOf(st.Mode))))
		return true
	}
	switch typeOf(st.Mode) {
	case TypeFile:
		same, err := sameContent(pfd, pname, dirfd, name)
		if err != nil {
			a.fail(e.Path, "link", fmt.Errorf("comparing with hard-link primary %s: %w; not linked", displayPath(e.Hardlink), err))
			return true
		}
		if !same {
			a.fail(e.Path, "link", fmt.Errorf("content differs from its hard-link primary %s; not linked", displayPath(e.Hardlink)))
			return true
		}
	case TypeChar, TypeBlock:
		if st.Rdev != pst.Rdev {
			a.fail(e.Path, "link", fmt.Errorf("device differs from its hard-link primary %s; not linked", displayPath(e.Hardlink)))
			return true
		}
	}
	if a.opts.DryRun {
		a.logf("link %s => %s", displayPath(e.Path), displayPath(e.Hardlink))
		a.changed[i] = true
		return true
	}
	if err := a.relink(pfd, pname, dirfd, name); err != nil {
		a.fail(e.Path, "link", fmt.Errorf("linking to %s: %w", displayPath(e.Hardlink), err))
		return true
	}
	a.logf("link %s => %s", displayPath(e.Path), displayPath(e.Hardlink))
	a.changed[i] = true
	if err := lstatAt(dirfd, name, st); err != nil {
		a.fail(e.Path, "lstat", err)
		return false
	}
	return true
}

// split gives a file that .gitmeta records as standalone an inode of its
// own, when the tree has it hard-linked to something else (say, a link
// group the previous .gitmeta recorded and this one does not): a copy of
// its content under a temporary name is renamed over it. It reports
// whether st describes the object afterwards.
func (a *applier) split(i int, e *Entry, dirfd int, name string, st *unix.Stat_t) bool {
	msg := fmt.Sprintf("unlink %s from its other hard links (copy)", displayPath(e.Path))
	a.changed[i] = true
	if a.opts.DryRun {
		a.logf("%s", msg)
		return true
	}
	a.tmpSeq++
	tmp := fmt.Sprintf(".onesis-split.%d.%d", a.pid, a.tmpSeq)
	if err := copyFileAt(dirfd, name, dirfd, tmp); err != nil {
		delete(a.changed, i)
		a.fail(e.Path, "split", fmt.Errorf("copying it to give it its own inode: %w", err))
		return true // the shared inode's metadata can still be applied
	}
	if err := unix.Renameat(dirfd, tmp, dirfd, name); err != nil {
		unix.Unlinkat(dirfd, tmp, 0)
		delete(a.changed, i)
		a.fail(e.Path, "split", err)
		return true
	}
	a.logf("%s", msg) // logged once done, as every change
	if err := lstatAt(dirfd, name, st); err != nil {
		a.fail(e.Path, "lstat", err)
		return false
	}
	return true
}

// relink atomically replaces dirfd/name with a hard link to pfd/pname.
func (a *applier) relink(pfd int, pname string, dirfd int, name string) error {
	for tries := 0; ; tries++ {
		a.tmpSeq++
		tmp := fmt.Sprintf(".onesis-link.%d.%d", a.pid, a.tmpSeq)
		err := unix.Linkat(pfd, pname, dirfd, tmp, 0)
		if err == unix.EEXIST && tries < 100 {
			continue
		}
		if err != nil {
			return err
		}
		if err := unix.Renameat(dirfd, tmp, dirfd, name); err != nil {
			unix.Unlinkat(dirfd, tmp, 0)
			return err
		}
		return nil
	}
}

// protectedNS reports whether an xattr name is in a namespace only root
// may write.
func protectedNS(attr string) bool {
	return strings.HasPrefix(attr, "security.") || strings.HasPrefix(attr, "trusted.") || strings.HasPrefix(attr, "system.")
}

// syncXattrs makes the object's xattrs exactly the entry's: it sets those
// that differ and removes those the entry lacks, but never removes one it
// cannot read.
func (a *applier) syncXattrs(i int, e *Entry, dirfd int, name string) {
	names, err := listXattrs(dirfd, name)
	if err != nil {
		if len(e.Xattrs) > 0 {
			a.fail(e.Path, "listxattr", err)
		}
		return
	}
	skipped := false
	for _, x := range e.Xattrs {
		if cur, err := getXattr(dirfd, name, x.Name); err == nil && bytes.Equal(cur, x.Value) {
			continue
		}
		err := a.act(func() error { return setXattr(dirfd, name, x.Name, x.Value) }, "setxattr %s %s", x.Name, displayPath(e.Path))
		switch {
		case err == nil:
			a.changed[i] = true
		case a.nonRoot && (err == unix.EPERM || err == unix.EACCES) && protectedNS(x.Name):
			skipped = true
		default:
			a.fail(e.Path, "setxattr", fmt.Errorf("setting %s: %w", x.Name, err))
		}
	}
	for _, n := range names {
		if _, want := e.Xattr(n); want {
			continue
		}
		if _, err := getXattr(dirfd, name, n); err != nil {
			continue // not ours to judge: we could not even read it
		}
		err := a.act(func() error { return removeXattr(dirfd, name, n) }, "rmxattr %s %s", n, displayPath(e.Path))
		switch {
		case err == nil || err == unix.ENODATA:
			a.changed[i] = true
		case a.nonRoot && (err == unix.EPERM || err == unix.EACCES) && protectedNS(n):
			skipped = true
		default:
			a.fail(e.Path, "removexattr", fmt.Errorf("removing %s: %w", n, err))
		}
	}
	if skipped {
		a.res.OwnershipSkipped++
	}
}

// fixDirModes sets directory modes, deepest first.
func (a *applier) fixDirModes() {
	a.stack.close()
	for k := len(a.dirs) - 1; k >= 0; k-- {
		i := a.dirs[k]
		e := &a.m.Entries[i]
		dirfd, name, err := a.locate(&a.stack, e.Path)
		if err != nil {
			a.fail(e.Path, "chmod", err)
			continue
		}
		var st unix.Stat_t
		if err := lstatAt(dirfd, name, &st); err != nil {
			a.fail(e.Path, "lstat", err)
			continue
		}
		if typeOf(st.Mode) != TypeDir {
			a.fail(e.Path, "chmod", errors.New("is no longer a directory; not changed"))
			continue
		}
		want := a.mode(e)
		if want != e.Mode {
			a.res.OwnerAccessKept++
		}
		if st.Mode&07777 == want {
			continue
		}
		if err := a.act(func() error { return chmodNoFollow(dirfd, name, want) }, "chmod %s %s", FormatMode(want), displayPath(e.Path)); err != nil {
			a.fail(e.Path, "chmod", fmt.Errorf("setting mode %s: %w", FormatMode(want), err))
			continue
		}
		a.changed[i] = true
	}
}

// removeStale removes objects recorded in Old but gone from the new
// manifest, for the types git does not carry, if they are still exactly as
// Old recorded them. Deepest first, so emptied directories go too.
func (a *applier) removeStale() {
	old := a.opts.Old
	oorder := sortedOrder(old)
	for k := len(oorder) - 1; k >= 0; k-- {
		o := &old.Entries[oorder[k]]
		if o.Type == TypeUnknown || o.Type.GitCarries() || o.IsRoot() || a.lookup(o.Path) != nil || a.outside(o.Path) {
			continue
		}
		if err := checkApplyPath(o.Path); err != nil {
			a.fail(o.Path, "remove", fmt.Errorf("in the previous .gitmeta: %w", err))
			continue
		}
		dirfd, name, err := a.locate(&a.aux, o.Path)
		if err != nil {
			var pe *parentError
			if errors.As(err, &pe) && pe.Err == errParentMissing {
				continue // already gone with its parent
			}
			a.fail(o.Path, "remove", err)
			continue
		}
		var st unix.Stat_t
		if err := lstatAt(dirfd, name, &st); err != nil {
			if err != unix.ENOENT {
				a.fail(o.Path, "lstat", err)
			}
			continue
		}
		if !matchesOld(o, &st) {
			a.logf("keep %s: changed since the previous .gitmeta", displayPath(o.Path))
			continue
		}
		if a.opts.DryRun {
			a.logf("remove %s %s", o.Type, displayPath(o.Path))
			a.res.Removed++
			continue
		}
		switch err := removeAt(dirfd, name, o.Type); {
		case err == nil:
			a.logf("remove %s %s", o.Type, displayPath(o.Path))
			a.res.Removed++
		case o.Type == TypeDir && (err == unix.ENOTEMPTY || err == unix.EEXIST):
			a.logf("keep %s: directory not empty", displayPath(o.Path))
		default:
			a.fail(o.Path, "remove", err)
		}
	}
	a.aux.close()
}
