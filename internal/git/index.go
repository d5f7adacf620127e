package git

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/onesis/git-onesis/internal/hugemem"
)

// IndexEntry is one entry of git's index (the "DIRC" file), with the stat
// data git recorded when it last wrote or checked the file.
type IndexEntry struct {
	Path         string
	Mode         uint32 // 0100644, 0100755, 0120000, 0160000, or 040000 for a sparse directory
	CtimeSec     uint32
	CtimeNsec    uint32
	MtimeSec     uint32
	MtimeNsec    uint32
	Dev, Ino     uint32
	UID, GID     uint32
	Size         uint32
	Stage        int  // 0, or 1-3 for an unmerged path
	SkipWorktree bool // outside the sparse checkout: not in the work tree
	IntentToAdd  bool
	AssumeValid  bool // 'update-index --assume-unchanged' (CE_VALID)
	// Offset is where the entry starts in the index file.
	Offset int
}

// SparseDir reports whether e stands for a whole directory outside the
// sparse checkout (a sparse index); its Path ends in "/".
func (e *IndexEntry) SparseDir() bool { return e.Mode&0o170000 == 0o040000 }

// Index is a parsed index file.
type Index struct {
	Version int
	Entries []IndexEntry // in git's order (by path, then stage)

	// Mtime is the index file's modification time: git's "index time",
	// against which an entry modified no earlier is racy (its stat data
	// alone cannot prove the content unchanged).
	Mtime unix.Timespec

	// Partial says Entries holds only some of the file's entries
	// (ReadIndexFunc): those a caller asked for, still in git's order.
	Partial bool

	raw      []byte // the file as read
	extOff   int    // where the extensions start in raw
	hashLen  int
	dev, ino uint64 // the file's identity, to tell whether it was replaced
}

// Racy reports whether e was modified no earlier than the index was
// written (whole seconds, as a git built without USE_NSEC compares), so
// git checks its content rather than trust its stat data.
func (ix *Index) Racy(e *IndexEntry) bool {
	return ix.Mtime.Sec != 0 && int64(e.MtimeSec) >= ix.Mtime.Sec
}

// ErrSplitIndex is returned by ReadIndex for a split index
// (core.splitIndex), whose entries live partly in a shared file.
var ErrSplitIndex = errors.New("the index is split (core.splitIndex); its entries are not all in one file")

// maxIndexEntries bounds what ReadIndex accepts, so a damaged header cannot
// make it allocate without limit.
const maxIndexEntries = 1 << 26

// ReadIndex parses the index file at path. hashLen is the object-id size
// of the repository (20 for SHA-1, 32 for SHA-256). Versions 2, 3 and 4 are
// understood; extensions are skipped, but a split index (the "link"
// extension) is ErrSplitIndex. A missing file is an empty index.
func ReadIndex(path string, hashLen int) (*Index, error) {
	return ReadIndexFunc(path, hashLen, nil)
}

// ReadIndexFunc is ReadIndex keeping only the entries whose paths keep
// accepts (it is called for each in git's order; path is valid only
// during the call): Index.Partial is set, and the entries left out cost
// no memory. A nil keep keeps every entry.
func ReadIndexFunc(path string, hashLen int, keep func(path []byte) bool) (*Index, error) {
	mf, err := mapIndex(path)
	if errors.Is(err, os.ErrNotExist) {
		return &Index{Version: 2, hashLen: hashLen, Partial: keep != nil}, nil
	}
	if err != nil {
		return nil, err
	}
	ix, err := parseIndexFunc(mf.b, hashLen, keep)
	if err != nil {
		mf.release()
		return nil, fmt.Errorf("reading the index %s: %w", path, err)
	}
	if mf.mapped {
		// Nothing keeps a slice of raw beyond ix (paths are copied; the
		// methods that read raw keep ix alive until they are done), so
		// the mapping goes when ix does.
		runtime.AddCleanup(ix, func(b []byte) { unix.Munmap(b) }, mf.b)
	}
	ix.Mtime, ix.dev, ix.ino = mf.st.Mtim, mf.st.Dev, mf.st.Ino
	return ix, nil
}

// mappedIndex is an index file mapped (or read) whole.
type mappedIndex struct {
	b      []byte
	mapped bool
	st     unix.Stat_t
}

// mapIndex maps the index file at path. A missing file is an error that
// errors.Is reports as os.ErrNotExist.
func mapIndex(path string) (*mappedIndex, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("reading the index: %w", err)
	}
	defer f.Close()
	mf := &mappedIndex{}
	if err := unix.Fstat(int(f.Fd()), &mf.st); err != nil {
		return nil, fmt.Errorf("reading the index: %w", err)
	}
	if mf.b, mf.mapped, err = mapFile(f, mf.st.Size); err != nil {
		return nil, fmt.Errorf("reading the index: %w", err)
	}
	return mf, nil
}

// release unmaps the file; its bytes must not be used after.
func (mf *mappedIndex) release() {
	if mf.mapped {
		unix.Munmap(mf.b)
		mf.mapped, mf.b = false, nil
	}
}

// IndexChanges is what changed between two versions of an index file
// (IndexChangesBetween).
type IndexChanges struct {
	// Changed are the merged (stage 0) entries of the newer index that
	// the older one lacks, whose inode, device or modification time
	// differ from the older one's, or that carry no stat data (inode 0),
	// in git's order.
	Changed []IndexEntry
	// Removed are the paths of the older index's merged entries that the
	// newer one lacks (a sparse directory's keeps its trailing slash).
	Removed []string
	// SkipWorktree says some merged entry of the newer index has the
	// skip-worktree bit (a sparse checkout).
	SkipWorktree bool
	// Mtime is the newer index file's modification time.
	Mtime unix.Timespec
	// Newer locates the newer index's entries, for reading a few of them
	// later (nil for a version 4 index or a missing file).
	Newer *IndexView
}

// IndexChangesBetween compares the index file at older with the one at
// newer entry by entry, in step, copying out only what differs: on a
// large image this is a fraction of parsing both (ReadIndex), whose
// copies of every entry cost more than the comparison. A split index is
// ErrSplitIndex; a missing file is an empty index.
func IndexChangesBetween(older, newer string, hashLen int) (*IndexChanges, error) {
	open := func(path string) (*indexReader, *mappedIndex, error) {
		mf, err := mapIndex(path)
		if errors.Is(err, os.ErrNotExist) {
			r, err := newIndexReader(emptyIndex(hashLen), hashLen)
			return r, &mappedIndex{}, err
		}
		if err != nil {
			return nil, nil, err
		}
		r, err := newIndexReader(mf.b, hashLen)
		if err != nil {
			mf.release()
			return nil, nil, fmt.Errorf("reading the index %s: %w", path, err)
		}
		return r, mf, nil
	}
	a, am, err := open(older)
	if err != nil {
		return nil, err
	}
	defer am.release()
	b, bm, err := open(newer)
	if err != nil {
		return nil, err
	}
	defer bm.release()
	c := &IndexChanges{Mtime: bm.st.Mtim}
	// Where newer's entries start is noted on the way, for a later read
	// of a few of them (IndexView), unless its paths are prefix-compressed
	// (version 4: no entry's path can be read without the one before).
	var view *IndexView
	if bm.b != nil && b.ver < 4 && int64(len(bm.b)) < 1<<32 {
		view = &IndexView{path: newer, hashLen: hashLen, st: bm.st, offs: hugemem.Slice[uint32](b.n)[:0]}
	}
	// merged returns the next stage-0 entry of r.
	merged := func(r *indexReader) (rawEntry, bool) {
		for {
			e, ok := r.next()
			if ok && r == b && view != nil {
				view.note(&e)
			}
			if !ok || e.stage == 0 {
				return e, ok
			}
		}
	}
	ea, oka := merged(a)
	eb, okb := merged(b)
	for oka || okb {
		cmp := 0
		switch {
		case !okb:
			cmp = -1
		case !oka:
			cmp = 1
		default:
			cmp = bytes.Compare(ea.path, eb.path)
		}
		if okb && eb.ext&0x4000 != 0 {
			c.SkipWorktree = true
		}
		switch {
		case cmp < 0:
			c.Removed = append(c.Removed, string(ea.path))
			ea, oka = merged(a)
		case cmp > 0:
			c.Changed = append(c.Changed, eb.entry(nil))
			eb, okb = merged(b)
		default:
			// Modification time (8:16), device and inode (16:24).
			if !bytes.Equal(ea.head[8:24], eb.head[8:24]) || be32(eb.head[20:]) == 0 {
				c.Changed = append(c.Changed, eb.entry(nil))
			}
			ea, oka = merged(a)
			eb, okb = merged(b)
		}
	}
	if err := a.done(); err != nil {
		return nil, fmt.Errorf("reading the index %s: %w", older, err)
	}
	if err := b.done(); err != nil {
		return nil, fmt.Errorf("reading the index %s: %w", newer, err)
	}
	if view != nil {
		view.extOff = b.off
		c.Newer = view
	}
	return c, nil
}

// emptyIndex is the file of an index with no entries.
func emptyIndex(hashLen int) []byte {
	b := make([]byte, 12+hashLen)
	copy(b, "DIRC")
	binary.BigEndian.PutUint32(b[4:], 2)
	return b
}

// mapFile maps the first size bytes of f read-only, as git maps its index:
// the page cache's own pages, not a copy of the file in fresh memory, which
// for a large image's index is most of the time reading it takes. git
// replaces the index by renaming a new file over it, never by writing the
// old one in place, so the mapping stays valid. Where mapping fails (an
// empty file, a file system that cannot), the file is read into memory
// and mapped is false.
func mapFile(f *os.File, size int64) (b []byte, mapped bool, err error) {
	if size > 0 && size == int64(int(size)) {
		if m, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED); err == nil {
			return m, true, nil
		}
	}
	b = make([]byte, size)
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, false, err
	}
	return b, false, nil
}

func parseIndex(b []byte, hashLen int) (*Index, error) {
	return parseIndexFunc(b, hashLen, nil)
}

// parseIndexFunc parses the index file b, keeping the entries keep
// accepts (all of them when keep is nil).
func parseIndexFunc(b []byte, hashLen int, keep func(path []byte) bool) (*Index, error) {
	r, err := newIndexReader(b, hashLen)
	if err != nil {
		return nil, err
	}
	n := r.n
	if keep != nil {
		n = 0
	}
	ix := &Index{Version: r.ver, Entries: hugemem.Slice[IndexEntry](n)[:0], raw: b, hashLen: hashLen, Partial: keep != nil}
	var strs hugemem.Strings
	for {
		e, ok := r.next()
		if !ok {
			break
		}
		if keep == nil || keep(e.path) {
			ix.Entries = append(ix.Entries, e.entry(&strs))
		}
	}
	if err := r.done(); err != nil {
		return nil, err
	}
	ix.extOff = r.off
	return ix, nil
}

// indexReader walks an index file's entries in order without copying
// them: what is not kept costs no memory (on a large image, the fresh
// memory a parsed copy takes is most of what reading the index costs).
type indexReader struct {
	body         []byte // the file without its trailing checksum
	ver, hashLen int
	n, i, off    int
	fixed        int    // stat data, object id and flags
	path         []byte // version 4: the previous entry's path, reused
	err          error  // why next stopped early, or ErrSplitIndex
}

// rawEntry is one entry as indexReader saw it; path and head point into
// the reader's buffers and are valid until its next call of next.
type rawEntry struct {
	off   int    // where the entry starts in the file
	head  []byte // stat data, object id and flags, as in the file
	ext   uint16 // extended flags (version 3 and up), or 0
	path  []byte
	stage int
}

func newIndexReader(b []byte, hashLen int) (*indexReader, error) {
	if hashLen != 20 && hashLen != 32 {
		return nil, fmt.Errorf("object ids of %d bytes are not a git hash", hashLen)
	}
	if len(b) < 12+hashLen || string(b[:4]) != "DIRC" {
		return nil, errors.New("not an index file (no DIRC header)")
	}
	ver := int(binary.BigEndian.Uint32(b[4:8]))
	if ver < 2 || ver > 4 {
		return nil, fmt.Errorf("index version %d is not understood (2, 3 or 4 are)", ver)
	}
	n := binary.BigEndian.Uint32(b[8:12])
	if n > maxIndexEntries {
		return nil, fmt.Errorf("index claims %d entries", n)
	}
	// The trailing checksum is not read.
	return &indexReader{body: b[:len(b)-hashLen], ver: ver, hashLen: hashLen, n: int(n), off: 12, fixed: 40 + hashLen + 2}, nil
}

// next returns the next entry, or false after the last one or at damage
// (then err says what). After the last entry the extensions are checked:
// a split index (the "link" extension) sets err to ErrSplitIndex.
func (r *indexReader) next() (rawEntry, bool) {
	if r.err != nil {
		return rawEntry{}, false
	}
	body, off := r.body, r.off
	if r.i == r.n {
		r.err = r.extensions()
		if r.err == nil {
			r.err = io.EOF
		}
		return rawEntry{}, false
	}
	i := r.i
	if off+r.fixed > len(body) {
		return r.fail("entry %d is cut off", i)
	}
	e := rawEntry{off: off, head: body[off : off+r.fixed]}
	flags := binary.BigEndian.Uint16(body[off+r.fixed-2:])
	e.stage = int(flags>>12) & 3
	p := off + r.fixed
	if flags&0x4000 != 0 {
		if r.ver < 3 {
			return r.fail("entry %d has extended flags in a version 2 index", i)
		}
		if p+2 > len(body) {
			return r.fail("entry %d is cut off", i)
		}
		e.ext = binary.BigEndian.Uint16(body[p:])
		p += 2
	}
	if r.ver == 4 {
		strip, w := indexVarint(body[p:])
		if w == 0 || strip > uint64(len(r.path)) {
			return r.fail("entry %d: bad path prefix length", i)
		}
		p += w
		end := bytes.IndexByte(body[p:], 0)
		if end < 0 {
			return r.fail("entry %d: path not terminated", i)
		}
		r.path = append(r.path[:uint64(len(r.path))-strip], body[p:p+end]...)
		e.path = r.path
		p += end + 1
	} else {
		end := bytes.IndexByte(body[p:], 0)
		if end < 0 {
			return r.fail("entry %d: path not terminated", i)
		}
		e.path = body[p : p+end]
		p += end
		// NUL padding to a multiple of eight, at least one byte.
		p = off + ((p-off)+8)&^7
		if p > len(body) {
			return r.fail("entry %d is cut off", i)
		}
	}
	r.off, r.i = p, i+1
	return e, true
}

func (r *indexReader) fail(format string, a ...any) (rawEntry, bool) {
	r.err = fmt.Errorf(format, a...)
	return rawEntry{}, false
}

// extensions walks the extensions after the entries.
func (r *indexReader) extensions() error {
	body, off := r.body, r.off
	for off+8 <= len(body) {
		sig := string(body[off : off+4])
		size := int(binary.BigEndian.Uint32(body[off+4:]))
		if sig == "link" {
			return ErrSplitIndex
		}
		if size < 0 || off+8+size > len(body) {
			return fmt.Errorf("extension %q is cut off", sig)
		}
		off += 8 + size
	}
	return nil
}

// done returns nil after a walk that reached the end, or what stopped it.
func (r *indexReader) done() error {
	if r.err == io.EOF {
		return nil
	}
	return r.err
}

// entry copies e out, its path into strs when that is not nil (a whole
// index's paths are hundreds of thousands of small strings).
func (e *rawEntry) entry(strs *hugemem.Strings) IndexEntry {
	h := e.head
	flags := binary.BigEndian.Uint16(h[len(h)-2:])
	path := ""
	if strs != nil {
		path = strs.Concat("", e.path)
	} else {
		path = string(e.path)
	}
	return IndexEntry{
		Path:         path,
		CtimeSec:     be32(h),
		CtimeNsec:    be32(h[4:]),
		MtimeSec:     be32(h[8:]),
		MtimeNsec:    be32(h[12:]),
		Dev:          be32(h[16:]),
		Ino:          be32(h[20:]),
		Mode:         be32(h[24:]),
		UID:          be32(h[28:]),
		GID:          be32(h[32:]),
		Size:         be32(h[36:]),
		Offset:       e.off,
		Stage:        e.stage,
		AssumeValid:  flags&0x8000 != 0,
		SkipWorktree: e.ext&0x4000 != 0,
		IntentToAdd:  e.ext&0x2000 != 0,
	}
}

func be32(b []byte) uint32 { return binary.BigEndian.Uint32(b) }

// indexVarint decodes the offset encoding of index v4 path prefixes (the
// same as OFS_DELTA's); the width is 0 when b ends mid-number.
func indexVarint(b []byte) (uint64, int) {
	if len(b) == 0 {
		return 0, 0
	}
	c := b[0]
	v := uint64(c & 0x7f)
	i := 1
	for c&0x80 != 0 {
		if i >= len(b) || i > 9 {
			return 0, 0
		}
		c = b[i]
		i++
		v = (v+1)<<7 | uint64(c&0x7f)
	}
	return v, i
}

// IndexFile is the index this process would use: GIT_INDEX_FILE when set
// (relative to the top of the work tree, as git reads it), else the
// worktree's own index in its git dir.
func (r *Repo) IndexFile() string {
	if r.index != "" {
		return r.index
	}
	if p := os.Getenv("GIT_INDEX_FILE"); p != "" {
		if !filepath.IsAbs(p) && r.Top != "" {
			p = filepath.Join(r.Top, p)
		}
		return p
	}
	return filepath.Join(r.GitDir, "index")
}

// HashLen is the size in bytes of the repository's object ids: 32 under
// extensions.objectFormat=sha256, else 20.
func (r *Repo) HashLen() int {
	if n := atomic.LoadInt32(&r.hashLen); n != 0 {
		return int(n)
	}
	n := 20
	if v, ok, err := r.Config("extensions.objectFormat"); err == nil && ok && v == "sha256" {
		n = 32
	}
	atomic.StoreInt32(&r.hashLen, int32(n))
	return n
}

// TreeID returns the tree object the index's entries make, as git's
// cache-tree extension ("TREE") records it for the top directory, or
// false when the index has none or git marked it stale (a path added,
// removed or changed since git last wrote trees). When it equals HEAD's
// tree, nothing is staged.
func (ix *Index) TreeID() (string, bool) {
	defer runtime.KeepAlive(ix) // raw may be a mapping released with ix
	if len(ix.raw) < 12+ix.hashLen {
		return "", false // no index file
	}
	body := ix.raw[:len(ix.raw)-ix.hashLen]
	for off := ix.extOff; off >= 12 && off+8 <= len(body); {
		size := int(binary.BigEndian.Uint32(body[off+4:]))
		if size < 0 || off+8+size > len(body) {
			return "", false
		}
		if string(body[off:off+4]) != "TREE" {
			off += 8 + size
			continue
		}
		// The first entry is the top directory: an empty path, NUL,
		// "<entries> <subtrees>\n", then the tree's object name unless
		// entries is -1 (stale).
		ext := body[off+8 : off+8+size]
		if len(ext) == 0 || ext[0] != 0 {
			return "", false
		}
		nl := bytes.IndexByte(ext, '\n')
		if nl < 0 {
			return "", false
		}
		counts := strings.Fields(string(ext[1:nl]))
		if len(counts) != 2 || strings.HasPrefix(counts[0], "-") {
			return "", false
		}
		if _, err := strconv.Atoi(counts[0]); err != nil || len(ext) < nl+1+ix.hashLen {
			return "", false
		}
		return hex.EncodeToString(ext[nl+1 : nl+1+ix.hashLen]), true
	}
	return "", false
}

// OID is the object name (hex) of entry k.
func (ix *Index) OID(k int) string {
	off := ix.Entries[k].Offset + 40
	id := hex.EncodeToString(ix.raw[off : off+ix.hashLen])
	runtime.KeepAlive(ix) // raw may be a mapping released with ix
	return id
}

// flagsOffset is where the 16-bit flags of the entry at off are.
func (ix *Index) flagsOffset(off int) int { return off + 40 + ix.hashLen }

// WithAssumeValid returns the index file with the assume-valid bit
// (CE_VALID, what 'git update-index --assume-unchanged' sets) on every
// entry valid names (by position in Entries), and the checksum computed
// again. git does not lstat such entries: a caller that has just seen
// those files with the stat data the index records gives git a copy to
// read (GIT_INDEX_FILE), so the tree is examined once, not twice.
func (ix *Index) WithAssumeValid(valid []bool) *IndexPatch {
	p := &IndexPatch{ix: ix}
	for k := range ix.Entries {
		if k < len(valid) && valid[k] {
			fo := ix.flagsOffset(ix.Entries[k].Offset)
			e := indexEdit{off: fo, n: 1}
			e.b[0] = ix.raw[fo] | 0x80
			p.edits = append(p.edits, e)
		}
	}
	return p
}

// StatUpdate is new stat data for one index entry (by position in
// Entries): the change time and owner after a chmod, chown or setxattr
// that left the content alone.
type StatUpdate struct {
	Entry               int
	CtimeSec, CtimeNsec uint32
	UID, GID            uint32
	// Full says the rest of the stat data is new too (a file whose
	// content the caller hashed and found equal to the entry's blob, as
	// git's refresh does): modification time, device, inode and size.
	Full                bool
	MtimeSec, MtimeNsec uint32
	Dev, Ino            uint32
	Size                uint32
}

// WithStat returns the index file with the given entries' ctime and owner
// replaced (all their stat data but the mode, for a Full update). Written back with UpdateIndexFile, which keeps the index time,
// an entry that was racy stays racy (git keeps checking its content) and
// no other entry changes at all.
func (ix *Index) WithStat(ups []StatUpdate) *IndexPatch {
	p := &IndexPatch{ix: ix}
	for _, u := range ups {
		off := ix.Entries[u.Entry].Offset
		c := indexEdit{off: off, n: 8}
		binary.BigEndian.PutUint32(c.b[:], u.CtimeSec)
		binary.BigEndian.PutUint32(c.b[4:], u.CtimeNsec)
		o := indexEdit{off: off + 28, n: 8}
		binary.BigEndian.PutUint32(o.b[:], u.UID)
		binary.BigEndian.PutUint32(o.b[4:], u.GID)
		p.edits = append(p.edits, c, o)
		if u.Full {
			m := indexEdit{off: off + 8, n: 8}
			binary.BigEndian.PutUint32(m.b[:], u.MtimeSec)
			binary.BigEndian.PutUint32(m.b[4:], u.MtimeNsec)
			d := indexEdit{off: off + 16, n: 8}
			binary.BigEndian.PutUint32(d.b[:], u.Dev)
			binary.BigEndian.PutUint32(d.b[4:], u.Ino)
			z := indexEdit{off: off + 36, n: 4}
			binary.BigEndian.PutUint32(z.b[:], u.Size)
			p.edits = append(p.edits, m, d, z)
		}
	}
	sort.SliceStable(p.edits, func(i, j int) bool { return p.edits[i].off < p.edits[j].off })
	return p
}

// IndexPatch is an index file with a few bytes changed (WithStat,
// WithAssumeValid). It is written out a chunk at a time, with its checksum
// computed on the way, rather than built whole as a copy of the file: on a
// large image the copy's fresh memory costs more than the rest.
type IndexPatch struct {
	ix    *Index
	edits []indexEdit // by offset; a later one at the same offset wins
}

// indexEdit sets the n bytes at off to b[:n].
type indexEdit struct {
	off, n int
	b      [8]byte
}

// WriteTo writes the patched index file to w: the file's bytes with the
// edits, then the checksum of all that (or the all-zero one git writes
// with index.skipHash, kept as it is).
func (p *IndexPatch) WriteTo(w io.Writer) (int64, error) {
	raw, hl := p.ix.raw, p.ix.hashLen
	body, tail := raw[:len(raw)-hl], raw[len(raw)-hl:]
	var h hash.Hash
	if bytes.Count(tail, []byte{0}) != len(tail) {
		h = sha1.New()
		if hl == 32 {
			h = sha256.New()
		}
	}
	buf := make([]byte, min(len(body), 1<<20))
	var n int64
	k := 0
	for pos := 0; pos < len(body); {
		end := min(pos+len(buf), len(body))
		c := buf[:end-pos]
		copy(c, body[pos:end])
		for k < len(p.edits) && p.edits[k].off < end {
			e := &p.edits[k]
			for i := 0; i < e.n; i++ {
				if o := e.off + i; o >= pos && o < end {
					c[o-pos] = e.b[i]
				}
			}
			if e.off+e.n > end {
				break // the rest of it is in the next chunk
			}
			k++
		}
		if h != nil {
			h.Write(c)
		}
		m, err := w.Write(c)
		n += int64(m)
		if err != nil {
			return n, err
		}
		pos = end
	}
	sum := tail
	if h != nil {
		sum = h.Sum(nil)
	}
	m, err := w.Write(sum)
	runtime.KeepAlive(p.ix) // raw may be a mapping released with the Index
	return n + int64(m), err
}

// Bytes returns the whole patched file.
func (p *IndexPatch) Bytes() []byte {
	var b bytes.Buffer
	b.Grow(len(p.ix.raw))
	p.WriteTo(&b)
	return b.Bytes()
}

// ErrIndexLocked is returned by UpdateIndexFile when another process holds
// the index lock.
var ErrIndexLocked = errors.New("the index is locked by another git process")

// lockIndex takes an index's lock as git does, by creating lock (the
// index's path and ".lock") exclusively: ErrIndexLocked when another
// process holds it.
func lockIndex(lock string, perm os.FileMode) (*os.File, error) {
	f, err := os.OpenFile(lock, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if errors.Is(err, os.ErrExist) {
		return nil, ErrIndexLocked
	}
	if err != nil {
		return nil, fmt.Errorf("locking the index: %w", err)
	}
	return f, nil
}

// UpdateIndexFile rewrites the index as git does: it takes index.lock
// (failing with ErrIndexLocked if another process holds it), reads the
// index, lets update return the patched file (nil: leave the index alone),
// writes it to the lock file with the index's permissions and
// modification time and renames it over the index. A split index is
// ErrSplitIndex.
//
// Keeping the modification time keeps git's racy-entry check as it was:
// an entry modified no earlier than the index was written is still
// checked by content, so only stat data proven by the caller can make a
// file look clean.
//
// known, if not nil, is the index as the caller read it; it is used when
// the file is still the same (not replaced since), sparing a second parse.
func (r *Repo) UpdateIndexFile(known *Index, update func(ix *Index) *IndexPatch) error {
	return r.UpdateIndexFileFunc(known, nil, update)
}

// UpdateIndexFileFunc is UpdateIndexFile for a caller that needs only some
// entries: when known cannot be used, the index is read with
// ReadIndexFunc(keep), so update sees a Partial index (its patch still
// writes the whole file).
func (r *Repo) UpdateIndexFileFunc(known *Index, keep func(path []byte) bool, update func(ix *Index) *IndexPatch) error {
	path := r.IndexFile()
	lock := path + ".lock"
	f, err := lockIndex(lock, 0o600)
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			f.Close()
			os.Remove(lock)
		}
	}()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return fmt.Errorf("reading the index: %w", err)
	}
	ix := known
	if ix == nil || ix.raw == nil || ix.dev != st.Dev || ix.ino != st.Ino || ix.Mtime != st.Mtim || int64(len(ix.raw)) != st.Size {
		if ix, err = ReadIndexFunc(path, r.HashLen(), keep); err != nil {
			return err
		}
	}
	p := update(ix)
	if p == nil {
		return nil
	}
	if err := f.Chmod(os.FileMode(st.Mode & 0o7777)); err != nil {
		return fmt.Errorf("writing the index: %w", err)
	}
	if _, err := p.WriteTo(f); err != nil {
		return fmt.Errorf("writing the index: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing the index: %w", err)
	}
	done = true
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, lock, []unix.Timespec{st.Atim, st.Mtim}, 0); err != nil {
		os.Remove(lock)
		return fmt.Errorf("writing the index: %w", err)
	}
	if err := os.Rename(lock, path); err != nil {
		os.Remove(lock)
		return fmt.Errorf("writing the index: %w", err)
	}
	return nil
}
