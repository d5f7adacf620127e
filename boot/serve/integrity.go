package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/onesis/git-onesis/boot/integrity"
	"github.com/onesis/git-onesis/internal/git"
)

// cacheCheck verifies the kernel and initramfs cache before serving: a
// kernel must hash to its blob id, an initramfs to the sha256 recorded
// when it was built (see docs/serve.md, "Integrity of served files").
type cacheCheck struct {
	memo     *integrity.Memo[string] // by path
	failures [2]atomic.Uint64        // kernel, initrd
}

// IntegrityFailures returns how many cached kernels and initramfs images
// were found not to be what they should be since serve started.
func (a *GitArtifacts) IntegrityFailures() (kernel, initrd uint64) {
	return a.check.failures[0].Load(), a.check.failures[1].Load()
}

// cached describes one cache file: where it is, what it must hash to,
// how to build it again.
type cached struct {
	store, name, path string
	// want reads what the file must hash to; ok false when that is
	// unknown (an initramfs without its .sha256: build it again); an
	// error when the record is unreadable or malformed (the file is then
	// moved aside with it).
	want    func() (integrity.Want, bool, error)
	rebuild func() error
	// extra are files moved aside with a bad one (an initramfs's .sha256).
	extra []string
}

// openVerified opens a cache file for serving once it is verified
// (an fstat when it was verified before), building it when it is
// missing; a file that does not match is moved aside, reported and built
// again. The caller holds a.lock(c.path).
func (a *GitArtifacts) openVerified(c cached) (*os.File, integrity.Identity, error) {
	for attempt := 0; ; attempt++ {
		if attempt >= 3 {
			return nil, integrity.Identity{}, fmt.Errorf("%s keeps changing while it is verified: %w", c.path, syscall.EIO)
		}
		fd, err := integrity.OpenNoFollow(c.path)
		want, known, werr := c.want()
		if werr != nil && err == nil {
			syscall.Close(fd)
			if err := a.moveAside(c, werr.Error(), integrity.Identity{}, true); err != nil {
				return nil, integrity.Identity{}, err
			}
			continue
		}
		if errors.Is(err, os.ErrNotExist) || (err == nil && !known) {
			if err == nil {
				syscall.Close(fd)
			}
			if err := c.rebuild(); err != nil {
				return nil, integrity.Identity{}, err
			}
			continue
		}
		if errors.Is(err, syscall.ELOOP) {
			if err := a.moveAside(c, "a symlink", integrity.Identity{}, true); err != nil {
				return nil, integrity.Identity{}, err
			}
			continue
		}
		if err != nil {
			return nil, integrity.Identity{}, err
		}
		id, regular, err := integrity.Fstat(fd)
		if err == nil && !regular {
			err = a.moveAside(c, "not a regular file", id, true)
			syscall.Close(fd)
			if err != nil {
				return nil, id, err
			}
			continue
		}
		if err == nil && !a.SkipVerify {
			err = a.check.memo.Verify(c.path, id, func() error {
				return integrity.Check(context.Background(), fd, id, want, nil)
			})
		}
		if err == nil {
			return os.NewFile(uintptr(fd), c.path), id, nil
		}
		syscall.Close(fd)
		switch {
		case errors.Is(err, integrity.ErrChanged):
		case errors.Is(err, integrity.ErrMismatch):
			if err := a.moveAside(c, err.Error(), id, true); err != nil {
				return nil, id, err
			}
		default:
			return nil, id, err
		}
	}
}

// moveAside quarantines a bad cache file (and its extra files), reports
// it and, when rebuild, builds it again. The caller holds a.lock(c.path).
func (a *GitArtifacts) moveAside(c cached, problem string, bad integrity.Identity, rebuild bool) error {
	rep := integrity.Report{Time: time.Now(), Store: c.store, Name: c.name, Path: c.path, Problem: problem}
	defer func() {
		if c.store == integrity.StoreKernel {
			a.check.failures[0].Add(1)
		} else {
			a.check.failures[1].Add(1)
		}
		if a.Report != nil {
			a.Report(rep)
		}
	}()
	qdir := filepath.Join(a.StateDir, "quarantine")
	if _, err := os.Lstat(c.path); err == nil {
		q, err := integrity.Quarantine(qdir, c.path, c.name)
		if err != nil {
			rep.RepairErr = err.Error()
			return fmt.Errorf("%s is bad and cannot be moved aside: %w: %w", c.path, err, syscall.EIO)
		}
		rep.Quarantine = q
	}
	for _, x := range c.extra {
		if _, err := os.Lstat(x); err == nil {
			integrity.Quarantine(qdir, x, filepath.Base(x))
		}
	}
	a.check.memo.Forget(c.path)
	if !rebuild {
		rep.RepairErr = "built again when next asked for"
		return nil
	}
	if err := c.rebuild(); err != nil {
		rep.RepairErr = err.Error()
		return fmt.Errorf("%s was bad and cannot be built again: %w", c.path, err)
	}
	rep.Repaired = true
	return nil
}

// checkedFile is a verified cache file being served: after each read
// from the file an fstat makes sure it is still the file verified, so a
// write in place during a transfer ends the transfer instead of serving
// changed bytes (the next request verifies, moves aside and rebuilds it).
// Small reads (TFTP's blocks, HTTP's 32 KiB) are served from a 64 KiB
// piece read and checked at once, so the check costs one fstat per
// 64 KiB, not per block. The *os.File is not embedded: its SyscallConn
// would let net/http send the file with sendfile(2), past the checks.
type checkedFile struct {
	f    *os.File
	fd   int // f.Fd() once: each call of Fd may cost an fcntl
	id   integrity.Identity
	buf  *[]byte // verified bytes not yet returned: (*buf)[r:w]
	r, w int
}

// checkPiece is what checkedFile reads and checks at once.
const checkPiece = 64 << 10

var checkBufs = sync.Pool{New: func() any { b := make([]byte, checkPiece); return &b }}

func newCheckedFile(f *os.File, id integrity.Identity) *checkedFile {
	return &checkedFile{f: f, fd: int(f.Fd()), id: id}
}

func (f *checkedFile) check() error {
	id, _, err := integrity.Fstat(f.fd)
	if err == nil && id != f.id {
		err = fmt.Errorf("%s changed while it was served: %w", f.f.Name(), syscall.EIO)
	}
	return err
}

// Read implements io.Reader.
func (f *checkedFile) Read(p []byte) (int, error) {
	if f.r < f.w {
		n := copy(p, (*f.buf)[f.r:f.w])
		f.r += n
		return n, nil
	}
	if len(p) >= checkPiece {
		n, err := f.f.Read(p)
		if cerr := f.check(); cerr != nil {
			return 0, cerr
		}
		return n, err
	}
	if f.buf == nil {
		f.buf = checkBufs.Get().(*[]byte)
	}
	n, err := f.f.Read(*f.buf)
	if cerr := f.check(); cerr != nil {
		return 0, cerr
	}
	f.r, f.w = 0, n
	m := copy(p, (*f.buf)[:n])
	f.r = m
	if m < n {
		err = nil // the rest, and any EOF, on the next reads
	}
	return m, err
}

// Seek implements io.Seeker; the verified bytes not yet read are dropped.
func (f *checkedFile) Seek(off int64, whence int) (int64, error) {
	if whence == io.SeekCurrent {
		off -= int64(f.w - f.r)
	}
	f.r, f.w = 0, 0
	return f.f.Seek(off, whence)
}

// ReadAt implements io.ReaderAt.
func (f *checkedFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.f.ReadAt(p, off)
	if cerr := f.check(); cerr != nil {
		return 0, cerr
	}
	return n, err
}

// Close implements io.Closer.
func (f *checkedFile) Close() error {
	if f.buf != nil {
		checkBufs.Put(f.buf)
		f.buf = nil
	}
	return f.f.Close()
}

var _ io.ReadSeekCloser = (*checkedFile)(nil)

// kernelEntry describes the cached kernel blob id.
func (a *GitArtifacts) kernelEntry(id string) cached {
	p := filepath.Join(a.StateDir, "blobs", id)
	return cached{store: integrity.StoreKernel, name: id, path: p,
		want:    func() (integrity.Want, bool, error) { return integrity.Want{Blob: id}, true, nil },
		rebuild: func() error { return a.writeBlob(p, plumbing.NewHash(id)) }}
}

// initrdEntry describes the cached initramfs key; build builds it (nil:
// it is built again only when a commit asks for it).
func (a *GitArtifacts) initrdEntry(key string, build func() error) cached {
	p := filepath.Join(a.StateDir, "initrd", key)
	if build == nil {
		build = func() error { return nil }
	}
	return cached{store: integrity.StoreInitrd, name: key, path: p, extra: []string{p + ".sha256"},
		want:    integrity.Entry{Store: integrity.StoreInitrd, SumFile: p + ".sha256"}.Want,
		rebuild: build}
}

// cacheStore is the kernel or initramfs cache as the background verifier
// walks it.
type cacheStore struct {
	a      *GitArtifacts
	initrd bool
}

// VerifyStores returns the kernel and initramfs caches as the background
// verifier walks them.
func (a *GitArtifacts) VerifyStores() []integrity.Walkable {
	return []integrity.Walkable{&cacheStore{a: a}, &cacheStore{a: a, initrd: true}}
}

func (c *cacheStore) entry(name string) cached {
	if c.initrd {
		return c.a.initrdEntry(name, nil)
	}
	return c.a.kernelEntry(name)
}

// List implements integrity.Walkable.
func (c *cacheStore) List() ([]string, error) {
	dir := filepath.Join(c.a.StateDir, "blobs")
	if c.initrd {
		dir = filepath.Join(c.a.StateDir, "initrd")
	}
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		n := e.Name()
		if (c.initrd && len(n) == 64 && strings.Trim(n, "0123456789abcdef") == "") || (!c.initrd && git.IsOID(n)) {
			names = append(names, n)
		}
	}
	return names, nil
}

// Verify implements integrity.Walkable: it hashes its own descriptor,
// paced, without the lock requests take, and takes that lock only to move
// a bad file aside (a kernel is rebuilt at once, an initramfs when next
// asked for).
func (c *cacheStore) Verify(ctx context.Context, name string, full bool, lim *integrity.Limiter) error {
	e := c.entry(name)
	memo := c.a.check.memo
	if !full {
		known, ok := memo.Known(e.path)
		if !ok {
			return nil
		}
		if cur, reg, err := integrity.Lstat(e.path); err == nil && reg && cur == known {
			return nil
		}
	}
	want, ok, err := e.want()
	if err != nil {
		unlock := c.a.lock(e.path)
		defer unlock()
		return c.a.moveAside(e, err.Error(), integrity.Identity{}, false)
	}
	if !ok {
		return nil // being built, or built again at the next request
	}
	fd, err := integrity.OpenNoFollow(e.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	var id integrity.Identity
	problem := ""
	switch {
	case errors.Is(err, syscall.ELOOP):
		problem = "a symlink"
	case err != nil:
		return err
	default:
		defer syscall.Close(fd)
		var regular bool
		if id, regular, err = integrity.Fstat(fd); err != nil {
			return err
		}
		if !regular {
			problem = "not a regular file"
			break
		}
		start := time.Now()
		err = integrity.Check(ctx, fd, id, want, lim)
		if !errors.Is(err, integrity.ErrMismatch) {
			if err == nil || !errors.Is(err, integrity.ErrChanged) {
				memo.Remember(e.path, id, start, err == nil)
			}
			if errors.Is(err, integrity.ErrChanged) {
				return nil
			}
			return err
		}
		problem = err.Error()
	}
	unlock := c.a.lock(e.path)
	defer unlock()
	if cur, _, err := integrity.Lstat(e.path); err != nil || (id != integrity.Identity{} && cur != id) {
		return nil // replaced meanwhile; the next sweep looks again
	}
	return c.a.moveAside(e, problem, id, !c.initrd)
}
