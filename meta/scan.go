package meta

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/onesis/git-onesis/internal/hugemem"
)

// ScanOptions controls Scan.
type ScanOptions struct {
	// Skip reports whether path (relative, slash-separated, never ".") is
	// left out; for a directory its whole subtree is skipped. It must be safe
	// for concurrent use. nil skips nothing.
	Skip func(path string, isDir bool) bool
	// Keep is consulted for every non-directory entry (files, symlinks,
	// devices, fifos, sockets); false drops it. It is used to limit
	// git-carried files to those in the index. It is called only after the
	// whole tree has been read, so it may wait for data gathered while the
	// walk runs (such as 'git ls-files' output). It must be safe for
	// concurrent use. nil keeps everything.
	Keep func(path string, t Type) bool
	// Cache, when set, supplies the extended attributes of objects whose
	// device, inode and ctime are unchanged since the scan that filled it,
	// and is refilled with what this scan sees (save it with Cache.Save).
	Cache *ScanCache
	// Workers is the number of directories read at once; 0 picks a default
	// of twice the CPU count.
	Workers int
	// Progress, when set, is called now and then (at most about ten times a
	// second, and once at the end) with the number of entries scanned so
	// far. It may be called from any goroutine, but never concurrently.
	Progress func(n int)
	// Stats, when set, makes the scan keep what lstat said of every
	// object (see ScanStats).
	Stats bool
}

// StatData is what lstat said of an object during a scan, in the form
// git's index keeps it: each field truncated to 32 bits.
type StatData struct {
	CtimeSec, CtimeNsec uint32
	MtimeSec, MtimeNsec uint32
	Dev, Ino            uint32
	Mode, UID, GID      uint32
	Size                uint32
}

// StatDataOf is st in the form git's index keeps it.
func StatDataOf(st *unix.Stat_t) StatData {
	return StatData{
		CtimeSec: uint32(st.Ctim.Sec), CtimeNsec: uint32(st.Ctim.Nsec),
		MtimeSec: uint32(st.Mtim.Sec), MtimeNsec: uint32(st.Mtim.Nsec),
		Dev: uint32(st.Dev), Ino: uint32(st.Ino),
		Mode: st.Mode, UID: st.Uid, GID: st.Gid, Size: uint32(st.Size),
	}
}

// progressEvery is the interval between Progress calls.
const progressEvery = 100 * time.Millisecond

// Scan walks the tree at root (which may itself be reached through a
// symlink) and records the metadata of every object in it
// into a sorted Manifest. Root itself becomes the entry ".". The top-level
// ".git" is always left out.
//
// Scan never follows symlinks: every directory is opened relative to its
// parent's descriptor with O_NOFOLLOW, and objects are examined with
// fstatat(AT_SYMLINK_NOFOLLOW), readlinkat and the l*xattr calls. All
// extended attributes the caller may read are recorded (as root that
// includes trusted.*), sorted by name.
//
// Hard links: non-directory entries that share a device and inode number
// form a group; the first path in canonical order is the primary and the
// others get Hardlink set to it. Symlinks are never grouped (Linux allows
// hard links to symlinks, but the format cannot express them), so each such
// path is recorded as an independent symlink.
//
// A directory is marked Empty when no kept file or symlink lies anywhere
// below it; the root is never marked Empty.
//
// A directory that cannot be read is an error; objects that vanish while the
// scan runs are left out.
func Scan(root string, opts ScanOptions) (*Manifest, error) {
	opts.Stats = false
	m, _, err := ScanStats(root, opts)
	return m, err
}

// ScanStats is Scan that also returns, when opts.Stats is set, what lstat
// said of each entry, index for index with the manifest's entries (the
// zero StatData for directories), so a caller can tell which objects
// still have the stat data git's index recorded for them.
func ScanStats(root string, opts ScanOptions) (*Manifest, []StatData, error) {
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("scanning %s: %w", root, err)
	}

	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.NumCPU() * 2
	}
	s := &scanner{opts: opts, root: root, cache: opts.Cache}
	if s.cache != nil {
		s.cutoff = time.Now().Add(-racyMargin).UnixNano()
		s.cache.reset()
	}
	s.cond = sync.NewCond(&s.mu)
	rootNode := &dirNode{fd: fd, rel: "."}
	rootNode.refs.Store(1)

	// The last scan's size (what the cache remembers) sizes each worker's
	// slices, which otherwise grow by copying many times over.
	hint := 0
	if s.cache != nil {
		hint = s.cache.Len()/workers + s.cache.Len()/(4*workers)
	}
	ws := make([]*scanWorker, workers)
	for i := range ws {
		ws[i] = &scanWorker{s: s, buf: make([]byte, 32<<10), xbuf: make([]byte, 4<<10)}
		if hint > 0 {
			ws[i].entries = hugemem.Slice[Entry](hint)[:0]
			if opts.Stats {
				ws[i].stats = hugemem.Slice[StatData](hint)[:0]
			}
		}
	}
	s.pending = 1
	s.stack = append(s.stack, dirTask{node: rootNode, rel: "."})

	stopProgress := s.startProgress()
	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run()
		}()
	}
	wg.Wait()
	stopProgress()
	if s.err != nil {
		return nil, nil, s.err
	}

	if opts.Keep != nil {
		var fwg sync.WaitGroup
		for _, w := range ws {
			fwg.Add(1)
			go func() {
				defer fwg.Done()
				w.keep(opts.Keep)
			}()
		}
		fwg.Wait()
	}
	if s.cache != nil {
		s.cache.collect(ws)
	}

	n := 0
	nlinks := 0
	for _, w := range ws {
		n += len(w.entries)
		nlinks += len(w.links)
	}
	all := hugemem.Slice[Entry](n)[:0]
	links := make([]linkRec, 0, nlinks)
	var stats []StatData
	if opts.Stats {
		stats = hugemem.Slice[StatData](n)[:0]
	}
	for _, w := range ws {
		base := int32(len(all))
		all = append(all, w.entries...)
		stats = append(stats, w.stats...)
		for _, l := range w.links {
			l.idx += base
			links = append(links, l)
		}
		w.entries, w.links, w.stats = nil, nil, nil
	}
	sorted, stats := sortEntries(all, links, stats)
	m := &Manifest{Entries: sorted}
	markEmpty(m)
	if opts.Progress != nil {
		opts.Progress(len(m.Entries))
	}
	return m, stats, nil
}

// sortEntries returns all in canonical order (the order Manifest.Sort
// gives) and fills in Hardlink for secondary hard-link members. It sorts
// indices rather than moving whole entries around.
// When stats is not nil it is reordered the same way.
func sortEntries(all []Entry, links []linkRec, stats []StatData) ([]Entry, []StatData) {
	order := make([]int32, len(all))
	for i := range order {
		order[i] = int32(i)
	}
	sortParallel(order, func(a, b int32) int { return comparePaths(all[a].Path, all[b].Path) })
	// Hard links: the primary of each (dev, ino) group is the member that
	// sorts first.
	if len(links) > 0 {
		rank := make([]int32, len(all))
		for r, i := range order {
			rank[i] = int32(r)
		}
		slices.SortFunc(links, func(a, b linkRec) int {
			if a.dev != b.dev {
				return cmpUint(a.dev, b.dev)
			}
			if a.ino != b.ino {
				return cmpUint(a.ino, b.ino)
			}
			return int(rank[a.idx]) - int(rank[b.idx])
		})
		first := 0
		for i := 1; i < len(links); i++ {
			if links[i].dev != links[first].dev || links[i].ino != links[first].ino {
				first = i
				continue
			}
			all[links[i].idx].Hardlink = all[links[first].idx].Path
		}
	}
	out := hugemem.Slice[Entry](len(all))
	for r, i := range order {
		out[r] = all[i]
	}
	if stats == nil {
		return out, nil
	}
	sout := hugemem.Slice[StatData](len(stats))
	for r, i := range order {
		sout[r] = stats[i]
	}
	return out, sout
}

// sortParallel sorts s with cmp, one slice per CPU at once, then merges
// the sorted slices pairwise.
func sortParallel(s []int32, cmp func(a, b int32) int) {
	sortInParts(s, cmp, min(runtime.NumCPU(), len(s)/8192))
}

func sortInParts(s []int32, cmp func(a, b int32) int, parts int) {
	if parts < 2 || len(s) < parts {
		slices.SortFunc(s, cmp)
		return
	}
	bounds := make([]int, parts+1)
	for k := range bounds {
		bounds[k] = k * len(s) / parts
	}
	var wg sync.WaitGroup
	for k := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			slices.SortFunc(s[bounds[k]:bounds[k+1]], cmp)
		}()
	}
	wg.Wait()
	buf := make([]int32, len(s))
	src, dst := s, buf
	for len(bounds) > 2 {
		next := []int{0}
		for k := 0; k+1 < len(bounds); k += 2 {
			lo := bounds[k]
			if k+2 >= len(bounds) { // odd one out: carried over as is
				copy(dst[lo:], src[lo:bounds[k+1]])
				next = append(next, bounds[k+1])
				continue
			}
			mid, hi := bounds[k+1], bounds[k+2]
			wg.Add(1)
			go func() {
				defer wg.Done()
				mergeRuns(dst[lo:hi], src[lo:mid], src[mid:hi], cmp)
			}()
			next = append(next, hi)
		}
		wg.Wait()
		bounds = next
		src, dst = dst, src
	}
	if &src[0] != &s[0] {
		copy(s, src)
	}
}

// mergeRuns merges the sorted runs a and b into out (len(a)+len(b) long),
// stably.
func mergeRuns(out, a, b []int32, cmp func(a, b int32) int) {
	i, j, o := 0, 0, 0
	for i < len(a) && j < len(b) {
		if cmp(b[j], a[i]) < 0 {
			out[o] = b[j]
			j++
		} else {
			out[o] = a[i]
			i++
		}
		o++
	}
	o += copy(out[o:], a[i:])
	copy(out[o:], b[j:])
}

func cmpUint(a, b uint64) int {
	if a < b {
		return -1
	}
	return 1
}

// comparePaths is the three-way form of Less.
func comparePaths(a, b string) int {
	switch {
	case a == b:
		return 0
	case a == ".":
		return -1
	case b == ".":
		return 1
	}
	return strings.Compare(a, b)
}

// markEmpty sets Empty on every directory below the root that has no file
// or symlink anywhere beneath it. m must be sorted.
func markEmpty(m *Manifest) {
	dirs := 0
	for i := range m.Entries {
		if m.Entries[i].Type == TypeDir {
			dirs++
		}
	}
	// Sized for every directory: growing it rehashed 35,000 paths on
	// the bench image, through fresh memory.
	full := make(map[string]struct{}, dirs)
	for i := range m.Entries {
		e := &m.Entries[i]
		if !e.Type.GitCarries() {
			continue
		}
		for p := Parent(e.Path); p != "."; p = Parent(p) {
			if _, ok := full[p]; ok {
				break
			}
			full[p] = struct{}{}
		}
	}
	for i := range m.Entries {
		e := &m.Entries[i]
		if e.Type == TypeDir && e.Path != "." {
			_, ok := full[e.Path]
			e.Empty = !ok
		}
	}
}

// entryFromStat fills the stat-derived fields of an entry.
func entryFromStat(path string, st *unix.Stat_t) Entry {
	e := Entry{
		Path: path,
		Type: typeOf(st.Mode),
		Mode: st.Mode & 07777,
		UID:  st.Uid,
		GID:  st.Gid,
	}
	if e.Type == TypeChar || e.Type == TypeBlock {
		e.Major = unix.Major(uint64(st.Rdev))
		e.Minor = unix.Minor(uint64(st.Rdev))
	}
	return e
}

// dirNode is an open directory. Its descriptor stays open while any
// subdirectory still has to be opened relative to it.
type dirNode struct {
	fd   int
	rel  string
	refs atomic.Int32
}

func (d *dirNode) release() {
	if d.refs.Add(-1) == 0 {
		unix.Close(d.fd)
	}
}

// dirTask is a directory waiting to be opened and read: rel is its path.
// For the root, node is already open; otherwise the directory is name
// inside parent, and nothing has examined it yet but the parent's
// listing (or, where the listing gives no type, lstat).
type dirTask struct {
	node   *dirNode
	parent *dirNode
	name   string
	rel    string
}

// statKey is what the scan cache keys an object on.
type statKey struct {
	dev, ino uint64
	csec     int64
	cnsec    uint32
}

func keyOf(st *unix.Stat_t) statKey {
	return statKey{dev: uint64(st.Dev), ino: st.Ino, csec: st.Ctim.Sec, cnsec: uint32(st.Ctim.Nsec)}
}

// linkRec remembers a hard-link candidate: the entry at idx (in its worker's
// slice, later in the combined slice) has this device and inode.
type linkRec struct {
	dev, ino uint64
	idx      int32
}

type scanner struct {
	opts ScanOptions
	root string

	mu      sync.Mutex
	cond    *sync.Cond
	stack   []dirTask // LIFO keeps the number of open directories small
	pending int       // tasks queued or running
	err     error

	count atomic.Int64

	cache  *ScanCache
	cutoff int64 // ctimes (ns) at or after this are not cached
}

func (s *scanner) startProgress() (stop func()) {
	if s.opts.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(progressEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				s.opts.Progress(int(s.count.Load()))
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

// fail records the first error and stops the scan.
func (s *scanner) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
}

func (s *scanner) push(t dirTask) {
	s.mu.Lock()
	s.stack = append(s.stack, t)
	s.pending++
	s.mu.Unlock()
	s.cond.Signal()
}

// next blocks until a task is available; ok is false when the scan is over.
func (s *scanner) next() (t dirTask, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.stack) == 0 && s.pending > 0 {
		s.cond.Wait()
	}
	if len(s.stack) == 0 {
		return dirTask{}, false
	}
	t = s.stack[len(s.stack)-1]
	s.stack[len(s.stack)-1] = dirTask{}
	s.stack = s.stack[:len(s.stack)-1]
	return t, true
}

func (s *scanner) done() {
	s.mu.Lock()
	s.pending--
	last := s.pending == 0
	s.mu.Unlock()
	if last {
		s.cond.Broadcast()
	}
}

func (s *scanner) failed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err != nil
}

type scanWorker struct {
	s       *scanner
	buf     []byte // getdents buffer
	xbuf    []byte // xattr list / value buffer
	lbuf    []byte // readlink buffer
	strs    hugemem.Strings
	entries []Entry
	stats   []StatData // with ScanOptions.Stats: one per entry
	links   []linkRec
	ownCwd  bool
	cwd     *dirNode // the directory the thread is in, with ownCwd
	// What this worker saw, for the scan cache: records with xidx local
	// to csets.
	crecs []cacheRec
	csets [][]Xattr
	caux  []byte
	list  []byte // the listing of the directory being read, for the cache
}

func (w *scanWorker) run() {
	// Give this worker a thread with its own working directory, so it can
	// chdir into each directory it reads and look attributes up by bare
	// name: no path walk from the root (faster, and immune to a parent
	// being swapped for a symlink mid-scan). The thread is never unlocked,
	// so the runtime discards it when the goroutine ends instead of handing
	// its odd working directory to other code. Where unshare is refused,
	// the worker falls back to /proc/self/fd/<dirfd>/<name>.
	runtime.LockOSThread()
	w.ownCwd = unix.Unshare(unix.CLONE_FS) == nil
	for {
		t, ok := w.s.next()
		if !ok {
			return
		}
		if w.s.failed() {
			// Drain: release what the task holds without doing the work.
			if t.parent != nil {
				t.parent.release()
			}
			if t.node != nil {
				t.node.release()
			}
		} else if err := w.dir(t); err != nil {
			w.s.fail(err)
		}
		w.s.done()
	}
}

// dir opens (if needed) and reads one directory. The directory's own
// entry comes from fstat on the descriptor it is read through, so the
// cache's listing, keyed by that stat, is the listing of exactly the
// directory being read.
func (w *scanWorker) dir(t dirTask) error {
	node := t.node
	if node == nil {
		fd, err := unix.Openat(t.parent.fd, t.name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err == unix.ENOTDIR || err == unix.ELOOP {
			// No longer a directory: replaced since the parent was listed.
			// Record what is there now, as if it had been listed so.
			err = w.visit(t.parent, []byte(t.name), t.rel, t.name, unix.DT_UNKNOWN, true)
			t.parent.release()
			return err
		}
		t.parent.release()
		if err != nil {
			if err == unix.ENOENT {
				return nil // vanished
			}
			return fmt.Errorf("scanning %s: %w", w.s.display(t.rel), err)
		}
		node = &dirNode{fd: fd, rel: t.rel}
		node.refs.Store(1)
	}
	defer node.release()
	var st unix.Stat_t
	if err := unix.Fstat(node.fd, &st); err != nil {
		return fmt.Errorf("scanning %s: %w", w.s.display(t.rel), err)
	}
	if typeOf(st.Mode) != TypeDir { // cannot happen: opened O_DIRECTORY
		return fmt.Errorf("scanning %s: not a directory", w.s.display(t.rel))
	}
	e := entryFromStat(t.rel, &st)
	k := keyOf(&st)
	xs, list, idx, hit := w.s.cache.lookup(k, true)
	if hit && !validListing(list) {
		w.s.cache.unsee(idx)
		hit = false
	}
	if !hit {
		var err error
		xs, err = w.readXattrs(
			func(b []byte) (int, error) { return unix.Flistxattr(node.fd, b) },
			func(attr string, b []byte) (int, error) { return unix.Fgetxattr(node.fd, attr, b) },
		)
		if err != nil {
			return fmt.Errorf("scanning %s: reading extended attributes: %w", w.s.display(t.rel), err)
		}
	}
	e.Xattrs = xs
	w.entries = hugemem.Append(w.entries, e)
	if w.s.opts.Stats {
		w.stats = hugemem.Append(w.stats, StatData{})
	}
	w.s.count.Add(1)
	if hit {
		w.remember(k, xs, nil, true)
		w.s.cache.listHits.Add(1)
		return w.listCached(node, list)
	}
	if w.list == nil {
		w.list = make([]byte, 0, 4<<10) // not nil: an empty listing is one
	}
	w.list = w.list[:0]
	if err := w.readDir(node); err != nil {
		return err
	}
	w.remember(k, xs, w.list, false)
	return nil
}

func (s *scanner) display(rel string) string {
	if rel == "." {
		return s.root
	}
	return strings.TrimSuffix(s.root, "/") + "/" + rel
}

// readDir reads directory d with getdents and visits each entry, keeping
// the listing in w.list (see appendListing).
func (w *scanWorker) readDir(d *dirNode) error {
	s := w.s
	for {
		n, err := unix.Getdents(d.fd, w.buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("scanning %s: reading directory: %w", s.display(d.rel), err)
		}
		if n <= 0 {
			break
		}
		for off := 0; off < n; {
			// struct linux_dirent64: u64 ino, s64 off, u16 reclen, u8 type, name.
			rec := w.buf[off:n]
			if len(rec) < 19 {
				return fmt.Errorf("scanning %s: short directory record", s.display(d.rel))
			}
			reclen := int(rec[16]) | int(rec[17])<<8
			if reclen < 19 || reclen > len(rec) {
				return fmt.Errorf("scanning %s: bad directory record length %d", s.display(d.rel), reclen)
			}
			off += reclen
			dtype := rec[18]
			nameb := rec[19:reclen]
			if i := indexNUL(nameb); i >= 0 {
				nameb = nameb[:i]
			}
			if isDots(nameb) {
				continue
			}
			w.list = appendListing(w.list, dtype, nameb)
			if err := w.visitDirent(d, dtype, nameb); err != nil {
				return err
			}
		}
	}
	return nil
}

// A directory's listing, as the scan cache keeps it: for each name but
// "." and "..", in the order getdents gave them, the type getdents gave
// (a DT_ constant), the name, and a NUL. The NUL lets lstatDirent take
// the name where it lies.
func appendListing(b []byte, dtype byte, name []byte) []byte {
	b = append(b, dtype)
	b = append(b, name...)
	return append(b, 0)
}

// validListing reports whether b is a well-formed listing: every name is
// non-empty, NUL-terminated and free of '/'. A cache file passes its
// checksum, so this guards against a bug, not a disk.
func validListing(b []byte) bool {
	for len(b) > 0 {
		if len(b) < 3 || b[1] == 0 {
			return false
		}
		i := 1
		for ; i < len(b) && b[i] != 0; i++ {
			if b[i] == '/' {
				return false
			}
		}
		if i == len(b) {
			return false
		}
		b = b[i+1:]
	}
	return true
}

// listCached visits the entries of directory d from its cached listing
// (checked by validListing).
func (w *scanWorker) listCached(d *dirNode, list []byte) error {
	for len(list) > 0 {
		dtype := list[0]
		i := 1 + indexNUL(list[1:])
		nameb := list[1:i]
		list = list[i+1:]
		if isDots(nameb) {
			continue
		}
		if err := w.visitDirent(d, dtype, nameb); err != nil {
			return err
		}
	}
	return nil
}

func isDots(name []byte) bool {
	return len(name) == 0 || name[0] == '.' && (len(name) == 1 || len(name) == 2 && name[1] == '.')
}

// visitDirent handles one name listed in directory d with the type the
// listing gave. A directory is queued to be opened (its own fstat then
// examines it); anything else is examined here.
func (w *scanWorker) visitDirent(d *dirNode, dtype byte, nameb []byte) error {
	s := w.s
	var prefix string
	if d.rel != "." {
		prefix = d.rel + "/"
	} else if string(nameb) == ".git" {
		return nil
	}
	rel := w.strs.Concat(prefix, nameb) // name is its tail
	name := rel[len(prefix):]
	if s.opts.Skip != nil && dtype != unix.DT_UNKNOWN {
		if s.opts.Skip(rel, dtype == unix.DT_DIR) {
			return nil
		}
	}
	if dtype == unix.DT_DIR {
		d.refs.Add(1)
		s.push(dirTask{parent: d, name: name, rel: rel})
		return nil
	}
	return w.visit(d, nameb, rel, name, dtype, false)
}

// visit lstats name in directory d and records it, or queues it when it
// is a directory. Skip is asked here when the listing gave no type.
// replaced says the name was listed as a directory that turned out not to
// be one when opened; if it is one again, the scan stops rather than
// chase it.
func (w *scanWorker) visit(d *dirNode, nameb []byte, rel, name string, dtype byte, replaced bool) error {
	s := w.s
	var st unix.Stat_t
	if err := lstatDirent(d.fd, nameb, &st); err != nil {
		if err == unix.ENOENT {
			return nil
		}
		return fmt.Errorf("scanning %s: %w", s.display(rel), err)
	}
	typ := typeOf(st.Mode)
	if s.opts.Skip != nil && (dtype == unix.DT_UNKNOWN || replaced) {
		if s.opts.Skip(rel, typ == TypeDir) {
			return nil
		}
	}
	if typ == TypeDir {
		if replaced {
			return fmt.Errorf("scanning %s: it was replaced while the scan read it; run the command again", s.display(rel))
		}
		d.refs.Add(1)
		s.push(dirTask{parent: d, name: name, rel: rel})
		return nil
	}
	e := entryFromStat(rel, &st)
	k := keyOf(&st)
	isLink := typ == TypeSymlink
	xs, target, _, hit := s.cache.lookup(k, isLink)
	if isLink {
		if hit {
			e.Link = string(target)
		} else {
			l, err := w.readlink(d.fd, name)
			if err != nil {
				if err == unix.ENOENT {
					return nil
				}
				return fmt.Errorf("scanning %s: reading symlink: %w", s.display(rel), err)
			}
			e.Link = l
		}
	}
	if !hit {
		var err error
		if w.ownCwd {
			// The thread moves into the directory only when an xattr must
			// be read by name (a cache miss): a steady tree's scan makes
			// no fchdir at all.
			if w.cwd != d {
				if err := unix.Fchdir(d.fd); err != nil {
					return fmt.Errorf("scanning %s: %w", s.display(d.rel), err)
				}
				w.cwd = d
			}
			xs, err = w.xattrsPath(name)
		} else {
			xs, err = w.xattrsPath(procPath(d.fd, name))
		}
		if err != nil {
			if err == unix.ENOENT {
				return nil
			}
			return fmt.Errorf("scanning %s: reading extended attributes: %w", s.display(rel), err)
		}
	}
	if isLink {
		w.remember(k, xs, []byte(e.Link), hit)
	} else {
		w.remember(k, xs, nil, hit)
	}
	e.Xattrs = xs
	if st.Nlink > 1 && typ != TypeSymlink && typ != TypeUnknown {
		w.links = hugemem.Append(w.links, linkRec{dev: uint64(st.Dev), ino: st.Ino, idx: int32(len(w.entries))})
	}
	w.entries = hugemem.Append(w.entries, e)
	if s.opts.Stats {
		w.stats = hugemem.Append(w.stats, StatDataOf(&st))
	}
	s.count.Add(1)
	return nil
}

func indexNUL(b []byte) int {
	for i, c := range b {
		if c == 0 {
			return i
		}
	}
	return -1
}

func (w *scanWorker) readlink(dirfd int, name string) (string, error) {
	if w.lbuf == nil {
		w.lbuf = make([]byte, 256)
	}
	for {
		n, err := unix.Readlinkat(dirfd, name, w.lbuf)
		if err != nil {
			return "", err
		}
		if n < len(w.lbuf) {
			return string(w.lbuf[:n]), nil
		}
		if len(w.lbuf) >= 1<<20 {
			return "", errors.New("symlink target too long")
		}
		w.lbuf = make([]byte, 2*len(w.lbuf))
	}
}

// remember notes an object's xattrs, and aux when not nil (a symlink's
// target or a directory's listing), for the next scan's cache, unless its
// ctime is too recent to be trusted.
func (w *scanWorker) remember(k statKey, xs []Xattr, aux []byte, hit bool) {
	s := w.s
	if s.cache == nil || k.csec*1e9+int64(k.cnsec) >= s.cutoff || len(xs) > 0xffff {
		return
	}
	if hit {
		return // the loaded record stands (ScanCache.merged)
	}
	s.cache.missed.Add(1)
	r := cacheRec{dev: k.dev, ino: k.ino, csec: k.csec, cnsec: k.cnsec}
	if len(xs) > 0 {
		w.csets = append(w.csets, xs)
		r.xidx = uint32(len(w.csets))
	}
	if aux != nil && uint64(len(w.caux))+uint64(len(aux)) < 1<<32-1 {
		r.aux, r.alen = uint32(len(w.caux))+1, uint32(len(aux))
		w.caux = append(w.caux, aux...)
	}
	w.crecs = hugemem.Append(w.crecs, r)
}

// keep drops the non-directory entries keep rejects, keeping the hard-link
// records' indices right.
func (w *scanWorker) keep(keep func(string, Type) bool) {
	var newIdx []int32
	if len(w.links) > 0 {
		newIdx = make([]int32, len(w.entries))
	}
	kept := w.entries[:0]
	keptStats := w.stats[:0]
	for i := range w.entries {
		e := &w.entries[i]
		if e.Type != TypeDir && !keep(e.Path, e.Type) {
			if newIdx != nil {
				newIdx[i] = -1
			}
			continue
		}
		if newIdx != nil {
			newIdx[i] = int32(len(kept))
		}
		kept = append(kept, *e)
		if w.stats != nil {
			keptStats = append(keptStats, w.stats[i])
		}
	}
	if w.stats != nil {
		w.stats = keptStats
	}
	clear(w.entries[len(kept):])
	w.entries = kept
	links := w.links[:0]
	for _, l := range w.links {
		if ni := newIdx[l.idx]; ni >= 0 {
			l.idx = ni
			links = append(links, l)
		}
	}
	w.links = links
}

func procPath(dirfd int, name string) string {
	b := make([]byte, 0, len("/proc/self/fd/")+8+len(name))
	b = append(b, "/proc/self/fd/"...)
	b = strconv.AppendInt(b, int64(dirfd), 10)
	b = append(b, '/')
	b = append(b, name...)
	return string(b)
}

// readXattrs lists and reads all attributes with the given calls. A
// filesystem without xattr support yields none.
func (w *scanWorker) readXattrs(list func([]byte) (int, error), get func(string, []byte) (int, error)) ([]Xattr, error) {
	var n int
	var err error
	for {
		n, err = list(w.xbuf)
		if err == unix.ERANGE {
			sz, err2 := list(nil)
			if err2 != nil {
				return nil, err2
			}
			w.xbuf = make([]byte, max(sz, 2*len(w.xbuf)))
			continue
		}
		break
	}
	if err != nil {
		if err == unix.ENOTSUP || err == unix.EOPNOTSUPP {
			return nil, nil
		}
		return nil, err
	}
	if n == 0 {
		return nil, nil
	}
	names := strings.Split(strings.TrimSuffix(string(w.xbuf[:n]), "\x00"), "\x00")
	xs := make([]Xattr, 0, len(names))
	for _, name := range names {
		if name == "" {
			continue
		}
		v, err := w.getXattr(get, name)
		if err == unix.ENODATA {
			continue // removed since listing
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		xs = append(xs, Xattr{Name: name, Value: v})
	}
	slices.SortFunc(xs, func(a, b Xattr) int { return strings.Compare(a.Name, b.Name) })
	return xs, nil
}

func (w *scanWorker) getXattr(get func(string, []byte) (int, error), name string) ([]byte, error) {
	for {
		n, err := get(name, w.xbuf)
		if err == unix.ERANGE {
			sz, err2 := get(name, nil)
			if err2 != nil {
				return nil, err2
			}
			w.xbuf = make([]byte, max(sz, 2*len(w.xbuf)))
			continue
		}
		if err != nil {
			return nil, err
		}
		return append([]byte{}, w.xbuf[:n]...), nil
	}
}

// xattrsPath reads the extended attributes of p without following a final
// symlink. p is either a bare name (relative to the worker's private working
// directory) or a /proc/self/fd/<dirfd>/<name> path, so no path is resolved
// from the root again.
func (w *scanWorker) xattrsPath(p string) ([]Xattr, error) {
	return w.readXattrs(
		func(b []byte) (int, error) { return unix.Llistxattr(p, b) },
		func(attr string, b []byte) (int, error) { return unix.Lgetxattr(p, attr, b) },
	)
}
