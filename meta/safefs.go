package meta

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// This file holds the symlink-proof filesystem primitives Apply is built on.
// Every object is reached as (directory fd, final name): the directory chain
// is opened one component at a time with O_PATH|O_NOFOLLOW, so a symlink
// anywhere in the parent chain stops the walk, and the final name is only
// ever handed to *at calls that do not follow it.

// errParentSymlink and friends are wrapped by parent-resolution failures.
var (
	errParentSymlink = errors.New("a parent directory is a symlink in the tree; nothing was changed")
	errParentNotDir  = errors.New("a parent path is not a directory in the tree; nothing was changed")
	errParentMissing = errors.New("the parent directory does not exist in the tree")
)

// parentError says which parent component stopped the walk.
type parentError struct {
	Parent string // the offending parent path
	Err    error  // one of errParent*
	Sys    error  // the underlying errno, if any
}

func (e *parentError) Error() string {
	switch e.Err {
	case errParentSymlink:
		return fmt.Sprintf("parent %s is a symlink in the tree; refusing to follow it, nothing was changed", displayPath(e.Parent))
	case errParentNotDir:
		return fmt.Sprintf("parent %s is not a directory in the tree; nothing was changed", displayPath(e.Parent))
	case errParentMissing:
		return fmt.Sprintf("parent directory %s does not exist in the tree", displayPath(e.Parent))
	}
	return fmt.Sprintf("parent %s: %v", displayPath(e.Parent), e.Err)
}

func (e *parentError) Unwrap() error { return e.Err }

// displayPath renders a manifest path for messages: vis-escaped like the
// .gitmeta stores it, without the leading "./".
func displayPath(p string) string {
	if p == "." {
		return "."
	}
	return strings.TrimPrefix(EscapePath(p), "./")
}

// dirStack caches the open chain of directories leading to the entry being
// worked on. Entries arrive sorted, so consecutive entries share most of
// their parents; only the components that differ are closed and reopened.
type dirStack struct {
	root  int      // O_PATH fd of the top of the tree; not owned by the stack
	comps []string // components of the currently open chain
	fds   []int    // fds[i] is the directory comps[:i+1]
}

// open returns an O_PATH fd for directory dir ("." for the top). The fd
// belongs to the stack and stays valid until the next open or close.
func (s *dirStack) open(dir string) (int, error) {
	if dir == "." {
		s.truncate(0)
		return s.root, nil
	}
	comps := strings.Split(dir, "/")
	keep := 0
	for keep < len(comps) && keep < len(s.comps) && comps[keep] == s.comps[keep] {
		keep++
	}
	s.truncate(keep)
	for i := keep; i < len(comps); i++ {
		parent := s.root
		if i > 0 {
			parent = s.fds[i-1]
		}
		fd, err := openDirNoFollow(parent, comps[i])
		if err != nil {
			return -1, classifyParentErr(parent, comps[i], strings.Join(comps[:i+1], "/"), err)
		}
		s.comps = append(s.comps, comps[i])
		s.fds = append(s.fds, fd)
	}
	return s.fds[len(s.fds)-1], nil
}

// truncate closes the chain beyond its first n components.
func (s *dirStack) truncate(n int) {
	for i := len(s.fds) - 1; i >= n; i-- {
		unix.Close(s.fds[i])
	}
	s.fds = s.fds[:n]
	s.comps = s.comps[:n]
}

func (s *dirStack) close() { s.truncate(0) }

// openDirNoFollow opens one directory component without following it.
func openDirNoFollow(dirfd int, name string) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err == unix.EINTR {
			continue
		}
		return fd, err
	}
}

// classifyParentErr turns a failed component open into a parentError that
// says whether the component was a symlink, something else, or missing.
func classifyParentErr(parentfd int, name, path string, err error) error {
	switch err {
	case unix.ENOENT:
		return &parentError{Parent: path, Err: errParentMissing, Sys: err}
	case unix.ELOOP, unix.ENOTDIR:
		var st unix.Stat_t
		if unix.Fstatat(parentfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
			return &parentError{Parent: path, Err: errParentSymlink, Sys: err}
		}
		return &parentError{Parent: path, Err: errParentNotDir, Sys: err}
	}
	return &parentError{Parent: path, Err: fmt.Errorf("cannot open parent directory: %w", err), Sys: err}
}

// lstatAt is fstatat(AT_SYMLINK_NOFOLLOW); an empty name means the
// directory fd itself.
func lstatAt(dirfd int, name string, st *unix.Stat_t) error {
	if name == "" {
		return unix.Fstat(dirfd, st)
	}
	for {
		err := unix.Fstatat(dirfd, name, st, unix.AT_SYMLINK_NOFOLLOW)
		if err == unix.EINTR {
			continue
		}
		return err
	}
}

// lchownAt changes the owner of the object itself, never a symlink's target.
func lchownAt(dirfd int, name string, uid, gid uint32) error {
	if name == "" {
		return unix.Fchownat(dirfd, "", int(uid), int(gid), unix.AT_EMPTY_PATH)
	}
	return unix.Fchownat(dirfd, name, int(uid), int(gid), unix.AT_SYMLINK_NOFOLLOW)
}

// errIsSymlink is returned by chmodNoFollow when the name turned out to be a
// symlink (symlink modes cannot be set on Linux, and the target must not be).
var errIsSymlink = errors.New("is a symlink; not following it")

// chmodNoFollow sets the mode of a non-symlink object. It tries fchmodat2
// with AT_SYMLINK_NOFOLLOW; if the kernel (or a seccomp filter) refuses it,
// it opens the name with O_PATH|O_NOFOLLOW, checks on the fd that it is not
// a symlink, and chmods the inode through /proc/self/fd.
func chmodNoFollow(dirfd int, name string, mode uint32) error {
	if name == "" {
		return unix.Chmod(procFD(dirfd), mode)
	}
	err := unix.Fchmodat(dirfd, name, mode, unix.AT_SYMLINK_NOFOLLOW)
	if err == nil {
		return nil
	}
	fd, oerr := unix.Openat(dirfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if oerr != nil {
		return oerr
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return errIsSymlink
	}
	return unix.Chmod(procFD(fd), mode)
}

func procFD(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// xattrPath names an object for the l*xattr calls: the directory is reached
// through its fd's /proc magic link (no path walk), and the l* variants do
// not follow the final name. For the directory itself (empty name) the
// magic link must be followed, so follow is true.
func xattrPath(dirfd int, name string) (path string, follow bool) {
	if name == "" {
		return procFD(dirfd), true
	}
	return procFD(dirfd) + "/" + name, false
}

// listXattrs returns the names of the object's extended attributes.
func listXattrs(dirfd int, name string) ([]string, error) {
	p, follow := xattrPath(dirfd, name)
	list := func(b []byte) (int, error) {
		if follow {
			return unix.Listxattr(p, b)
		}
		return unix.Llistxattr(p, b)
	}
	if !follow && !noXattrAt.Load() {
		list = func(b []byte) (int, error) { return listxattrat(dirfd, name, b) }
	}
	buf := make([]byte, 256)
	for {
		n, err := list(buf)
		if (err == unix.ENOSYS || err == unix.EPERM) && !follow && !noXattrAt.Load() {
			// Kernel before 6.13, or a seccomp filter that answers
			// EPERM for syscalls it does not know: use /proc.
			noXattrAt.Store(true)
			return listXattrs(dirfd, name)
		}
		if err == unix.ERANGE {
			sz, err := list(nil)
			if err != nil {
				return nil, err
			}
			buf = make([]byte, sz+64)
			continue
		}
		if err == unix.ENOTSUP {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		var names []string
		for _, s := range strings.Split(string(buf[:n]), "\x00") {
			if s != "" {
				names = append(names, s)
			}
		}
		return names, nil
	}
}

// noXattrAt is set once listxattrat(2) turned out to be unavailable.
var noXattrAt atomic.Bool

// sysListxattrat is listxattrat(2), Linux 6.13, the same on every
// architecture (it postdates the unified syscall table).
const sysListxattrat = 465

// listxattrat lists the xattrs of dirfd/name without following name and
// without a path walk through /proc: about half the cost of llistxattr on
// a /proc/self/fd path.
func listxattrat(dirfd int, name string, buf []byte) (int, error) {
	p, err := unix.BytePtrFromString(name)
	if err != nil {
		return 0, err
	}
	var bp unsafe.Pointer
	if len(buf) > 0 {
		bp = unsafe.Pointer(&buf[0])
	}
	n, _, errno := unix.Syscall6(sysListxattrat, uintptr(dirfd), uintptr(unsafe.Pointer(p)),
		uintptr(unix.AT_SYMLINK_NOFOLLOW), uintptr(bp), uintptr(len(buf)), 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// getXattr reads one attribute value.
func getXattr(dirfd int, name, attr string) ([]byte, error) {
	p, follow := xattrPath(dirfd, name)
	get := func(b []byte) (int, error) {
		if follow {
			return unix.Getxattr(p, attr, b)
		}
		return unix.Lgetxattr(p, attr, b)
	}
	buf := make([]byte, 256)
	for {
		n, err := get(buf)
		if err == unix.ERANGE {
			sz, err := get(nil)
			if err != nil {
				return nil, err
			}
			buf = make([]byte, sz+64)
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}

func setXattr(dirfd int, name, attr string, val []byte) error {
	p, follow := xattrPath(dirfd, name)
	if follow {
		return unix.Setxattr(p, attr, val, 0)
	}
	return unix.Lsetxattr(p, attr, val, 0)
}

func removeXattr(dirfd int, name, attr string) error {
	p, follow := xattrPath(dirfd, name)
	if follow {
		return unix.Removexattr(p, attr)
	}
	return unix.Lremovexattr(p, attr)
}

// typeOf maps a stat mode to a Type.
func typeOf(mode uint32) Type {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return TypeFile
	case unix.S_IFDIR:
		return TypeDir
	case unix.S_IFLNK:
		return TypeSymlink
	case unix.S_IFCHR:
		return TypeChar
	case unix.S_IFBLK:
		return TypeBlock
	case unix.S_IFIFO:
		return TypeFifo
	case unix.S_IFSOCK:
		return TypeSocket
	}
	return TypeUnknown
}

// typeNoun is a type for messages ("a regular file", "a symlink").
func typeNoun(t Type) string {
	switch t {
	case TypeFile:
		return "a regular file"
	case TypeDir:
		return "a directory"
	case TypeSymlink:
		return "a symlink"
	case TypeChar:
		return "a character device"
	case TypeBlock:
		return "a block device"
	case TypeFifo:
		return "a fifo"
	case TypeSocket:
		return "a socket"
	}
	return "an unknown kind of object"
}

// readlinkAt reads a symlink target without following anything.
func readlinkAt(dirfd int, name string) (string, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", err
		}
		if n < len(buf) {
			return string(buf[:n]), nil
		}
		buf = make([]byte, len(buf)*4)
	}
}

// openRegularAt opens a regular file for reading without following a
// symlink at its final name (parents are already safe: dirfd is).
func openRegularAt(dirfd int, name string) (*os.File, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		if err == nil {
			err = errors.New("not a regular file")
		}
		return nil, err
	}
	return os.NewFile(uintptr(fd), name), nil
}

// copyFileAt copies the regular file dfa/na to a new file dfb/nb (created
// exclusively, mode 0600 until the caller applies the recorded one).
func copyFileAt(dfa int, na string, dfb int, nb string) error {
	src, err := openRegularAt(dfa, na)
	if err != nil {
		return err
	}
	defer src.Close()
	fd, err := unix.Openat(dfb, nb, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	dst := os.NewFile(uintptr(fd), nb)
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		unix.Unlinkat(dfb, nb, 0)
		return err
	}
	if err := dst.Close(); err != nil {
		unix.Unlinkat(dfb, nb, 0)
		return err
	}
	return nil
}

// sameContent compares two regular files, opened without following
// symlinks, byte for byte.
func sameContent(dfa int, na string, dfb int, nb string) (bool, error) {
	fa, err := openRegularAt(dfa, na)
	if err != nil {
		return false, err
	}
	defer fa.Close()
	fb, err := openRegularAt(dfb, nb)
	if err != nil {
		return false, err
	}
	defer fb.Close()
	ba := make([]byte, 64<<10)
	bb := make([]byte, 64<<10)
	for {
		n, ea := io.ReadFull(fa, ba)
		m, eb := io.ReadFull(fb, bb)
		if n != m || !bytes.Equal(ba[:n], bb[:m]) {
			return false, nil
		}
		endA := ea == io.EOF || ea == io.ErrUnexpectedEOF
		endB := eb == io.EOF || eb == io.ErrUnexpectedEOF
		switch {
		case ea != nil && !endA:
			return false, ea
		case eb != nil && !endB:
			return false, eb
		case endA || endB:
			return endA && endB, nil
		}
	}
}
