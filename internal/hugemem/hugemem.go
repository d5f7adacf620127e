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
