// Package gitobjects reads an image repository's commits, trees and blobs
// with go-git, as the nfsroot.Objects the NFS root server serves from. It
// is the only part of the NFS data path that knows git: nfsroot sees
// object ids, tree entries and blob readers.
package gitobjects

import (
	"errors"
	"fmt"
	"io"
	"sync"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/onesis/git-onesis/boot/integrity"
	"github.com/onesis/git-onesis/boot/nfsroot"
	gitrun "github.com/onesis/git-onesis/internal/git"
)

// Repo is an image repository opened for reading objects. It implements
// nfsroot.Objects and is safe for concurrent use: go-git's object storage
// is used by one goroutine at a time (every call, and every Read and Close
// of a blob reader, holds one lock), so a read path goroutine rebuilding a
// damaged blob may interleave with a commit being built.
type Repo struct {
	dir  string // the common git dir
	mu   sync.Mutex
	repo *git.Repository
}

var _ nfsroot.Objects = (*Repo)(nil)

// Open opens the repository at dir: a work tree, a linked worktree or a
// git dir. Its objects are read from the common git dir. A SHA-256
// repository is refused: the NFS server's handles and blob store are laid
// out for 20-byte SHA-1 ids.
func Open(dir string) (*Repo, error) {
	r, err := gitrun.Discover(dir)
	if err != nil {
		return nil, fmt.Errorf("opening the image repository %s: %w", dir, err)
	}
	if f, err := integrity.ObjectFormat(r.CommonDir); err == nil && f != "sha1" {
		return nil, fmt.Errorf("nfsroot: %s uses %s object ids; the NFS server serves only SHA-1 repositories", r.CommonDir, f)
	}
	repo, err := git.PlainOpenWithOptions(r.CommonDir, &git.PlainOpenOptions{})
	if err != nil {
		return nil, fmt.Errorf("opening the image repository %s: %w", r.CommonDir, err)
	}
	return &Repo{dir: r.CommonDir, repo: repo}, nil
}

// CommonDir is the repository's common git dir (shared by its linked
// worktrees), where its objects are.
func (r *Repo) CommonDir() string { return r.dir }

// lookup locks r and runs read; when it did not find an object, it runs
// it once more after go-git has looked at the pack files again: go-git
// lists them once, and a fetch, repack or gc since then (git onesis sync
// beside a serve) puts objects in packs it has not seen. (A revision
// whose commit go-git cannot read resolves to "reference not found".)
func lookup[T any](r *Repo, read func(*git.Repository) (T, error)) (T, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, err := read(r.repo)
	if errors.Is(err, plumbing.ErrObjectNotFound) || errors.Is(err, plumbing.ErrReferenceNotFound) {
		if s, ok := r.repo.Storer.(interface{ Reindex() }); ok {
			s.Reindex()
			v, err = read(r.repo)
		}
	}
	return v, err
}

// Resolve turns a revision git understands into a commit id.
func (r *Repo) Resolve(rev string) (nfsroot.ID, error) {
	h, err := lookup(r, func(g *git.Repository) (*plumbing.Hash, error) { return g.ResolveRevision(plumbing.Revision(rev)) })
	if err != nil {
		return nfsroot.ID{}, fmt.Errorf("resolving %q in %s: %w", rev, r.dir, err)
	}
	return nfsroot.ID(*h), nil
}

// Commit reads a commit's root tree and committer time.
func (r *Repo) Commit(id nfsroot.ID) (nfsroot.Commit, error) {
	c, err := lookup(r, func(g *git.Repository) (*object.Commit, error) { return g.CommitObject(plumbing.Hash(id)) })
	if err != nil {
		return nfsroot.Commit{}, fmt.Errorf("commit %s is not in %s: %w", id, r.dir, err)
	}
	return nfsroot.Commit{Tree: nfsroot.ID(c.TreeHash), Time: c.Committer.When}, nil
}

// Tree reads a tree's entries, in git's order.
func (r *Repo) Tree(id nfsroot.ID) ([]nfsroot.Entry, error) {
	t, err := lookup(r, func(g *git.Repository) (*object.Tree, error) { return g.TreeObject(plumbing.Hash(id)) })
	if err != nil {
		return nil, err
	}
	ents := make([]nfsroot.Entry, len(t.Entries))
	for i, e := range t.Entries {
		ents[i] = nfsroot.Entry{Name: e.Name, Mode: mode(e.Mode), ID: nfsroot.ID(e.Hash)}
	}
	return ents, nil
}

// mode maps a git file mode to the kind of entry it is. The deprecated
// group-writable mode (100664) is a regular file, as git reads it.
func mode(m filemode.FileMode) nfsroot.Mode {
	switch m {
	case filemode.Dir:
		return nfsroot.ModeDir
	case filemode.Regular, filemode.Deprecated:
		return nfsroot.ModeRegular
	case filemode.Executable:
		return nfsroot.ModeExecutable
	case filemode.Symlink:
		return nfsroot.ModeSymlink
	case filemode.Submodule:
		return nfsroot.ModeSubmodule
	}
	return nfsroot.ModeUnknown
}

// Blob opens a blob: its size and a reader of its content.
func (r *Repo) Blob(id nfsroot.ID) (io.ReadCloser, int64, error) {
	type opened struct {
		rc   io.ReadCloser
		size int64
	}
	o, err := lookup(r, func(g *git.Repository) (opened, error) {
		b, err := g.BlobObject(plumbing.Hash(id))
		if err != nil {
			return opened{}, err
		}
		rc, err := b.Reader()
		if err != nil {
			return opened{}, fmt.Errorf("reading blob %s: %w", id, err)
		}
		return opened{rc, b.Size}, nil
	})
	if err != nil {
		return nil, 0, err
	}
	return &blobReader{mu: &r.mu, rc: o.rc}, o.size, nil
}

// blobReader reads a blob under the repository's lock.
type blobReader struct {
	mu *sync.Mutex
	rc io.ReadCloser
}

func (b *blobReader) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.rc.Read(p)
}

func (b *blobReader) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.rc.Close()
}
