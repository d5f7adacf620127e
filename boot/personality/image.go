package personality

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/onesis/git-onesis/meta"
	"golang.org/x/sys/unix"
)

// Image is the read-only view of an image that planning consults. Paths are
// image-relative and clean ("etc/fstab"; "." is the top). No method ever
// follows a symlink of the image: not the final name, and not a parent
// (a parent that is a symlink is an error wrapping ErrParentSymlink).
type Image interface {
	// Lstat describes the object at p itself. A missing object gives an
	// error satisfying errors.Is(err, fs.ErrNotExist).
	Lstat(p string) (Info, error)
	// ReadDir lists the names in directory dir, sorted.
	ReadDir(dir string) ([]string, error)
	// ReadFile returns the content of the regular file p.
	ReadFile(p string) ([]byte, error)
}

// Info is what planning needs to know about one image object.
type Info struct {
	Type fs.FileMode // fs.ModeDir, fs.ModeSymlink, 0 for a regular file, ...
	Perm uint32      // permission bits including setuid, setgid and sticky
	UID  uint32
	GID  uint32
	Link string // symlink text, for symlinks
	Rdev uint64 // device number, for devices
}

// IsDir reports whether the object is a real directory (not a symlink to one).
func (i Info) IsDir() bool { return i.Type == fs.ModeDir }

// IsSymlink reports whether the object is a symlink.
func (i Info) IsSymlink() bool { return i.Type == fs.ModeSymlink }

// IsRegular reports whether the object is a regular file.
func (i Info) IsRegular() bool { return i.Type == 0 }

// ErrParentSymlink is wrapped when a parent component of a path is a symlink
// (or not a directory) in the image: it is never followed.
var ErrParentSymlink = errors.New("a parent directory is a symlink or not a directory in the image; refusing to follow it")

// maxReadFile bounds ReadFile; planning reads only small text files
// (etc/passwd, etc/group).
const maxReadFile = 16 << 20

// Rel turns an absolute image path ("/etc/fstab") into an image-relative,
// clean one ("etc/fstab"). It rejects ".." components, which have no place
// in a sysimage.conf path.
func Rel(abs string) (string, error) {
	if abs == "" {
		return "", errors.New("empty path")
	}
	for _, c := range strings.Split(abs, "/") {
		if c == ".." {
			return "", fmt.Errorf("path %q uses \"..\"; image paths must be plain absolute paths", abs)
		}
	}
	p := path.Clean("/" + abs)
	if p == "/" {
		return ".", nil
	}
	return p[1:], nil
}

// DirImage is an Image backed by a directory, confined with os.Root. Because
// os.Root follows symlinks that stay inside the root, every parent component
// is checked with Lstat to be a real directory first.
type DirImage struct {
	Root *os.Root
}

// OpenDir opens the image at dir. Close the returned image's Root when done.
func OpenDir(dir string) (*DirImage, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("opening the image at %s: %w", dir, err)
	}
	return &DirImage{Root: r}, nil
}

// Close releases the root.
func (d *DirImage) Close() error { return d.Root.Close() }

// CheckParents verifies that every parent component of p is a real
// directory in root, so that an os.Root call on p follows no symlink but
// (possibly) the final component.
func CheckParents(root *os.Root, p string) error {
	if p == "." || !strings.Contains(p, "/") {
		return nil
	}
	comps := strings.Split(p, "/")
	for i := 1; i < len(comps); i++ {
		dir := strings.Join(comps[:i], "/")
		fi, err := root.Lstat(dir)
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			return fmt.Errorf("%s: %w", dir, ErrParentSymlink)
		}
	}
	return nil
}

// Lstat implements Image.
func (d *DirImage) Lstat(p string) (Info, error) {
	if err := CheckParents(d.Root, p); err != nil {
		return Info{}, err
	}
	fi, err := d.Root.Lstat(p)
	if err != nil {
		return Info{}, err
	}
	return infoOf(d.Root, p, fi)
}

func infoOf(root *os.Root, p string, fi fs.FileInfo) (Info, error) {
	in := Info{Type: fi.Mode().Type(), Perm: permBits(fi.Mode())}
	if st, ok := statOwner(fi); ok {
		in.UID, in.GID, in.Rdev = st.uid, st.gid, st.rdev
	}
	if in.IsSymlink() {
		l, err := root.Readlink(p)
		if err != nil {
			return Info{}, err
		}
		in.Link = l
	}
	return in, nil
}

// permBits converts an fs.FileMode to Unix permission bits with the
// setuid, setgid and sticky bits in their octal places.
func permBits(m fs.FileMode) uint32 {
	b := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		b |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		b |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		b |= 0o1000
	}
	return b
}

// ReadDir implements Image.
func (d *DirImage) ReadDir(dir string) ([]string, error) {
	f, err := d.openNoFollow(dir, true)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	return names, nil
}

// ReadFile implements Image.
func (d *DirImage) ReadFile(p string) ([]byte, error) {
	f, err := d.openNoFollow(p, false)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxReadFile))
}

// OpenNoFollow opens p for reading when it is a real directory (wantDir)
// or a regular file, following no symlink at all. The open file is
// checked to be the very object Lstat saw.
func (d *DirImage) openNoFollow(p string, wantDir bool) (*os.File, error) {
	return OpenNoFollow(d.Root, p, wantDir)
}

// OpenNoFollow opens p in root for reading when it is a real directory
// (wantDir) or a regular file, following no symlink at all: parents are
// checked, the final name is Lstat'ed, and the opened file is checked to be
// the object Lstat saw.
func OpenNoFollow(root *os.Root, p string, wantDir bool) (*os.File, error) {
	if err := CheckParents(root, p); err != nil {
		return nil, err
	}
	fi, err := root.Lstat(p)
	if err != nil {
		return nil, err
	}
	switch {
	case wantDir && !fi.IsDir():
		return nil, fmt.Errorf("%s is %s, not a directory, in the image", p, kindOf(fi.Mode()))
	case !wantDir && !fi.Mode().IsRegular():
		return nil, fmt.Errorf("%s is %s, not a regular file, in the image", p, kindOf(fi.Mode()))
	}
	f, err := root.OpenFile(p, os.O_RDONLY|oNoFollow|oNonblock, 0)
	if err != nil {
		return nil, err
	}
	got, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !os.SameFile(fi, got) {
		f.Close()
		return nil, fmt.Errorf("%s changed while it was being opened; not following it", p)
	}
	return f, nil
}

// kindOf is an object type in words.
func kindOf(m fs.FileMode) string {
	switch m.Type() {
	case 0:
		return "a regular file"
	case fs.ModeDir:
		return "a directory"
	case fs.ModeSymlink:
		return "a symlink"
	case fs.ModeDevice:
		return "a block device"
	case fs.ModeDevice | fs.ModeCharDevice:
		return "a character device"
	case fs.ModeNamedPipe:
		return "a fifo"
	case fs.ModeSocket:
		return "a socket"
	}
	return "an unusual object"
}

// ManifestImage is an Image built from a .gitmeta manifest (for a plan at
// a revision): types, modes, owners and link texts come from the manifest,
// file contents from Read (a git blob reader).
type ManifestImage struct {
	entries  map[string]*meta.Entry
	children map[string][]string
	Read     func(p string) ([]byte, bool, error)
}

// NewManifestImage indexes m. read returns the content of a regular file
// at the same revision.
func NewManifestImage(m *meta.Manifest, read func(p string) ([]byte, bool, error)) *ManifestImage {
	mi := &ManifestImage{entries: map[string]*meta.Entry{}, children: map[string][]string{}, Read: read}
	for i := range m.Entries {
		e := &m.Entries[i]
		mi.entries[e.Path] = e
		if e.Path != "." {
			mi.children[path.Dir(e.Path)] = append(mi.children[path.Dir(e.Path)], path.Base(e.Path))
		}
	}
	for _, c := range mi.children {
		sort.Strings(c)
	}
	return mi
}

func (mi *ManifestImage) lookup(p string) (*meta.Entry, error) {
	if p != "." {
		comps := strings.Split(p, "/")
		for i := 1; i < len(comps); i++ {
			dir := strings.Join(comps[:i], "/")
			e, ok := mi.entries[dir]
			if !ok {
				return nil, &fs.PathError{Op: "lstat", Path: p, Err: fs.ErrNotExist}
			}
			if e.Type != meta.TypeDir {
				return nil, fmt.Errorf("%s: %w", dir, ErrParentSymlink)
			}
		}
	}
	e, ok := mi.entries[p]
	if !ok {
		return nil, &fs.PathError{Op: "lstat", Path: p, Err: fs.ErrNotExist}
	}
	return e, nil
}

// Lstat implements Image.
func (mi *ManifestImage) Lstat(p string) (Info, error) {
	e, err := mi.lookup(p)
	if err != nil {
		return Info{}, err
	}
	in := Info{Perm: e.Mode & 0o7777, UID: e.UID, GID: e.GID, Link: e.Link,
		Rdev: uint64(unix.Mkdev(e.Major, e.Minor))}
	switch e.Type {
	case meta.TypeDir:
		in.Type = fs.ModeDir
	case meta.TypeSymlink:
		in.Type = fs.ModeSymlink
	case meta.TypeChar:
		in.Type = fs.ModeDevice | fs.ModeCharDevice
	case meta.TypeBlock:
		in.Type = fs.ModeDevice
	case meta.TypeFifo:
		in.Type = fs.ModeNamedPipe
	case meta.TypeSocket:
		in.Type = fs.ModeSocket
	}
	return in, nil
}

// ReadDir implements Image.
func (mi *ManifestImage) ReadDir(dir string) ([]string, error) {
	e, err := mi.lookup(dir)
	if err != nil {
		return nil, err
	}
	if e.Type != meta.TypeDir {
		return nil, fmt.Errorf("%s is not a directory in the image", dir)
	}
	return mi.children[dir], nil
}

// ReadFile implements Image.
func (mi *ManifestImage) ReadFile(p string) ([]byte, error) {
	e, err := mi.lookup(p)
	if err != nil {
		return nil, err
	}
	if e.Type != meta.TypeFile {
		return nil, fmt.Errorf("%s is not a regular file in the image", p)
	}
	b, ok, err := mi.Read(p)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, &fs.PathError{Op: "read", Path: p, Err: fs.ErrNotExist}
	}
	return b, nil
}
