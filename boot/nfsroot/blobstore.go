package nfsroot

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/google/renameio/v2"
)

// blobStore is a content-addressed store of inflated git blobs under
// <StateDir>/blobs/xx/yyyy...: every blob is written once, atomically, and
// shared by every commit that contains it. Serving a new commit therefore
// costs disk and time in proportion to the blobs it adds.
type blobStore struct {
	dir   string
	mu    sync.Mutex
	sizes map[plumbing.Hash]int64 // blobs known to be present
}

func newBlobStore(dir string) (*blobStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the NFS blob store %s: %w", dir, err)
	}
	return &blobStore{dir: dir, sizes: map[plumbing.Hash]int64{}}, nil
}

func (s *blobStore) path(h plumbing.Hash) string {
	x := h.String()
	return filepath.Join(s.dir, x[:2], x[2:])
}

// ensure makes sure blob h is in the store and returns its size.
func (s *blobStore) ensure(h plumbing.Hash, repo *git.Repository) (int64, error) {
	s.mu.Lock()
	size, ok := s.sizes[h]
	s.mu.Unlock()
	if ok {
		return size, nil
	}
	p := s.path(h)
	if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() {
		s.remember(h, fi.Size())
		return fi.Size(), nil
	}
	blob, err := repo.BlobObject(h)
	if err != nil {
		return 0, fmt.Errorf("reading blob %s: %w", h, err)
	}
	r, err := blob.Reader()
	if err != nil {
		return 0, fmt.Errorf("reading blob %s: %w", h, err)
	}
	defer r.Close()
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return 0, fmt.Errorf("creating %s: %w", filepath.Dir(p), err)
	}
	pf, err := renameio.NewPendingFile(p, renameio.WithStaticPermissions(0o400))
	if err != nil {
		return 0, fmt.Errorf("writing blob %s: %w", h, err)
	}
	defer pf.Cleanup()
	n, err := io.Copy(pf, r)
	if err != nil {
		return 0, fmt.Errorf("writing blob %s: %w", h, err)
	}
	if n != blob.Size {
		return 0, fmt.Errorf("blob %s inflated to %d bytes, expected %d", h, n, blob.Size)
	}
	if err := pf.CloseAtomicallyReplace(); err != nil {
		return 0, fmt.Errorf("writing blob %s: %w", h, err)
	}
	s.remember(h, n)
	return n, nil
}

func (s *blobStore) remember(h plumbing.Hash, size int64) {
	s.mu.Lock()
	s.sizes[h] = size
	s.mu.Unlock()
}

// open opens a stored blob for reading.
func (s *blobStore) open(h plumbing.Hash) (*os.File, error) {
	return os.Open(s.path(h))
}
