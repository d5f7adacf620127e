//go:build !linux || !(amd64 || arm64)

package meta

import "golang.org/x/sys/unix"

// lstatDirent is fstatat(dirfd, name, st, AT_SYMLINK_NOFOLLOW).
func lstatDirent(dirfd int, name []byte, st *unix.Stat_t) error {
	return unix.Fstatat(dirfd, string(name), st, unix.AT_SYMLINK_NOFOLLOW)
}
