// Package integrity checks that every file git onesis serve serves from
// its state directory is the object git names: an NFS blob store file
// hashes to its git blob id, a cached kernel to its blob id, a cached
// initramfs to the sha256 recorded when it was built.
//
// A file is hashed through the descriptor it is then served from, before
// its first byte is served by the process; its identity (device, inode,
// size, mtime, ctime: any write or chmod moves ctime) is remembered, so
// opening it again costs an fstat, and any change forces a new hash. A
// file that does not match is moved aside into a quarantine directory,
// never deleted, and rebuilt from git. See docs/serve.md, "Integrity of
// served files".
package integrity

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Store names, used in reports and as the metrics label.
const (
	StoreNFS    = "nfs"    // the NFS blob store
	StoreKernel = "kernel" // serve's kernel cache
	StoreInitrd = "initrd" // serve's initramfs cache
)

// ErrMismatch is a file whose content is not the object its name says.
var ErrMismatch = errors.New("content does not match its name")

// ErrChanged is a file that changed while it was being hashed.
var ErrChanged = errors.New("the file changed while it was being verified")

// Identity is what stat says of a file: any write, truncate, chmod or
// replacement changes it.
type Identity struct {
	Dev, Ino     uint64
	Size         int64
	Mtime, Ctime int64 // nanoseconds
}

// IdentityOf returns the identity in st.
func IdentityOf(st *syscall.Stat_t) Identity {
	return Identity{Dev: uint64(st.Dev), Ino: st.Ino, Size: st.Size,
		Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano()}
}

// Fstat returns the identity of the open file fd and whether it is a
// regular file.
func Fstat(fd int) (Identity, bool, error) {
	var st syscall.Stat_t
	for {
		err := syscall.Fstat(fd, &st)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return Identity{}, false, err
		}
		return IdentityOf(&st), st.Mode&syscall.S_IFMT == syscall.S_IFREG, nil
	}
}

// Lstat returns the identity of path without following a symlink, and
// whether it is a regular file.
func Lstat(path string) (Identity, bool, error) {
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		return Identity{}, false, &os.PathError{Op: "lstat", Path: path, Err: err}
	}
	return IdentityOf(&st), st.Mode&syscall.S_IFMT == syscall.S_IFREG, nil
}

// OpenNoFollow opens path read-only without following a symlink.
func OpenNoFollow(path string) (int, error) {
	for {
		fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return -1, &os.PathError{Op: "open", Path: path, Err: err}
		}
		return fd, nil
	}
}

// FDReader reads an open descriptor with pread (io.ReaderAt).
type FDReader int

// ReadAt implements io.ReaderAt.
func (fd FDReader) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	for n < len(p) {
		m, err := syscall.Pread(int(fd), p[n:], off+int64(n))
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return n, err
		}
		if m == 0 {
			return n, io.EOF
		}
		n += m
	}
	return n, nil
}

// hashBuf is the piece hashed at a time: a large file is never held in
// memory.
const hashBuf = 256 << 10

var bufs = sync.Pool{New: func() any { b := make([]byte, hashBuf); return &b }}

// Sum feeds size bytes of r, from offset 0, to h, pausing for lim (nil:
// no limit). The file must end at size.
func Sum(ctx context.Context, r io.ReaderAt, size int64, h hash.Hash, lim *Limiter) error {
	bp := bufs.Get().(*[]byte)
	defer bufs.Put(bp)
	buf := *bp
	var off int64
	for off < size {
		n := int(min(int64(len(buf)), size-off))
		if err := lim.Wait(ctx, n); err != nil {
			return err
		}
		m, err := r.ReadAt(buf[:n], off)
		h.Write(buf[:m])
		off += int64(m)
		if m < n {
			if err == nil || err == io.EOF {
				return ErrChanged // shorter than fstat said
			}
			return err
		}
	}
	if m, _ := r.ReadAt(buf[:1], off); m != 0 {
		return ErrChanged // longer
	}
	return nil
}

// NewBlobHash returns the hash of a git object id of hex length idLen
// (40: SHA-1, 64: SHA-256), with the blob header for size written.
func NewBlobHash(idLen int, size int64) (hash.Hash, error) {
	var h hash.Hash
	switch idLen {
	case 40:
		h = sha1.New()
	case 64:
		h = sha256.New()
	default:
		return nil, fmt.Errorf("%d hex digits is not a git object id", idLen)
	}
	h.Write([]byte("blob " + strconv.FormatInt(size, 10) + "\x00"))
	return h, nil
}

// Want is what a file must hash to.
type Want struct {
	// Blob is a git blob id (40 or 64 hex digits): the file must be
	// that blob's content.
	Blob string
	// SHA256 is the hex sha256 of the content, when Blob is "".
	SHA256 string
}

func (w Want) String() string {
	if w.Blob != "" {
		return "blob " + w.Blob
	}
	return "sha256 " + w.SHA256
}

// Check hashes the open file fd of identity id (as Fstat returned it)
// and compares it with want. It returns nil when it matches and the file
// did not change meanwhile, ErrMismatch (wrapped) when it does not match,
// ErrChanged when it changed while being read.
func Check(ctx context.Context, fd int, id Identity, want Want, lim *Limiter) error {
	var h hash.Hash
	var exp string
	if want.Blob != "" {
		var err error
		if h, err = NewBlobHash(len(want.Blob), id.Size); err != nil {
			return err
		}
		exp = strings.ToLower(want.Blob)
	} else {
		h, exp = sha256.New(), strings.ToLower(want.SHA256)
	}
	if err := Sum(ctx, FDReader(fd), id.Size, h, lim); err != nil {
		return err
	}
	if after, _, err := Fstat(fd); err != nil {
		return err
	} else if after != id {
		return ErrChanged
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != exp {
		return fmt.Errorf("%w: want %s, the file hashes to %s", ErrMismatch, want, got)
	}
	return nil
}

// Quarantine moves the file at path aside into dir as
// <name>.<unix time> (a suffix added if that exists), atomically (a
// rename, so dir must be on the same file system), and returns where it
// went. Nothing is ever deleted.
func Quarantine(dir, path, name string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("creating the quarantine directory: %w", err)
	}
	base := filepath.Join(dir, name+"."+strconv.FormatInt(time.Now().Unix(), 10))
	dest := base
	for i := 1; ; i++ {
		if _, err := os.Lstat(dest); errors.Is(err, os.ErrNotExist) {
			break
		}
		dest = base + "-" + strconv.Itoa(i)
	}
	if err := os.Rename(path, dest); err != nil {
		return "", fmt.Errorf("moving %s aside: %w", path, err)
	}
	return dest, nil
}

// Report is one file found not to be what it should be.
type Report struct {
	Time  time.Time
	Store string // StoreNFS, StoreKernel, StoreInitrd
	Name  string // the blob id or cache key
	Path  string // where it was
	// Problem says what was wrong: a mismatch, not a regular file, ...
	Problem string
	// Quarantine is where the bad file went ("" when there was none,
	// e.g. a missing file).
	Quarantine string
	// Repaired tells whether good bytes were rebuilt; RepairErr why not.
	Repaired  bool
	RepairErr string
}
