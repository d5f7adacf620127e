package integrity

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Entry is one file of a state directory that must be what its name
// says (see Entries).
type Entry struct {
	Store string // StoreNFS, StoreKernel, StoreInitrd
	Name  string // blob id or cache key
	Path  string
	// Quarantine is where a bad file goes.
	Quarantine string
	// Extra are files moved aside with a bad one (an initramfs's .sha256).
	Extra []string
	// SumFile, for an initramfs, holds its recorded sha256.
	SumFile string
}

func isHex(s string, n int) bool {
	return len(s) == n && strings.Trim(s, "0123456789abcdef") == ""
}

// Entries lists the served files under a state directory: serve's (its
// kernel cache blobs/<blob id>, initramfs cache initrd/<key>, and the NFS
// blob store under nfs/) or an NFS server's own (blobs/xx/yyyy...). The
// directory itself may not be a symlink; nothing under it is followed.
func Entries(dir string) ([]Entry, error) {
	fi, err := os.Lstat(dir)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	var out []Entry
	blobs := filepath.Join(dir, "blobs")
	ents, err := readDir(blobs)
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		n := e.Name()
		switch {
		case isHex(n, 2) && e.IsDir(): // the NFS store's fan-out
			sub, err := readDir(filepath.Join(blobs, n))
			if err != nil {
				return nil, err
			}
			for _, f := range sub {
				if isHex(n+f.Name(), 40) {
					out = append(out, Entry{Store: StoreNFS, Name: n + f.Name(), Path: filepath.Join(blobs, n, f.Name()),
						Quarantine: filepath.Join(dir, "quarantine")})
				}
			}
		case isHex(n, 40) || isHex(n, 64): // serve's kernel cache
			out = append(out, Entry{Store: StoreKernel, Name: n, Path: filepath.Join(blobs, n), Quarantine: filepath.Join(dir, "quarantine")})
		}
	}
	initrd := filepath.Join(dir, "initrd")
	ents, err = readDir(initrd)
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		if n := e.Name(); isHex(n, 64) {
			p := filepath.Join(initrd, n)
			out = append(out, Entry{Store: StoreInitrd, Name: n, Path: p, Quarantine: filepath.Join(dir, "quarantine"),
				Extra: []string{p + ".sha256"}, SumFile: p + ".sha256"})
		}
	}
	if fi, err := os.Lstat(filepath.Join(dir, "nfs")); err == nil && fi.IsDir() {
		nfs, err := Entries(filepath.Join(dir, "nfs"))
		if err != nil {
			return nil, err
		}
		out = append(out, nfs...)
	}
	return out, nil
}

// readDir lists a directory that may be missing (nothing to list); a
// symlink in its place is not followed.
func readDir(dir string) ([]os.DirEntry, error) {
	fi, err := os.Lstat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory (a symlink is never followed)", dir)
	}
	return os.ReadDir(dir)
}

// Want returns what the entry must hash to; false when that is unknown
// (an initramfs whose recorded sha256 is missing: serve builds it again).
// A recorded sha256 that is unreadable or malformed is an error.
func (e Entry) Want() (Want, bool, error) {
	if e.Store != StoreInitrd {
		return Want{Blob: e.Name}, true, nil
	}
	fd, err := OpenNoFollow(e.SumFile)
	if errors.Is(err, os.ErrNotExist) {
		return Want{}, false, nil
	}
	if err != nil {
		return Want{}, false, fmt.Errorf("the recorded sha256 %s: %w", e.SumFile, err)
	}
	f := os.NewFile(uintptr(fd), e.SumFile)
	defer f.Close()
	b := make([]byte, 128)
	n, _ := io.ReadFull(f, b)
	sum := strings.TrimSpace(string(b[:n]))
	if !isHex(sum, 64) {
		return Want{}, false, fmt.Errorf("the recorded sha256 %s is not a sha256", e.SumFile)
	}
	return Want{SHA256: sum}, true, nil
}

// CheckEntry verifies one entry: "" when it is what it should be, else
// the problem, with the identity of the file found (zero when there was
// none to open). A file that keeps changing while it is read is a
// problem too.
func CheckEntry(ctx context.Context, e Entry, lim *Limiter) (string, Identity) {
	want, ok, err := e.Want()
	if err != nil {
		return err.Error(), Identity{}
	}
	if !ok {
		if _, regular, err := Lstat(e.Path); err == nil && !regular {
			return "not a regular file (or a symlink, never followed)", Identity{}
		}
		return "", Identity{}
	}
	for attempt := 0; attempt < 3; attempt++ {
		fd, err := OpenNoFollow(e.Path)
		switch {
		case errors.Is(err, syscall.ELOOP):
			return "a symlink (never followed)", Identity{}
		case errors.Is(err, os.ErrNotExist):
			return "", Identity{} // removed meanwhile (pruned)
		case err != nil:
			return "unreadable: " + err.Error(), Identity{}
		}
		id, regular, err := Fstat(fd)
		if err == nil && !regular {
			syscall.Close(fd)
			return "not a regular file", id
		}
		if err == nil {
			err = Check(ctx, fd, id, want, lim)
		}
		syscall.Close(fd)
		switch {
		case err == nil:
			return "", id
		case errors.Is(err, ErrChanged):
			continue
		case errors.Is(err, ErrMismatch):
			return err.Error(), id
		default:
			return "unreadable: " + err.Error(), id
		}
	}
	return "kept changing while it was checked", Identity{}
}

// RepairEntry moves a bad entry aside (unless it changed since it was
// found bad: bad is the identity CheckEntry saw, zero for no regular
// file) and rebuilds a blob from the repository at gitDir; an initramfs
// is only moved aside (serve builds it again when a node asks).
func RepairEntry(ctx context.Context, e Entry, bad Identity, problem, gitDir string) Report {
	rep := Report{Time: time.Now(), Store: e.Store, Name: e.Name, Path: e.Path, Problem: problem}
	cur, _, err := Lstat(e.Path)
	if err == nil && bad != (Identity{}) && cur != bad {
		rep.RepairErr = "changed since it was checked; left alone"
		return rep
	}
	if err == nil {
		q, err := Quarantine(e.Quarantine, e.Path, e.Name)
		if err != nil {
			rep.RepairErr = err.Error()
			return rep
		}
		rep.Quarantine = q
	}
	for _, x := range e.Extra {
		if _, err := os.Lstat(x); err == nil {
			if _, err := Quarantine(e.Quarantine, x, filepath.Base(x)); err != nil && rep.RepairErr == "" {
				rep.RepairErr = err.Error()
			}
		}
	}
	if e.Store == StoreInitrd {
		rep.RepairErr = "serve builds it again when a node asks for it"
		return rep
	}
	perm := os.FileMode(0o644)
	tmp := filepath.Dir(e.Path)
	if e.Store == StoreNFS {
		perm, tmp = 0o600, filepath.Join(filepath.Dir(tmp), "tmp")
	}
	if err := RebuildBlob(ctx, gitDir, e.Name, e.Path, tmp, perm); err != nil {
		rep.RepairErr = err.Error()
		return rep
	}
	rep.Repaired = true
	return rep
}
