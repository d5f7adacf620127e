package personality

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"

	"golang.org/x/sys/unix"
)

// ExecOptions tune Execute.
type ExecOptions struct {
	// Mount performs a Mount step (the node's init mounts the tmpfs on the
	// ram dir). When nil, mount steps are skipped: the ram dir is used as
	// it is, as in tests and 'git onesis personality --ram'.
	Mount func(s Step) error
	// Log, when set, is told about each step as it is done.
	Log func(s Step)
}

// Execute carries plan out into ramDir, reading copies from the image at
// imageDir. Every write is confined to ramDir with os.Root, parents are
// checked to be real directories, and nothing of the image is followed: a
// symlink in the image is copied as a symlink with the same text, and
// links created in ramDir hold absolute image paths as text.
func Execute(plan *Plan, imageDir, ramDir string, o ExecOptions) error {
	// Mount steps come first, before ramDir is opened: a tmpfs mounted on
	// ramDir afterwards would sit on top of the opened directory, and the
	// steps would write beneath it (into the read-only NFS root at boot).
	for _, s := range plan.Steps {
		if s.Kind != Mount || o.Mount == nil {
			continue
		}
		if err := o.Mount(s); err != nil {
			return fmt.Errorf("mounting tmpfs on %s: %w", ramDir, err)
		}
		if o.Log != nil {
			o.Log(s)
		}
	}
	img, err := OpenDir(imageDir)
	if err != nil {
		return err
	}
	defer img.Close()
	ram, err := os.OpenRoot(ramDir)
	if err != nil {
		return fmt.Errorf("opening the ram directory %s: %w", ramDir, err)
	}
	defer ram.Close()
	x := &executor{img: img, ram: ram}
	for _, s := range plan.Steps {
		if s.Kind == Mount {
			continue
		}
		if err := x.step(s); err != nil {
			return fmt.Errorf("%s: %w", s.String(), err)
		}
		if o.Log != nil {
			o.Log(s)
		}
	}
	return nil
}

type executor struct {
	img *DirImage
	ram *os.Root
}

func (x *executor) step(s Step) error {
	if s.Path == "" || s.Path == "." {
		return errors.New("a step may not replace the ram directory itself")
	}
	p, err := Rel(s.Path)
	if err != nil {
		return err
	}
	if err := CheckParents(x.ram, p); err != nil {
		return err
	}
	switch s.Kind {
	case Mkdir:
		return x.mkdir(p)
	case Touch:
		return x.touch(p)
	case Symlink:
		return x.symlink(s.Target, p)
	case Chown:
		return x.ram.Lchown(p, int(s.UID), int(s.GID))
	case Chmod:
		return x.chmod(p, uint32(s.Mode))
	case Copy:
		src, err := Rel(s.Source)
		if err != nil {
			return err
		}
		return x.copy(src, p)
	}
	return fmt.Errorf("unknown step kind %q", s.Kind)
}

// clear removes a non-directory at p so something else can be created
// there; a directory in the way is an error.
func (x *executor) clear(p string) error {
	fi, err := x.ram.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return fmt.Errorf("%s is a directory in the ram dir; not replacing it", p)
	}
	return x.ram.Remove(p)
}

func (x *executor) mkdir(p string) error {
	fi, err := x.ram.Lstat(p)
	if err == nil && fi.IsDir() {
		return nil
	}
	if err := x.clear(p); err != nil {
		return err
	}
	return x.ram.Mkdir(p, 0o700)
}

func (x *executor) touch(p string) error {
	fi, err := x.ram.Lstat(p)
	if err == nil && fi.Mode().IsRegular() {
		return nil
	}
	if err := x.clear(p); err != nil {
		return err
	}
	f, err := x.ram.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	return f.Close()
}

func (x *executor) symlink(target, p string) error {
	if err := x.clear(p); err != nil {
		return err
	}
	return x.ram.Symlink(target, p)
}

// chmod sets the mode of a directory or regular file through an fd opened
// without following anything; of a device or fifo by name after Lstat; a
// symlink's mode is left alone.
func (x *executor) chmod(p string, mode uint32) error {
	fi, err := x.ram.Lstat(p)
	if err != nil {
		return err
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return nil
	case fi.IsDir() || fi.Mode().IsRegular():
		f, err := OpenNoFollow(x.ram, p, fi.IsDir())
		if err != nil {
			return err
		}
		defer f.Close()
		return f.Chmod(fileMode(mode))
	}
	return x.ram.Chmod(p, fileMode(mode))
}

// fileMode turns Unix permission bits into an os.FileMode.
func fileMode(bits uint32) fs.FileMode {
	m := fs.FileMode(bits & 0o777)
	if bits&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if bits&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if bits&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m
}

// copy copies the image object src to p in the ram dir: a regular file
// with its content, a symlink as a symlink, a directory with everything
// below it, devices and fifos as such; owner first, then mode, so setuid
// and setgid bits survive. Sockets are skipped.
func (x *executor) copy(src, p string) error {
	in, err := x.img.Lstat(src)
	if err != nil {
		return fmt.Errorf("reading /%s in the image: %w", src, err)
	}
	switch {
	case in.IsSymlink():
		if err := x.symlink(in.Link, p); err != nil {
			return err
		}
		return x.ram.Lchown(p, int(in.UID), int(in.GID))
	case in.IsRegular():
		if err := x.copyFile(src, p); err != nil {
			return err
		}
	case in.IsDir():
		if err := x.mkdir(p); err != nil {
			return err
		}
		names, err := x.img.ReadDir(src)
		if err != nil {
			return fmt.Errorf("listing /%s in the image: %w", src, err)
		}
		for _, n := range names {
			if err := x.copy(path.Join(src, n), path.Join(p, n)); err != nil {
				return err
			}
		}
	case in.Type&fs.ModeSocket != 0:
		return nil
	default:
		if err := x.mknod(p, in); err != nil {
			return err
		}
	}
	if err := x.ram.Lchown(p, int(in.UID), int(in.GID)); err != nil {
		return err
	}
	return x.chmod(p, in.Perm)
}

func (x *executor) copyFile(src, p string) error {
	r, err := x.img.openNoFollow(src, false)
	if err != nil {
		return fmt.Errorf("reading /%s in the image: %w", src, err)
	}
	defer r.Close()
	if err := x.clear(p); err != nil {
		return err
	}
	w, err := x.ram.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, r); err != nil {
		w.Close()
		return fmt.Errorf("copying /%s: %w", src, err)
	}
	return w.Close()
}

// mknod recreates a device or fifo in the ram dir, through an fd of its
// parent directory.
func (x *executor) mknod(p string, in Info) error {
	if err := x.clear(p); err != nil {
		return err
	}
	dir, err := OpenNoFollow(x.ram, path.Dir(p), true)
	if err != nil {
		return err
	}
	defer dir.Close()
	var t uint32
	switch {
	case in.Type&fs.ModeNamedPipe != 0:
		t = unix.S_IFIFO
	case in.Type&fs.ModeCharDevice != 0:
		t = unix.S_IFCHR
	case in.Type&fs.ModeDevice != 0:
		t = unix.S_IFBLK
	default:
		return fmt.Errorf("cannot copy %s", p)
	}
	return unix.Mknodat(int(dir.Fd()), path.Base(p), t|0o600, int(in.Rdev))
}
