package nfsroot

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"golang.org/x/sys/unix"
)

// The blob store is shared by every process that opens the state
// directory: a serve, and git onesis sync preparing commits beside it.
// Each holds a shared lock on <StateDir>/lock while it has the store open;
// Prune deletes only while it holds the lock alone.

// ErrStoreBusy is returned by Prune when another process (a serve, or git
// onesis sync preparing commits) has the blob store open: nothing was
// removed, since that process may be relying on any blob.
var ErrStoreBusy = errors.New("the NFS blob store is in use by another process; not pruned")

// PruneStats says what Prune did.
type PruneStats struct {
	Commits      int   // commits kept
	Kept         int   // blobs kept
	Removed      int   // blobs removed
	Freed        int64 // bytes removed
	SizeRecords  int   // per-commit size records removed
	KeptBytes    int64 // bytes kept
	ScannedFiles int   // files looked at in the store
}

// lockState takes the shared lock for this server's lifetime. If it can
// first have the lock to itself, no other process has the store open, and
// it runs alone() meanwhile.
func lockState(state string, alone func()) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(state, "lock"), os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the NFS state lock: %w", err)
	}
	fd := int(f.Fd())
	if unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) == nil {
		alone()
	}
	// Converts an exclusive lock (not atomically, which is harmless: we
	// have not used the store yet).
	if err := unix.Flock(fd, unix.LOCK_SH); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking the NFS state directory %s: %w", state, err)
	}
	return f, nil
}

// Prune removes from the blob store every blob that none of the keep
// commits contains, and the size records of every other commit, so the
// store does not grow with every commit ever served. A removed blob is
// inflated again from git if a pruned commit is ever served again.
//
// keep holds full commit ids or revisions; one that does not resolve
// fails the whole prune before anything is removed. Every commit this
// server has an index for (built, or waiting to be built) is kept as
// well, and no commit is built while Prune runs, so what this server
// serves is never pruned under it. Prune runs only while no other process
// has the store open (else ErrStoreBusy): that process may rely on any
// blob.
func (s *Server) Prune(keep []string) (PruneStats, error) {
	var st PruneStats
	// No commit is built while this runs (builds take buildMu).
	s.buildMu.Lock()
	defer s.buildMu.Unlock()
	commits := map[plumbing.Hash]bool{}
	indexed := map[plumbing.Hash]bool{} // commits this server has an index entry for
	s.mu.Lock()
	closed := s.closed
	for h := range s.indexes {
		commits[h], indexed[h] = true, true
	}
	s.mu.Unlock()
	if closed {
		return st, errors.New("nfsroot: server closed")
	}
	for _, rev := range keep {
		h, err := s.resolve(rev)
		if err != nil {
			return st, fmt.Errorf("pruning the NFS blob store: %w", err)
		}
		commits[h] = true
		delete(indexed, h)
	}
	blobs := map[plumbing.Hash]bool{}
	for h := range commits {
		if err := commitBlobs(s, h, blobs); err != nil {
			if indexed[h] {
				// An entry for a commit that is not in the repository
				// (its build failed): there is nothing of it to keep.
				delete(commits, h)
				continue
			}
			return st, fmt.Errorf("pruning the NFS blob store: commit %s: %w", h, err)
		}
	}
	st.Commits = len(commits)

	fd := int(s.lock.Fd())
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		// A failed conversion drops the shared lock: take it back.
		if err2 := unix.Flock(fd, unix.LOCK_SH); err2 != nil {
			return st, fmt.Errorf("locking the NFS blob store again: %w", err2)
		}
		if errors.Is(err, unix.EWOULDBLOCK) {
			return st, ErrStoreBusy
		}
		return st, fmt.Errorf("locking the NFS blob store: %w", err)
	}
	defer unix.Flock(fd, unix.LOCK_SH) // back to sharing it

	for i := 0; i < 256; i++ {
		dir := filepath.Join(s.store.dir, fmt.Sprintf("%02x", i))
		ents, err := os.ReadDir(dir)
		if err != nil {
			return st, fmt.Errorf("pruning the NFS blob store: %w", err)
		}
		for _, e := range ents {
			st.ScannedFiles++
			h, ok := parseHash(filepath.Base(dir) + e.Name())
			if !ok || !e.Type().IsRegular() {
				continue // not ours: leave it
			}
			info, err := e.Info()
			if err != nil {
				continue
			}
			if blobs[h] {
				st.Kept++
				st.KeptBytes += info.Size()
				continue
			}
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
				return st, fmt.Errorf("pruning the NFS blob store: %w", err)
			}
			st.Removed++
			st.Freed += info.Size()
		}
	}
	recDir := filepath.Dir(s.store.commitFile(plumbing.ZeroHash))
	ents, err := os.ReadDir(recDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return st, fmt.Errorf("pruning the NFS blob store: %w", err)
	}
	for _, e := range ents {
		if h, ok := parseHash(e.Name()); ok && commits[h] {
			continue
		}
		if err := os.Remove(filepath.Join(recDir, e.Name())); err == nil {
			st.SizeRecords++
		}
	}
	// Nothing may be believed present without looking again.
	s.store.mu.Lock()
	s.store.sizes = map[plumbing.Hash]int64{}
	s.store.mu.Unlock()
	return st, nil
}

// commitBlobs adds every blob of commit h's tree (files and symlinks) to
// set: a superset of what the blob store holds for it.
func commitBlobs(s *Server, h plumbing.Hash, set map[plumbing.Hash]bool) error {
	c, err := s.repo.CommitObject(h)
	if err != nil {
		return err
	}
	t, err := c.Tree()
	if err != nil {
		return err
	}
	w := object.NewTreeWalker(t, true, nil)
	defer w.Close()
	for {
		_, e, err := w.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if e.Mode.IsFile() {
			set[e.Hash] = true
		}
	}
}

// parseHash reads a 40-digit lower-case hex object id.
func parseHash(s string) (plumbing.Hash, bool) {
	if len(s) != 40 {
		return plumbing.ZeroHash, false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return plumbing.ZeroHash, false
		}
	}
	return plumbing.NewHash(s), true
}
