package image

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/onesis/git-onesis/internal/git"
	"github.com/onesis/git-onesis/meta"
	"golang.org/x/sys/unix"
)

// contentVerdict is what git's own refresh would do with one index entry
// whose stat data does not prove its file unchanged.
type contentVerdict int

const (
	// askGit: not decided here (a setting, attribute or file type this
	// code does not model); git's refresh is run for the entry.
	askGit contentVerdict = iota
	// gitKeeps: git would leave the entry as it is (the file is modified,
	// its executable bit changed, or its size differs from a size the
	// entry records), so there is nothing to write.
	gitKeeps
	// gitRefreshes: the content is the entry's blob; git would write the
	// file's stat data into the entry, and so does the returned update.
	gitRefreshes
)

// contentRefresher decides entries as git's refresh_cache_ent does
// (read-cache.c: ie_match_stat, ie_modified, ce_modified_check_fs): a file
// whose stat data differs from its entry is hashed as a blob, and if that
// is the entry's object id the entry gets the file's stat data, taken
// before it was read (and checked unchanged after). A size that differs
// from a size the entry records (not 0, which is how git smudges a racily
// clean entry) or an executable bit that differs is a modification git
// reports without reading the file; then the entry stays as it is.
//
// It only decides where what git hashes is the file's bytes as they are:
// no clean filter, end-of-line or encoding conversion can apply
// (core.autocrlf off and no attributes file anywhere git would read
// one), and git compares stat data the default way (core.fileMode,
// core.symlinks and core.trustctime on, core.checkStat default, no
// core.ignoreStat, no fsmonitor). Anything else is left to git.
//
// Written back by UpdateIndexFile, which keeps the index time, an entry
// whose file was modified no earlier than the index was written stays
// racy: git still checks its content, as it would after its own refresh.
type contentRefresher struct {
	im      *Image
	ix      *git.Index
	ok      bool // conversions and stat checks are git's defaults
	rootfd  int
	checked map[string]bool // directories whose .gitattributes was looked for
}

// newContentRefresher returns a refresher for entries of ix, or one that
// answers askGit for every entry when git's refresh could do more than
// hash the file's bytes.
func (im *Image) newContentRefresher(ix *git.Index) *contentRefresher {
	c := &contentRefresher{im: im, ix: ix, rootfd: -1, checked: map[string]bool{}}
	if !im.plainContent(ix) {
		return c
	}
	fd, err := unix.Open(im.Root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return c
	}
	c.rootfd, c.ok = fd, true
	return c
}

// close releases the work tree's descriptor.
func (c *contentRefresher) close() {
	if c.rootfd >= 0 {
		unix.Close(c.rootfd)
	}
}

// plainContent reports whether git's settings make it compare stat data
// the default way and hash files as their bytes, with no attributes file
// that could ask for a conversion: core.autocrlf, core.attributesFile,
// attr.tree, GIT_ATTR_SOURCE, the system, global and info/attributes
// files (which may exist if they set no conversion attribute: git-onesis's
// own info/attributes names .gitmeta's diff and merge drivers), and any
// .gitattributes in the index. (A .gitattributes only in the work tree is
// looked for per entry, in its directory and above.)
func (im *Image) plainContent(ix *git.Index) bool {
	r := im.Git
	for _, c := range []struct {
		key string
		def bool
	}{{"core.autocrlf", false}, {"core.fileMode", true}, {"core.symlinks", true}, {"core.trustCtime", true}, {"core.ignoreStat", false}, {"core.fsmonitor", false}} {
		v, err := r.ConfigBool(c.key, c.def)
		if err != nil || v != c.def {
			return false
		}
	}
	for _, k := range []string{"core.checkStat", "core.attributesFile", "attr.tree"} {
		v, ok, err := r.Config(k)
		if err != nil || ok && !(k == "core.checkStat" && v == "default") {
			return false
		}
	}
	if os.Getenv("GIT_ATTR_SOURCE") != "" {
		return false
	}
	files := []string{filepath.Join(r.GitDir, "info", "attributes"), filepath.Join(r.CommonDir, "info", "attributes")}
	if os.Getenv("GIT_ATTR_NOSYSTEM") == "" {
		files = append(files, "/etc/gitattributes", "/usr/etc/gitattributes", "/usr/local/etc/gitattributes")
	}
	if x := os.Getenv("XDG_CONFIG_HOME"); x != "" {
		files = append(files, filepath.Join(x, "git", "attributes"))
	} else if h := os.Getenv("HOME"); h != "" {
		files = append(files, filepath.Join(h, ".config", "git", "attributes"))
	}
	for _, f := range files {
		if !noConversionIn(f) {
			return false
		}
	}
	for k := range ix.Entries {
		if p := ix.Entries[k].Path; p == ".gitattributes" || strings.HasSuffix(p, "/.gitattributes") {
			return false
		}
	}
	return true
}

// conversionAttrs are the attributes that make git convert a file's bytes
// before hashing them (convert.c: convert_attrs), and the built-in macro
// that sets one of them.
var conversionAttrs = map[string]bool{"text": true, "eol": true, "crlf": true, "filter": true, "ident": true, "working-tree-encoding": true, "binary": true}

// noConversionIn reports whether the attributes file f is absent, or sets
// none of conversionAttrs in any form and defines no macro (which could).
// A quoted pattern, an unreadable or a large file is not judged: false.
func noConversionIn(f string) bool {
	fh, err := os.Open(f)
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
		return true
	}
	if err != nil {
		return false
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, 1<<20+1))
	if err != nil || len(b) > 1<<20 {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		fields := strings.FieldsFunc(line, func(r rune) bool { return r == ' ' || r == '\t' || r == '\r' })
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		if strings.HasPrefix(fields[0], "\"") || strings.HasPrefix(fields[0], "[attr]") {
			return false
		}
		for _, a := range fields[1:] {
			name, _, _ := strings.Cut(strings.TrimLeft(a, "-!"), "=")
			if conversionAttrs[name] {
				return false
			}
		}
	}
	return true
}

// noWorktreeAttributes reports whether no .gitattributes exists in the
// work tree in p's directory or any above it.
func (c *contentRefresher) noWorktreeAttributes(p string) bool {
	for d := meta.Parent(p); ; d = meta.Parent(d) {
		if ok, seen := c.checked[d]; seen {
			if !ok {
				return false
			}
		} else {
			name := ".gitattributes"
			if d != "." {
				name = d + "/.gitattributes"
			}
			var st unix.Stat_t
			err := unix.Fstatat(c.rootfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
			ok := err == unix.ENOENT || err == unix.ENOTDIR
			c.checked[d] = ok
			if !ok {
				return false
			}
		}
		if d == "." {
			return true
		}
	}
}

// decide says what git's refresh would do with entry k (see
// contentRefresher), and for gitRefreshes the stat data to write.
func (c *contentRefresher) decide(k int) (git.StatUpdate, contentVerdict) {
	e := &c.ix.Entries[k]
	if !c.ok || e.Stage != 0 || e.SkipWorktree || e.IntentToAdd || e.AssumeValid || e.SparseDir() {
		return git.StatUpdate{}, askGit
	}
	var wantType uint32
	switch e.Mode {
	case 0o100644, 0o100755:
		wantType = unix.S_IFREG
	case 0o120000:
		wantType = unix.S_IFLNK
	default:
		return git.StatUpdate{}, askGit
	}
	if !c.noWorktreeAttributes(e.Path) {
		return git.StatUpdate{}, askGit
	}
	// The path is resolved beneath the work tree with no symlink in it,
	// the object itself not followed either.
	how := unix.OpenHow{Flags: unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC, Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS}
	pfd, err := unix.Openat2(c.rootfd, e.Path, &how)
	if err != nil {
		return git.StatUpdate{}, askGit
	}
	defer unix.Close(pfd)
	var st unix.Stat_t
	if unix.Fstat(pfd, &st) != nil || st.Mode&unix.S_IFMT != wantType {
		return git.StatUpdate{}, askGit
	}
	before := meta.StatDataOf(&st)
	if wantType == unix.S_IFREG && (e.Mode^before.Mode)&0o100 != 0 {
		return git.StatUpdate{}, gitKeeps // MODE_CHANGED: modified, not read
	}
	if e.Size != 0 && e.Size != before.Size {
		return git.StatUpdate{}, gitKeeps // DATA_CHANGED with a size recorded
	}
	var h hash.Hash = sha1.New()
	if c.im.Git.HashLen() == 32 {
		h = sha256.New()
	}
	h.Write([]byte("blob " + strconv.FormatInt(st.Size, 10) + "\x00"))
	var after unix.Stat_t
	if wantType == unix.S_IFLNK {
		buf := make([]byte, st.Size+1)
		n, err := unix.Readlinkat(pfd, "", buf)
		if err != nil || int64(n) != st.Size {
			return git.StatUpdate{}, askGit
		}
		h.Write(buf[:n])
		if unix.Fstat(pfd, &after) != nil {
			return git.StatUpdate{}, askGit
		}
	} else {
		how := unix.OpenHow{Flags: unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_NOCTTY | unix.O_CLOEXEC, Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS}
		fd, err := unix.Openat2(c.rootfd, e.Path, &how)
		if err != nil {
			return git.StatUpdate{}, askGit
		}
		f := os.NewFile(uintptr(fd), e.Path)
		defer f.Close()
		n, err := io.Copy(h, f)
		if err != nil || n != st.Size || unix.Fstat(fd, &after) != nil {
			return git.StatUpdate{}, askGit
		}
	}
	// The file must not have changed while it was read (nor been
	// replaced between the two opens).
	if meta.StatDataOf(&after) != before || after.Size != st.Size {
		return git.StatUpdate{}, askGit
	}
	if hex.EncodeToString(h.Sum(nil)) != c.ix.OID(k) {
		return git.StatUpdate{}, gitKeeps // modified
	}
	return git.StatUpdate{
		Entry: k, Full: true,
		CtimeSec: before.CtimeSec, CtimeNsec: before.CtimeNsec,
		MtimeSec: before.MtimeSec, MtimeNsec: before.MtimeNsec,
		Dev: before.Dev, Ino: before.Ino,
		UID: before.UID, GID: before.GID,
		Size: before.Size,
	}, gitRefreshes
}
