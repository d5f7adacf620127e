package main

import (
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/onesis/git-onesis/meta"
)

// TestModelGitOps drives random sequences of everyday git commands mixed
// with metadata edits on an image repo with the hooks installed, and after
// every git command checks the tree with its own lstat walk (not with
// git-onesis's scan, status or apply):
//
//   - every file git wrote (a new inode or mtime), and every object that
//     appeared, carries what .gitmeta records for it, or the command's
//     output names it as one it could not fix, and why;
//   - after reset --hard, checkout -f and switch --discard-changes, the
//     whole tree does;
//   - metadata of what git did not touch, whose .gitmeta line did not
//     change, is left as it was (drift is carried, as git carries content);
//   - a recorded file that is not world-readable is not world-readable
//     afterwards unless the admin made it so;
//   - a commit's .gitmeta has an entry for every file the commit tracks,
//     and matches the tree for what the commit saw.
//
// ONESIS_MODEL_STEPS (default 200) and ONESIS_MODEL_SEED (default 1) set
// the run; a failure prints the seed and the last steps. ONESIS_MODEL_KEEP
// names a directory to copy the image to at the end (to replay by hand).
func TestModelGitOps(t *testing.T) {
	img, _ := hookedImage(t)
	steps, seed := 200, uint64(1)
	if s, err := strconv.Atoi(os.Getenv("ONESIS_MODEL_STEPS")); err == nil && s > 0 {
		steps = s
	}
	if s, err := strconv.ParseUint(os.Getenv("ONESIS_MODEL_SEED"), 10, 64); err == nil {
		seed = s
	}
	m := &model{t: t, img: img, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), seed: seed, drift: map[string]bool{}}
	m.setup()
	start := time.Now()
	for i := 0; i < steps && !t.Failed(); i++ {
		m.step(i)
	}
	if keep := os.Getenv("ONESIS_MODEL_KEEP"); keep != "" {
		// For debugging a failure by hand: the image as the last step left it.
		must(t, img, "cp", "-a", img, keep)
	}
	counts := make([]string, 0, len(m.ran))
	for k, v := range m.ran {
		counts = append(counts, fmt.Sprintf("%s %d", k, v))
	}
	sort.Strings(counts)
	t.Logf("seed %d: %d steps in %s: %s", seed, steps, time.Since(start).Round(time.Second), strings.Join(counts, ", "))
}

type model struct {
	t     *testing.T
	img   string
	rng   *rand.Rand
	seed  uint64
	log   []string
	ran   map[string]int
	drift map[string]bool // paths whose metadata the admin changed and did not record
	stash int             // entries on the stash
	i     int             // the step running
}

// obj is one object as lstat and llistxattr see it.
type obj struct {
	typ        meta.Type
	mode       uint32
	uid, gid   uint32
	ino        uint64
	mtime      int64
	nlink      uint64
	rdev       uint64
	link       string
	xattrs     string // sorted name=hex value lines
	userXattrs string
}

func (m *model) fatalf(format string, a ...any) {
	m.t.Helper()
	tail := m.log
	if len(tail) > 40 {
		tail = tail[len(tail)-40:]
	}
	m.t.Fatalf("seed %d (rerun: ONESIS_MODEL_SEED=%d ONESIS_MODEL_STEPS=%d go test -run TestModelGitOps ./cmd/git-onesis), step %d: %s\nlast steps:\n  %s",
		m.seed, m.seed, m.i+1, m.i, fmt.Sprintf(format, a...), strings.Join(tail, "\n  "))
}

// snapshot walks the tree without following symlinks (.git left out).
func (m *model) snapshot() map[string]obj {
	out := map[string]obj{}
	err := filepath.WalkDir(m.img, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(m.img, p)
		rel = filepath.ToSlash(rel)
		if rel == ".git" {
			return filepath.SkipDir
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		o := obj{mode: st.Mode & 0o7777, uid: st.Uid, gid: st.Gid, ino: st.Ino, mtime: st.Mtim.Nano(), nlink: uint64(st.Nlink), rdev: st.Rdev}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			o.typ = meta.TypeFile
		case unix.S_IFDIR:
			o.typ = meta.TypeDir
		case unix.S_IFLNK:
			o.typ = meta.TypeSymlink
			o.link, _ = os.Readlink(p)
		case unix.S_IFCHR:
			o.typ = meta.TypeChar
		case unix.S_IFBLK:
			o.typ = meta.TypeBlock
		case unix.S_IFIFO:
			o.typ = meta.TypeFifo
		case unix.S_IFSOCK:
			o.typ = meta.TypeSocket
		}
		o.xattrs = listXattrs(p)
		out[rel] = o
		return nil
	})
	if err != nil {
		m.fatalf("walking the tree: %v", err)
	}
	return out
}

func listXattrs(p string) string {
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(p, buf)
	if err != nil || n == 0 {
		return ""
	}
	var lines []string
	for _, name := range strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00") {
		v := make([]byte, 64<<10)
		k, err := unix.Lgetxattr(p, name, v)
		if err != nil {
			continue
		}
		lines = append(lines, fmt.Sprintf("%s=%x", name, v[:k]))
	}
	sort.Strings(lines)
	return strings.Join(lines, ";")
}

// recorded parses the work tree's .gitmeta with the format's reference
// parser; nil when there is none or it has conflict markers.
func (m *model) recorded() map[string]*meta.Entry {
	b, err := os.ReadFile(filepath.Join(m.img, ".gitmeta"))
	if err != nil {
		return nil
	}
	man, err := meta.ParseBytes(b)
	if err != nil {
		return nil
	}
	return man.Index()
}

// mismatch says how o differs from what e records, or "".
func mismatch(o obj, e *meta.Entry, tree map[string]obj) string {
	if e.Type != o.typ {
		return fmt.Sprintf("type %s, recorded %s", o.typ, e.Type)
	}
	var d []string
	if e.Type != meta.TypeSymlink && o.mode != e.Mode {
		d = append(d, fmt.Sprintf("mode %04o, recorded %04o", o.mode, e.Mode))
	}
	if o.uid != e.UID || o.gid != e.GID {
		d = append(d, fmt.Sprintf("owner %d:%d, recorded %d:%d", o.uid, o.gid, e.UID, e.GID))
	}
	var want []string
	for _, x := range e.Xattrs {
		want = append(want, fmt.Sprintf("%s=%x", x.Name, x.Value))
	}
	sort.Strings(want)
	if o.xattrs != strings.Join(want, ";") {
		d = append(d, fmt.Sprintf("xattrs %q, recorded %q", o.xattrs, strings.Join(want, ";")))
	}
	if (e.Type == meta.TypeChar || e.Type == meta.TypeBlock) && (unix.Major(o.rdev) != e.Major || unix.Minor(o.rdev) != e.Minor) {
		d = append(d, "device numbers")
	}
	if e.Hardlink != "" {
		// A partner that is not in the tree (a sparse checkout left it
		// out) cannot be linked to.
		if p, ok := tree[e.Hardlink]; ok && p.ino != o.ino {
			d = append(d, "not hard-linked to "+e.Hardlink)
		}
	}
	return strings.Join(d, "; ")
}

// git runs a git command in the image; ok reports exit 0.
func (m *model) git(args ...string) (result, bool) {
	r := runIn(m.t, m.img, "git", args...)
	return r, r.code == 0
}

// tracked lists the files git tracks in the work tree.
func (m *model) tracked() []string {
	r, _ := m.git("ls-files", "-z")
	var out []string
	for _, p := range strings.Split(strings.TrimRight(r.out, "\x00"), "\x00") {
		if p != "" && p != ".gitmeta" {
			if _, err := os.Lstat(filepath.Join(m.img, p)); err == nil {
				out = append(out, p)
			}
		}
	}
	return out
}

func (m *model) pick(xs []string) string {
	if len(xs) == 0 {
		return ""
	}
	return xs[m.rng.IntN(len(xs))]
}

// regular lists tracked regular files (safe to chmod, edit).
func (m *model) regular() []string {
	var out []string
	for _, p := range m.tracked() {
		if fi, err := os.Lstat(filepath.Join(m.img, p)); err == nil && fi.Mode().IsRegular() {
			out = append(out, p)
		}
	}
	return out
}

func (m *model) setup() {
	for _, b := range []string{"b1", "b2"} {
		must(m.t, m.img, "git", "branch", b)
	}
	// b1 and b2 diverge in metadata and content.
	must(m.t, m.img, "git", "checkout", "-q", "b1")
	unix.Chmod(filepath.Join(m.img, "etc/secret"), 0o400)
	appendTo(m.t, filepath.Join(m.img, "etc/passwd"), "b1:x:2001:2001::/:/bin/sh\n")
	if r := onesis(m.t, m.img, "commit", "-q", "-a", "-m", "b1"); r.code != 0 {
		m.fatalf("setup commit: %s", r.err)
	}
	must(m.t, m.img, "git", "checkout", "-q", "b2")
	os.Chown(filepath.Join(m.img, "usr/bin/ping"), 1234, 1234)
	unix.Chmod(filepath.Join(m.img, "usr/bin/ping"), 0o750)
	os.WriteFile(filepath.Join(m.img, "etc/b2-only"), []byte("b2\n"), 0o600)
	must(m.t, m.img, "git", "add", "etc/b2-only")
	if r := onesis(m.t, m.img, "commit", "-q", "-a", "-m", "b2"); r.code != 0 {
		m.fatalf("setup commit: %s", r.err)
	}
	must(m.t, m.img, "git", "checkout", "-q", "main")
	m.ran = map[string]int{}
}

// userOps change the tree's metadata (or content) without git.
var userOps = []string{"chmod", "chown", "setuid", "edit", "xattr", "mknod", "rmdev", "link", "unlink", "mkdir"}

// gitOps are the git commands the model runs.
var gitOps = []string{"commit-a", "onesis-commit", "partial-commit", "checkout", "checkout-f", "reset-hard",
	"reset-keep", "reset-merge", "restore", "checkout-path", "stash", "stash-pop", "cherry-pick", "revert",
	"merge", "merge-squash", "rebase", "sparse", "switch-discard", "am"}

func (m *model) step(i int) {
	m.i = i
	if m.rng.IntN(3) > 0 {
		op := userOps[m.rng.IntN(len(userOps))]
		if desc := m.userOp(op); desc != "" {
			m.log = append(m.log, desc)
			m.ran[op]++
		}
		return
	}
	op := gitOps[m.rng.IntN(len(gitOps))]
	desc, args, discards := m.gitOp(op)
	if args == nil {
		return
	}
	before, recBefore := m.snapshot(), m.recorded()
	m.ran[op]++
	r, ok := m.git(args...)
	desc += fmt.Sprintf(" -> exit %d", r.code)
	if !ok {
		desc += " (" + strings.TrimSpace(strings.ReplaceAll(r.err, "\n", " | ")) + ")"
	}
	stderr := r.err
	if !ok {
		d, e := m.recover()
		desc, stderr = desc+d, stderr+e
	}
	m.log = append(m.log, desc)
	if strings.Contains(r.err, "--amend") && !strings.Contains(strings.Join(args, " "), "no-verify") {
		m.fatalf("%s printed advice to amend:\n%s", desc, r.err)
	}
	m.check(desc, stderr, before, recBefore, discards && ok)
	if ok && (op == "commit-a" || op == "onesis-commit" || op == "partial-commit") {
		m.checkHead(desc, op == "partial-commit")
	}
}

// recover ends an operation a failed git command left half done, and
// returns what it did and the command's standard error.
func (m *model) recover() (string, string) {
	gd := filepath.Join(m.img, ".git")
	has := func(n string) bool { _, err := os.Lstat(filepath.Join(gd, n)); return err == nil }
	var args []string
	switch {
	case has("rebase-merge") || has("rebase-apply/applying"):
		args = []string{"rebase", "--abort"}
		if has("rebase-apply/applying") {
			args = []string{"am", "--abort"}
		}
	case has("rebase-apply"):
		args = []string{"rebase", "--abort"}
	case has("MERGE_HEAD"):
		args = []string{"merge", "--abort"}
	case has("CHERRY_PICK_HEAD"):
		args = []string{"cherry-pick", "--abort"}
	case has("REVERT_HEAD"):
		args = []string{"revert", "--abort"}
	default:
		if r, _ := m.git("ls-files", "-u"); r.out == "" {
			return "", ""
		}
		args = []string{"reset", "-q", "--merge"} // a stash pop that conflicted
	}
	r, _ := m.git(args...)
	return fmt.Sprintf("; git %s -> exit %d", strings.Join(args, " "), r.code), r.err
}

// markDrift notes an admin's metadata change to f, and so to every path
// hard-linked to it (they share the inode).
func (m *model) markDrift(f string) {
	m.drift[f] = true
	var st unix.Stat_t
	if unix.Lstat(filepath.Join(m.img, f), &st) != nil || st.Nlink < 2 {
		return
	}
	for p, o := range m.snapshot() {
		if o.ino == st.Ino {
			m.drift[p] = true
		}
	}
}

func (m *model) userOp(op string) string {
	p := func(s string) string { return filepath.Join(m.img, s) }
	switch op {
	case "chmod":
		f := m.pick(m.regular())
		if f == "" {
			return ""
		}
		fi, _ := os.Lstat(p(f))
		exec := uint32(fi.Mode().Perm()) & 0o100 // keep git's view of the exec bit
		mode := []uint32{0o600, 0o640, 0o644, 0o400, 0o444, 0o604}[m.rng.IntN(6)] | exec | exec>>3
		unix.Chmod(p(f), mode)
		m.markDrift(f)
		return fmt.Sprintf("chmod %04o %s", mode, f)
	case "chown":
		f := m.pick(m.tracked())
		uid := []int{0, 1000, 1234}[m.rng.IntN(3)]
		os.Lchown(p(f), uid, uid)
		m.markDrift(f)
		return fmt.Sprintf("chown %d %s", uid, f)
	case "setuid":
		f := m.pick(m.regular())
		fi, _ := os.Lstat(p(f))
		if fi == nil || fi.Mode().Perm()&0o100 == 0 {
			return ""
		}
		unix.Chmod(p(f), uint32(fi.Mode().Perm())|0o4000)
		m.markDrift(f)
		return "chmod u+s " + f
	case "edit":
		f := m.pick(m.regular())
		if f == "" || strings.HasPrefix(f, "etc/passwd") {
			return ""
		}
		appendTo(m.t, p(f), fmt.Sprintf("edit %d\n", len(m.log)))
		return "edit " + f
	case "xattr":
		f := m.pick(m.regular())
		if f == "" {
			return ""
		}
		unix.Lsetxattr(p(f), "user.model", []byte(strconv.Itoa(m.rng.IntN(5))), 0)
		m.markDrift(f)
		return "setfattr user.model " + f
	case "mknod":
		name := fmt.Sprintf("dev/m%d", m.rng.IntN(4))
		os.MkdirAll(p("dev"), 0o755)
		if unix.Mknod(p(name), unix.S_IFCHR|0o600, int(unix.Mkdev(1, uint32(m.rng.IntN(9)+1)))) != nil {
			return ""
		}
		m.drift[name] = true
		return "mknod " + name
	case "rmdev":
		ents, _ := filepath.Glob(p("dev/m*"))
		if len(ents) == 0 {
			return ""
		}
		f := ents[m.rng.IntN(len(ents))]
		os.Remove(f)
		rel, _ := filepath.Rel(m.img, f)
		m.drift[rel] = true
		return "rm " + rel
	case "link":
		f := m.pick(m.regular())
		if f == "" || strings.Contains(f, "\n") {
			return ""
		}
		dst := f + ".hl"
		if os.Link(p(f), p(dst)) != nil {
			return ""
		}
		runIn(m.t, m.img, "git", "add", "--sparse", "--", dst) // may stay untracked
		m.drift[f], m.drift[dst] = true, true
		return "ln " + f + " " + dst
	case "unlink":
		ls, _ := filepath.Glob(p("*/*.hl"))
		if len(ls) == 0 {
			return ""
		}
		f := ls[m.rng.IntN(len(ls))]
		tmp := f + ".tmp"
		must(m.t, m.img, "cp", "-p", f, tmp)
		os.Rename(tmp, f)
		rel, _ := filepath.Rel(m.img, f)
		m.drift[rel] = true
		return "split hard link " + rel
	case "mkdir":
		d := fmt.Sprintf("var/m%d", m.rng.IntN(3))
		if os.MkdirAll(p(d), 0o700) != nil {
			return ""
		}
		m.drift[d] = true
		return "mkdir " + d
	}
	return ""
}

// gitOp returns a description, the git arguments (nil: skip), and whether
// the command discards every local change.
func (m *model) gitOp(op string) (string, []string, bool) {
	branches := []string{"main", "b1", "b2"}
	other := m.pick(branches)
	switch op {
	case "commit-a":
		return op, []string{"commit", "-q", "-a", "--allow-empty", "-m", "model"}, false
	case "onesis-commit":
		return op, []string{"onesis", "commit", "-q", "-a", "--allow-empty", "-m", "model"}, false
	case "partial-commit":
		f := m.pick(m.regular())
		if f == "" {
			return "", nil, false
		}
		appendTo(m.t, filepath.Join(m.img, f), "partial\n")
		return "partial commit " + f, []string{"commit", "-q", "-m", "partial", "--", f}, false
	case "checkout":
		return op + " " + other, []string{"checkout", "-q", other}, false
	case "checkout-f":
		return op + " " + other, []string{"checkout", "-q", "-f", other}, true
	case "switch-discard":
		return op + " " + other, []string{"switch", "-q", "--discard-changes", other}, true
	case "reset-hard":
		return op, []string{"reset", "-q", "--hard"}, true
	case "reset-keep":
		return op, []string{"reset", "-q", "--keep", "HEAD"}, false
	case "reset-merge":
		return op, []string{"reset", "-q", "--merge", "HEAD"}, false
	case "restore", "checkout-path":
		f := m.pick(m.regular())
		if f == "" {
			return "", nil, false
		}
		appendTo(m.t, filepath.Join(m.img, f), "to be restored\n")
		if op == "restore" {
			return "restore " + f, []string{"restore", "--", f}, false
		}
		return "checkout -- " + f, []string{"checkout", "--", f}, false
	case "stash":
		m.stash++
		return op, []string{"stash", "-q"}, false
	case "stash-pop":
		if m.stash == 0 {
			return "", nil, false
		}
		m.stash--
		return op, []string{"stash", "pop", "-q"}, false
	case "cherry-pick":
		return op + " " + other, []string{"cherry-pick", other}, false
	case "revert":
		return op, []string{"revert", "--no-edit", "HEAD"}, false
	case "merge":
		return op + " " + other, []string{"merge", "-q", "--no-edit", other}, false
	case "merge-squash":
		return op + " " + other, []string{"merge", "-q", "--squash", other}, false
	case "rebase":
		return op + " " + other, []string{"rebase", "-q", other}, false
	case "sparse":
		if _, err := os.Lstat(filepath.Join(m.img, ".git/info/sparse-checkout")); err == nil && m.rng.IntN(2) == 0 {
			return "sparse-checkout disable", []string{"sparse-checkout", "disable"}, false
		}
		return "sparse-checkout set etc", []string{"sparse-checkout", "set", "etc"}, false
	case "am":
		dir := filepath.Join(m.t.TempDir())
		if r, ok := m.git("format-patch", "-q", "-1", "-o", dir, other); !ok || r.out != "" {
			return "", nil, false
		}
		ps, _ := filepath.Glob(filepath.Join(dir, "*.patch"))
		if len(ps) == 0 {
			return "", nil, false
		}
		return "am " + other, []string{"am", "-q", ps[0]}, false
	}
	return "", nil, false
}

// check verifies the tree after a git command (see TestModelGitOps).
func (m *model) check(desc, stderr string, before map[string]obj, recBefore map[string]*meta.Entry, discarded bool) {
	after := m.snapshot()
	rec := m.recorded()
	if rec == nil {
		return
	}
	outside := m.outside()
	var bad []string
	for p, o := range after {
		e := rec[p]
		if e == nil || p == "." || outside(p) {
			continue
		}
		b, existed := before[p]
		written := !existed || b.ino != o.ino || b.mtime != o.mtime && o.typ != meta.TypeDir
		switch {
		case discarded || written:
			if d := mismatch(o, e, after); d != "" && !reported(stderr, p) {
				bad = append(bad, fmt.Sprintf("%s (%s): %s", p, map[bool]string{true: "whole tree", false: "written by git"}[discarded], d))
			}
			delete(m.drift, p)
		case recBefore != nil && recBefore[p] != nil && recBefore[p].Equal(e) && !m.drift[p]:
			// Neither touched nor re-recorded: as it was, and as recorded.
			if d := mismatch(o, e, after); d != "" && mismatch(b, e, before) == "" && !reported(stderr, p) {
				bad = append(bad, fmt.Sprintf("%s changed though git did not touch it: %s", p, d))
			}
		}
		if e.Type == meta.TypeFile && e.Mode&0o004 == 0 && o.mode&0o004 != 0 && !m.drift[p] {
			bad = append(bad, fmt.Sprintf("%s is world-readable (%04o), recorded %04o", p, o.mode, e.Mode))
		}
	}
	if discarded {
		for p, e := range rec {
			if _, ok := after[p]; !ok && !outside(p) && e.Type != meta.TypeSocket {
				bad = append(bad, p+": recorded but missing after "+desc)
			}
		}
		m.drift = map[string]bool{}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		m.fatalf("after %s:\n  %s", desc, strings.Join(bad, "\n  "))
	}
}

// reported says whether the command's output named p among the paths it
// could not fix ("error: <op> <path>: <why>").
func reported(stderr, p string) bool {
	for _, l := range strings.Split(stderr, "\n") {
		esc := strings.TrimPrefix(meta.EscapePath(p), "./") // as the output shows paths
		if strings.HasPrefix(l, "error: ") && (strings.Contains(l, " "+p+": ") || strings.Contains(l, " "+esc+": ")) {
			return true
		}
	}
	return false
}

// outside reports what a sparse checkout leaves out of the tree: tracked
// files git marks skip-worktree, and anything that is neither such a file
// in the tree nor above one.
func (m *model) outside() func(string) bool {
	r, _ := m.git("ls-files", "-t", "-z")
	skip, in := map[string]bool{}, map[string]bool{}
	sparse := false
	for _, l := range strings.Split(r.out, "\x00") {
		if len(l) < 3 {
			continue
		}
		p := l[2:]
		if l[0] == 'S' {
			skip[p], sparse = true, true
			continue
		}
		for q := p; q != "."; q = meta.Parent(q) {
			in[q] = true
		}
	}
	return func(p string) bool { return skip[p] || sparse && !in[p] }
}

// checkHead verifies the commit just made: an entry for every file it
// tracks, and, unless it was partial, the tree's metadata for every such
// file the work tree holds.
func (m *model) checkHead(desc string, partial bool) {
	r, ok := m.git("show", "HEAD:.gitmeta")
	if !ok {
		m.fatalf("%s: HEAD has no .gitmeta", desc)
	}
	man, err := meta.ParseBytes([]byte(r.out))
	if err != nil {
		m.fatalf("%s: HEAD's .gitmeta does not parse: %v", desc, err)
	}
	idx := man.Index()
	files, _ := m.git("ls-tree", "-r", "-z", "--name-only", "HEAD")
	tree := m.snapshot()
	var bad []string
	for _, p := range strings.Split(strings.TrimRight(files.out, "\x00"), "\x00") {
		if p == "" {
			continue
		}
		e := idx[p]
		if e == nil {
			bad = append(bad, p+": tracked by the commit, no .gitmeta entry")
			continue
		}
		if o, ok := tree[p]; ok && !partial {
			if d := mismatch(o, e, tree); d != "" && !strings.Contains(d, "not hard-linked") {
				bad = append(bad, fmt.Sprintf("%s: committed .gitmeta differs from the tree: %s", p, d))
			}
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		m.fatalf("after %s:\n  %s", desc, strings.Join(bad, "\n  "))
	}
	if !partial {
		m.drift = map[string]bool{}
	}
}
