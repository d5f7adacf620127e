package git

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/onesis/git-onesis/internal/hugemem"
)

// IndexView is where each entry of an index file starts, as a walk of the
// whole file found them (IndexChangesBetween). While the file is the same
// one, Read parses only the entries asked for, found by binary search,
// rather than walk every entry again: after a hook's apply on a large
// image, the refresh of a thousand entries no longer pays a second walk
// of hundreds of thousands.
type IndexView struct {
	path    string
	hashLen int
	st      unix.Stat_t
	offs    []uint32 // every entry's offset, in git's order
	attrs   []uint32 // the offsets of the .gitattributes entries
	extOff  int
}

// note records entry e of the walk.
func (v *IndexView) note(e *rawEntry) {
	v.offs = append(v.offs, uint32(e.off))
	if isAttributes(e.path) {
		v.attrs = append(v.attrs, uint32(e.off))
	}
}

// isAttributes reports whether p is a .gitattributes file's path.
func isAttributes(p []byte) bool {
	const name = ".gitattributes"
	return bytes.HasSuffix(p, []byte(name)) && (len(p) == len(name) || p[len(p)-len(name)-1] == '/')
}

// ErrIndexReplaced is returned by IndexView.Read when the index file is
// no longer the one the view was taken of.
var ErrIndexReplaced = errors.New("the index file was replaced since it was read")

// Read returns the index as ReadIndexFunc would with a keep that accepts
// the given paths (all their stages) and every .gitattributes entry: a
// Partial index, the file mapped as its raw bytes. It is
// ErrIndexReplaced when the file at the view's path is no longer the one
// the view was taken of (another inode, size or modification time).
func (v *IndexView) Read(paths []string) (*Index, error) {
	mf, err := mapIndex(v.path)
	if err != nil {
		return nil, err
	}
	if mf.st.Dev != v.st.Dev || mf.st.Ino != v.st.Ino || mf.st.Size != v.st.Size || mf.st.Mtim != v.st.Mtim {
		mf.release()
		return nil, ErrIndexReplaced
	}
	ix, err := v.read(mf.b, paths)
	if err != nil {
		mf.release()
		return nil, fmt.Errorf("reading the index %s: %w", v.path, err)
	}
	if mf.mapped {
		runtime.AddCleanup(ix, func(b []byte) { unix.Munmap(b) }, mf.b)
	}
	ix.Mtime, ix.dev, ix.ino = mf.st.Mtim, mf.st.Dev, mf.st.Ino
	return ix, nil
}

func (v *IndexView) read(b []byte, paths []string) (*Index, error) {
	r, err := newIndexReader(b, v.hashLen)
	if err != nil {
		return nil, err
	}
	if r.ver >= 4 || r.n != len(v.offs) {
		return nil, errors.New("the view does not match the file")
	}
	// at reads the entry at offset off.
	at := func(off uint32) (rawEntry, error) {
		r.off, r.i, r.err = int(off), 0, nil
		e, ok := r.next()
		if !ok {
			return e, r.err
		}
		return e, nil
	}
	want := slices.Clone(v.attrs)
	for _, p := range paths {
		var ferr error
		k, _ := slices.BinarySearchFunc(v.offs, p, func(off uint32, p string) int {
			e, err := at(off)
			if err != nil {
				ferr = err
				return 0
			}
			return bytes.Compare(e.path, []byte(p))
		})
		if ferr != nil {
			return nil, ferr
		}
		for ; k < len(v.offs); k++ {
			e, err := at(v.offs[k])
			if err != nil {
				return nil, err
			}
			if string(e.path) != p {
				break
			}
			want = append(want, v.offs[k])
		}
	}
	slices.Sort(want)
	want = slices.Compact(want)
	ix := &Index{Version: r.ver, Entries: hugemem.Slice[IndexEntry](len(want))[:0], raw: b, hashLen: v.hashLen, Partial: true, extOff: v.extOff}
	for _, off := range want {
		e, err := at(off)
		if err != nil {
			return nil, err
		}
		ix.Entries = append(ix.Entries, e.entry(nil))
	}
	return ix, nil
}
