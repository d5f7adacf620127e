// Package exports lets a site serve the node root with the kernel's NFS
// server (knfsd) or a cluster file system instead of serve's embedded one.
// It materialises commits as plain directory trees (files checked out by
// git, .gitmeta applied, secrets replaced by empty placeholders exactly as
// the embedded server does) and renders the exports(5) lines for them.
//
// Layout: DIR/c/<commit> is one commit's tree, the path serve puts in the
// nodes' nfsroot= when started with --nfs-export-dir DIR. A tree is built
// under DIR/c/.tmp-* and renamed into place, so a cut-off run never leaves
// a half tree under a commit's name; DIR/.lock serialises runs.
package exports

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/onesis/git-onesis/boot/nfsroot"
	"github.com/onesis/git-onesis/internal/git"
	"github.com/onesis/git-onesis/meta"
)

// MetaFile is the metadata file of an image; it is not part of a node's root.
const MetaFile = ".gitmeta"

// TreeDir is where commit's tree lives under dir.
func TreeDir(dir, commit string) string { return filepath.Join(dir, "c", commit) }

// IsCommitID reports whether s is a full SHA-1 or SHA-256 object id in
// lower-case hex, the only names trees are kept under.
func IsCommitID(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Lock takes DIR/.lock (creating DIR) so that two runs do not build or
// prune trees at once. The returned function releases it.
func Lock(dir string) (func(), error) {
	if err := os.MkdirAll(filepath.Join(dir, "c"), 0o755); err != nil {
		return nil, fmt.Errorf("creating the exports directory: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the exports lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil
}

// Result describes one materialised tree.
type Result struct {
	Commit string
	Dir    string
	// Created is false when the tree was already there.
	Created bool
	// Apply is the metadata apply result (nil without .gitmeta or when
	// the tree was already there).
	Apply *meta.ApplyResult
	// Denied counts the paths replaced by placeholders.
	Denied int
	// NoMeta is set when the commit has no .gitmeta: the tree then has
	// git's modes and the caller's ownership only.
	NoMeta bool
}

// Materialise builds dir/c/<commit> from r unless it exists. Callers hold
// Lock. deny is the deny list (nil: nfsroot.DefaultDeny).
func Materialise(r *git.Repo, dir, commit string, deny []string) (*Result, error) {
	if !IsCommitID(commit) {
		return nil, fmt.Errorf("%q is not a full commit id", commit)
	}
	match, err := nfsroot.DenyMatcher(deny)
	if err != nil {
		return nil, err
	}
	final := TreeDir(dir, commit)
	res := &Result{Commit: commit, Dir: final}
	if st, err := os.Lstat(final); err == nil {
		if !st.IsDir() {
			return nil, fmt.Errorf("%s exists and is not a directory; remove it", final)
		}
		return res, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	parent := filepath.Join(dir, "c")
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", parent, err)
	}
	tmp, err := os.MkdirTemp(parent, ".tmp-"+commit[:12]+"-")
	if err != nil {
		return nil, fmt.Errorf("creating a temporary tree: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
		}
	}()
	if err := checkout(r, commit, tmp); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(tmp, MetaFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		res.NoMeta = true
	case err != nil:
		return nil, err
	default:
		m, err := meta.ParseBytes(b)
		if err != nil {
			return nil, fmt.Errorf("commit %s: reading .gitmeta: %w", commit[:12], err)
		}
		if res.Apply, err = meta.Apply(tmp, m, meta.ApplyOptions{}); err != nil {
			return nil, fmt.Errorf("commit %s: applying .gitmeta to the tree: %w", commit[:12], err)
		}
		if err := os.Remove(filepath.Join(tmp, MetaFile)); err != nil {
			return nil, err
		}
	}
	// What the embedded server hides is not part of a node's root here
	// either (the image's .gitignore, .onesis* configuration).
	ents, err := os.ReadDir(tmp)
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		if nfsroot.Hidden(e.Name()) {
			// RemoveAll never follows a symlink it meets.
			if err := os.RemoveAll(filepath.Join(tmp, e.Name())); err != nil {
				return nil, fmt.Errorf("commit %s: leaving %s out of the export: %w", commit[:12], e.Name(), err)
			}
		}
	}
	if res.Denied, err = placeholders(tmp, match); err != nil {
		return nil, fmt.Errorf("commit %s: hiding secrets: %w", commit[:12], err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return nil, fmt.Errorf("moving the tree of %s into place: %w", commit[:12], err)
	}
	ok = true
	if d, err := os.Open(parent); err == nil {
		d.Sync()
		d.Close()
	}
	res.Created = true
	return res, nil
}

// checkout writes commit's files into dst with a private index, so the
// repository's own index and work tree are not touched and no hook runs.
func checkout(r *git.Repo, commit, dst string) error {
	idx, err := os.CreateTemp(filepath.Dir(dst), ".index-")
	if err != nil {
		return err
	}
	idx.Close()
	defer os.Remove(idx.Name())
	os.Remove(idx.Name()) // git wants to create it
	for _, args := range [][]string{
		{"read-tree", commit},
		{"--work-tree=" + dst, "checkout-index", "--all", "--force"},
	} {
		cmd := r.Cmd(args...)
		cmd.Env = append(withoutEnv(cmd.Env, "GIT_INDEX_FILE", "GIT_WORK_TREE"), "GIT_INDEX_FILE="+idx.Name())
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("checking out %s into %s: git %s: %w: %s", commit[:12], dst, args[len(args)-1], err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

func withoutEnv(env []string, names ...string) []string {
	out := env[:0:0]
next:
	for _, kv := range env {
		for _, n := range names {
			if strings.HasPrefix(kv, n+"=") {
				continue next
			}
		}
		out = append(out, kv)
	}
	return out
}

// placeholders replaces every denied non-directory under root (a denied
// directory denies everything below it) with an empty 0600 root-owned
// file. A hard-link group with a denied member is denied as a whole, so a
// secret cannot stay readable through another name. Nothing is followed:
// the walk uses lstat and the edits go through os.Root.
func placeholders(root string, match func(string) bool) (int, error) {
	type ino struct{ dev, ino uint64 }
	var hit []string
	hitIno := map[ino]bool{}
	links := map[ino][]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if match(rel) {
				// Everything below is denied; directories stay.
				err := filepath.WalkDir(p, func(q string, e fs.DirEntry, err error) error {
					if err != nil {
						return err
					}
					if !e.IsDir() {
						r, _ := filepath.Rel(root, q)
						hit = append(hit, r)
						if k, ok := inoOf(q); ok {
							hitIno[k] = true
						}
					}
					return nil
				})
				if err != nil {
					return err
				}
				return filepath.SkipDir
			}
			return nil
		}
		k, isFile := inoOf(p)
		if isFile {
			links[k] = append(links[k], rel)
		}
		if match(rel) {
			hit = append(hit, rel)
			if isFile {
				hitIno[k] = true
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for k := range hitIno {
		hit = append(hit, links[k]...)
	}
	sort.Strings(hit)
	rt, err := os.OpenRoot(root)
	if err != nil {
		return 0, err
	}
	defer rt.Close()
	n := 0
	for i, p := range hit {
		if i > 0 && hit[i-1] == p {
			continue
		}
		if err := rt.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return n, fmt.Errorf("removing %s: %w", p, err)
		}
		f, err := rt.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return n, fmt.Errorf("creating the placeholder %s: %w", p, err)
		}
		err = f.Chown(0, 0)
		if err == nil {
			err = f.Chmod(0o600)
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil && !errors.Is(err, fs.ErrPermission) {
			return n, fmt.Errorf("the placeholder %s: %w", p, err)
		}
		n++
	}
	return n, nil
}

// inoOf returns the (device, inode) of a regular file with more than one
// link; ok is false for anything else.
func inoOf(p string) (struct{ dev, ino uint64 }, bool) {
	var st unix.Stat_t
	if unix.Lstat(p, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Nlink < 2 {
		return struct{ dev, ino uint64 }{}, false
	}
	return struct{ dev, ino uint64 }{uint64(st.Dev), st.Ino}, true
}

// Present lists the commits that have a tree under dir.
func Present(dir string) (map[string]bool, error) {
	ents, err := os.ReadDir(filepath.Join(dir, "c"))
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]bool{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, e := range ents {
		if e.IsDir() && IsCommitID(e.Name()) {
			out[e.Name()] = true
		}
	}
	return out, nil
}

// Prune removes the trees under dir whose commit is not in keep, and the
// leftovers of cut-off runs (.tmp-* and .index-*). Callers hold Lock. It
// returns the commits removed.
func Prune(dir string, keep map[string]bool) ([]string, error) {
	parent := filepath.Join(dir, "c")
	ents, err := os.ReadDir(parent)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, e := range ents {
		name := e.Name()
		switch {
		case strings.HasPrefix(name, ".tmp-") || strings.HasPrefix(name, ".index-"):
		case IsCommitID(name) && !keep[name]:
			removed = append(removed, name)
		default:
			continue
		}
		// RemoveAll never follows symlinks inside the tree.
		if err := os.RemoveAll(filepath.Join(parent, name)); err != nil {
			return removed, fmt.Errorf("removing %s: %w", filepath.Join(parent, name), err)
		}
	}
	return removed, nil
}

// Export is one exports(5) line: a directory and who may mount it how.
type Export struct {
	Path    string
	Clients []string // host specs: an address, a CIDR, a name or a wildcard
	Options string   // without fsid=, which Render derives from FSID
	FSID    string   // a stable identity for the export (a commit id or any text)
}

// FSIDOf turns id into the UUID form of knfsd's fsid= option, so handles
// stay valid across server reboots and are different for every export.
func FSIDOf(id string) string {
	var h []byte
	if IsCommitID(id) {
		h, _ = hex.DecodeString(id[:32])
	} else {
		s := sha256.Sum256([]byte(id))
		h = s[:16]
	}
	x := hex.EncodeToString(h)
	return x[:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}

// Render writes exports in exports(5) syntax, one line per export, with
// the path escaped.
func Render(ex []Export) []byte {
	var b strings.Builder
	b.WriteString("# Generated by git onesis exports; do not edit: it is rewritten.\n")
	for _, e := range ex {
		b.WriteString(Escape(e.Path))
		opts := e.Options
		if e.FSID != "" {
			opts += ",fsid=" + FSIDOf(e.FSID)
		}
		for _, c := range e.Clients {
			b.WriteString(" ")
			b.WriteString(c)
			b.WriteString("(" + opts + ")")
		}
		b.WriteString("\n")
	}
	return []byte(b.String())
}

// Escape writes p the way exportfs reads it: octal escapes for
// whitespace, '\', '#', '"' and every byte outside printable ASCII.
func Escape(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c <= ' ' || c >= 0x7f || c == '\\' || c == '#' || c == '"' {
			fmt.Fprintf(&b, "\\%03o", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
