package nfsroot

import (
	"bytes"
	"io"
	"io/fs"
	"os"
	"path"
	"time"

	billy "github.com/go-git/go-billy/v5"
	"github.com/willscott/go-nfs/file"

	"github.com/onesis/git-onesis/meta"
)

// commitFS is the read-only billy.Filesystem of one served commit. It never
// follows symlinks (Stat is Lstat), so no path can leave the image.
type commitFS struct {
	ix    *commitIndex
	store *blobStore
}

var (
	_ billy.Filesystem = (*commitFS)(nil)
	_ billy.Capable    = (*commitFS)(nil)
)

// Capabilities reports a read-only, seekable filesystem; go-nfs strips the
// write bits from ACCESS replies for it.
func (c *commitFS) Capabilities() billy.Capability {
	return billy.ReadCapability | billy.SeekCapability
}

func (c *commitFS) get(op, name string) (*node, error) {
	n := c.ix.lookup(name)
	if n == nil {
		return nil, &os.PathError{Op: op, Path: name, Err: os.ErrNotExist}
	}
	return n, nil
}

// Open opens a regular file for reading.
func (c *commitFS) Open(name string) (billy.File, error) {
	n, err := c.get("open", name)
	if err != nil {
		return nil, err
	}
	if n.typ != meta.TypeFile {
		return nil, &os.PathError{Op: "open", Path: name, Err: os.ErrInvalid}
	}
	if n.blob.IsZero() || n.size == 0 {
		return &roFile{name: name, r: bytes.NewReader(nil)}, nil
	}
	f, err := c.store.open(n.blob)
	if err != nil {
		return nil, err
	}
	return &roFile{name: name, r: f, closer: f}, nil
}

// OpenFile opens read-only; any write flag fails.
func (c *commitFS) OpenFile(name string, flag int, _ os.FileMode) (billy.File, error) {
	if flag&(os.O_WRONLY|os.O_RDWR|os.O_CREATE|os.O_TRUNC|os.O_APPEND) != 0 {
		return nil, &os.PathError{Op: "open", Path: name, Err: billy.ErrReadOnly}
	}
	return c.Open(name)
}

// Stat is Lstat: a served image's symlinks are never followed on the server.
func (c *commitFS) Stat(name string) (os.FileInfo, error) { return c.Lstat(name) }

// Lstat describes an object with its .gitmeta owner, mode and type.
func (c *commitFS) Lstat(name string) (os.FileInfo, error) {
	n, err := c.get("lstat", name)
	if err != nil {
		return nil, err
	}
	return &info{n: n, mtime: c.ix.mtime}, nil
}

// ReadDir lists a directory in name order.
func (c *commitFS) ReadDir(name string) ([]os.FileInfo, error) {
	n, err := c.get("readdir", name)
	if err != nil {
		return nil, err
	}
	if n.typ != meta.TypeDir {
		return nil, &os.PathError{Op: "readdir", Path: name, Err: os.ErrInvalid}
	}
	out := make([]os.FileInfo, len(n.kids))
	for i, k := range n.kids {
		out[i] = &info{n: k, mtime: c.ix.mtime}
	}
	return out, nil
}

// Readlink returns the raw, unrewritten symlink target.
func (c *commitFS) Readlink(name string) (string, error) {
	n, err := c.get("readlink", name)
	if err != nil {
		return "", err
	}
	if n.typ != meta.TypeSymlink {
		return "", &os.PathError{Op: "readlink", Path: name, Err: os.ErrInvalid}
	}
	return n.link, nil
}

// Join joins path elements with slashes.
func (c *commitFS) Join(elem ...string) string { return path.Join(elem...) }

// Root is the export root.
func (c *commitFS) Root() string { return "/" }

func (c *commitFS) readOnly(op, name string) error {
	return &os.PathError{Op: op, Path: name, Err: billy.ErrReadOnly}
}

// Create fails: the export is read-only.
func (c *commitFS) Create(name string) (billy.File, error) { return nil, c.readOnly("create", name) }

// Rename fails: the export is read-only.
func (c *commitFS) Rename(from, _ string) error { return c.readOnly("rename", from) }

// Remove fails: the export is read-only.
func (c *commitFS) Remove(name string) error { return c.readOnly("remove", name) }

// TempFile fails: the export is read-only.
func (c *commitFS) TempFile(dir, _ string) (billy.File, error) {
	return nil, c.readOnly("tempfile", dir)
}

// MkdirAll fails: the export is read-only.
func (c *commitFS) MkdirAll(name string, _ os.FileMode) error { return c.readOnly("mkdir", name) }

// Symlink fails: the export is read-only.
func (c *commitFS) Symlink(_, link string) error { return c.readOnly("symlink", link) }

// Chroot is not supported: an export is always a whole commit.
func (c *commitFS) Chroot(p string) (billy.Filesystem, error) { return nil, c.readOnly("chroot", p) }

// info is the os.FileInfo of a node. Mode() carries the raw POSIX 07000
// bits in its low 12 bits (go-nfs copies Mode() verbatim into fattr3, and
// Go's own ModeSetuid/ModeSetgid/ModeSticky would be lost on the wire); Sys()
// gives go-nfs owner, group, link count, device numbers and file id.
type info struct {
	n     *node
	mtime time.Time
}

func (i *info) Name() string {
	if i.n.name == "" {
		return "/"
	}
	return i.n.name
}
func (i *info) Size() int64        { return i.n.size }
func (i *info) ModTime() time.Time { return i.mtime }
func (i *info) IsDir() bool        { return i.n.typ == meta.TypeDir }
func (i *info) Mode() fs.FileMode  { return goMode(i.n.typ, i.n.mode) }
func (i *info) Sys() any {
	return &file.FileInfo{Nlink: i.n.nlink, UID: i.n.uid, GID: i.n.gid, Major: i.n.major, Minor: i.n.minor, Fileid: i.n.fileid}
}

// goMode is Go's type bits plus the full 12 POSIX permission bits.
func goMode(t meta.Type, perm uint32) fs.FileMode {
	m := fs.FileMode(perm & 07777)
	switch t {
	case meta.TypeDir:
		m |= fs.ModeDir
	case meta.TypeSymlink:
		m |= fs.ModeSymlink
	case meta.TypeChar:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case meta.TypeBlock:
		m |= fs.ModeDevice
	case meta.TypeFifo:
		m |= fs.ModeNamedPipe
	case meta.TypeSocket:
		m |= fs.ModeSocket
	}
	return m
}

// roFile is an open, read-only file of a served commit.
type roFile struct {
	name string
	r    interface {
		io.Reader
		io.ReaderAt
		io.Seeker
	}
	closer io.Closer
}

func (f *roFile) Name() string                            { return f.name }
func (f *roFile) Read(p []byte) (int, error)              { return f.r.Read(p) }
func (f *roFile) ReadAt(p []byte, off int64) (int, error) { return f.r.ReadAt(p, off) }
func (f *roFile) Seek(off int64, whence int) (int64, error) {
	return f.r.Seek(off, whence)
}
func (f *roFile) Write([]byte) (int, error) { return 0, billy.ErrReadOnly }
func (f *roFile) Truncate(int64) error      { return billy.ErrReadOnly }
func (f *roFile) Lock() error               { return nil }
func (f *roFile) Unlock() error             { return nil }
func (f *roFile) Close() error {
	if f.closer != nil {
		return f.closer.Close()
	}
	return nil
}
