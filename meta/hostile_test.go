package meta

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// The hostile corpus: .gitmeta files (and trees) written to make Apply
// touch something outside the work tree, or inside .git. After every case
// the sentinels beside the work tree must be byte-for-byte and metadata
// identical, and nothing may have appeared or vanished outside the tree.

// hostileEnv is one case's world: base/work is the work tree, base/outside
// holds the sentinels.
type hostileEnv struct {
	base, work, out string
}

// outRel is the outside directory as seen from the work tree's top.
const outRel = "../outside"

func newHostileEnv(t *testing.T) *hostileEnv {
	t.Helper()
	base, err := os.MkdirTemp("", "onesis-hostile-")
	must(t, err)
	t.Cleanup(func() { os.RemoveAll(base) })
	h := &hostileEnv{base: base, work: filepath.Join(base, "work"), out: filepath.Join(base, "outside")}
	must(t, os.Mkdir(h.work, 0o755))
	must(t, os.Mkdir(h.out, 0o755))
	must(t, os.WriteFile(filepath.Join(h.out, "secret"), []byte("the host's secret\n"), 0o640))
	must(t, os.WriteFile(filepath.Join(h.out, "setuid"), []byte("binary"), 0o755))
	must(t, os.Chmod(filepath.Join(h.out, "setuid"), 0o755|os.ModeSetuid))
	must(t, os.Mkdir(filepath.Join(h.out, "dir"), 0o750))
	must(t, os.WriteFile(filepath.Join(h.out, "dir", "f"), []byte("f"), 0o600))
	must(t, unix.Mkfifo(filepath.Join(h.out, "fifo"), 0o600))
	must(t, unix.Setxattr(filepath.Join(h.out, "secret"), "user.sentinel", []byte("keep me"), 0))
	if os.Geteuid() == 0 {
		for _, p := range []string{"secret", "setuid", "dir", "dir/f", "fifo"} {
			must(t, os.Lchown(filepath.Join(h.out, p), 1234, 1234))
		}
		must(t, os.Chmod(filepath.Join(h.out, "setuid"), 0o755|os.ModeSetuid))
	}
	// git's own directory, which Apply must never touch either.
	must(t, os.MkdirAll(filepath.Join(h.work, ".git", "hooks"), 0o755))
	must(t, os.WriteFile(filepath.Join(h.work, ".git", "hooks", "x"), []byte("#!/bin/sh\n"), 0o644))
	return h
}

// snapshot records everything about base except the work tree proper
// (work/.git is included).
func (h *hostileEnv) snapshot(t *testing.T) map[string]string {
	t.Helper()
	snap := make(map[string]string)
	err := filepath.WalkDir(h.base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(h.base, p)
		if rel == "work" {
			// Only the directory entry itself and .git below it.
			snap[rel] = "work tree"
			return h.snapGit(snap)
		}
		snap[rel] = describeForSnapshot(t, p)
		return nil
	})
	must(t, err)
	return snap
}

func (h *hostileEnv) snapGit(snap map[string]string) error {
	filepath.WalkDir(filepath.Join(h.work, ".git"), func(p string, d fs.DirEntry, err error) error {
		if err == nil {
			rel, _ := filepath.Rel(h.base, p)
			snap[rel] = describeForSnapshot(nil, p)
		}
		return nil
	})
	return fs.SkipDir
}

func describeForSnapshot(t *testing.T, p string) string {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return "lstat error " + err.Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "mode=%#o uid=%d gid=%d nlink=%d ino=%d size=%d rdev=%d mtime=%v ctime=%v",
		st.Mode, st.Uid, st.Gid, st.Nlink, st.Ino, st.Size, st.Rdev, st.Mtim, st.Ctim)
	buf := make([]byte, 4096)
	if n, err := unix.Llistxattr(p, buf); err == nil {
		names := strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00")
		sort.Strings(names)
		for _, name := range names {
			if name == "" {
				continue
			}
			v := make([]byte, 4096)
			m, _ := unix.Lgetxattr(p, name, v)
			fmt.Fprintf(&b, " xattr %s=%x", name, v[:max(m, 0)])
		}
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		c, _ := os.ReadFile(p)
		fmt.Fprintf(&b, " content=%q", c)
	case unix.S_IFLNK:
		l, _ := os.Readlink(p)
		fmt.Fprintf(&b, " link=%q", l)
	}
	return b.String()
}

type hostileCase struct {
	name string
	// text is the .gitmeta; {{OUT}} becomes the absolute outside path.
	text string
	// build, instead of text, makes a manifest in code (Parse would refuse
	// it, so this exercises Apply's own checks).
	build func(h *hostileEnv) *Manifest
	// setup prepares the work tree (symlinks pointing outside, ...).
	setup func(t *testing.T, h *hostileEnv)
	// old is the previous .gitmeta, for incremental applies.
	old   string
	paths []string
	// parseErr, when set, is the line number Parse must reject.
	parseErr int
	// wantErr must appear in one of the ApplyErrors.
	wantErr string
	// check runs extra assertions inside the work tree.
	check func(t *testing.T, h *hostileEnv, res *ApplyResult)
}

func hostileText(h *hostileEnv, s string) string {
	return strings.ReplaceAll(s, "{{OUT}}", h.out)
}

func symlinkIn(target, name string) func(t *testing.T, h *hostileEnv) {
	return func(t *testing.T, h *hostileEnv) {
		t.Helper()
		target := strings.ReplaceAll(target, "{{OUT}}", h.out)
		p := filepath.Join(h.work, name)
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.Symlink(target, p))
	}
}

func both(fs ...func(t *testing.T, h *hostileEnv)) func(t *testing.T, h *hostileEnv) {
	return func(t *testing.T, h *hostileEnv) {
		for _, f := range fs {
			f(t, h)
		}
	}
}

func fileIn(name, content string) func(t *testing.T, h *hostileEnv) {
	return func(t *testing.T, h *hostileEnv) {
		p := filepath.Join(h.work, name)
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, []byte(content), 0o644))
	}
}

func manifestOf(entries ...Entry) func(h *hostileEnv) *Manifest {
	return func(h *hostileEnv) *Manifest { return &Manifest{Entries: entries} }
}

func mt(lines ...string) string { return apText(lines...) }

func workUnchanged(name, content string) func(t *testing.T, h *hostileEnv, res *ApplyResult) {
	return func(t *testing.T, h *hostileEnv, res *ApplyResult) {
		t.Helper()
		p := filepath.Join(h.work, name)
		fi, err := os.Lstat(p)
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o644 {
			t.Errorf("%s: replaced or changed: %v %v", name, fi, err)
			return
		}
		if c, _ := os.ReadFile(p); string(c) != content {
			t.Errorf("%s: content changed to %q", name, c)
		}
	}
}

var hostileCases = []hostileCase{
	// Parse-level rejections.
	{name: "dotdot component", text: mt("./../outside/secret  mode=04777  uid=0  gid=0  type=file"), parseErr: 3},
	{name: "dot a dotdot dotdot", text: mt("./a/../../outside/secret  mode=0777  uid=0  gid=0  type=file"), parseErr: 3},
	{name: "absolute path", text: mt("/etc/passwd  mode=0777  uid=0  gid=0  type=file"), parseErr: 3},
	{name: "absolute after ./", text: mt(".//etc/passwd  mode=0777  uid=0  gid=0  type=file"), parseErr: 3},
	{name: "NUL via escape", text: mt("./etc/pass\\000wd  mode=0777  uid=0  gid=0  type=file"), parseErr: 3},
	{name: "escaped slashes hide dotdot", text: mt("./.\\056\\057outside\\057secret  mode=0777  uid=0  gid=0  type=file"), parseErr: 3},
	{name: "escaped slash dotdot", text: mt("./a\\057..\\057..\\057outside  mode=0777  uid=0  gid=0  type=dir"), parseErr: 3},
	{name: "legacy line with ../", text: "../outside/secret  mode=4777  uid=0  gid=0\n", parseErr: 1},
	{name: "legacy absolute", text: "etc  mode=0755  uid=0  gid=0\n/etc/passwd  mode=0777  uid=0  gid=0\n", parseErr: 2},
	{name: "legacy C-quoted path", text: "\"etc/caf\\303\\251\"  mode=0644  uid=0  gid=0\n", parseErr: 1},
	{name: "huge uid", text: mt("./x  mode=0644  uid=99999999999  gid=0  type=file"), parseErr: 3},
	{name: "mode 077777", text: mt("./x  mode=077777  uid=0  gid=0  type=file"), parseErr: 3},
	{name: "conflict markers", text: mt("<<<<<<< HEAD", "./x  mode=0644  uid=0  gid=0  type=file", "=======", ">>>>>>> other"), parseErr: 3},
	{name: "/set line", text: mt("/set type=file uid=0", "./x  mode=0644"), parseErr: 3},
	{name: "duplicate path", text: mt("./x  mode=0644  uid=0  gid=0  type=file", "./x  mode=04755  uid=0  gid=0  type=file"), parseErr: 4},
	{name: "hardlink with dotdot", text: mt("./x  mode=0644  uid=0  gid=0  type=file  hardlink=./../outside/secret"), parseErr: 3},
	{name: "hardlink absolute", text: mt("./x  mode=0644  uid=0  gid=0  type=file  hardlink=/etc/shadow"), parseErr: 3},
	{name: "hardlink to nothing", text: mt("./x  mode=0644  uid=0  gid=0  type=file  hardlink=./a"), parseErr: 3},

	// Symlinks in the parent chain.
	{name: "parent symlink absolute", setup: symlinkIn("{{OUT}}", "etc"),
		text:    mt("./etc  mode=0755  uid=0  gid=0  type=dir", "./etc/secret  mode=04777  uid=0  gid=0  type=file  xattr.user.evil=ZXZpbA=="),
		wantErr: "parent etc is a symlink"},
	{name: "parent symlink relative", setup: symlinkIn(outRel, "a"),
		text: mt("./a/dir  mode=0777  uid=0  gid=0  type=dir", "./a/dir/f  mode=0666  uid=0  gid=0  type=file", "./a/secret  mode=0666  uid=0  gid=0  type=file"), wantErr: "parent a is a symlink"},
	{name: "parent symlink to ..", setup: symlinkIn("..", "a"),
		text: mt("./a/outside/secret  mode=0666  uid=0  gid=0  type=file"), wantErr: "parent a is a symlink"},
	{name: "deep parent symlink", setup: both(fileIn("x/y/keep", "k"), symlinkIn("../../../outside", "x/y/z")),
		text: mt("./x/y/z/dir/f  mode=0666  uid=0  gid=0  type=file"), wantErr: "parent x/y/z is a symlink"},
	{name: "symlink loop", setup: both(symlinkIn("l2", "l1"), symlinkIn("l1", "l2")),
		text: mt("./l1/x  mode=0777  uid=0  gid=0  type=dir"), wantErr: "parent l1 is a symlink"},
	{name: "self loop", setup: symlinkIn("s", "s"), text: mt("./s/x  mode=0777  uid=0  gid=0  type=fifo"), wantErr: "parent s is a symlink"},
	{name: "device under symlinked parent", setup: symlinkIn("{{OUT}}", "dev"),
		text: mt("./dev/null  mode=0666  uid=0  gid=0  type=char  device=native,1,3"), wantErr: "parent dev is a symlink"},
	{name: "empty dirs under symlink", setup: symlinkIn(outRel, "e"),
		text: mt("./e/new  mode=0777  uid=0  gid=0  type=dir", "./e/new/deeper  mode=0777  uid=0  gid=0  type=dir  empty=1"), wantErr: "parent e is a symlink"},
	{name: "fifo and socket under symlink", setup: symlinkIn(outRel, "run"),
		text: mt("./run/fifo  mode=0666  uid=0  gid=0  type=fifo", "./run/sock  mode=0666  uid=0  gid=0  type=socket"), wantErr: "parent run is a symlink"},
	{name: "legacy line under symlinked parent", setup: symlinkIn("{{OUT}}", "a"),
		text: "a  mode=0777  uid=0  gid=0\na/secret  mode=4777  uid=0  gid=0\n", wantErr: "parent a is a symlink"},
	{name: "parent is a regular file", setup: fileIn("f", "data"),
		text: mt("./f/x  mode=0666  uid=0  gid=0  type=socket"), wantErr: "parent f is not a directory", check: workUnchanged("f", "data")},

	// Symlinks at the final component.
	{name: "final symlink typed file", setup: symlinkIn("{{OUT}}/secret", "passwd"),
		text: mt("./passwd  mode=04777  uid=0  gid=0  type=file  xattr.user.evil=ZXZpbA=="), wantErr: "is a symlink in the tree but a regular file in .gitmeta"},
	{name: "final symlink legacy", setup: symlinkIn("{{OUT}}/setuid", "su"),
		text: "su  mode=0777  uid=0  gid=0\n", wantErr: "legacy setgitperms line is never applied to a symlink"},
	{name: "final symlink to dir typed dir", setup: symlinkIn(outRel+"/dir", "d"),
		text: mt("./d  mode=0777  uid=0  gid=0  type=dir  xattr.user.evil=ZXZpbA=="), wantErr: "is a symlink in the tree but a directory"},
	{name: "final symlink other target", setup: symlinkIn("{{OUT}}/secret", "l"),
		text: mt("./l  mode=0777  uid=0  gid=0  type=link  link=/etc/motd"), wantErr: "git carries symlinks"},
	{name: "final symlink same target is lchowned only", setup: symlinkIn("{{OUT}}/secret", "l"),
		text: mt("./l  mode=0777  uid=4321  gid=4321  type=link  link={{OUT}}/secret"),
		check: func(t *testing.T, h *hostileEnv, res *ApplyResult) {
			if os.Geteuid() != 0 {
				return
			}
			if st := apLstat(t, filepath.Join(h.work, "l")); st.Uid != 4321 {
				t.Errorf("the symlink itself was not chowned: uid %d", st.Uid)
			}
		}},
	{name: "final symlink typed device", setup: symlinkIn("{{OUT}}/fifo", "null"),
		text: mt("./null  mode=0666  uid=0  gid=0  type=char  device=native,1,3"), wantErr: "is a symlink in the tree but a character device"},

	// Hard links.
	{name: "hardlink via symlinked dir", setup: symlinkIn("{{OUT}}", "d"),
		text: mt("./d  mode=0777  uid=0  gid=0  type=dir", "./d/secret  mode=0644  uid=0  gid=0  type=file", "./x  mode=0644  uid=0  gid=0  type=file  hardlink=./d/secret"),
		check: func(t *testing.T, h *hostileEnv, res *ApplyResult) {
			if _, err := os.Lstat(filepath.Join(h.work, "x")); err == nil {
				t.Errorf("x was created, linked to the outside")
			}
		}},
	{name: "hardlink primary is a symlink", setup: both(symlinkIn("{{OUT}}/secret", "p"), fileIn("s", "the host's secret\n")),
		text:    mt("./p  mode=0644  uid=0  gid=0  type=file", "./s  mode=0644  uid=0  gid=0  type=file  hardlink=./p"),
		wantErr: "hard-link primary p: is a symlink", check: workUnchanged("s", "the host's secret\n")},
	{name: "hardlink outside, built in code",
		build:   manifestOf(Entry{Path: "x", Type: TypeFile, Mode: 0o644, Hardlink: "../outside/secret"}),
		wantErr: "hardlink=: unsafe path"},
	{name: "hardlink absolute, built in code",
		build: func(h *hostileEnv) *Manifest {
			return &Manifest{Entries: []Entry{{Path: "x", Type: TypeFifo, Hardlink: h.out + "/fifo"}}}
		},
		wantErr: "is absolute"},

	// Manifests built in code that Parse would refuse.
	{name: "absolute path in code", build: func(h *hostileEnv) *Manifest {
		return &Manifest{Entries: []Entry{{Path: h.out + "/secret", Type: TypeFile, Mode: 0o4777}}}
	}, wantErr: "is absolute"},
	{name: "dotdot in code", build: manifestOf(Entry{Path: "../outside/secret", Type: TypeFile, Mode: 0o777}), wantErr: `".." component`},
	{name: "dot dotdot in code", build: manifestOf(Entry{Path: "./a/../../outside/dir", Type: TypeDir, Mode: 0o777}), wantErr: "unsafe path"},
	{name: "NUL in code", build: manifestOf(Entry{Path: "x\x00/../../outside", Type: TypeDir}), wantErr: "NUL"},
	{name: "uid -1 in code", build: manifestOf(Entry{Path: "x", Type: TypeDir, UID: ^uint32(0)}), wantErr: "4294967295 is reserved"},
	{name: "mode 077777 in code", build: manifestOf(Entry{Path: "x", Type: TypeDir, Mode: 0o77777}), wantErr: "beyond 07777"},
	{name: "empty path in code", build: manifestOf(Entry{Path: "", Type: TypeDir}), wantErr: "empty path"},
	{name: "trailing slash in code", build: manifestOf(Entry{Path: "x/", Type: TypeDir}), wantErr: "empty component"},

	// git's own directory.
	{name: ".git/hooks/x", text: mt("./.git/hooks/x  mode=04755  uid=0  gid=0  type=file"), wantErr: "inside .git"},
	{name: ".git itself", text: mt("./.git  mode=0777  uid=0  gid=0  type=dir  xattr.user.evil=ZXZpbA=="), wantErr: "inside .git"},
	{name: ".git hardlink target", text: mt("./.gitkeep  mode=0644  uid=0  gid=0  type=file", "./x  mode=0644  uid=0  gid=0  type=file  hardlink=./.gitkeep"), setup: fileIn(".gitkeep", "")},
	{name: ".git legacy", text: ".git/config  mode=0666  uid=0  gid=0\n", wantErr: "inside .git"},
	{name: ".git in Paths", text: mt("./x  mode=0644  uid=0  gid=0  type=file"), old: mt("./x  mode=0644  uid=0  gid=0  type=file"), paths: []string{".git/hooks/x", "../outside/secret"}, wantErr: `".." component`},

	// Type clashes inside the tree must not destroy content.
	{name: "fifo entry over a file with content", setup: fileIn("x", "precious"),
		text: mt("./x  mode=0600  uid=0  gid=0  type=fifo"), wantErr: "is a regular file in the tree but a fifo", check: workUnchanged("x", "precious")},
	{name: "dir entry over a file", setup: fileIn("x", "precious"),
		text: mt("./x  mode=0700  uid=0  gid=0  type=dir  empty=1"), wantErr: "is a regular file in the tree but a directory", check: workUnchanged("x", "precious")},

	// Symlinks Apply creates are never followed afterwards.
	{name: "created absolute symlink then entries below it",
		text:    mt("./l  mode=0777  uid=0  gid=0  type=link  link={{OUT}}", "./l/secret  mode=04777  uid=0  gid=0  type=file", "./l/x  mode=0777  uid=0  gid=0  type=dir"),
		wantErr: "parent l is a symlink"},
	{name: "created dotdot symlink then entries below it",
		text:    mt("./up  mode=0777  uid=0  gid=0  type=link  link=../../../../..", "./up/outside/fifo  mode=0666  uid=0  gid=0  type=fifo"),
		wantErr: "parent up is a symlink"},
	{name: "weird symlink targets are created verbatim",
		text: mt("./a  mode=0777  uid=0  gid=0  type=link  link=../../../../etc/shadow", "./b  mode=0777  uid=0  gid=0  type=link  link=/\\012\\040x"),
		check: func(t *testing.T, h *hostileEnv, res *ApplyResult) {
			for name, want := range map[string]string{"a": "../../../../etc/shadow", "b": "/\n x"} {
				if got, err := os.Readlink(filepath.Join(h.work, name)); err != nil || got != want {
					t.Errorf("%s -> %q (%v), want %q", name, got, err, want)
				}
			}
		}},

	// Incremental applies: Old cannot be used to remove things outside.
	{name: "old entry under symlink is not removed", setup: symlinkIn("{{OUT}}", "lnk"),
		old:     mt("./lnk  mode=0755  uid=0  gid=0  type=dir", "./lnk/fifo  mode=0600  uid=1234  gid=1234  type=fifo", "./lnk/dir  mode=0750  uid=1234  gid=1234  type=dir"),
		text:    mt("./other  mode=0755  uid=0  gid=0  type=dir"),
		wantErr: "parent lnk is a symlink"},
	{name: "old dir now a symlink is not removed", setup: symlinkIn(outRel+"/dir", "d"),
		old:  mt("./d  mode=0777  uid=0  gid=0  type=dir"),
		text: mt("./other  mode=0755  uid=0  gid=0  type=dir"),
		check: func(t *testing.T, h *hostileEnv, res *ApplyResult) {
			if _, err := os.Lstat(filepath.Join(h.work, "d")); err != nil || res.Removed != 0 {
				t.Errorf("the symlink d was removed")
			}
		}},
	{name: "old hostile path in code", setup: fileIn("x", ""),
		text:    mt("./x  mode=0644  uid=0  gid=0  type=file"),
		old:     "", // replaced below by a code-built Old
		wantErr: "in the previous .gitmeta"},
}

func TestHostileCorpus(t *testing.T) {
	if n := len(hostileCases); n < 30 {
		t.Fatalf("only %d hostile cases", n)
	}
	for _, tc := range hostileCases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHostileEnv(t)
			if tc.setup != nil {
				tc.setup(t, h)
			}
			before := h.snapshot(t)

			var m *Manifest
			if tc.build != nil {
				m = tc.build(h)
			} else {
				var err error
				m, err = ParseBytes([]byte(hostileText(h, tc.text)))
				if tc.parseErr != 0 {
					var pe *ParseError
					if !errors.As(err, &pe) || pe.Line != tc.parseErr || !strings.Contains(err.Error(), fmt.Sprintf("line %d:", tc.parseErr)) {
						t.Fatalf("Parse error = %v, want one naming line %d", err, tc.parseErr)
					}
					return
				}
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
			}
			opts := ApplyOptions{Paths: tc.paths}
			if tc.old != "" {
				old, err := ParseBytes([]byte(hostileText(h, tc.old)))
				must(t, err)
				opts.Old = old
			}
			if tc.name == "old hostile path in code" {
				opts.Old = &Manifest{Entries: []Entry{{Path: "../outside/fifo", Type: TypeFifo, Mode: 0o600, UID: 1234, GID: 1234}}}
			}
			for _, dry := range []bool{true, false} {
				opts.DryRun = dry
				res, err := Apply(h.work, m, opts)
				if err != nil {
					t.Fatalf("Apply (dry run %v): %v", dry, err)
				}
				// A dry run creates nothing, so its errors may differ
				// (a parent it would have created is "missing").
				if tc.wantErr != "" && !dry {
					found := false
					for _, e := range res.Errors {
						var ae *ApplyError
						if !errors.As(e, &ae) {
							t.Errorf("error %v is not an *ApplyError", e)
						}
						found = found || strings.Contains(e.Error(), tc.wantErr)
					}
					if !found {
						t.Errorf("errors %v, want one containing %q", res.Errors, tc.wantErr)
					}
				}
				if after := h.snapshot(t); !equalSnap(t, before, after) {
					t.Fatalf("dry run %v: something outside the work tree (or in .git) changed", dry)
				}
				if !dry && tc.check != nil {
					tc.check(t, h, res)
				}
			}
		})
	}
}

func equalSnap(t *testing.T, before, after map[string]string) bool {
	t.Helper()
	ok := true
	for k, v := range before {
		if w, found := after[k]; !found {
			t.Errorf("%s vanished", k)
			ok = false
		} else if v != w {
			t.Errorf("%s changed:\n before %s\n after  %s", k, v, w)
			ok = false
		}
	}
	for k, v := range after {
		if _, found := before[k]; !found {
			t.Errorf("%s appeared: %s", k, v)
			ok = false
		}
	}
	return ok
}

// TestHostileSentinelsSane makes sure the snapshot would notice the kinds
// of damage the corpus guards against.
func TestHostileSentinelsSane(t *testing.T) {
	apRequireRoot(t)
	damage := []struct {
		name string
		do   func(h *hostileEnv) error
	}{
		{"chmod", func(h *hostileEnv) error { return os.Chmod(filepath.Join(h.out, "secret"), 0o644) }},
		{"chown", func(h *hostileEnv) error { return os.Lchown(filepath.Join(h.out, "dir/f"), 0, 0) }},
		{"xattr", func(h *hostileEnv) error {
			return unix.Setxattr(filepath.Join(h.out, "fifo"), "trusted.x", []byte("1"), 0)
		}},
		{"new file", func(h *hostileEnv) error { return os.WriteFile(filepath.Join(h.out, "dir", "new"), nil, 0o644) }},
		{"hard link", func(h *hostileEnv) error { return os.Link(filepath.Join(h.out, "secret"), filepath.Join(h.work, "l")) }},
		{"content", func(h *hostileEnv) error {
			return os.WriteFile(filepath.Join(h.out, "secret"), bytes.ToUpper([]byte("the host's secret\n")), 0o640)
		}},
		{".git hook", func(h *hostileEnv) error { return os.Chmod(filepath.Join(h.work, ".git/hooks/x"), 0o755) }},
	}
	for _, d := range damage {
		t.Run(d.name, func(t *testing.T) {
			h := newHostileEnv(t)
			before := h.snapshot(t)
			must(t, d.do(h))
			after := h.snapshot(t)
			same := true
			for k, v := range before {
				if after[k] != v {
					same = false
				}
			}
			if len(before) != len(after) {
				same = false
			}
			if same {
				t.Errorf("the snapshot did not notice %s", d.name)
			}
		})
	}
}
