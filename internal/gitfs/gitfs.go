// Package gitfs presents the tree of a commit as a read-only fs.FS, so
// commands can read an image at any revision (`--rev REV`) the same way
// they read the work tree. It reads objects with go-git; nothing is
// checked out.
//
// Regular files, executables, directories and symlinks are supported.
// Symlinks are reported as such by Lstat, ReadLink and ReadDir. Open, Stat
// and ReadFile follow them, but only inside the tree, as a chroot would:
// an absolute target starts at the tree's root and ".." stops there, so no
// link leads out of the image. Submodules appear as irregular entries.
package gitfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// maxLinks bounds the symlinks followed while resolving one name, as the
// kernel's ELOOP limit does.
const maxLinks = 40

// Repo is an opened repository.
type Repo struct {
	r *git.Repository
}

// Open opens the repository containing repoDir: a work tree or a
// subdirectory of one, a git directory (a linked worktree's too), or a
// bare repository.
func Open(repoDir string) (*Repo, error) {
	r, err := git.PlainOpenWithOptions(repoDir, &git.PlainOpenOptions{DetectDotGit: true, EnableDotGitCommonDir: true})
	if errors.Is(err, git.ErrRepositoryNotExists) {
		// A git directory or a bare repository has no .git to detect.
		r, err = git.PlainOpenWithOptions(repoDir, &git.PlainOpenOptions{EnableDotGitCommonDir: true})
	}
	if err != nil {
		return nil, fmt.Errorf("opening the repository at %s: %w", repoDir, err)
	}
	return &Repo{r: r}, nil
}

// New wraps a repository already opened with go-git.
func New(r *git.Repository) *Repo { return &Repo{r: r} }

// Resolve turns a revision (a branch, tag, "HEAD~2", an abbreviated or
// full SHA) into the full commit SHA.
func (r *Repo) Resolve(rev string) (string, error) {
	c, err := r.commit(rev)
	if err != nil {
		return "", err
	}
	return c.Hash.String(), nil
}

func (r *Repo) commit(rev string) (*object.Commit, error) {
	h, err := r.r.ResolveRevision(plumbing.Revision(rev))
	if err != nil {
		return nil, fmt.Errorf("revision %q: %w", rev, err)
	}
	c, err := r.r.CommitObject(*h)
	if err != nil {
		return nil, fmt.Errorf("revision %q is not a commit: %w", rev, err)
	}
	return c, nil
}

// FS returns the tree of the commit that rev names.
func (r *Repo) FS(rev string) (fs.FS, error) {
	c, err := r.commit(rev)
	if err != nil {
		return nil, err
	}
	t, err := c.Tree()
	if err != nil {
		return nil, fmt.Errorf("reading the tree of %s: %w", c.Hash, err)
	}
	return &FS{repo: r.r, root: t, mtime: c.Committer.When, trees: map[string]*object.Tree{"": t}}, nil
}

// FS is the read-only file system of one commit's tree. It implements
// fs.FS, fs.StatFS, fs.ReadDirFS, fs.ReadFileFS and fs.ReadLinkFS.
type FS struct {
	repo  *git.Repository
	root  *object.Tree
	mtime time.Time

	mu    sync.Mutex
	trees map[string]*object.Tree
}

// node is a resolved tree entry.
type node struct {
	name string // base name ("." for the root)
	mode filemode.FileMode
	hash plumbing.Hash
	dir  string // the resolved path, for directories
}

func (f *FS) tree(dir string) (*object.Tree, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t, ok := f.trees[dir]; ok {
		return t, nil
	}
	t, err := f.root.Tree(dir)
	if err != nil {
		return nil, err
	}
	f.trees[dir] = t
	return t, nil
}

func (f *FS) readBlob(h plumbing.Hash) ([]byte, error) {
	b, err := f.repo.BlobObject(h)
	if err != nil {
		return nil, err
	}
	rc, err := b.Reader()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func split(p string) []string {
	var out []string
	for _, c := range strings.Split(p, "/") {
		if c != "" && c != "." {
			out = append(out, c)
		}
	}
	return out
}

var errLoop = errors.New("too many levels of symbolic links")

// resolve finds name's entry, following symlinks in every component but
// the last, and in the last too when follow is set.
func (f *FS) resolve(op, name string, follow bool) (*node, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	comps := split(name)
	var dir []string
	links := 0
	for i := 0; i < len(comps); i++ {
		c := comps[i]
		if c == ".." {
			if len(dir) > 0 {
				dir = dir[:len(dir)-1]
			}
			if i == len(comps)-1 {
				break
			}
			continue
		}
		t, err := f.tree(strings.Join(dir, "/"))
		if err != nil {
			return nil, &fs.PathError{Op: op, Path: name, Err: err}
		}
		e, err := t.FindEntry(c)
		if err != nil {
			return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
		}
		last := i == len(comps)-1
		if e.Mode == filemode.Symlink && (!last || follow) {
			if links++; links > maxLinks {
				return nil, &fs.PathError{Op: op, Path: name, Err: errLoop}
			}
			target, err := f.readBlob(e.Hash)
			if err != nil {
				return nil, &fs.PathError{Op: op, Path: name, Err: err}
			}
			tg := string(target)
			if path.IsAbs(tg) {
				dir = nil
			}
			comps = append(split(tg), comps[i+1:]...)
			i = -1
			continue
		}
		if last {
			n := &node{name: path.Base(name), mode: e.Mode, hash: e.Hash}
			if e.Mode == filemode.Dir {
				n.dir = strings.Join(append(dir, c), "/")
			}
			return n, nil
		}
		if e.Mode != filemode.Dir {
			return nil, &fs.PathError{Op: op, Path: name, Err: fmt.Errorf("%s is not a directory", path.Join(append(dir, c)...))}
		}
		dir = append(dir, c)
	}
	base := "."
	if len(dir) > 0 {
		base = dir[len(dir)-1]
	}
	if name != "." && len(comps) > 0 {
		base = path.Base(name)
	}
	return &node{name: base, mode: filemode.Dir, dir: strings.Join(dir, "/")}, nil
}

func (f *FS) info(n *node) (*fileInfo, error) {
	fi := &fileInfo{name: n.name, mtime: f.mtime}
	switch n.mode {
	case filemode.Dir:
		fi.mode = fs.ModeDir | 0o755
	case filemode.Symlink:
		fi.mode = fs.ModeSymlink | 0o777
	case filemode.Executable:
		fi.mode = 0o755
	case filemode.Regular, filemode.Deprecated:
		fi.mode = 0o644
	default: // a submodule
		fi.mode = fs.ModeIrregular
		return fi, nil
	}
	if n.mode != filemode.Dir {
		size, err := f.repo.Storer.EncodedObjectSize(n.hash)
		if err != nil {
			return nil, err
		}
		fi.size = size
	}
	return fi, nil
}

// Open opens name, following symlinks inside the tree.
func (f *FS) Open(name string) (fs.File, error) {
	n, err := f.resolve("open", name, true)
	if err != nil {
		return nil, err
	}
	fi, err := f.info(n)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	if n.mode == filemode.Dir {
		ents, err := f.readDir(name, n)
		if err != nil {
			return nil, err
		}
		return &dirFile{info: fi, ents: ents}, nil
	}
	if fi.mode&fs.ModeIrregular != 0 {
		return nil, &fs.PathError{Op: "open", Path: name, Err: errors.New("is a submodule, whose contents are not in this repository")}
	}
	b, err := f.repo.BlobObject(n.hash)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	rc, err := b.Reader()
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return &file{info: fi, rc: rc}, nil
}

// Stat describes name, following symlinks inside the tree.
func (f *FS) Stat(name string) (fs.FileInfo, error) {
	n, err := f.resolve("stat", name, true)
	if err != nil {
		return nil, err
	}
	return f.info(n)
}

// Lstat describes name without following a final symlink.
func (f *FS) Lstat(name string) (fs.FileInfo, error) {
	n, err := f.resolve("lstat", name, false)
	if err != nil {
		return nil, err
	}
	return f.info(n)
}

// ReadLink returns the text of the symlink name.
func (f *FS) ReadLink(name string) (string, error) {
	n, err := f.resolve("readlink", name, false)
	if err != nil {
		return "", err
	}
	if n.mode != filemode.Symlink {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
	}
	b, err := f.readBlob(n.hash)
	if err != nil {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: err}
	}
	return string(b), nil
}

// ReadFile returns the contents of name, following symlinks inside the
// tree.
func (f *FS) ReadFile(name string) ([]byte, error) {
	n, err := f.resolve("read", name, true)
	if err != nil {
		return nil, err
	}
	if n.mode == filemode.Dir {
		return nil, &fs.PathError{Op: "read", Path: name, Err: errors.New("is a directory")}
	}
	if n.mode == filemode.Submodule {
		return nil, &fs.PathError{Op: "read", Path: name, Err: errors.New("is a submodule")}
	}
	b, err := f.readBlob(n.hash)
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: name, Err: err}
	}
	return b, nil
}

// ReadDir lists the directory name, sorted by name.
func (f *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	n, err := f.resolve("readdir", name, true)
	if err != nil {
		return nil, err
	}
	if n.mode != filemode.Dir {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errors.New("not a directory")}
	}
	return f.readDir(name, n)
}

func (f *FS) readDir(name string, n *node) ([]fs.DirEntry, error) {
	t, err := f.tree(n.dir)
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: err}
	}
	ents := make([]fs.DirEntry, 0, len(t.Entries))
	for _, e := range t.Entries {
		fi, err := f.info(&node{name: e.Name, mode: e.Mode, hash: e.Hash})
		if err != nil {
			return nil, &fs.PathError{Op: "readdir", Path: path.Join(name, e.Name), Err: err}
		}
		ents = append(ents, fs.FileInfoToDirEntry(fi))
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
	return ents, nil
}

type fileInfo struct {
	name  string
	size  int64
	mode  fs.FileMode
	mtime time.Time
}

func (fi *fileInfo) Name() string       { return fi.name }
func (fi *fileInfo) Size() int64        { return fi.size }
func (fi *fileInfo) Mode() fs.FileMode  { return fi.mode }
func (fi *fileInfo) ModTime() time.Time { return fi.mtime }
func (fi *fileInfo) IsDir() bool        { return fi.mode.IsDir() }
func (fi *fileInfo) Sys() any           { return nil }

type file struct {
	info *fileInfo
	rc   io.ReadCloser
}

func (f *file) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *file) Read(p []byte) (int, error) { return f.rc.Read(p) }
func (f *file) Close() error               { return f.rc.Close() }

type dirFile struct {
	info *fileInfo
	ents []fs.DirEntry
	off  int
}

func (d *dirFile) Stat() (fs.FileInfo, error) { return d.info, nil }
func (d *dirFile) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.info.name, Err: errors.New("is a directory")}
}
func (d *dirFile) Close() error { return nil }

func (d *dirFile) ReadDir(n int) ([]fs.DirEntry, error) {
	rest := d.ents[d.off:]
	if n <= 0 {
		d.off = len(d.ents)
		return rest, nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	if n > len(rest) {
		n = len(rest)
	}
	d.off += n
	return rest[:n], nil
}
