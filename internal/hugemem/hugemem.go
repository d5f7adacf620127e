// Package hugemem asks the kernel to back large, short-lived allocations
// with transparent huge pages where the system leaves that to the program
// (transparent_hugepage/enabled set to "madvise", Debian's default).
//
// A hook that parses a large image's .gitmeta fills tens of megabytes of
// fresh memory, and touching fresh memory costs one page fault per 4 KiB:
// on the virtual machines measured for docs/benchmarks.md, about 4.7 ms
// per MiB, more than the parse itself. With huge pages it is one fault per
// 2 MiB. The Go runtime does not ask for them (since Go 1.21.1), so the
// few allocations that are both large and touched at once ask here.
package hugemem

import (
	"io"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// min is the size below which advice is not worth a system call: a huge
// page is 2 MiB, and only whole aligned ones inside the range count.
const min = 4 << 20

// Advise marks the memory [p, p+n) for huge pages before it is first
// touched. It is only advice: where the kernel declines (huge pages off,
// "never", an old kernel) nothing changes but the speed.
func Advise(p unsafe.Pointer, n uintptr) {
	if n < min || p == nil {
		return
	}
	const huge = 2 << 20
	start := (uintptr(p) + huge - 1) &^ (huge - 1)
	end := (uintptr(p) + n) &^ (huge - 1)
	if end <= start {
		return
	}
	// The range lies inside one allocation the caller owns, so it is
	// mapped, readable and writable memory of the Go heap.
	unix.Madvise(unsafe.Slice((*byte)(unsafe.Add(p, start-uintptr(p))), end-start), unix.MADV_HUGEPAGE)
}

// Slice returns make([]T, n) with its memory advised (Advise).
func Slice[T any](n int) []T {
	s := make([]T, n)
	if n > 0 {
		var t T
		Advise(unsafe.Pointer(unsafe.SliceData(s)), uintptr(n)*unsafe.Sizeof(t))
	}
	return s
}

// Append appends v to s. When s is full it moves to a new, advised array
// of twice the size (at least growMin elements): appending hundreds of
// thousands of entries one at a time otherwise grows the slice through
// fresh memory the runtime takes in 4 KiB pages, one fault each.
func Append[T any](s []T, v T) []T {
	if len(s) == cap(s) {
		s = grow(s)
	}
	return append(s, v)
}

// growMin is the smallest array Append moves to: about the smallest that
// holds a whole aligned huge page for elements of a few dozen bytes.
const growMin = 1 << 16

func grow[T any](s []T) []T {
	n := max(2*cap(s), growMin)
	t := Slice[T](n)[:len(s)]
	copy(t, s)
	return t
}

// Strings allocates strings in large advised blocks: the paths of a scan
// are hundreds of thousands of small strings, each a heap allocation of
// fresh memory otherwise. A block is kept alive by any string in it. Not
// safe for concurrent use: give each goroutine its own.
type Strings struct {
	block []byte
}

// stringBlock is the size of each block: two huge pages, at least one of
// them aligned inside the block.
const stringBlock = 4 << 20

// Concat returns prefix + string(b) as one string in the current block.
func (a *Strings) Concat(prefix string, b []byte) string {
	n := len(prefix) + len(b)
	if n == 0 {
		return ""
	}
	if n > stringBlock/64 {
		return prefix + string(b) // large: the heap is fine
	}
	if len(a.block)+n > cap(a.block) {
		a.block = Slice[byte](stringBlock)[:0]
	}
	off := len(a.block)
	a.block = append(a.block, prefix...)
	a.block = append(a.block, b...)
	// The bytes at [off, off+n) are never written again: the block is
	// only appended to.
	return unsafe.String(&a.block[off], n)
}

// ReadFile is os.ReadFile into advised memory.
func ReadFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := fi.Size()
	if !fi.Mode().IsRegular() || size < min || size != int64(int(size)) {
		return os.ReadFile(name)
	}
	// One byte more than the size, so a file that grew is seen to have.
	b := Slice[byte](int(size) + 1)[:0]
	for {
		n, err := f.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return nil, err
		}
		if len(b) == cap(b) {
			// It grew while read: the rest the ordinary way.
			rest, err := io.ReadAll(f)
			if err != nil {
				return nil, err
			}
			return append(b, rest...), nil
		}
	}
}
