//go:build linux && (amd64 || arm64)

package meta

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// lstatDirent is fstatat(dirfd, name, st, AT_SYMLINK_NOFOLLOW) for a name
// that is followed by a NUL in memory (a directory entry as getdents
// returns it), so no C string is built for it: the scan calls it once per
// entry. name must not contain a NUL itself.
func lstatDirent(dirfd int, name []byte, st *unix.Stat_t) error {
	if len(name) == 0 || cap(name) == len(name) || name[:len(name)+1][len(name)] != 0 {
		return unix.Fstatat(dirfd, string(name), st, unix.AT_SYMLINK_NOFOLLOW)
	}
	for {
		_, _, e := unix.Syscall6(sysFstatat, uintptr(dirfd), uintptr(unsafe.Pointer(&name[0])),
			uintptr(unsafe.Pointer(st)), unix.AT_SYMLINK_NOFOLLOW, 0, 0)
		switch e {
		case 0:
			return nil
		case unix.EINTR:
			continue
		}
		return e
	}
}
