package meta

import (
	"bytes"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"
)

// precheckMin is the manifest size from which a full apply first finds the
// entries that already match in parallel; below it the sequential pass is
// quick anyway.
const precheckMin = 4096

// cleanSet checks, in parallel and without changing anything, which
// entries already match the tree exactly. A full apply then visits only the
// rest, so a no-op apply over 300k entries costs one fstatat and one
// listxattr per entry spread over every CPU. Anything unusual (hard-link
// members, legacy entries, unreadable parents) is left to the sequential
// pass, which reports it.
func (a *applier) cleanSet() []bool {
	workers := runtime.NumCPU()
	clean := make([]bool, len(a.m.Entries))
	chunk := (len(a.order) + workers - 1) / workers
	var wg sync.WaitGroup
	for lo := 0; lo < len(a.order); lo += chunk {
		hi := min(lo+chunk, len(a.order))
		wg.Add(1)
		go func(idx []int) {
			defer wg.Done()
			s := dirStack{root: a.rootfd}
			defer s.close()
			for _, i := range idx {
				clean[i] = a.isClean(&s, &a.m.Entries[i])
			}
		}(a.order[lo:hi])
	}
	wg.Wait()
	return clean
}

// isClean reports whether the tree already holds exactly what e records.
func (a *applier) isClean(s *dirStack, e *Entry) bool {
	if e.Type == TypeUnknown || e.Hardlink != "" || checkEntry(e) != nil {
		return false
	}
	dirfd, name, err := a.locate(s, e.Path)
	if err != nil {
		return false
	}
	var st unix.Stat_t
	if lstatAt(dirfd, name, &st) != nil {
		return false
	}
	if typeOf(st.Mode) != e.Type || st.Uid != e.UID || st.Gid != e.GID {
		return false
	}
	if e.Type == TypeFile && st.Nlink > 1 && !a.primaries[e.Path] {
		return false // hard-linked, but recorded as standalone
	}
	switch e.Type {
	case TypeSymlink:
		if t, err := readlinkAt(dirfd, name); err != nil || t != e.Link {
			return false
		}
	case TypeChar, TypeBlock:
		if unix.Major(st.Rdev) != e.Major || unix.Minor(st.Rdev) != e.Minor {
			return false
		}
		fallthrough
	default:
		if st.Mode&07777 != e.Mode {
			return false
		}
	}
	names, err := listXattrs(dirfd, name)
	if err != nil || len(names) != len(e.Xattrs) {
		return false
	}
	for _, x := range e.Xattrs {
		if v, err := getXattr(dirfd, name, x.Name); err != nil || !bytes.Equal(v, x.Value) {
			return false
		}
	}
	return true
}
