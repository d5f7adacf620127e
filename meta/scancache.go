package meta

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"github.com/google/renameio/v2"

	"github.com/onesis/git-onesis/internal/hugemem"
)

// ScanCache remembers the extended attributes a Scan read, keyed by device,
// inode number and change time (ctime), so the next Scan can reuse them for
// every object whose ctime has not moved instead of calling listxattr and
// getxattr again. It is the same bargain git's index makes with stat data:
// setting or removing an xattr, chown, chmod and every write update ctime,
// and no system call sets ctime back.
//
// Only objects whose ctime is at least racyMargin older than the start of
// the scan that saw them are remembered, so a change made in the same clock
// tick as the scan (ext2/3 have one-second timestamps) is never hidden.
//
// A ScanCache is loaded before a scan (LoadScanCache), passed in
// ScanOptions.Cache, and saved after it (Save), which writes what that scan
// saw. The zero value is an empty cache.
type ScanCache struct {
	recs []cacheRec // sorted by dev, ino
	sets [][]Xattr  // xattr sets; a record's xidx is 1 + an index here

	fresh     []cacheRec
	freshSets [][]Xattr
	hits      atomic.Int64
	seen      []atomic.Bool // per record: a lookup hit it
	missed    atomic.Int64  // objects remembered that were not hits
}

type cacheRec struct {
	dev, ino uint64
	csec     int64
	cnsec    uint32
	xidx     uint32 // 0: no xattrs
}

// racyMargin is how much older than the scan's start an object's ctime must
// be for the cache to remember it. Tests lower it.
var racyMargin = 2 * time.Second

const scanCacheMagic = "git-onesis scan cache 1\n"

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
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &ScanCache{}, nil
	}
	if err != nil {
		return &ScanCache{}, fmt.Errorf("reading the scan cache %s: %w", path, err)
	}
	c, err := decodeScanCache(b)
	if err != nil {
		return &ScanCache{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

func decodeScanCache(b []byte) (*ScanCache, error) {
	if len(b) < len(scanCacheMagic)+16 || string(b[:len(scanCacheMagic)]) != scanCacheMagic {
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
	p = p[12:]
	if nrecs < 0 || nrecs > len(p)/32 {
		return nil, ErrScanCacheCorrupt
	}
	c := &ScanCache{recs: make([]cacheRec, nrecs)}
	for i := range c.recs {
		r := p[i*32:]
		c.recs[i] = cacheRec{
			dev:   binary.LittleEndian.Uint64(r),
			ino:   binary.LittleEndian.Uint64(r[8:]),
			csec:  int64(binary.LittleEndian.Uint64(r[16:])),
			cnsec: binary.LittleEndian.Uint32(r[24:]),
			xidx:  binary.LittleEndian.Uint32(r[28:]),
		}
		if c.recs[i].xidx > uint32(nsets) {
			return nil, ErrScanCacheCorrupt
		}
		if i > 0 && !recLess(c.recs[i-1], c.recs[i]) {
			return nil, ErrScanCacheCorrupt
		}
	}
	p = p[nrecs*32:]
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

// lookup returns the remembered xattrs of (dev, ino) when its ctime is
// unchanged.
func (c *ScanCache) lookup(dev, ino uint64, csec int64, cnsec uint32) ([]Xattr, bool) {
	if c == nil || len(c.recs) == 0 {
		return nil, false
	}
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
		return nil, false
	}
	r := &c.recs[lo]
	if r.dev != dev || r.ino != ino || r.csec != csec || r.cnsec != cnsec {
		return nil, false
	}
	c.hits.Add(1)
	c.seen[lo].Store(true)
	if r.xidx == 0 {
		return nil, true
	}
	return c.sets[r.xidx-1], true
}

// reset prepares the cache for a scan.
func (c *ScanCache) reset() {
	c.hits.Store(0)
	c.missed.Store(0)
	c.seen = make([]atomic.Bool, len(c.recs))
	c.fresh, c.freshSets = nil, nil
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
	recs, sets := c.fresh, c.freshSets
	slices.SortFunc(recs, func(a, b cacheRec) int {
		switch {
		case recLess(a, b):
			return -1
		case recLess(b, a):
			return 1
		}
		return 0
	})
	// Hard links are one inode seen at several paths: keep one record.
	recs = slices.CompactFunc(recs, func(a, b cacheRec) bool { return a.dev == b.dev && a.ino == b.ino })
	size := len(scanCacheMagic) + 12 + 32*len(recs) + 4
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
	for _, r := range recs {
		b = binary.LittleEndian.AppendUint64(b, r.dev)
		b = binary.LittleEndian.AppendUint64(b, r.ino)
		b = binary.LittleEndian.AppendUint64(b, uint64(r.csec))
		b = binary.LittleEndian.AppendUint32(b, r.cnsec)
		b = binary.LittleEndian.AppendUint32(b, r.xidx)
	}
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

// collect gathers what the workers saw into the records Save writes.
func (c *ScanCache) collect(ws []*scanWorker) {
	n, ns := 0, 0
	for _, w := range ws {
		n += len(w.crecs)
		ns += len(w.csets)
	}
	c.fresh = hugemem.Slice[cacheRec](n)[:0]
	c.freshSets = make([][]Xattr, 0, ns)
	for _, w := range ws {
		base := uint32(len(c.freshSets))
		c.freshSets = append(c.freshSets, w.csets...)
		for _, r := range w.crecs {
			if r.xidx != 0 {
				r.xidx += base
			}
			c.fresh = append(c.fresh, r)
		}
		w.crecs, w.csets = nil, nil
	}
}
