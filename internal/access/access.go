// Package access owns who may read an image repository's git directory.
//
// The objects of an image repository hold the image's secrets (etc/shadow,
// SSH host keys, TLS keys) whatever modes those files have in the work
// tree: 'git cat-file -p HEAD:etc/shadow' reads the blob, not the file. So
// the git directory must be readable by its owner (root) and, at most, a
// reviewers' group the admin names, never by every user of the boot server.
//
// The mechanism is git's own core.sharedRepository: set to an octal mode,
// git gives that mode to every object, pack, ref, log and index it writes
// afterwards, whatever the umask of the process writing it (git onesis
// runs checkouts and merges under umask 077, which alone would make objects
// 0400 and unreadable to reviewers). Restrict sets it, puts the git
// directory in the reviewers' group with setgid directories (so files
// created later inherit the group), and brings the files already there in
// line. Exposed tells whether any user can read the objects, for status.
package access

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/onesis/git-onesis/internal/git"
)

// ReviewersKey is the git config key naming the reviewers' group.
const ReviewersKey = "onesis.reviewers"

// Modes of core.sharedRepository: owner only, or owner and group (read).
const (
	OwnerOnly = "0600"
	WithGroup = "0640"
)

// Result says what Restrict set.
type Result struct {
	GitDir  string // the common git directory
	Shared  string // the core.sharedRepository value
	Group   string // the reviewers' group name; "" for owner only
	GID     int    // its id; -1 for owner only
	Changed int    // files and directories whose mode or group changed
}

// String describes the result for the admin.
func (r *Result) String() string {
	if r.Group == "" {
		return fmt.Sprintf("%s is readable by its owner only (core.sharedRepository=%s); let reviewers read it with 'git onesis install --reviewers GROUP'", r.GitDir, r.Shared)
	}
	return fmt.Sprintf("%s is readable by its owner and group %s only (core.sharedRepository=%s)", r.GitDir, r.Group, r.Shared)
}

// LookupGroup resolves a group name or numeric id.
func LookupGroup(group string) (name string, gid int, err error) {
	g, err := user.LookupGroup(group)
	if err != nil {
		if _, nerr := strconv.Atoi(group); nerr != nil {
			return "", -1, fmt.Errorf("no group %q on this system: %w", group, err)
		}
		if g, err = user.LookupGroupId(group); err != nil {
			// A numeric group without a name (a directory service that
			// is down, a container): the id is all the kernel needs.
			gid, _ := strconv.Atoi(group)
			return group, gid, nil
		}
	}
	gid, err = strconv.Atoi(g.Gid)
	if err != nil {
		return "", -1, fmt.Errorf("group %q has a non-numeric id %q", group, g.Gid)
	}
	return g.Name, gid, nil
}

// Restrict makes r's git directory readable by its owner and, when group
// is not "", by that group only: core.sharedRepository, the group of
// every file and directory (directories setgid, so new files inherit it),
// and their modes. group is a name or a numeric id. It records group in
// onesis.reviewers.
func Restrict(r *git.Repo, group string) (*Result, error) {
	res := &Result{GitDir: r.CommonDir, Shared: OwnerOnly, GID: -1}
	if group != "" {
		name, gid, err := LookupGroup(group)
		if err != nil {
			return nil, err
		}
		res.Group, res.GID, res.Shared = name, gid, WithGroup
	}
	// The config first: from here on git writes every file right, even
	// while the walk below fixes the older ones.
	if err := r.SetConfig("core.sharedRepository", res.Shared); err != nil {
		return nil, fmt.Errorf("setting core.sharedRepository: %w", err)
	}
	if group == "" {
		if err := r.UnsetConfig(ReviewersKey); err != nil {
			return nil, err
		}
	} else if err := r.SetConfig(ReviewersKey, res.Group); err != nil {
		return nil, err
	}
	err := filepath.WalkDir(r.CommonDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while we walk (a lock, a temp file)
			}
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil // never follow, never chmod through a link
		}
		changed, err := fix(p, d.IsDir(), res.GID)
		if changed {
			res.Changed++
		}
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	})
	if err != nil {
		return res, fmt.Errorf("restricting %s: %w", r.CommonDir, err)
	}
	return res, nil
}

// fix gives one path of the git directory its mode: the owner's bits kept;
// the group gets the owner's read and search bits when there is a group
// (gid >= 0), nothing otherwise; others get nothing. Directories are setgid
// with a group, so what git creates in them inherits it.
func fix(p string, dir bool, gid int) (bool, error) {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return false, &fs.PathError{Op: "lstat", Path: p, Err: err}
	}
	changed := false
	if gid >= 0 && int(st.Gid) != gid {
		if err := unix.Lchown(p, -1, gid); err != nil {
			return false, &fs.PathError{Op: "chgrp", Path: p, Err: err}
		}
		changed = true
	}
	mode := st.Mode & 0o700
	if gid >= 0 {
		mode |= (st.Mode & 0o500) >> 3
		if dir {
			mode |= unix.S_ISGID
		}
	}
	if changed || st.Mode&0o7777 != mode {
		// chmod after chown: chown clears setgid.
		if err := unix.Chmod(p, mode); err != nil {
			return changed, &fs.PathError{Op: "chmod", Path: p, Err: err}
		}
		changed = true
	}
	return changed, nil
}

// Exposed reports an object of the repository whose git directory is
// commonDir that every user of the machine can read (others may search
// each directory down to it and read it), or "" when there is none.
func Exposed(commonDir string) (string, error) {
	abs, err := filepath.Abs(commonDir)
	if err != nil {
		return "", err
	}
	for d := abs; ; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil {
			return "", err
		}
		if st.Mode().Perm()&0o001 == 0 {
			return "", nil // others stop here
		}
		if d == "/" || filepath.Dir(d) == d {
			break
		}
	}
	objects := filepath.Join(abs, "objects")
	if st, err := os.Stat(objects); err != nil || st.Mode().Perm()&0o001 == 0 {
		return "", nil
	}
	dirs, err := os.ReadDir(objects)
	if err != nil {
		return "", err
	}
	for _, d := range dirs {
		if !d.IsDir() || (len(d.Name()) != 2 && d.Name() != "pack") {
			continue
		}
		sub := filepath.Join(objects, d.Name())
		if st, err := os.Stat(sub); err != nil || st.Mode().Perm()&0o001 == 0 {
			continue
		}
		ents, err := os.ReadDir(sub)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if !e.Type().IsRegular() {
				continue
			}
			if info, err := e.Info(); err == nil && info.Mode().Perm()&0o004 != 0 {
				return filepath.Join(sub, e.Name()), nil
			}
		}
	}
	return "", nil
}
