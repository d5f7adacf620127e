package nfsroot

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"

	billy "github.com/go-git/go-billy/v5"
	"golang.org/x/sys/unix"
)

// rootFS is the billy.Filesystem go-nfs writes a maintenance export
// through: every call goes through an os.Root over the export's directory,
// so no path and no symlink (absolute, or with enough "..") ever leads out
// of it, however the tree changes under the call. Symlinks are stored and
// read with their raw targets.
type rootFS struct {
	root *os.Root
	dir  string
}

var _ billy.Filesystem = (*rootFS)(nil)

// rootFile is an open file of a rootFS.
type rootFile struct {
	*os.File
	name string
}

// Name is the name as presented to Open (relative to the export), as
// billy.File says: go-nfs stats a created file by it.
func (f rootFile) Name() string { return f.name }

func (f rootFile) Lock() error   { return unix.Flock(int(f.Fd()), unix.LOCK_EX) }
func (f rootFile) Unlock() error { return unix.Flock(int(f.Fd()), unix.LOCK_UN) }

func (r *rootFS) file(name string, f *os.File, err error) (billy.File, error) {
	if err != nil {
		return nil, err
	}
	return rootFile{f, name}, nil
}

func (r *rootFS) Create(name string) (billy.File, error) {
	return r.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o666)
}

func (r *rootFS) Open(name string) (billy.File, error) { return r.OpenFile(name, os.O_RDONLY, 0) }

func (r *rootFS) OpenFile(name string, flag int, perm os.FileMode) (billy.File, error) {
	f, err := r.root.OpenFile(rootRel(name), flag, perm)
	return r.file(name, f, err)
}

// Stat does not follow a final symlink: go-nfs's GETATTR of a symlink
// must describe the link.
func (r *rootFS) Stat(name string) (os.FileInfo, error) { return r.root.Lstat(rootRel(name)) }

func (r *rootFS) Lstat(name string) (os.FileInfo, error) { return r.root.Lstat(rootRel(name)) }

func (r *rootFS) Rename(from, to string) error {
	return r.root.Rename(rootRel(from), rootRel(to))
}

func (r *rootFS) Remove(name string) error {
	if rootRel(name) == "." {
		return &os.PathError{Op: "remove", Path: name, Err: os.ErrPermission}
	}
	return r.root.Remove(rootRel(name))
}

func (r *rootFS) Join(elem ...string) string { return filepath.Join(elem...) }

func (r *rootFS) TempFile(dir, prefix string) (billy.File, error) {
	for range 100 {
		var b [6]byte
		rand.Read(b[:])
		name := filepath.Join(rootRel(dir), prefix+hex.EncodeToString(b[:]))
		f, err := r.root.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		return r.file(name, f, err)
	}
	return nil, &os.PathError{Op: "tempfile", Path: dir, Err: os.ErrExist}
}

func (r *rootFS) ReadDir(name string) ([]os.FileInfo, error) {
	d, err := r.root.Open(rootRel(name))
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.Readdir(-1) // lstat of each entry
}

func (r *rootFS) MkdirAll(name string, perm os.FileMode) error {
	return r.root.MkdirAll(rootRel(name), perm)
}

func (r *rootFS) Symlink(target, link string) error {
	return r.root.Symlink(target, rootRel(link))
}

func (r *rootFS) Readlink(link string) (string, error) { return r.root.Readlink(rootRel(link)) }

// Chroot is not offered: go-nfs does not use it.
func (r *rootFS) Chroot(p string) (billy.Filesystem, error) {
	return nil, &os.PathError{Op: "chroot", Path: p, Err: errors.ErrUnsupported}
}

func (r *rootFS) Root() string { return r.dir }
