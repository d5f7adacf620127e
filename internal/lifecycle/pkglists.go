package lifecycle

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// PackageCaches are the directories where package managers keep what they
// downloaded about their repositories (apt's lists and caches, dnf's and
// yum's metadata). The image .gitignore keeps their contents out of git,
// so a fresh worktree would have none, and 'apt-get install' there would
// find no package until an 'apt-get update' that an offline maintenance
// node cannot make. Start copies them from the work tree it is run in.
var PackageCaches = []string{"var/lib/apt/lists", "var/cache/apt", "var/cache/dnf", "var/cache/yum"}

// copyPackageLists copies the files of PackageCaches that src has and dst
// lacks, with their modes, owners and times, through os.Root on both
// sides: no symlink is followed and nothing outside either tree is read or
// written. A symlink is copied as a link with the same target (apt keeps
// the list of a local file: repository as a link to the repository's own
// Packages file); it is never opened.
func copyPackageLists(src, dst string) error {
	from, err := os.OpenRoot(src)
	if err != nil {
		return err
	}
	defer from.Close()
	to, err := os.OpenRoot(dst)
	if err != nil {
		return err
	}
	defer to.Close()
	for _, dir := range PackageCaches {
		if st, err := from.Lstat(dir); err != nil || !st.IsDir() {
			continue
		}
		err := fs.WalkDir(from.FS(), dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			switch {
			case d.IsDir():
				return copyDir(from, to, p)
			case d.Type().IsRegular():
				return copyFile(from, to, p)
			case d.Type()&fs.ModeSymlink != 0:
				return copyLink(from, to, p)
			}
			return nil // sockets, FIFOs: not package data
		})
		if err != nil {
			return fmt.Errorf("copying the package lists (%s) into %s: %w", dir, dst, err)
		}
	}
	return nil
}

func copyDir(from, to *os.Root, p string) error {
	st, err := from.Lstat(p)
	if err != nil {
		return err
	}
	if _, err := to.Lstat(p); err == nil {
		return nil
	}
	if err := to.Mkdir(p, 0o700); err != nil {
		return err
	}
	return setMeta(to, p, st)
}

func copyFile(from, to *os.Root, p string) error {
	if _, err := to.Lstat(p); err == nil {
		return nil // git has it, or it is there already
	}
	in, err := from.Open(p)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil || !st.Mode().IsRegular() {
		return err
	}
	out, err := to.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		to.Remove(p)
		return err
	}
	if err := out.Close(); err != nil {
		to.Remove(p)
		return err
	}
	return setMeta(to, p, st)
}

// copyLink makes p in to a symlink with the target p has in from, owned
// as it is there.
func copyLink(from, to *os.Root, p string) error {
	if _, err := to.Lstat(p); err == nil {
		return nil
	}
	target, err := from.Readlink(p)
	if err != nil {
		return err
	}
	st, err := from.Lstat(p)
	if err != nil {
		return err
	}
	if err := to.Symlink(target, p); err != nil {
		return err
	}
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		if err := to.Lchown(p, int(s.Uid), int(s.Gid)); err != nil && os.Geteuid() == 0 {
			return err
		}
	}
	return nil
}

// setMeta gives p in to the owner, mode and modification time of st.
func setMeta(to *os.Root, p string, st fs.FileInfo) error {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		// As non-root the copy stays ours: chown is refused, not an error.
		if err := to.Lchown(p, int(s.Uid), int(s.Gid)); err != nil && os.Geteuid() == 0 {
			return err
		}
	}
	if err := to.Chmod(p, st.Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)); err != nil {
		return err
	}
	return to.Chtimes(p, st.ModTime(), st.ModTime())
}
