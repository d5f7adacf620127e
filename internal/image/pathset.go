package image

import (
	"hash/maphash"
	"math/bits"

	"github.com/onesis/git-onesis/internal/hugemem"
)

// pathSet answers the scan's question for every file and symlink it
// meets: is this path in the index? It is built once from the index's
// paths, as an open-addressing table of their positions in advised
// memory. A Go map of a large image's 265,000 paths took 12 MB of fresh
// memory, one page fault per 4 KiB, and 450 ns a lookup.
type pathSet struct {
	seed  maphash.Seed
	paths []string
	// slots hold, for a path at paths[i], the hash's top 32 bits above
	// i+1; 0 is an empty slot. The top bits spare most string compares.
	slots []uint64
	mask  uint64
}

func newPathSet(paths []string) *pathSet {
	n := max(16, 1<<bits.Len(uint(2*len(paths))))
	s := &pathSet{seed: maphash.MakeSeed(), slots: hugemem.Slice[uint64](n), mask: uint64(n - 1)}
	s.paths = make([]string, 0, len(paths)+1)
	for _, p := range paths {
		s.add(p)
	}
	return s
}

// add puts p in the set, unless it is there already.
func (s *pathSet) add(p string) {
	if s.has(p) {
		return
	}
	if 2*(len(s.paths)+1) > len(s.slots) {
		s.rehash()
	}
	s.paths = append(s.paths, p)
	h := maphash.String(s.seed, p)
	v := h>>32<<32 | uint64(len(s.paths))
	for i := h & s.mask; ; i = (i + 1) & s.mask {
		if s.slots[i] == 0 {
			s.slots[i] = v
			return
		}
	}
}

func (s *pathSet) rehash() {
	old := s.paths
	*s = pathSet{seed: s.seed, slots: hugemem.Slice[uint64](2 * len(s.slots)), mask: uint64(2*len(s.slots) - 1), paths: make([]string, 0, 2*len(old))}
	for _, p := range old {
		s.add(p)
	}
}

// has reports whether p is in the set.
func (s *pathSet) has(p string) bool {
	h := maphash.String(s.seed, p)
	top := h >> 32
	for i := h & s.mask; ; i = (i + 1) & s.mask {
		v := s.slots[i]
		if v == 0 {
			return false
		}
		if v>>32 == top && s.paths[uint32(v)-1] == p {
			return true
		}
	}
}

// len is the number of paths in the set.
func (s *pathSet) len() int { return len(s.paths) }
