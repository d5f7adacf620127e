package meta

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/google/renameio/v2"
	"golang.org/x/sys/unix"
)

// WriteFile atomically replaces path with the encoded manifest (mode 0644),
// skipping the write if the file already holds exactly those bytes. It
// reports whether it wrote. A writer killed at any moment leaves either the
// old file or the new one, never a mix.
func WriteFile(path string, m *Manifest) (bool, error) {
	b, err := m.Bytes()
	if err != nil {
		return false, fmt.Errorf("writing %s: %w", path, err)
	}
	return WriteBytes(path, b, 0o644)
}

// WriteBytes is WriteFile for already-encoded bytes (merge results). The
// new file is written to a temporary name in the same directory, synced,
// and renamed over path; the directory is synced after the rename.
func WriteBytes(path string, b []byte, perm os.FileMode) (bool, error) {
	if same, err := SameBytes(path, b); err != nil {
		return false, fmt.Errorf("reading the current %s: %w", path, err)
	} else if same {
		return false, nil
	}
	dir := filepath.Dir(path)
	pf, err := renameio.NewPendingFile(path, renameio.WithTempDir(dir), renameio.WithStaticPermissions(perm))
	if err != nil {
		return false, fmt.Errorf("writing %s: %w", path, err)
	}
	defer pf.Cleanup()
	if _, err := pf.Write(b); err != nil {
		return false, fmt.Errorf("writing %s: %w", path, err)
	}
	if err := pf.CloseAtomicallyReplace(); err != nil {
		return false, fmt.Errorf("writing %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		// Make the rename itself durable; a failure here does not undo it.
		d.Sync()
		d.Close()
	}
	return true, nil
}

// SameBytes reports whether path is a regular file holding exactly b. It
// opens without following a symlink and without blocking on a fifo; any
// such odd object simply counts as different. The file is compared a
// chunk at a time, never read whole: on a large image .gitmeta is tens of
// megabytes, and fresh memory for a copy costs more than the comparison.
func SameBytes(path string, b []byte) (bool, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENXIO) {
			return false, nil
		}
		return false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false, err
	}
	if !fi.Mode().IsRegular() || fi.Size() != int64(len(b)) {
		return false, nil
	}
	buf := make([]byte, min(len(b)+1, 1<<20))
	for {
		n, err := io.ReadFull(f, buf)
		if n > len(b) || !bytes.Equal(buf[:n], b[:n]) {
			return false, nil
		}
		b = b[n:]
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			return len(b) == 0, nil
		case err != nil:
			return false, err
		}
	}
}
