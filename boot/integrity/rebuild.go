package integrity

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// ErrNotInGit is a blob git itself no longer has (or cannot read).
var ErrNotInGit = errors.New("git cannot read the object")

// RebuildBlob writes blob id of the repository at gitDir to dest, read
// with `git cat-file` (streamed, never held in memory), as RebuildFrom
// does.
func RebuildBlob(ctx context.Context, gitDir, id, dest, tmpDir string, perm os.FileMode) error {
	size, err := blobSize(ctx, gitDir, id)
	if err != nil {
		return err
	}
	return rebuild(id, size, dest, tmpDir, perm, func(w io.Writer) error {
		cmd := exec.CommandContext(ctx, "git", "--git-dir="+gitDir, "cat-file", "blob", id)
		var stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = w, &stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%w: blob %s: %v: %s", ErrNotInGit, id, err, strings.TrimSpace(stderr.String()))
		}
		return nil
	})
}

// RebuildFrom writes blob id, size bytes read from r (streamed, never
// held in memory), to dest through a temporary file in tmpDir (same file
// system) that is fsynced and renamed into place only once its content
// hashes to id: no partial or wrong file ever has dest's name. The file
// gets mode perm. A cancelled ctx stops the copy.
func RebuildFrom(ctx context.Context, r io.Reader, id string, size int64, dest, tmpDir string, perm os.FileMode) error {
	return rebuild(id, size, dest, tmpDir, perm, func(w io.Writer) error {
		if _, err := io.Copy(w, ctxReader{ctx, r}); err != nil {
			return fmt.Errorf("%w: blob %s: %w", ErrNotInGit, id, err)
		}
		return nil
	})
}

// ctxReader stops reading once its context is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// rebuild writes what fill writes to dest, verified to be blob id of size
// bytes (see RebuildFrom).
func rebuild(id string, size int64, dest, tmpDir string, perm os.FileMode, fill func(io.Writer) error) error {
	if err := os.MkdirAll(tmpDir, 0o700); err != nil {
		return err
	}
	h, err := NewBlobHash(len(id), size)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(tmpDir, "blob-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // no-op once renamed
	if err := fill(io.MultiWriter(f, h)); err != nil {
		f.Close()
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != strings.ToLower(id) {
		f.Close()
		return fmt.Errorf("%w: git gave content hashing to %s for blob %s", ErrNotInGit, got, id)
	}
	err = f.Chmod(perm)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(f.Name(), dest); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(dest)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

func blobSize(ctx context.Context, gitDir, id string) (int64, error) {
	out, err := exec.CommandContext(ctx, "git", "--git-dir="+gitDir, "cat-file", "-s", id).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("%w: blob %s: %s", ErrNotInGit, id, strings.TrimSpace(string(out)))
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: blob %s: size %q", ErrNotInGit, id, out)
	}
	return n, nil
}

// ObjectFormat returns the object format of the repository at dir (a
// git dir or a work tree): "sha1" or "sha256".
func ObjectFormat(dir string) (string, error) {
	cmd := exec.Command("git", "rev-parse", "--show-object-format")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("reading the object format of %s: %w", dir, err)
	}
	return strings.TrimSpace(string(out)), nil
}
