package nfsroot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/onesis/git-onesis/meta"
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
	Commits     int   // commits kept
	Kept        int   // blobs kept
	Removed     int   // blobs removed
	Freed       int64 // bytes removed
	SizeRecords int   // per-commit size records removed
	KeptBytes   int64 // bytes kept
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
// read again from Objects if a pruned commit is ever served again.
//
// keep holds full commit ids or revisions; one that does not resolve
// fails the whole prune before anything is removed. The blobs of every
// index this server has built are kept as well, and no commit is built
// while Prune runs (a build waiting for it looks at the store afterwards),
// so what this server serves is never pruned under it. Prune runs only while no other process
// has the store open (else ErrStoreBusy): that process may rely on any
// blob.
func (s *Server) Prune(keep []string) (PruneStats, error) {
	var st PruneStats
	// No commit is built while this runs (builds take buildMu).
	s.buildMu.Lock()
	defer s.buildMu.Unlock()
	commits := map[ID]bool{}
	built := map[ID]*commitIndex{} // indexes this server serves from
	s.mu.Lock()
	closed := s.closed
	for h, e := range s.indexes {
		select {
		case <-e.done:
			if e.err == nil {
				commits[h], built[h] = true, e.ix
			} // a failed build serves nothing
		default:
			// Still to be built, once this prune lets go of buildMu: it
			// reads the store then, and inflates whatever is missing.
		}
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
	}
	blobs := map[ID]bool{}
	walked := map[ID]bool{} // trees already walked: commits share most
	for h := range commits {
		if err := s.commitBlobs(h, built[h], blobs, walked); err != nil {
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
			h, ok := ParseID(filepath.Base(dir) + e.Name())
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
	recDir := filepath.Dir(s.store.commitFile(ID{}))
	ents, err := os.ReadDir(recDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return st, fmt.Errorf("pruning the NFS blob store: %w", err)
	}
	for _, e := range ents {
		if h, ok := ParseID(e.Name()); ok && commits[h] {
			continue
		}
		if err := os.Remove(filepath.Join(recDir, e.Name())); err == nil {
			st.SizeRecords++
		}
	}
	// Nothing may be believed present without looking again.
	s.store.mu.Lock()
	s.store.sizes = map[ID]int64{}
	s.store.mu.Unlock()
	s.store.closeFDs() // deleted blobs free their space
	return st, nil
}

// commitBlobs adds to set the blobs the store must keep for commit h:
// those of its index when this server serves it (exactly what it reads),
// else those its size record lists (a later build inflates anything
// missing), else every blob of its tree, walking each tree once across
// commits.
func (s *Server) commitBlobs(h ID, ix *commitIndex, set, walked map[ID]bool) error {
	if ix != nil {
		for _, n := range ix.byID {
			if n.typ == meta.TypeFile && !n.blob.IsZero() {
				set[n.blob] = true
			}
		}
		return nil
	}
	if sizes, ok := s.store.readCommitSizes(h); ok {
		for b := range sizes {
			set[b] = true
		}
		return nil
	}
	c, err := s.objs.Commit(h)
	if err != nil {
		return err
	}
	var walk func(tree ID) error
	walk = func(tree ID) error {
		if walked[tree] {
			return nil
		}
		walked[tree] = true
		ents, err := s.readTree(tree)
		if err != nil {
			return err
		}
		for _, e := range ents {
			switch {
			case e.Mode == ModeDir:
				if err := walk(e.ID); err != nil {
					return err
				}
			case e.Mode.IsFile():
				set[e.ID] = true
			}
		}
		return nil
	}
	return walk(c.Tree)
}
