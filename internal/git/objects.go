package git

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/go-git/go-billy/v5/osfs"
	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// Objects reads blobs and trees at commits with go-git, in process: reading
// .gitmeta, etc/passwd or a sysimage.conf at a revision costs no fork. Which
// commit a revision names is still asked of git (rev-parse), so every
// revision syntax git accepts works.
//
// go-git does not know the environment variables that move the object store
// (GIT_OBJECT_DIRECTORY, GIT_ALTERNATE_OBJECT_DIRECTORIES). When either is
// set, or go-git cannot open the store, reads fall back to `git cat-file`.
type Objects struct {
	repo *gogit.Repository // nil: use git itself
}

var (
	objectsMu    sync.Mutex
	objectsCache = map[string]*Objects{}
)

// Objects returns the object reader for r, opened once per common dir.
func (r *Repo) Objects() *Objects {
	objectsMu.Lock()
	defer objectsMu.Unlock()
	if o, ok := objectsCache[r.CommonDir]; ok {
		return o
	}
	o := &Objects{}
	if os.Getenv("GIT_OBJECT_DIRECTORY") == "" && os.Getenv("GIT_ALTERNATE_OBJECT_DIRECTORIES") == "" {
		st := filesystem.NewStorageWithOptions(osfs.New(r.CommonDir, osfs.WithBoundOS()),
			cache.NewObjectLRUDefault(), filesystem.Options{AlternatesFS: osfs.New("/", osfs.WithBoundOS())})
		if repo, err := gogit.Open(st, nil); err == nil {
			o.repo = repo
		}
	}
	objectsCache[r.CommonDir] = o
	return o
}

// errFallback means go-git could not answer; ask git.
var errFallback = errors.New("go-git cannot read this; asking git")

// blobAt returns the content of path in commit (a full object name). The
// boolean is false when the commit's tree has no such path.
func (o *Objects) blobAt(commit, path string) ([]byte, bool, error) {
	if o.repo == nil {
		return nil, false, errFallback
	}
	c, err := o.repo.CommitObject(plumbing.NewHash(commit))
	if err != nil {
		return nil, false, errFallback
	}
	tree, err := c.Tree()
	if err != nil {
		return nil, false, errFallback
	}
	ent, err := tree.FindEntry(path)
	if errors.Is(err, object.ErrEntryNotFound) || errors.Is(err, object.ErrDirectoryNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, errFallback
	}
	switch ent.Mode {
	case filemode.Regular, filemode.Executable, filemode.Deprecated, filemode.Symlink:
	case filemode.Dir:
		return nil, false, fmt.Errorf("it is a tree, not a file")
	case filemode.Submodule:
		return nil, false, fmt.Errorf("it is a commit (a submodule), not a file")
	default:
		return nil, false, fmt.Errorf("it has an unknown mode %o", uint32(ent.Mode))
	}
	blob, err := o.repo.BlobObject(ent.Hash)
	if err != nil {
		return nil, false, errFallback
	}
	rd, err := blob.Reader()
	if err != nil {
		return nil, false, errFallback
	}
	defer rd.Close()
	b := make([]byte, blob.Size)
	var n int
	for n < len(b) {
		m, err := rd.Read(b[n:])
		n += m
		if err != nil {
			break
		}
	}
	if int64(n) != blob.Size {
		return nil, false, errFallback
	}
	return b, true, nil
}

// IsOID reports whether s is a full SHA-1 object name, lower-case hex as
// git prints it.
func IsOID(s string) bool {
	if len(s) != 40 {
		return false
	}
	return strings.Trim(s, "0123456789abcdef") == ""
}

// TreeFiles is the set of regular files (blobs) in one commit's tree, for
// reading their content in process.
type TreeFiles struct {
	r     *Repo
	o     *Objects
	blobs map[string]string // path -> blob object name
}

// FilesAt lists the blobs of rev's tree (one `git ls-tree -r`), so their
// contents can be opened by path. Symlinks are blobs too; callers decide
// by the manifest what a path is.
func (r *Repo) FilesAt(rev string) (*TreeFiles, error) {
	commit, err := r.ResolveRev(rev)
	if err != nil {
		return nil, err
	}
	out, err := r.Run("ls-tree", "-r", "-z", "--full-tree", "--end-of-options", commit)
	if err != nil {
		return nil, fmt.Errorf("listing the tree of %s: %w", rev, err)
	}
	t := &TreeFiles{r: r, o: r.Objects(), blobs: map[string]string{}}
	for _, rec := range splitZ(out) {
		meta, p, ok := strings.Cut(rec, "\t")
		f := strings.Fields(meta)
		if ok && len(f) == 3 && f[1] == "blob" {
			t.blobs[p] = f[2]
		}
	}
	return t, nil
}

// Open returns the content of the blob at path and its size.
func (t *TreeFiles) Open(path string) (io.ReadCloser, int64, error) {
	oid, ok := t.blobs[path]
	if !ok {
		return nil, 0, fmt.Errorf("%s is not a file in this commit", path)
	}
	if t.o.repo != nil && IsOID(oid) {
		if b, err := t.o.repo.BlobObject(plumbing.NewHash(oid)); err == nil {
			if rd, err := b.Reader(); err == nil {
				return rd, b.Size, nil
			}
		}
	}
	b, err := t.r.Run("cat-file", "blob", oid)
	if err != nil {
		return nil, 0, fmt.Errorf("reading %s: %w", path, err)
	}
	return io.NopCloser(bytes.NewReader(b)), int64(len(b)), nil
}
