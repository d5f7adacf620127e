package nfsroot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/onesis/git-onesis/boot/integrity"
)

// blobCheck verifies the blob store's files before they are served: a
// file is hashed (git blob id) through the descriptor the read path then
// keeps, before its first byte leaves this process; its identity is
// remembered so a re-open costs an fstat; a file that does not match is
// moved to <StateDir>/quarantine and rebuilt from Objects (see
// docs/serve.md, "Integrity of served files").
type blobCheck struct {
	memo       *integrity.Memo[ID]
	objs       Objects
	quarantine string
	report     func(integrity.Report)
	failures   atomic.Uint64
	off        bool // Config.SkipVerify (benchmarks only)

	repairMu sync.Mutex
	failed   map[ID]time.Time // unrepairable, when last tried
}

// errRepaired says the file was replaced: open it again.
var errRepaired = errors.New("the blob was rebuilt from git")

// retryUnrepairable is how long a blob git could not rebuild fails its
// reads at once, without trying (and reporting) again.
const retryUnrepairable = 30 * time.Second

// openVerified opens blob h for the read path and verifies it (an fstat
// when this file was verified before): the descriptor and its identity.
// A bad, missing, symlinked or non-regular file is moved aside and
// rebuilt from git; if git cannot rebuild it the error is an I/O error.
func (s *blobStore) openVerified(h ID) (int, integrity.Identity, error) {
	p := s.path(h)
	for attempt := 0; ; attempt++ {
		fd, err := integrity.OpenNoFollow(p)
		var id integrity.Identity
		regular := false
		if err == nil {
			if id, regular, err = integrity.Fstat(fd); err != nil {
				syscall.Close(fd)
			}
		}
		if err == nil && s.check.off {
			return fd, id, nil
		}
		if attempt >= 3 {
			if err == nil {
				syscall.Close(fd)
			}
			return -1, id, fmt.Errorf("blob %s keeps changing while it is verified: %w", h, syscall.EIO)
		}
		var problem string
		switch {
		case err == nil && regular:
			err = s.check.memo.Verify(h, id, func() error { return s.checkFD(context.Background(), h, fd, id, nil) })
			if err == nil {
				return fd, id, nil
			}
			syscall.Close(fd)
			if errors.Is(err, errRepaired) || errors.Is(err, integrity.ErrChanged) {
				continue
			}
			return -1, id, err
		case err == nil:
			syscall.Close(fd)
			problem = "not a regular file"
		case errors.Is(err, syscall.ELOOP):
			problem = "a symlink"
		case errors.Is(err, os.ErrNotExist):
			problem = "missing"
		default:
			return -1, id, err
		}
		if err := s.repair(h, problem, nil); err != nil && !errors.Is(err, errRepaired) {
			return -1, id, err
		}
	}
}

// checkFD hashes the open file fd of identity id and, when it is not
// blob h, moves it aside and rebuilds it (errRepaired).
func (s *blobStore) checkFD(ctx context.Context, h ID, fd int, id integrity.Identity, lim *integrity.Limiter) error {
	err := integrity.Check(ctx, fd, id, integrity.Want{Blob: h.String()}, lim)
	if errors.Is(err, integrity.ErrMismatch) {
		return s.repair(h, err.Error(), &id)
	}
	return err
}

// repair moves the file at h's path aside (when there is one) and
// rebuilds blob h from git, once: when bad is given and the file is no
// longer that one, someone else already did. It returns errRepaired when
// good bytes are in place, else an error wrapping syscall.EIO.
func (s *blobStore) repair(h ID, problem string, bad *integrity.Identity) error {
	c := s.check
	c.repairMu.Lock()
	defer c.repairMu.Unlock()
	p := s.path(h)
	cur, _, lerr := integrity.Lstat(p)
	if bad != nil && (lerr != nil || cur != *bad) {
		return errRepaired // replaced meanwhile: look again
	}
	if problem == "missing" && lerr == nil {
		return errRepaired
	}
	if t, ok := c.failed[h]; ok && time.Since(t) < retryUnrepairable && lerr != nil {
		return fmt.Errorf("blob %s: git could not rebuild it: %w", h, syscall.EIO)
	}
	rep := integrity.Report{Time: time.Now(), Store: integrity.StoreNFS, Name: h.String(), Path: p, Problem: problem}
	defer func() {
		c.failures.Add(1)
		if c.report != nil {
			c.report(rep)
		}
	}()
	if lerr == nil {
		q, err := integrity.Quarantine(c.quarantine, p, h.String())
		if err != nil {
			rep.RepairErr = err.Error()
			return fmt.Errorf("blob %s is bad and cannot be moved aside: %w: %w", h, err, syscall.EIO)
		}
		rep.Quarantine = q
	}
	s.dropFD(h)
	c.memo.Forget(h)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := c.rebuild(ctx, h, p, filepath.Join(s.dir, "tmp")); err != nil {
		if c.failed == nil {
			c.failed = map[ID]time.Time{}
		}
		c.failed[h] = time.Now()
		rep.RepairErr = err.Error()
		return fmt.Errorf("blob %s: %w: %w", h, err, syscall.EIO)
	}
	delete(c.failed, h)
	rep.Repaired = true
	return errRepaired
}

// rebuild writes blob h, read from Objects, to p (see
// integrity.RebuildFrom: verified, atomic).
func (c *blobCheck) rebuild(ctx context.Context, h ID, p, tmp string) error {
	r, size, err := c.objs.Blob(h)
	if err != nil {
		return fmt.Errorf("%w: blob %s: %w", integrity.ErrNotInGit, h, err)
	}
	defer r.Close()
	return integrity.RebuildFrom(ctx, r, h.String(), size, p, tmp, 0o600)
}

// dropFD forgets the cached descriptor of h (closed now, or by the last
// read using it).
func (s *blobStore) dropFD(h ID) {
	s.fdMu.Lock()
	defer s.fdMu.Unlock()
	if ob := s.fds[h]; ob != nil {
		s.dropLocked(h, ob)
	}
}

func (s *blobStore) dropLocked(h ID, ob *openBlob) {
	delete(s.fds, h)
	if ob.refs == 0 {
		syscall.Close(ob.fd)
	}
}

// List implements integrity.Walkable: every blob file name in the store.
func (s *blobStore) List() ([]string, error) {
	var names []string
	for i := 0; i < 256; i++ {
		sub := fmt.Sprintf("%02x", i)
		ents, err := os.ReadDir(filepath.Join(s.dir, sub))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			if n := sub + e.Name(); len(n) == 40 && strings.Trim(n, "0123456789abcdef") == "" {
				names = append(names, n)
			}
		}
	}
	return names, nil
}

// Verify implements integrity.Walkable. It never joins the read path's
// verification (a read never waits for its paced hash): it hashes its
// own descriptor and, on a mismatch, repairs like a read would.
func (s *blobStore) Verify(ctx context.Context, name string, full bool, lim *integrity.Limiter) error {
	h, ok := ParseID(name)
	if !ok {
		return fmt.Errorf("%q is not a blob id", name)
	}
	p := s.path(h)
	if !full {
		known, ok := s.check.memo.Known(h)
		if !ok {
			return nil
		}
		if cur, reg, err := integrity.Lstat(p); err == nil && reg && cur == known {
			return nil
		}
	}
	fd, err := integrity.OpenNoFollow(p)
	switch {
	case errors.Is(err, syscall.ELOOP):
		return ignoreRepaired(s.repair(h, "a symlink", nil))
	case errors.Is(err, os.ErrNotExist):
		return nil // pruned meanwhile
	case err != nil:
		return err
	}
	defer syscall.Close(fd)
	id, regular, err := integrity.Fstat(fd)
	if err != nil {
		return err
	}
	if !regular {
		return ignoreRepaired(s.repair(h, "not a regular file", nil))
	}
	start := time.Now()
	err = s.checkFD(ctx, h, fd, id, lim)
	if errors.Is(err, integrity.ErrChanged) {
		return nil // the next sweep looks again
	}
	s.check.memo.Remember(h, id, start, err == nil)
	return ignoreRepaired(err)
}

func ignoreRepaired(err error) error {
	if errors.Is(err, errRepaired) {
		return nil
	}
	return err
}

// VerifyStore returns the blob store as the background verifier walks it.
func (s *Server) VerifyStore() integrity.Walkable { return s.store }
