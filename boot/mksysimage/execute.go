package mksysimage

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"syscall"

	"github.com/onesis/git-onesis/boot/personality"
)

// Execute carries out ops on the image at root, in order, stopping at the
// first failure. Each op re-checks what it touches, so ops planned against
// a tree that changed since fail rather than clobber.
func Execute(root string, ops []Op) error {
	r, err := os.OpenRoot(root)
	if err != nil {
		return fmt.Errorf("opening the image at %s: %w", root, err)
	}
	defer r.Close()
	for _, o := range ops {
		if err := execOp(r, o); err != nil {
			return fmt.Errorf("%s: %w", o.String(), err)
		}
	}
	return nil
}

func execOp(r *os.Root, o Op) error {
	if o.Path == "" || o.Path == "." || path.IsAbs(o.Path) {
		return fmt.Errorf("bad path %q", o.Path)
	}
	if err := personality.CheckParents(r, o.Path); err != nil {
		return err
	}
	switch o.Kind {
	case Mkdir:
		if err := r.Mkdir(o.Path, 0o755); err != nil {
			return err
		}
		if os.Geteuid() == 0 {
			if err := r.Lchown(o.Path, 0, 0); err != nil {
				return err
			}
		}
		f, err := personality.OpenNoFollow(r, o.Path, true)
		if err != nil {
			return err
		}
		defer f.Close()
		return f.Chmod(0o755) // whatever the umask
	case Link:
		if o.Moved {
			if _, err := r.Lstat(o.Default); err == nil {
				return fmt.Errorf("/%s already exists; not overwriting it", o.Default)
			}
			if err := r.Rename(o.Path, o.Default); err != nil {
				return err
			}
		}
		return r.Symlink(ramTarget(o.Path), o.Path)
	case Restore:
		fi, err := r.Lstat(o.Path)
		switch {
		case err == nil:
			l, lerr := r.Readlink(o.Path)
			if fi.Mode()&fs.ModeSymlink == 0 || lerr != nil || l != ramTarget(o.Path) {
				return fmt.Errorf("/%s is not the transform's link to %s; not touching it", o.Path, ramTarget(o.Path))
			}
			if err := r.Remove(o.Path); err != nil {
				return err
			}
		case !errors.Is(err, fs.ErrNotExist):
			return err
		}
		if o.Moved {
			return r.Rename(o.Default, o.Path)
		}
		return nil
	case Rmdir:
		err := r.Remove(o.Path)
		if err == nil || errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST) {
			return nil
		}
		return err
	case Record:
		if o.Data == nil {
			err := r.Remove(o.Path)
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		tmp := o.Path + ".tmp"
		r.Remove(tmp)
		if err := r.WriteFile(tmp, o.Data, 0o644); err != nil {
			return err
		}
		f, err := personality.OpenNoFollow(r, tmp, false)
		if err != nil {
			return err
		}
		err = f.Chmod(0o644)
		f.Close()
		if err != nil {
			return err
		}
		return r.Rename(tmp, o.Path)
	}
	return fmt.Errorf("unknown operation %q", o.Kind)
}
