package meta

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"runtime"
	"slices"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/google/renameio/v2"

	"github.com/onesis/git-onesis/internal/hugemem"
)

// ScanCache remembers what a Scan read beyond lstat, keyed by device,
// inode number and change time (ctime), so the next Scan can reuse it for
// every object whose ctime has not moved instead of reading it again:
// extended attributes (instead of listxattr and getxattr), a symlink's
// target (instead of readlink) and a directory's listing (instead of
// getdents). It is the same bargain git's index makes with stat data:
// setting or removing an xattr, chown, chmod and every write update ctime,
// creating, removing or renaming a name in a directory updates the
// directory's, a symlink's target never changes, and no system call sets
// ctime back. A directory's listing is taken from the cache only when the
// directory's own descriptor, opened for the scan, has the remembered
// ctime, so the names belong to exactly that directory; each name is still
// examined with its own lstat.
//
// Only objects whose ctime is at least racyMargin older than the start of
// the scan that saw them are remembered, so a change made in the same clock
// tick as the scan (ext2/3 have one-second timestamps) is never hidden.
//
// A ScanCache is loaded before a scan (LoadScanCache), passed in
// ScanOptions.Cache, and saved after it (Save), which writes what that scan
// saw. The zero value is an empty cache.
type ScanCache struct {
	recs []cacheRec // sorted by dev, ino; read-only
	// inPlace: recs lie in the mapped file (LoadScanCache).
	inPlace bool
	sets    [][]Xattr // xattr sets; a record's xidx is 1 + an index here
	aux     []byte    // listings and symlink targets; see cacheRec.aux

	fresh     []cacheRec
	freshSets [][]Xattr
	freshAux  []byte
	hits      atomic.Int64
	listHits  atomic.Int64  // directories listed from the cache
	seen      []atomic.Bool // per record: a lookup hit it
	missed    atomic.Int64  // objects remembered that were not hits
}

type cacheRec struct {
	dev, ino uint64
	csec     int64
	cnsec    uint32
	xidx     uint32 // 0: no xattrs
	// aux is 0, or 1 + the offset in the aux bytes of alen bytes: a
	// symlink's target, or a directory's listing (see appendListing).
	aux, alen uint32
}

// racyMargin is how much older than the scan's start an object's ctime must
// be for the cache to remember it. Tests lower it.
var racyMargin = 2 * time.Second

// scanCacheMagic opens a cache file. The records start 8-aligned
// (scanCacheHeader bytes in), where a little-endian machine uses them in
// place, mapped from the file. Version 3 added symlink targets and
// directory listings; a version 2 file loads as corrupt, that is empty,
// and the next Save replaces it.
const scanCacheMagic = "git-onesis scan cache 3\n"

// scanCacheHeader is the magic, then uid, record count, xattr set count
// and the length of the aux bytes, each a little-endian uint32.
const scanCacheHeader = len(scanCacheMagic) + 16

// scanCacheRec is the size of a record in the file: dev, ino, ctime
// seconds (8 bytes each), ctime nanoseconds, xidx, aux, alen (4 each).
const scanCacheRec = 40

// ErrScanCacheOtherUser is returned by LoadScanCache for a cache another
// user wrote: which xattrs a scan can read depends on who runs it (only root
// sees trusted.*), so such a cache is not used.
var ErrScanCacheOtherUser = errors.New("scan cache was written by another user")

// ErrScanCacheCorrupt is returned by LoadScanCache for a file that is not a
// cache this version wrote; callers treat it as an empty cache.
var ErrScanCacheCorrupt = errors.New("scan cache is corrupt or from another version")

// LoadScanCache reads a cache file. A missing file gives an empty cache and
// no error; a damaged one, or one another user wrote, gives an empty cache
// and ErrScanCacheCorrupt or ErrScanCacheOtherUser (wrapped).
func LoadScanCache(path string) (*ScanCache, error) {
	b, unmap, err := mapFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &ScanCache{}, nil
	}
	if err != nil {
		return &ScanCache{}, fmt.Errorf("reading the scan cache %s: %w", path, err)
	}
	c, err := decodeScanCache(b)
	if err != nil {
		unmap()
		return &ScanCache{}, fmt.Errorf("%s: %w", path, err)
	}
	if !c.inPlace {
		unmap()
		return c, nil
	}
	// The records point into the mapping, which is unmapped once the
	// cache is garbage (a long-lived process scans many times). The file
	// is replaced by rename, never written in place, so what is mapped
	// does not change under the scan.
	runtime.AddCleanup(c, func(unmap func()) { unmap() }, unmap)
	return c, nil
}

// mapFile maps a regular file read-only. A new process reads the cache
// this way in a few milliseconds; read into fresh heap memory, a large
// image's 10 MB took 50-80 ms, most of it page faults on that memory.
// Files of other kinds, and systems where mapping fails, are read.
func mapFile(path string) ([]byte, func(), error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s is not a regular file", path)
	}
	if size := fi.Size(); size > 0 && size == int64(int(size)) {
		if b, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_PRIVATE); err == nil {
			return b, func() { unix.Munmap(b) }, nil
		}
	}
	b, err := io.ReadAll(f)
	return b, func() {}, err
}

// recsInPlace returns the n records at b[off:] as a slice aliasing b, or
// nil when the machine cannot read them as they lie (big-endian, another
// struct layout, or b misaligned).
func recsInPlace(b []byte, off, n int) []cacheRec {
	var probe uint16 = 1
	var r cacheRec
	if *(*byte)(unsafe.Pointer(&probe)) != 1 || unsafe.Sizeof(r) != scanCacheRec ||
		unsafe.Offsetof(r.ino) != 8 || unsafe.Offsetof(r.csec) != 16 ||
		unsafe.Offsetof(r.cnsec) != 24 || unsafe.Offsetof(r.xidx) != 28 ||
		unsafe.Offsetof(r.aux) != 32 || unsafe.Offsetof(r.alen) != 36 {
		return nil
	}
	if n == 0 || off+scanCacheRec*n > len(b) {
		return nil
	}
	p := unsafe.Pointer(&b[off])
	if uintptr(p)%unsafe.Alignof(r) != 0 {
		return nil
	}
	return unsafe.Slice((*cacheRec)(p), n)
}

func decodeScanCache(b []byte) (*ScanCache, error) {
	if len(b) < scanCacheHeader+4 || string(b[:len(scanCacheMagic)]) != scanCacheMagic {
		return nil, ErrScanCacheCorrupt
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, crcTable) != sum {
		return nil, ErrScanCacheCorrupt
	}
	p := body[len(scanCacheMagic):]
	if uid := binary.LittleEndian.Uint32(p); uid != uint32(os.Geteuid()) {
		return nil, fmt.Errorf("%w (uid %d)", ErrScanCacheOtherUser, uid)
	}
	nrecs := int(binary.LittleEndian.Uint32(p[4:]))
	nsets := int(binary.LittleEndian.Uint32(p[8:]))
	naux := int(binary.LittleEndian.Uint32(p[12:]))
	p = body[scanCacheHeader:]
	if nrecs < 0 || nrecs > len(p)/scanCacheRec {
		return nil, ErrScanCacheCorrupt
	}
	c := &ScanCache{recs: recsInPlace(body, scanCacheHeader, nrecs)}
	c.inPlace = c.recs != nil
	if !c.inPlace {
		c.recs = make([]cacheRec, nrecs)
		for i := range c.recs {
			r := p[i*scanCacheRec:]
			c.recs[i] = cacheRec{
				dev:   binary.LittleEndian.Uint64(r),
				ino:   binary.LittleEndian.Uint64(r[8:]),
				csec:  int64(binary.LittleEndian.Uint64(r[16:])),
				cnsec: binary.LittleEndian.Uint32(r[24:]),
				xidx:  binary.LittleEndian.Uint32(r[28:]),
				aux:   binary.LittleEndian.Uint32(r[32:]),
				alen:  binary.LittleEndian.Uint32(r[36:]),
			}
		}
	}
	p = p[nrecs*scanCacheRec:]
	if naux < 0 || naux > len(p) {
		return nil, ErrScanCacheCorrupt
	}
	c.aux, p = p[:naux:naux], p[naux:]
	if !c.inPlace {
		c.aux = bytes.Clone(c.aux) // the file is unmapped once decoded
	}
	// The lookups binary-search the records and index the sets and the
	// aux bytes by them: all must hold however the file came to be.
	for i := range c.recs {
		r := &c.recs[i]
		if r.xidx > uint32(nsets) {
			return nil, ErrScanCacheCorrupt
		}
		if r.aux == 0 && r.alen != 0 || r.aux != 0 && uint64(r.aux)-1+uint64(r.alen) > uint64(naux) {
			return nil, ErrScanCacheCorrupt
		}
		if i > 0 && !recLess(c.recs[i-1], *r) {
			return nil, ErrScanCacheCorrupt
		}
	}
	if nsets > len(p)/2 {
		return nil, ErrScanCacheCorrupt
	}
	c.sets = make([][]Xattr, nsets)
	for i := range c.sets {
		if len(p) < 2 {
			return nil, ErrScanCacheCorrupt
		}
		n := int(binary.LittleEndian.Uint16(p))
		p = p[2:]
		xs := make([]Xattr, 0, n)
		for range n {
			if len(p) < 2 {
				return nil, ErrScanCacheCorrupt
			}
			nl := int(binary.LittleEndian.Uint16(p))
			p = p[2:]
			if len(p) < nl+4 {
				return nil, ErrScanCacheCorrupt
			}
			name := string(p[:nl])
			p = p[nl:]
			vl := int(binary.LittleEndian.Uint32(p))
			p = p[4:]
			if vl < 0 || len(p) < vl {
				return nil, ErrScanCacheCorrupt
			}
			xs = append(xs, Xattr{Name: name, Value: bytes.Clone(p[:vl])})
			p = p[vl:]
		}
		c.sets[i] = xs
	}
	if len(p) != 0 {
		return nil, ErrScanCacheCorrupt
	}
	return c, nil
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

func recLess(a, b cacheRec) bool {
	if a.dev != b.dev {
		return a.dev < b.dev
	}
	return a.ino < b.ino
}

// lookup returns the remembered xattrs of the object k names when its
// ctime is unchanged. With needAux, only a record that holds aux bytes (a
// listing or a target) is a hit, and they are returned too. idx is the
// record's index, for unsee.
func (c *ScanCache) lookup(k statKey, needAux bool) (xs []Xattr, aux []byte, idx int, ok bool) {
	if c == nil || len(c.recs) == 0 {
		return nil, nil, -1, false
	}
	dev, ino := k.dev, k.ino
	lo, hi := 0, len(c.recs)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		r := &c.recs[m]
		if r.dev < dev || (r.dev == dev && r.ino < ino) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == len(c.recs) {
		return nil, nil, -1, false
	}
	r := &c.recs[lo]
	if r.dev != dev || r.ino != ino || r.csec != k.csec || r.cnsec != k.cnsec {
		return nil, nil, -1, false
	}
	if needAux {
		if r.aux == 0 {
			return nil, nil, -1, false
		}
		aux = c.aux[r.aux-1 : r.aux-1+r.alen]
	}
	c.hits.Add(1)
	c.seen[lo].Store(true)
	if r.xidx != 0 {
		xs = c.sets[r.xidx-1]
	}
	return xs, aux, lo, true
}

// unsee takes back the hit on record idx: the scan found it unusable and
// read the object afresh, so Save must write the new record, not this one.
func (c *ScanCache) unsee(idx int) {
	c.hits.Add(-1)
	c.seen[idx].Store(false)
}

// reset prepares the cache for a scan.
func (c *ScanCache) reset() {
	c.hits.Store(0)
	c.listHits.Store(0)
	c.missed.Store(0)
	c.seen = make([]atomic.Bool, len(c.recs))
	c.fresh, c.freshSets, c.freshAux = nil, nil, nil
}

// Hits is the number of objects whose xattrs the last Scan took from the
// cache.
func (c *ScanCache) Hits() int { return int(c.hits.Load()) }

// Len is the number of objects the cache remembers.
func (c *ScanCache) Len() int { return len(c.recs) }

// Unchanged reports whether the last Scan saw exactly what the cache
// already held, so saving it would write the same records.
func (c *ScanCache) Unchanged() bool { return c.drift() == 0 }

// drift counts how far what the last Scan saw is from the records: the
// objects it remembered afresh plus the records no lookup hit.
func (c *ScanCache) drift() int {
	n := int(c.missed.Load())
	for i := range c.seen {
		if !c.seen[i].Load() {
			n++
		}
	}
	return n
}

// driftShare: while fewer than one record in driftShare has drifted, Save
// leaves the file as it is. The objects that changed then miss again at
// the next scan (one listxattr each) and their old records are never hit
// again (their ctime moved on), both harmless; what it saves is writing
// the whole file, a tenth of a second on a large image, for a commit
// that changed a few files.
const driftShare = 256

// Save writes what the last Scan saw to path, atomically. Objects changed
// too recently to be trusted are left out. When nothing or little changed
// (see Unchanged and driftShare) the file is left alone.
func (c *ScanCache) Save(path string) error {
	if c.drift() <= len(c.recs)/driftShare {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
	}
	recs, sets, aux := c.merged()
	size := scanCacheHeader + scanCacheRec*len(recs) + len(aux) + 4
	for _, xs := range sets {
		size += 2
		for _, x := range xs {
			size += 6 + len(x.Name) + len(x.Value)
		}
	}
	b := make([]byte, 0, size)
	b = append(b, scanCacheMagic...)
	b = binary.LittleEndian.AppendUint32(b, uint32(os.Geteuid()))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(recs)))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(sets)))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(aux)))
	for _, r := range recs {
		b = binary.LittleEndian.AppendUint64(b, r.dev)
		b = binary.LittleEndian.AppendUint64(b, r.ino)
		b = binary.LittleEndian.AppendUint64(b, uint64(r.csec))
		b = binary.LittleEndian.AppendUint32(b, r.cnsec)
		b = binary.LittleEndian.AppendUint32(b, r.xidx)
		b = binary.LittleEndian.AppendUint32(b, r.aux)
		b = binary.LittleEndian.AppendUint32(b, r.alen)
	}
	b = append(b, aux...)
	for _, xs := range sets {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(xs)))
		for _, x := range xs {
			b = binary.LittleEndian.AppendUint16(b, uint16(len(x.Name)))
			b = append(b, x.Name...)
			b = binary.LittleEndian.AppendUint32(b, uint32(len(x.Value)))
			b = append(b, x.Value...)
		}
	}
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, crcTable))
	if err := renameio.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("writing the scan cache: %w", err)
	}
	return nil
}

// merged returns the records Save writes, sorted and one per object: the
// loaded records some lookup hit (an object whose ctime has not moved,
// so its record holds, and it is older than any cutoff since) and the
// objects this scan remembered afresh, with the xattr sets and aux bytes
// they use.
func (c *ScanCache) merged() ([]cacheRec, [][]Xattr, []byte) {
	fresh, sets, aux := c.fresh, c.freshSets, c.freshAux
	slices.SortFunc(fresh, cmpRec)
	n := len(fresh)
	for i := range c.seen {
		if c.seen[i].Load() {
			n++
		}
	}
	recs := hugemem.Slice[cacheRec](n)[:0]
	oldSet := make(map[uint32]uint32) // an old set's index -> its new one
	keep := func(r cacheRec) {
		if r.aux != 0 {
			if uint64(len(aux))+uint64(r.alen) >= 1<<32-1 {
				r.aux, r.alen = 0, 0 // too much to address: read afresh next time
			} else {
				old := c.aux[r.aux-1 : r.aux-1+r.alen]
				r.aux = uint32(len(aux)) + 1
				aux = append(aux, old...)
			}
		}
		if r.xidx != 0 {
			ni, ok := oldSet[r.xidx]
			if !ok {
				sets = append(sets, c.sets[r.xidx-1])
				ni = uint32(len(sets))
				oldSet[r.xidx] = ni
			}
			r.xidx = ni
		}
		recs = append(recs, r)
	}
	i := 0
	for j, r := range c.recs {
		if !c.seen[j].Load() {
			continue
		}
		for ; i < len(fresh) && recLess(fresh[i], r); i++ {
			recs = append(recs, fresh[i])
		}
		keep(r)
	}
	recs = append(recs, fresh[i:]...)
	// Hard links are one inode seen at several paths: keep one record.
	recs = slices.CompactFunc(recs, func(a, b cacheRec) bool { return a.dev == b.dev && a.ino == b.ino })
	return recs, sets, aux
}

func cmpRec(a, b cacheRec) int {
	switch {
	case recLess(a, b):
		return -1
	case recLess(b, a):
		return 1
	}
	return 0
}

// collect gathers what the workers saw into the records Save writes.
func (c *ScanCache) collect(ws []*scanWorker) {
	n, ns := 0, 0
	for _, w := range ws {
		n += len(w.crecs)
		ns += len(w.csets)
	}
	c.fresh = hugemem.Slice[cacheRec](n)[:0]
	c.freshSets = make([][]Xattr, 0, ns)
	na := 0
	for _, w := range ws {
		na += len(w.caux)
	}
	c.freshAux = make([]byte, 0, na)
	for _, w := range ws {
		base := uint32(len(c.freshSets))
		c.freshSets = append(c.freshSets, w.csets...)
		abase := uint64(len(c.freshAux))
		if abase+uint64(len(w.caux)) < 1<<32-1 {
			c.freshAux = append(c.freshAux, w.caux...)
		} else {
			abase = 1 << 32 // too much to address: dropped below
		}
		for _, r := range w.crecs {
			if r.xidx != 0 {
				r.xidx += base
			}
			if r.aux != 0 {
				if abase >= 1<<32 {
					r.aux, r.alen = 0, 0
				} else {
					r.aux += uint32(abase)
				}
			}
			c.fresh = append(c.fresh, r)
		}
		w.crecs, w.csets, w.caux = nil, nil, nil
	}
}
