package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/onesis/git-onesis/internal/testkit"
)

// The end-to-end tests build the real binary and drive the real git in a
// hermetic environment: HOME is a temp dir, system config is off, no
// template hooks, and no GIT_DIR/GIT_WORK_TREE/GIT_INDEX_FILE leak in.

var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "git-onesis-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	os.Chmod(dir, 0o755)
	binDir = dir
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "git-onesis"), ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building git-onesis:", err)
		os.Exit(2)
	}
	home, _ := os.MkdirTemp("", "git-onesis-home-")
	os.Chmod(home, 0o755)
	tmpl, _ := os.MkdirTemp("", "git-onesis-tmpl-")
	os.Chmod(tmpl, 0o755)
	for _, k := range []string{"GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_COMMON_DIR", "XDG_CONFIG_HOME"} {
		os.Unsetenv(k)
	}
	os.Setenv("HOME", home)
	os.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	os.Setenv("GIT_TEMPLATE_DIR", tmpl)
	os.Setenv("GIT_AUTHOR_NAME", "Test Admin")
	os.Setenv("GIT_AUTHOR_EMAIL", "admin@example.invalid")
	os.Setenv("GIT_COMMITTER_NAME", "Test Admin")
	os.Setenv("GIT_COMMITTER_EMAIL", "admin@example.invalid")
	os.Setenv("PATH", dir+":"+os.Getenv("PATH"))
	os.WriteFile(filepath.Join(home, ".gitconfig"), []byte("[init]\n\tdefaultBranch = main\n[safe]\n\tdirectory = *\n"), 0o644)
	code := m.Run()
	os.RemoveAll(dir)
	os.RemoveAll(home)
	os.RemoveAll(tmpl)
	os.Exit(code)
}

type result struct {
	out, err string
	code     int
}

// run executes a command in dir and returns its output and exit code.
func runIn(t *testing.T, dir string, name string, args ...string) result {
	t.Helper()
	return runEnv(t, dir, nil, name, args...)
}

func runEnv(t *testing.T, dir string, env []string, name string, args ...string) result {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	return runCmd(t, cmd)
}

// runCmd runs cmd and returns its output and exit code; a command that
// cannot start fails the test.
func runCmd(t *testing.T, cmd *exec.Cmd) result {
	t.Helper()
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%v: %v", cmd.Args, err)
	}
	return result{o.String(), e.String(), code}
}

// must runs a command and fails the test unless it exits 0.
func must(t *testing.T, dir string, name string, args ...string) string {
	t.Helper()
	r := runIn(t, dir, name, args...)
	if r.code != 0 {
		t.Fatalf("%s %s: exit %d\nstdout: %s\nstderr: %s", name, strings.Join(args, " "), r.code, r.out, r.err)
	}
	return r.out
}

func onesis(t *testing.T, dir string, args ...string) result {
	t.Helper()
	return runIn(t, dir, "git", append([]string{"onesis"}, args...)...)
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create devices and set owners; CI runs as root")
	}
}

// toolPackages names the Debian package of each tool the tests here use.
var toolPackages = map[string]string{
	"mtree": "mtree-netbsd", "bsdtar": "libarchive-tools",
	"getfattr": "attr", "setfattr": "attr", "setfacl": "acl", "getfacl": "acl",
	"setcap": "libcap2-bin", "getcap": "libcap2-bin", "rsync": "rsync",
	"asciidoctor": "asciidoctor", "man": "man-db", "ssh-keygen": "openssh-client",
	"apt-get": "apt", "apt-cache": "apt", "dpkg-deb": "dpkg", "make": "make",
}

// needTool fails t unless the command name is installed (see
// testkit.NeedTool).
func needTool(t *testing.T, name string) string {
	t.Helper()
	pkg, ok := toolPackages[name]
	if !ok {
		t.Fatalf("needTool: no Debian package known for %s; add it to toolPackages", name)
	}
	return testkit.NeedTool(t, name, pkg)
}

// fixture builds an image tree holding every kind of entry the issue lists.
// The returned names are the odd paths it created.
func fixture(t *testing.T, root string) {
	t.Helper()
	w := func(p string, mode os.FileMode, body string) {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := unix.Chmod(full, uint32(mode)); err != nil {
			t.Fatal(err)
		}
	}
	chk := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	w("etc/passwd", 0o644, "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1::/:/bin/false\nalice:x:1000:1000::/home/alice:/bin/sh\nbob:x:1234:1234::/home/bob:/bin/sh\n")
	w("etc/group", 0o644, "root:x:0:\ntty:x:5:\nshadow:x:42:\nalice:x:1000:\nbob:x:1234:\n")
	w("etc/shadow", 0o000, "root:*:1::::::\n")
	w("etc/secret", 0o600, "s3cret\n")
	chk(os.Chown(filepath.Join(root, "etc/shadow"), 0, 42))
	w("usr/bin/su", 0o4755, "#!/bin/sh\n")
	w("usr/bin/wall", 0o755, "#!/bin/sh\n")
	chk(os.Chown(filepath.Join(root, "usr/bin/wall"), 0, 5))
	chk(unix.Chmod(filepath.Join(root, "usr/bin/wall"), 0o2755)) // after chown, which clears setgid
	w("usr/bin/ping", 0o755, "#!/bin/sh\necho ping\n")
	chk(os.MkdirAll(filepath.Join(root, "tmp"), 0o755))
	chk(unix.Chmod(filepath.Join(root, "tmp"), 0o1777))
	chk(os.MkdirAll(filepath.Join(root, "home/alice"), 0o750))
	chk(os.Chown(filepath.Join(root, "home/alice"), 1000, 1000))
	w("home/alice/.profile", 0o644, "PATH=/bin\n")
	chk(os.Chown(filepath.Join(root, "home/alice/.profile"), 1000, 1000))
	chk(os.Symlink("/etc/passwd", filepath.Join(root, "etc/abslink")))
	chk(unix.Lchown(filepath.Join(root, "etc/abslink"), 1000, 1000))
	chk(os.Symlink("../nowhere/at/all", filepath.Join(root, "etc/dangling")))
	chk(os.MkdirAll(filepath.Join(root, "dev/pts"), 0o755))
	chk(unix.Mknod(filepath.Join(root, "dev/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	chk(unix.Chmod(filepath.Join(root, "dev/null"), 0o666))
	chk(unix.Mknod(filepath.Join(root, "dev/loop0"), unix.S_IFBLK|0o660, int(unix.Mkdev(7, 0))))
	chk(os.Chown(filepath.Join(root, "dev/loop0"), 0, 6))
	chk(unix.Chmod(filepath.Join(root, "dev/loop0"), 0o660))
	chk(unix.Mkfifo(filepath.Join(root, "dev/initctl"), 0o600))
	chk(os.MkdirAll(filepath.Join(root, "run"), 0o755))
	chk(os.MkdirAll(filepath.Join(root, "var/spool/sock"), 0o755))
	l, err := net.Listen("unix", filepath.Join(root, "var/spool/sock/s"))
	chk(err)
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	chk(os.MkdirAll(filepath.Join(root, "var/empty/a/b/c"), 0o711))
	chk(os.MkdirAll(filepath.Join(root, "srv/other-owner"), 0o770))
	chk(os.Chown(filepath.Join(root, "srv/other-owner"), 1234, 5))
	w("usr/lib/libfoo.so.1", 0o644, "ELF-ish\n")
	chk(os.Link(filepath.Join(root, "usr/lib/libfoo.so.1"), filepath.Join(root, "usr/lib/libfoo-hard.so")))
	must(t, root, "setcap", "cap_net_raw+ep", "usr/bin/ping")
	must(t, root, "setfattr", "-n", "user.note", "-v", "hello", "etc/secret")
	must(t, root, "setfacl", "-m", "u:1000:r", "home/alice/.profile")
	w("odd/with space", 0o640, "x\n")
	w("odd/new\nline", 0o600, "x\n")
	w("odd/caf\xe9-latin1", 0o644, "x\n")
	w("odd/x  mode=0777  uid=0  gid=0", 0o644, "x\n")
	w("odd/-leading-dash", 0o644, "x\n")
	w("odd/back\\slash\ttab", 0o644, "x\n")
}

// findListing is an independent view of a tree from find(1): path, type,
// mode, owner, device numbers (from stat(1)) and link target, without .git.
func findListing(t *testing.T, root string) string {
	t.Helper()
	out := must(t, root, "find", ".", "-path", "./.git", "-prune", "-o", "-printf", `%P|%y|%#m|%U|%G|%l\0`)
	var lines []string
	for _, rec := range strings.Split(out, "\x00") {
		if rec == "" || strings.HasPrefix(rec, "|") && strings.Count(rec, "|") == 5 && rec[:1] == "|" && false {
			continue
		}
		if rec == "" {
			continue
		}
		p := strings.SplitN(rec, "|", 2)[0]
		var st unix.Stat_t
		if p != "" && unix.Lstat(filepath.Join(root, p), &st) == nil && (st.Mode&unix.S_IFMT == unix.S_IFCHR || st.Mode&unix.S_IFMT == unix.S_IFBLK) {
			rec += fmt.Sprintf("|%d,%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
		}
		lines = append(lines, rec)
	}
	// find lists a directory in getdents order, which is the order of the
	// names' hashes on ext4 but of creation on tmpfs: two trees holding
	// the same objects would compare unequal there.
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// xattrListing is getfattr's view of every xattr in the tree (symlinks not
// followed), with the root prefix removed.
func xattrListing(t *testing.T, root string) string {
	t.Helper()
	r := runIn(t, root, "getfattr", "-R", "-P", "-h", "-d", "-m", "-", "-e", "hex", ".")
	// One block per file, in getdents order (see findListing): sorted by
	// the file's name.
	var blocks []string
	var cur []string
	flush := func() {
		if len(cur) > 0 {
			blocks = append(blocks, strings.Join(cur, "\n"))
			cur = nil
		}
	}
	skip := false
	for _, l := range strings.Split(r.out, "\n") {
		if strings.HasPrefix(l, "# file: ") {
			flush()
			skip = strings.HasPrefix(l, "# file: .git/") || l == "# file: .git"
		}
		if !skip && l != "" {
			cur = append(cur, l)
		}
	}
	flush()
	sort.Strings(blocks)
	return strings.Join(blocks, "\n\n")
}

func inode(t *testing.T, p string) (uint64, int64) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino, st.Ctim.Nano()
}

// asUser returns a SysProcAttr that runs a child as uid/gid.
func asUser(uid, gid uint32) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
}

// nobodyImage builds the fixture image as root, commits it with git-onesis
// with nobody's group (nogroup, 65534) as the reviewers' group, and prepares
// a home for user nobody. run runs a command as nobody with that HOME (its
// git trusts every directory).
func nobodyImage(t *testing.T) (base, img, home string, run func(dir string, args ...string) result) {
	t.Helper()
	base, home, _ = adminBase(t)
	img = filepath.Join(base, "image")
	os.Mkdir(img, 0o755)
	fixture(t, img)
	if r := onesis(t, img, "init", "--commit", "-q", "--reviewers", "65534"); r.code != 0 {
		t.Fatalf("init: %s", r.err)
	}
	run = func(dir string, args ...string) result {
		t.Helper()
		return userRun(t, nobodyID, nobodyID, home, dir, args...)
	}
	return base, img, home, run
}

// userRun runs a command as uid:gid (no supplementary groups) in dir,
// with HOME set to home.
func userRun(t *testing.T, uid, gid uint32, home, dir string, args ...string) result {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+home)
	cmd.SysProcAttr = asUser(uid, gid)
	return runCmd(t, cmd)
}
