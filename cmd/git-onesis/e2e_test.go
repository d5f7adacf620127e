package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/onesis/git-onesis/internal/testkit"
)

// TestRoundTrip is the proof: an image with every kind of entry is
// initialised and committed, cloned elsewhere, installed and checked out,
// and the two trees are compared with independent tools (NetBSD mtree on
// the export, getfattr, find).
func TestRoundTrip(t *testing.T) {
	needRoot(t)
	for _, tool := range []string{"mtree", "getfattr", "setfattr", "setfacl", "setcap", "bsdtar"} {
		needTool(t, tool)
	}
	base := t.TempDir()
	img := filepath.Join(base, "image")
	os.Mkdir(img, 0o755)
	fixture(t, img)

	r := onesis(t, img, "init", "--commit", "-q")
	if r.code != 0 {
		t.Fatalf("init --commit: exit %d: %s", r.code, r.err)
	}
	if st := onesis(t, img, "status"); st.code != 0 {
		t.Fatalf("status right after init: exit %d\n%s%s", st.code, st.out, st.err)
	}
	gm, err := os.ReadFile(filepath.Join(img, ".gitmeta"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"#mtree v2.0\n",
		"\n.  mode=0755  uid=0  gid=0  type=dir\n",
		"./usr/bin/su  mode=04755  uid=0  gid=0  type=file",
		"./usr/bin/wall  mode=02755  uid=0  gid=5  type=file",
		"./tmp  mode=01777  uid=0  gid=0  type=dir",
		"./etc/shadow  mode=0  uid=0  gid=42  type=file",
		"./dev/null  mode=0666  uid=0  gid=0  type=char  device=native,1,3",
		"./dev/loop0  mode=0660  uid=0  gid=6  type=block  device=native,7,0",
		"./dev/initctl  mode=0600  uid=0  gid=0  type=fifo",
		"./var/spool/sock/s  mode=",
		"type=socket",
		"./etc/abslink  mode=0777  uid=1000  gid=1000  type=link  link=/etc/passwd",
		"./var/empty/a/b/c  mode=0711  uid=0  gid=0  type=dir  empty=1",
		"hardlink=./usr/lib/libfoo-hard.so",
		"xattr.security.capability=",
		"xattr.user.note=aGVsbG8=",
		"xattr.system.posix_acl_access=",
		"./odd/with\\040space",
		"./odd/new\\012line",
		"./odd/caf\\351-latin1",
		"./odd/x\\040\\040mode=0777\\040\\040uid=0\\040\\040gid=0  mode=0644",
		"./odd/back\\134slash\\011tab",
	} {
		if !bytes.Contains(gm, []byte(want)) {
			t.Errorf(".gitmeta lacks %q", want)
		}
	}
	// setgitperms' own regex still reads every line.
	for _, l := range strings.Split(string(gm), "\n") {
		if l == "" || l[0] == '#' {
			continue
		}
		if !strings.Contains(l, "  mode=") || strings.Count(l, "  mode=") != 1 {
			t.Errorf("line not readable by setgitperms' regex: %q", l)
		}
	}

	clone := filepath.Join(base, "clone")
	must(t, base, "git", "clone", "-q", img, clone)
	if r := onesis(t, clone, "install", "-q"); r.code != 0 {
		t.Fatalf("install in clone: exit %d: %s", r.code, r.err)
	}
	if st := onesis(t, clone, "status"); st.code != 0 {
		t.Fatalf("status in clone after install: exit %d\n%s%s", st.code, st.out, st.err)
	}

	// Independent checker 1: NetBSD mtree verifies the clone against the
	// original's export (and the original against itself).
	spec := must(t, img, "git", "onesis", "export", "--format=mtree", "--bsd")
	specFile := filepath.Join(base, "spec")
	os.WriteFile(specFile, []byte(spec), 0o644)
	for _, tree := range []string{img, clone} {
		if r := runIn(t, base, "mtree", "-e", "-p", tree, "-f", specFile); r.code != 0 {
			t.Errorf("mtree -p %s: exit %d\n%s%s", tree, r.code, r.out, r.err)
		}
	}
	// Independent checker 2 and 3: find and getfattr listings are equal.
	if a, b := findListing(t, img), findListing(t, clone); a != b {
		t.Errorf("find listings differ:\n--- image\n%s\n--- clone\n%s", a, b)
	}
	if a, b := xattrListing(t, img), xattrListing(t, clone); a != b {
		t.Errorf("getfattr listings differ:\n--- image\n%s\n--- clone\n%s", a, b)
	}
	// Hard links are re-linked in the clone.
	i1, _ := inode(t, filepath.Join(clone, "usr/lib/libfoo.so.1"))
	i2, _ := inode(t, filepath.Join(clone, "usr/lib/libfoo-hard.so"))
	if i1 != i2 {
		t.Errorf("hard-link pair not re-linked in the clone")
	}
	// bsdtar builds a tarball from the spec with the recorded owners.
	tarList := must(t, img, "sh", "-c", "git onesis export --format=mtree --bsd | bsdtar -cf - @- | bsdtar -tvf -")
	for _, want := range [][2]string{{"-rwsr-xr-x", "./usr/bin/su"}, {"crw-rw-rw-", "./dev/null"}, {"prw-------", "./dev/initctl"}, {"-rwxr-sr-x  0 0      5", "./usr/bin/wall"}} {
		found := false
		for _, l := range strings.Split(tarList, "\n") {
			if strings.HasPrefix(l, want[0]) && strings.HasSuffix(l, want[1]) {
				found = true
			}
		}
		if !found {
			t.Errorf("bsdtar listing lacks %s %s:\n%s", want[0], want[1], tarList)
		}
	}

	// A branch switch between commits that differ in a few entries touches
	// only those entries.
	must(t, clone, "git", "checkout", "-q", "-b", "hardening")
	os.Chmod(filepath.Join(clone, "usr/bin/su"), 0o755)
	must(t, clone, "chown", "1234:1234", "etc/secret")
	if r := onesis(t, clone, "commit", "-q", "-m", "drop setuid from su; hand secret to bob"); r.code != 0 {
		t.Fatalf("onesis commit: %d %s", r.code, r.err)
	}
	_, ctimeOther := inode(t, filepath.Join(clone, "usr/bin/wall"))
	must(t, clone, "git", "checkout", "-q", "main")
	assertMode(t, filepath.Join(clone, "usr/bin/su"), 0o4755, 0, 0)
	assertMode(t, filepath.Join(clone, "etc/secret"), 0o600, 0, 0)
	must(t, clone, "git", "checkout", "-q", "hardening")
	assertMode(t, filepath.Join(clone, "usr/bin/su"), 0o755, 0, 0)
	assertMode(t, filepath.Join(clone, "etc/secret"), 0o600, 1234, 1234)
	if _, c := inode(t, filepath.Join(clone, "usr/bin/wall")); c != ctimeOther {
		t.Errorf("an entry that did not change between the branches was touched (ctime moved)")
	}
	if r := runIn(t, clone, "git", "status", "--porcelain"); r.out != "" {
		t.Errorf("git status not clean after switching (index not refreshed?):\n%s", r.out)
	}
}

func assertMode(t *testing.T, p string, mode, uid, gid uint32) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&0o7777 != mode || st.Uid != uid || st.Gid != gid {
		t.Errorf("%s: mode %#o uid %d gid %d; want %#o %d %d", p, st.Mode&0o7777, st.Uid, st.Gid, mode, uid, gid)
	}
}

// TestTamperDetection checks that status catches metadata-only tampering
// that plain git status misses, and names each change in words.
func TestTamperDetection(t *testing.T) {
	needRoot(t)
	img := t.TempDir()
	fixture(t, img)
	if r := onesis(t, img, "init", "--commit", "-q"); r.code != 0 {
		t.Fatalf("init: %s", r.err)
	}
	tampers := []struct {
		name  string
		do    func()
		words string
	}{
		{"setuid added", func() { unix.Chmod(filepath.Join(img, "usr/bin/ping"), 0o4755) }, "usr/bin/ping: setuid bit added"},
		{"chown", func() { os.Chown(filepath.Join(img, "etc/shadow"), 1000, 42) }, "etc/shadow: owner root -> alice"},
		{"device swapped", func() {
			p := filepath.Join(img, "dev/null")
			os.Remove(p)
			unix.Mknod(p, unix.S_IFCHR|0o666, int(unix.Mkdev(8, 0)))
			unix.Chmod(p, 0o666)
		}, "dev/null: device 1,3 -> 8,0"},
		{"capability added", func() { must(t, img, "setcap", "cap_sys_admin+ep", "usr/bin/su") }, "cap_sys_admin"},
		{"capability removed", func() { must(t, img, "setcap", "-r", "usr/bin/ping") }, "usr/bin/ping: capability cap_net_raw+ep removed"},
		{"mode widened", func() { unix.Chmod(filepath.Join(img, "etc/secret"), 0o644) }, "etc/secret: mode 0600 -> 0644"},
		{"fifo removed", func() { os.Remove(filepath.Join(img, "dev/initctl")) }, "dev/initctl"},
		{"hard link broken by cp", func() {
			p := filepath.Join(img, "usr/lib/libfoo-hard.so")
			must(t, img, "cp", "-p", "usr/lib/libfoo-hard.so", "usr/lib/copy")
			os.Rename(filepath.Join(img, "usr/lib/copy"), p)
		}, "usr/lib/libfoo.so.1: no longer a hard link to usr/lib/libfoo-hard.so"},
		// Racy: each change follows a record in the same second, so no
		// time stamp can tell it apart from what was recorded.
		{"racy chmod", func() {
			onesis(t, img, "record", "-q")
			unix.Chmod(filepath.Join(img, "etc/secret"), 0o640)
		}, "etc/secret: mode 0600 -> 0640"},
		{"racy setxattr", func() {
			onesis(t, img, "record", "-q")
			must(t, img, "setfattr", "-n", "user.note", "-v", "HELLO", "etc/secret")
		}, "user.note"},
		{"racy chown", func() {
			onesis(t, img, "record", "-q")
			os.Chown(filepath.Join(img, "usr/bin/su"), 1234, 0)
		}, "usr/bin/su: owner root -> bob"},
	}
	for _, tc := range tampers {
		t.Run(tc.name, func(t *testing.T) {
			if r := runIn(t, img, "git", "status", "--porcelain"); r.out != "" {
				t.Fatalf("tree not clean before tamper: %s", r.out)
			}
			tc.do()
			st := onesis(t, img, "status")
			if st.code != 1 {
				t.Errorf("status exit %d after %s; want 1\n%s", st.code, tc.name, st.out)
			}
			if !strings.Contains(st.out, tc.words) {
				t.Errorf("status output lacks %q:\n%s", tc.words, st.out)
			}
			var js struct {
				Clean    bool `json:"clean"`
				Metadata []struct {
					Path string `json:"path"`
				} `json:"metadata"`
			}
			j := onesis(t, img, "status", "--json")
			if err := json.Unmarshal([]byte(j.out), &js); err != nil || js.Clean || len(js.Metadata) == 0 {
				t.Errorf("status --json = %v %+v; want unclean with metadata entries\n%s", err, js, j.out)
			}
			if r := onesis(t, img, "apply", "-q"); r.code != 0 {
				t.Errorf("apply: exit %d %s", r.code, r.err)
			}
			if st := onesis(t, img, "status"); st.code != 0 {
				t.Errorf("status after apply: exit %d\n%s", st.code, st.out)
			}
		})
	}
}

// TestHooksKeepGitmetaTrue drives ordinary git commands and checks that
// .gitmeta follows without any git-onesis command.
func TestHooksKeepGitmetaTrue(t *testing.T) {
	needRoot(t)
	img := t.TempDir()
	fixture(t, img)
	if r := onesis(t, img, "init", "--commit", "-q"); r.code != 0 {
		t.Fatalf("init: %s", r.err)
	}
	gitmetaHas := func(rev, want string) bool {
		return strings.Contains(must(t, img, "git", "show", rev+":.gitmeta"), want)
	}
	// git commit -a with a content change and a chmod records the chmod.
	os.WriteFile(filepath.Join(img, "etc/motd"), []byte("welcome\n"), 0o644)
	must(t, img, "git", "add", "etc/motd")
	unix.Chmod(filepath.Join(img, "etc/motd"), 0o600)
	must(t, img, "git", "commit", "-q", "-m", "motd")
	if !gitmetaHas("HEAD", "./etc/motd  mode=0600") {
		t.Errorf("pre-commit did not record etc/motd 0600")
	}
	// A metadata-only change: plain git has nothing to commit; git onesis
	// commit does.
	os.Chown(filepath.Join(img, "etc/motd"), 1000, 1000)
	if r := runIn(t, img, "git", "commit", "-q", "-a", "-m", "nothing"); r.code == 0 {
		t.Logf("git commit -a committed a metadata-only change (pre-commit staged .gitmeta)")
	}
	if r := onesis(t, img, "commit", "-q", "--allow-empty", "-m", "chown motd"); r.code != 0 {
		t.Fatalf("onesis commit: %d %s", r.code, r.err)
	}
	if !gitmetaHas("HEAD", "./etc/motd  mode=0600  uid=1000  gid=1000") {
		t.Errorf("metadata-only change not committed")
	}
	// --amend re-records.
	unix.Chmod(filepath.Join(img, "etc/motd"), 0o640)
	must(t, img, "git", "commit", "-q", "--amend", "--no-edit", "-a")
	if !gitmetaHas("HEAD", "./etc/motd  mode=0640") {
		t.Errorf("--amend did not re-record")
	}
	// Partial commit with a pathspec: .gitmeta in the commit matches, and
	// the real index agrees afterwards.
	os.WriteFile(filepath.Join(img, "etc/issue"), []byte("issue\n"), 0o644)
	must(t, img, "git", "add", "etc/issue")
	unix.Chmod(filepath.Join(img, "etc/issue"), 0o444)
	os.WriteFile(filepath.Join(img, "etc/motd"), []byte("changed\n"), 0o640)
	must(t, img, "git", "commit", "-q", "-m", "issue only", "--", "etc/issue")
	if !gitmetaHas("HEAD", "./etc/issue  mode=0444") {
		t.Errorf("partial commit did not record etc/issue")
	}
	if r := runIn(t, img, "git", "diff", "--cached", "--quiet", "HEAD", "--", ".gitmeta"); r.code != 0 {
		t.Errorf("after a pathspec commit the index's .gitmeta differs from HEAD's")
	}
	must(t, img, "git", "checkout", "-q", "--", "etc/motd")

	// Merge: two branches change different entries' metadata; the merge
	// driver merges .gitmeta and post-merge applies it.
	must(t, img, "git", "checkout", "-q", "-b", "left")
	unix.Chmod(filepath.Join(img, "usr/bin/su"), 0o755)
	if r := onesis(t, img, "commit", "-q", "-m", "left"); r.code != 0 {
		t.Fatal(r.err)
	}
	must(t, img, "git", "checkout", "-q", "main")
	assertMode(t, filepath.Join(img, "usr/bin/su"), 0o4755, 0, 0)
	must(t, img, "git", "checkout", "-q", "-b", "right")
	os.Chown(filepath.Join(img, "usr/bin/wall"), 1234, 1234)
	unix.Chmod(filepath.Join(img, "usr/bin/wall"), 0o2755)
	if r := onesis(t, img, "commit", "-q", "-m", "right"); r.code != 0 {
		t.Fatal(r.err)
	}
	must(t, img, "git", "merge", "-q", "--no-edit", "left")
	assertMode(t, filepath.Join(img, "usr/bin/su"), 0o755, 0, 0)
	assertMode(t, filepath.Join(img, "usr/bin/wall"), 0o2755, 1234, 1234)
	if st := onesis(t, img, "status"); st.code != 0 {
		t.Errorf("status after merge: %d\n%s", st.code, st.out)
	}
	// Rebase: post-rewrite applies the rebased tip.
	must(t, img, "git", "checkout", "-q", "-b", "topic", "main")
	unix.Chmod(filepath.Join(img, "etc/issue"), 0o400)
	if r := onesis(t, img, "commit", "-q", "-m", "topic"); r.code != 0 {
		t.Fatal(r.err)
	}
	must(t, img, "git", "rebase", "-q", "right")
	assertMode(t, filepath.Join(img, "etc/issue"), 0o400, 0, 0)
	assertMode(t, filepath.Join(img, "usr/bin/wall"), 0o2755, 1234, 1234)
	if st := onesis(t, img, "status"); st.code != 0 {
		t.Errorf("status after rebase: %d\n%s", st.code, st.out)
	}
	// A conflicting metadata change on both sides leaves markers only
	// around that path, and pre-commit refuses to commit them.
	must(t, img, "git", "checkout", "-q", "-b", "c1", "main")
	unix.Chmod(filepath.Join(img, "etc/secret"), 0o640)
	onesis(t, img, "commit", "-q", "-m", "c1")
	must(t, img, "git", "checkout", "-q", "-b", "c2", "main")
	unix.Chmod(filepath.Join(img, "etc/secret"), 0o400)
	onesis(t, img, "commit", "-q", "-m", "c2")
	if r := runIn(t, img, "git", "merge", "-q", "--no-edit", "c1"); r.code == 0 {
		t.Fatalf("conflicting merge succeeded")
	}
	gm, _ := os.ReadFile(filepath.Join(img, ".gitmeta"))
	if n := bytes.Count(gm, []byte("<<<<<<<")); n != 1 {
		t.Errorf("want exactly one conflict block, got %d", n)
	}
	r := runIn(t, img, "git", "commit", "-q", "-a", "-m", "merge with markers")
	if r.code == 0 || !strings.Contains(r.err, "CONFLICT") {
		t.Errorf("pre-commit let conflict markers through: exit %d %s", r.code, r.err)
	}
	must(t, img, "git", "merge", "--abort")
}

// TestNonRootClone: a reviewer without root clones, installs and checks
// out; checkout succeeds with one summary line, ls and diff show the true
// owners.
func TestNonRootClone(t *testing.T) {
	needRoot(t)
	_, img, home, run := nobodyImage(t)
	if r := run(home, "git", "clone", "-q", img, "clone"); r.code != 0 {
		t.Fatalf("clone as nobody: %s", r.err)
	}
	clone := filepath.Join(home, "clone")
	r := run(clone, "git", "onesis", "install")
	if r.code != 0 {
		t.Fatalf("install as non-root: exit %d\n%s", r.code, r.err)
	}
	if n := strings.Count(r.err, "not applied (not root)"); n != 1 {
		t.Errorf("want exactly one 'not applied (not root)' line, got %d:\n%s", n, r.err)
	}
	ls := run(clone, "git", "onesis", "ls", "usr/bin", "etc/shadow", "dev")
	flat := strings.Join(strings.Fields(strings.ReplaceAll(ls.out, "\n", " | ")), " ")
	for _, want := range []string{"-rwsr-xr-x root root usr/bin/su", "---------- root shadow etc/shadow", "crw-rw-rw- root root 1, 3 dev/null", "-rwxr-sr-x root tty usr/bin/wall"} {
		if !strings.Contains(flat, want) {
			t.Errorf("ls as non-root lacks %q:\n%s", want, ls.out)
		}
	}
	st := run(clone, "git", "onesis", "status")
	if !strings.Contains(st.out, "Not applied as non-root") {
		t.Errorf("status as non-root does not separate unapplied ownership:\n%s", st.out)
	}
	// A metadata change by root upstream shows in words in the clone.
	os.Chown(filepath.Join(img, "etc/secret"), 1000, 1000)
	if r := onesis(t, img, "commit", "-q", "-m", "give secret to alice"); r.code != 0 {
		t.Fatal(r.err)
	}
	run(clone, "git", "pull", "-q", "--no-rebase")
	d := run(clone, "git", "onesis", "diff", "HEAD~1", "HEAD")
	if !strings.Contains(d.out, "etc/secret: owner root -> alice") {
		t.Errorf("diff as non-root lacks the owner change in words:\n%s%s", d.out, d.err)
	}
}

// TestExitCodes checks git's conventions.
func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	if r := onesis(t, dir, "status"); r.code != 128 || !strings.Contains(r.err, "not a git repository") {
		t.Errorf("status outside a repo: exit %d %q; want 128", r.code, r.err)
	}
	if r := onesis(t, dir, "status", "--no-such-flag"); r.code != 129 {
		t.Errorf("bad flag: exit %d; want 129", r.code)
	}
	if r := onesis(t, dir, "frobnicate"); r.code != 129 {
		t.Errorf("unknown command: exit %d; want 129", r.code)
	}
	must(t, dir, "git", "init", "-q")
	if r := onesis(t, dir, "ls", "a", "--no-such-flag"); r.code != 129 {
		t.Errorf("unknown flag after an argument: exit %d; want 129 (%s)", r.code, r.err)
	}
	if r := onesis(t, dir, "post-checkout", "1"); r.code != 1 || !strings.Contains(r.err, "post-checkout hook") {
		t.Errorf("hook with wrong arguments: exit %d %q", r.code, r.err)
	}
}

// TestMigrateFromSetgitperms builds a repository the old way, with the real
// setgitperms.perl (Debian's git ships it under /usr/share/doc), and
// migrates it in one command.
func TestMigrateFromSetgitperms(t *testing.T) {
	needRoot(t)
	const sgp = "/usr/share/doc/git/contrib/hooks/setgitperms.perl"
	testkit.NeedFile(t, sgp, "git")
	img := t.TempDir()
	must(t, img, "git", "init", "-q")
	os.MkdirAll(filepath.Join(img, "usr/bin"), 0o755)
	os.WriteFile(filepath.Join(img, "usr/bin/su"), []byte("su\n"), 0o755)
	unix.Chmod(filepath.Join(img, "usr/bin/su"), 0o4755)
	os.MkdirAll(filepath.Join(img, "etc"), 0o755)
	os.WriteFile(filepath.Join(img, "etc/shadow"), []byte("x\n"), 0o600)
	os.Chown(filepath.Join(img, "etc/shadow"), 0, 42)
	os.WriteFile(filepath.Join(img, ".gitignore"), []byte("dev\nproc\n"), 0o644)
	hooksDir := filepath.Join(img, ".git/hooks")
	os.MkdirAll(hooksDir, 0o755)
	b, _ := os.ReadFile(sgp)
	os.WriteFile(filepath.Join(hooksDir, "setgitperms.perl"), b, 0o755)
	os.WriteFile(filepath.Join(hooksDir, "pre-commit"), []byte("#!/bin/sh\nSUBDIRECTORY_OK=1 . \"$(git --exec-path)/git-sh-setup\"\n$GIT_DIR/hooks/setgitperms.perl -r\n"), 0o755)
	os.WriteFile(filepath.Join(hooksDir, "post-checkout"), []byte("#!/bin/sh\nSUBDIRECTORY_OK=1 . \"$(git --exec-path)/git-sh-setup\"\n$GIT_DIR/hooks/setgitperms.perl -w\n"), 0o755)
	must(t, img, "git", "add", "-A")
	must(t, img, "git", "commit", "-q", "-m", "old recipe")
	old := must(t, img, "git", "show", "HEAD:.gitmeta")
	if !strings.Contains(old, "usr/bin/su  mode=4755  uid=0  gid=0") {
		t.Fatalf("setgitperms did not write its .gitmeta as expected:\n%s", old)
	}
	// A clone setgitperms never ran in has default modes; migrating it
	// carries the recorded ones over, not the tree's.
	clone := filepath.Join(t.TempDir(), "clone")
	must(t, img, "git", "clone", "-q", img, clone)
	assertMode(t, filepath.Join(clone, "etc/shadow"), 0o644, 0, 0)
	r := onesis(t, clone, "migrate", "--commit")
	if r.code != 0 || !strings.Contains(r.err, "differ from the setgitperms owners and modes") {
		t.Fatalf("migrate in a clone: exit %d\n%s", r.code, r.err)
	}
	gm := must(t, clone, "git", "show", "HEAD:.gitmeta")
	for _, want := range []string{"./usr/bin/su  mode=04755  uid=0  gid=0  type=file", "./etc/shadow  mode=0600  uid=0  gid=42  type=file"} {
		if !strings.Contains(gm, want) {
			t.Errorf("migrated clone's .gitmeta lacks %q:\n%s", want, gm)
		}
	}
	if r := onesis(t, clone, "apply", "-q"); r.code != 0 {
		t.Fatalf("apply after migrate: %s", r.err)
	}
	assertMode(t, filepath.Join(clone, "etc/shadow"), 0o600, 0, 42)
	if r := onesis(t, img, "migrate", "--commit"); r.code != 0 {
		t.Fatalf("migrate: exit %d\n%s", r.code, r.err)
	}
	gm = must(t, img, "git", "show", "HEAD:.gitmeta")
	for _, want := range []string{"#mtree v2.0", "./usr/bin/su  mode=04755  uid=0  gid=0  type=file", "./etc/shadow  mode=0600  uid=0  gid=42  type=file"} {
		if !strings.Contains(gm, want) {
			t.Errorf("migrated .gitmeta lacks %q:\n%s", want, gm)
		}
	}
	if _, err := os.Stat(filepath.Join(hooksDir, "pre-commit.setgitperms")); err != nil {
		t.Errorf("old pre-commit hook not moved aside: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(hooksDir, "pre-commit")); !strings.Contains(string(b), "git onesis") {
		t.Errorf("pre-commit is not ours after migrate:\n%s", b)
	}
	if b, _ := os.ReadFile(filepath.Join(img, ".gitignore")); strings.Contains(string(b), "dev") {
		t.Errorf(".gitignore still ignores dev:\n%s", b)
	}
	if st := onesis(t, img, "status"); st.code != 0 {
		t.Errorf("status after migrate: %d\n%s", st.code, st.out)
	}
}

// TestCheckoutUmask: git onesis checkout runs git under umask 077, so files
// appear 0600 (never 0644) and apply then opens up exactly what is recorded.
func TestCheckoutUmask(t *testing.T) {
	needRoot(t)
	img := t.TempDir()
	fixture(t, img)
	if r := onesis(t, img, "init", "--commit", "-q"); r.code != 0 {
		t.Fatal(r.err)
	}
	must(t, img, "git", "checkout", "-q", "-b", "newfiles")
	os.Mkdir(filepath.Join(img, "etc/ssl"), 0o755)
	os.Mkdir(filepath.Join(img, "etc/ssl/private"), 0o700)
	os.WriteFile(filepath.Join(img, "etc/ssl/private/key.pem"), []byte("KEY\n"), 0o600)
	os.WriteFile(filepath.Join(img, "etc/ssl/public.pem"), []byte("CERT\n"), 0o644)
	must(t, img, "git", "add", "etc/ssl")
	if r := onesis(t, img, "commit", "-q", "-m", "ssl"); r.code != 0 {
		t.Fatal(r.err)
	}
	must(t, img, "git", "checkout", "-q", "main")
	if _, err := os.Stat(filepath.Join(img, "etc/ssl")); err == nil {
		t.Fatalf("etc/ssl still present on main")
	}
	if r := onesis(t, img, "checkout", "-q", "newfiles"); r.code != 0 {
		t.Fatalf("onesis checkout: %d %s", r.code, r.err)
	}
	assertMode(t, filepath.Join(img, "etc/ssl/private/key.pem"), 0o600, 0, 0)
	assertMode(t, filepath.Join(img, "etc/ssl/private"), 0o700, 0, 0)
	assertMode(t, filepath.Join(img, "etc/ssl/public.pem"), 0o644, 0, 0)
	assertMode(t, filepath.Join(img, "etc/ssl"), 0o755, 0, 0)
}

// TestNoVerifyCaught: a commit that skips pre-commit is caught by
// post-commit, which names the way out.
func TestNoVerifyCaught(t *testing.T) {
	needRoot(t)
	img := t.TempDir()
	fixture(t, img)
	if r := onesis(t, img, "init", "--commit", "-q"); r.code != 0 {
		t.Fatal(r.err)
	}
	os.WriteFile(filepath.Join(img, "etc/motd"), []byte("x\n"), 0o644)
	must(t, img, "git", "add", "etc/motd")
	unix.Chmod(filepath.Join(img, "usr/bin/ping"), 0o4755)
	r := runIn(t, img, "git", "commit", "-q", "--no-verify", "-m", "sneaky")
	if r.code != 0 {
		t.Fatalf("commit: %s", r.err)
	}
	if !strings.Contains(r.err, "without the pre-commit hook") || !strings.Contains(r.err, "git onesis commit --amend") {
		t.Errorf("post-commit did not warn about the unrecorded commit:\n%s", r.err)
	}
	if r := onesis(t, img, "commit", "-q", "--amend", "--no-edit"); r.code != 0 {
		t.Fatal(r.err)
	}
	if gm := must(t, img, "git", "show", "HEAD:.gitmeta"); !strings.Contains(gm, "./usr/bin/ping  mode=04755") || !strings.Contains(gm, "./etc/motd  mode=0644") {
		t.Errorf("amend did not record:\n%s", gm)
	}
	// A normal commit is silent. (A chmod alone would be "nothing to
	// commit": git decides that before pre-commit stages .gitmeta, which is
	// why 'git onesis commit' exists.)
	os.WriteFile(filepath.Join(img, "etc/motd"), []byte("y\n"), 0o600)
	r = runIn(t, img, "git", "commit", "-q", "-a", "-m", "quiet")
	if r.code != 0 || r.err != "" {
		t.Errorf("ordinary commit: exit %d, stderr %q; want silence", r.code, r.err)
	}
}

// TestWorktreeAdd: 'git worktree add' runs post-checkout in the new
// worktree, which gets every device, owner and mode.
func TestWorktreeAdd(t *testing.T) {
	needRoot(t)
	base := t.TempDir()
	img := filepath.Join(base, "image")
	os.Mkdir(img, 0o755)
	fixture(t, img)
	if r := onesis(t, img, "init", "--commit", "-q"); r.code != 0 {
		t.Fatal(r.err)
	}
	wt := filepath.Join(base, "image-update")
	must(t, img, "git", "worktree", "add", "-q", "-b", "update", wt)
	assertMode(t, filepath.Join(wt, "usr/bin/su"), 0o4755, 0, 0)
	assertMode(t, filepath.Join(wt, "usr/bin/wall"), 0o2755, 0, 5)
	assertMode(t, filepath.Join(wt, "home/alice"), 0o750, 1000, 1000)
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(wt, "dev/null"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Minor(st.Rdev) != 3 {
		t.Errorf("dev/null not created in the worktree: %v", err)
	}
	if r := onesis(t, wt, "status"); r.code != 0 {
		t.Errorf("status in the new worktree: %d\n%s", r.code, r.out)
	}
	// A commit in the worktree records there, not in the main tree.
	unix.Chmod(filepath.Join(wt, "usr/bin/su"), 0o755)
	if r := onesis(t, wt, "commit", "-q", "-m", "update: su not setuid"); r.code != 0 {
		t.Fatal(r.err)
	}
	if gm := must(t, img, "git", "show", "update:.gitmeta"); !strings.Contains(gm, "./usr/bin/su  mode=0755") {
		t.Errorf("worktree commit did not record su 0755")
	}
	assertMode(t, filepath.Join(img, "usr/bin/su"), 0o4755, 0, 0)
}

// TestReadableHistory: the diff=gitmeta textconv makes git show and
// git log -p print capabilities and ACLs in words, not base64.
func TestReadableHistory(t *testing.T) {
	needRoot(t)
	img := t.TempDir()
	fixture(t, img)
	if r := onesis(t, img, "init", "--commit", "-q"); r.code != 0 {
		t.Fatal(r.err)
	}
	must(t, img, "setcap", "cap_net_raw,cap_net_admin+ep", "usr/bin/ping")
	if r := onesis(t, img, "commit", "-q", "-m", "ping gets net_admin"); r.code != 0 {
		t.Fatal(r.err)
	}
	show := must(t, img, "git", "show", "HEAD")
	if !strings.Contains(show, "-./usr/bin/ping") || !strings.Contains(show, "cap_net_raw+ep") || !strings.Contains(show, "cap_net_admin,cap_net_raw+ep") {
		t.Errorf("git show does not render capabilities in words:\n%s", show)
	}
	if strings.Contains(show, "xattr.security.capability=AQ") {
		t.Errorf("git show still shows base64 capability values:\n%s", show)
	}
	logp := must(t, img, "git", "log", "-p", "-1", "--format=%s")
	if !strings.Contains(logp, "cap_net_admin") {
		t.Errorf("git log -p not readable:\n%s", logp)
	}
}

// TestBashCompletion: the script bridges git's completion to the binary,
// which completes commands, subcommands, options, node names and
// revisions (run in bash, as git's completion calls _git_onesis).
func TestBashCompletion(t *testing.T) {
	script := must(t, ".", "git-onesis", "completion", "bash")
	for _, want := range []string{"_git_onesis()", "git-onesis __complete", "complete -o bashdefault -o default -F _git_onesis_bin git-onesis"} {
		if !strings.Contains(script, want) {
			t.Errorf("completion script lacks %q", want)
		}
	}
	dir := t.TempDir()
	must(t, dir, "git", "init", "-q")
	os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644)
	if r := onesis(t, dir, "init", "--commit", "-q"); r.code != 0 {
		t.Fatal(r.err)
	}
	must(t, dir, "git", "branch", "compute")
	must(t, dir, "git", "onesis", "node", "add", "n17", "--mac", "52:54:00:00:00:17", "--ip", "10.77.0.17")
	complete := func(words ...string) []string {
		t.Helper()
		line := "COMP_WORDS=(git onesis"
		for _, w := range words {
			line += fmt.Sprintf(" %q", w)
		}
		line += fmt.Sprintf("); COMP_CWORD=%d; _git_onesis; printf '%%s\\n' \"${COMPREPLY[@]}\"", len(words)+1)
		r := runIn(t, dir, "bash", "-c", script+line)
		return strings.Fields(r.out)
	}
	for _, tc := range []struct {
		words []string
		want  []string
		not   []string
	}{
		{[]string{"st"}, []string{"status"}, []string{"post-checkout", "__complete"}},
		{[]string{"upgrade", ""}, []string{"start", "promote", "abandon"}, nil},
		{[]string{"status", "--po"}, []string{"--porcelain"}, nil},
		{[]string{"upgrade", "start", "--"}, []string{"--node", "--maintenance", "--from"}, nil},
		{[]string{"upgrade", "start", "--node", ""}, []string{"n17"}, []string{"main"}},
		{[]string{"node", "set", "n"}, []string{"n17"}, nil},
		{[]string{"diff", ""}, []string{"HEAD", "main", "compute"}, nil},
		{[]string{"rollback", "--branch", "co"}, []string{"compute"}, nil},
		{[]string{"log", "ma"}, []string{"main"}, []string{"compute"}},
	} {
		got := complete(tc.words...)
		for _, w := range tc.want {
			if !slices.Contains(got, w) {
				t.Errorf("completing %q: %q lacks %q", tc.words, got, w)
			}
		}
		for _, w := range tc.not {
			if slices.Contains(got, w) {
				t.Errorf("completing %q: %q offers %q", tc.words, got, w)
			}
		}
	}
}

// TestBadRevisionIsFatal: a git failure underneath is fatal (128), not
// git's own exit code passed through.
func TestBadRevisionIsFatal(t *testing.T) {
	dir := t.TempDir()
	must(t, dir, "git", "init", "-q")
	os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644)
	if r := onesis(t, dir, "init", "--commit", "-q"); r.code != 0 {
		t.Fatal(r.err)
	}
	for _, args := range [][]string{{"ls", "--rev", "nosuch"}, {"diff", "nosuch"}, {"export", "--rev", "nosuch"}} {
		r := onesis(t, dir, args...)
		if r.code != 128 || !strings.HasPrefix(r.err, "fatal: ") {
			t.Errorf("git onesis %v: exit %d %q; want 128 with fatal:", args, r.code, r.err)
		}
	}
}
