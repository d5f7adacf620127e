package meta

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// apText builds a .gitmeta from entry lines.
func apText(lines ...string) string {
	return Signature + "\n" + FormatLine + "\n" + strings.Join(lines, "\n") + "\n"
}

func apParse(t *testing.T, lines ...string) *Manifest {
	t.Helper()
	m, err := ParseBytes([]byte(apText(lines...)))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return m
}

func apRequireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

func apLstat(t *testing.T, p string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatalf("lstat %s: %v", p, err)
	}
	return st
}

func apXattr(t *testing.T, p, name string) []byte {
	t.Helper()
	buf := make([]byte, 4096)
	n, err := unix.Lgetxattr(p, name, buf)
	if err != nil {
		return nil
	}
	return buf[:n]
}

func apApply(t *testing.T, root string, m *Manifest, opts ApplyOptions) *ApplyResult {
	t.Helper()
	res, err := Apply(root, m, opts)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return res
}

func apNoErrors(t *testing.T, res *ApplyResult) {
	t.Helper()
	for _, err := range res.Errors {
		t.Errorf("apply error: %v", err)
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// capNetRaw is a VFS_CAP_REVISION_2 security.capability value granting
// cap_net_raw, effective.
var capNetRaw = []byte{0x01, 0, 0, 0x02, 0x00, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}

// aclUser1000 is a system.posix_acl_access value: u::rw-,u:1000:r--,g::r--,m::r--,o::r--.
var aclUser1000 = func() []byte {
	var b bytes.Buffer
	le32 := func(v uint32) { b.Write([]byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)}) }
	ent := func(tag, perm uint16, id uint32) {
		b.Write([]byte{byte(tag), byte(tag >> 8), byte(perm), byte(perm >> 8)})
		le32(id)
	}
	le32(2)
	ent(0x01, 6, 0xffffffff)
	ent(0x02, 4, 1000)
	ent(0x04, 4, 0xffffffff)
	ent(0x10, 4, 0xffffffff)
	ent(0x20, 4, 0xffffffff)
	return b.Bytes()
}()

func TestApplyFullFreshTree(t *testing.T) {
	apRequireRoot(t)
	root := t.TempDir()
	// What git would have checked out: regular files and symlinks, with
	// the umask's modes and root's ownership.
	must(t, os.MkdirAll(filepath.Join(root, "bin"), 0o755))
	must(t, os.MkdirAll(filepath.Join(root, "etc"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, "bin/su"), []byte("su"), 0o644))
	must(t, os.WriteFile(filepath.Join(root, "bin/wall"), []byte("wall"), 0o644))
	must(t, os.WriteFile(filepath.Join(root, "bin/ping"), []byte("ping"), 0o644))
	must(t, os.WriteFile(filepath.Join(root, "bin/ls"), []byte("ls"), 0o644))
	must(t, os.WriteFile(filepath.Join(root, "bin/dir"), []byte("ls"), 0o644)) // a hard link git split in two
	must(t, os.WriteFile(filepath.Join(root, "etc/shadow"), []byte("x"), 0o644))
	must(t, os.WriteFile(filepath.Join(root, "etc/secret"), []byte("x"), 0o644))
	must(t, os.WriteFile(filepath.Join(root, "etc/acl"), []byte("x"), 0o644))
	must(t, os.Symlink("/etc/passwd", filepath.Join(root, "etc/abs")))
	passwdBefore := apLstat(t, "/etc/passwd")

	m := apParse(t,
		".  mode=0755  uid=0  gid=0  type=dir",
		"./bin  mode=0755  uid=0  gid=0  type=dir",
		"./bin/dir  mode=0755  uid=0  gid=0  type=file",
		"./bin/ls  mode=0755  uid=0  gid=0  type=file  hardlink=./bin/dir",
		"./bin/ping  mode=0755  uid=0  gid=0  type=file  xattr.security.capability="+b64(capNetRaw),
		"./bin/su  mode=04755  uid=0  gid=0  type=file",
		"./bin/wall  mode=02755  uid=0  gid=5  type=file",
		"./dev  mode=0755  uid=0  gid=0  type=dir",
		"./dev/initctl  mode=0600  uid=0  gid=0  type=fifo",
		"./dev/log  mode=0666  uid=0  gid=0  type=socket",
		"./dev/loop0  mode=0660  uid=0  gid=6  type=block  device=native,7,0",
		"./dev/null  mode=0666  uid=0  gid=0  type=char  device=native,1,3",
		"./dev/null2  mode=0666  uid=0  gid=0  type=char  device=native,1,3  hardlink=./dev/null",
		"./empty  mode=0700  uid=0  gid=0  type=dir",
		"./empty/a  mode=0750  uid=1000  gid=1000  type=dir",
		"./empty/a/b  mode=0555  uid=0  gid=0  type=dir  empty=1",
		"./etc  mode=0755  uid=0  gid=0  type=dir",
		"./etc/abs  mode=0777  uid=1234  gid=1234  type=link  link=/etc/passwd",
		"./etc/acl  mode=0644  uid=0  gid=0  type=file  xattr.system.posix_acl_access="+b64(aclUser1000),
		"./etc/secret  mode=0600  uid=0  gid=42  type=file  xattr.user.note="+b64([]byte("hi")),
		"./etc/shadow  mode=0  uid=0  gid=42  type=file",
		"./tmp  mode=01777  uid=0  gid=0  type=dir  empty=1",
		"./var  mode=02775  uid=0  gid=50  type=dir",
		"./var/missing  mode=0644  uid=0  gid=0  type=file",
	)
	var log []string
	res := apApply(t, root, m, ApplyOptions{Log: func(s string) { log = append(log, s) }})
	apNoErrors(t, res)
	if want := []string{"var/missing"}; fmt.Sprint(res.Missing) != fmt.Sprint(want) {
		t.Errorf("Missing = %v, want %v", res.Missing, want)
	}
	if res.Visited != len(m.Entries) {
		t.Errorf("Visited = %d, want %d", res.Visited, len(m.Entries))
	}
	// dev, dev/* (5), empty, empty/a, empty/a/b, tmp, var
	if res.Created != 11 {
		t.Errorf("Created = %d, want 11; log:\n%s", res.Created, strings.Join(log, "\n"))
	}

	checks := []struct {
		path     string
		typ      uint32
		mode     uint32
		uid, gid uint32
		rdev     [2]uint32
	}{
		{".", unix.S_IFDIR, 0o755, 0, 0, [2]uint32{}},
		{"bin/su", unix.S_IFREG, 0o4755, 0, 0, [2]uint32{}},
		{"bin/wall", unix.S_IFREG, 0o2755, 0, 5, [2]uint32{}},
		{"dev/initctl", unix.S_IFIFO, 0o600, 0, 0, [2]uint32{}},
		{"dev/log", unix.S_IFSOCK, 0o666, 0, 0, [2]uint32{}},
		{"dev/loop0", unix.S_IFBLK, 0o660, 0, 6, [2]uint32{7, 0}},
		{"dev/null", unix.S_IFCHR, 0o666, 0, 0, [2]uint32{1, 3}},
		{"empty/a", unix.S_IFDIR, 0o750, 1000, 1000, [2]uint32{}},
		{"empty/a/b", unix.S_IFDIR, 0o555, 0, 0, [2]uint32{}},
		{"etc/shadow", unix.S_IFREG, 0, 0, 42, [2]uint32{}},
		{"etc/secret", unix.S_IFREG, 0o600, 0, 42, [2]uint32{}},
		{"tmp", unix.S_IFDIR, 0o1777, 0, 0, [2]uint32{}},
		{"var", unix.S_IFDIR, 0o2775, 0, 50, [2]uint32{}},
	}
	for _, c := range checks {
		st := apLstat(t, filepath.Join(root, c.path))
		if st.Mode&unix.S_IFMT != c.typ || st.Mode&07777 != c.mode || st.Uid != c.uid || st.Gid != c.gid {
			t.Errorf("%s: type %#o mode %#o owner %d:%d, want type %#o mode %#o owner %d:%d",
				c.path, st.Mode&unix.S_IFMT, st.Mode&07777, st.Uid, st.Gid, c.typ, c.mode, c.uid, c.gid)
		}
		if c.typ == unix.S_IFCHR || c.typ == unix.S_IFBLK {
			if unix.Major(st.Rdev) != c.rdev[0] || unix.Minor(st.Rdev) != c.rdev[1] {
				t.Errorf("%s: device %d,%d, want %d,%d", c.path, unix.Major(st.Rdev), unix.Minor(st.Rdev), c.rdev[0], c.rdev[1])
			}
		}
	}
	// Hard links: git's split copy was relinked, the device pair linked.
	if a, b := apLstat(t, filepath.Join(root, "bin/ls")), apLstat(t, filepath.Join(root, "bin/dir")); a.Ino != b.Ino {
		t.Errorf("bin/ls is not a hard link of bin/dir")
	}
	if a, b := apLstat(t, filepath.Join(root, "dev/null")), apLstat(t, filepath.Join(root, "dev/null2")); a.Ino != b.Ino {
		t.Errorf("dev/null2 is not a hard link of dev/null")
	}
	// xattrs, raw bytes.
	if got := apXattr(t, filepath.Join(root, "bin/ping"), "security.capability"); !bytes.Equal(got, capNetRaw) {
		t.Errorf("bin/ping security.capability = %x, want %x", got, capNetRaw)
	}
	if got := apXattr(t, filepath.Join(root, "etc/acl"), "system.posix_acl_access"); !bytes.Equal(got, aclUser1000) {
		t.Errorf("etc/acl ACL = %x, want %x", got, aclUser1000)
	}
	if got := apXattr(t, filepath.Join(root, "etc/secret"), "user.note"); string(got) != "hi" {
		t.Errorf("etc/secret user.note = %q", got)
	}
	// The symlink itself was chowned; /etc/passwd was not touched.
	if st := apLstat(t, filepath.Join(root, "etc/abs")); st.Uid != 1234 || st.Gid != 1234 {
		t.Errorf("etc/abs symlink owner %d:%d, want 1234:1234", st.Uid, st.Gid)
	}
	passwdAfter := apLstat(t, "/etc/passwd")
	if passwdAfter.Uid != passwdBefore.Uid || passwdAfter.Gid != passwdBefore.Gid || passwdAfter.Mode != passwdBefore.Mode || passwdAfter.Ctim != passwdBefore.Ctim {
		t.Fatalf("/etc/passwd changed: before %+v after %+v", passwdBefore, passwdAfter)
	}

	// A second apply is a no-op.
	log = nil
	res = apApply(t, root, m, ApplyOptions{Log: func(s string) { log = append(log, s) }})
	apNoErrors(t, res)
	if res.Changed != 0 || len(res.Touched) != 0 || len(log) != 0 {
		t.Errorf("second apply changed %d entries: %v", res.Changed, log)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestApplySetgidSurvivesChown is setgitperms bug 3: chmod 2755 before
// chown root:tty lost the setgid bit until a second run.
func TestApplySetgidSurvivesChown(t *testing.T) {
	apRequireRoot(t)
	tests := []struct {
		name     string
		startGID int
		mode     uint32
		uid, gid uint32
	}{
		{"setgid to tty", 0, 0o2755, 0, 5},
		{"setuid to other user", 0, 0o4755, 1000, 0},
		{"both already set but wrong group", 7, 0o6755, 0, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			p := filepath.Join(root, "f")
			must(t, os.WriteFile(p, []byte("x"), 0o755))
			must(t, os.Chown(p, 0, tc.startGID))
			must(t, os.Chmod(p, os.FileMode(tc.mode&0o777)|unixToGoMode(tc.mode)))
			m := apParse(t, fmt.Sprintf("./f  mode=%s  uid=%d  gid=%d  type=file", FormatMode(tc.mode), tc.uid, tc.gid))
			res := apApply(t, root, m, ApplyOptions{})
			apNoErrors(t, res)
			st := apLstat(t, p)
			if st.Mode&07777 != tc.mode || st.Uid != tc.uid || st.Gid != tc.gid {
				t.Errorf("after one apply: mode %#o owner %d:%d, want %#o %d:%d", st.Mode&07777, st.Uid, st.Gid, tc.mode, tc.uid, tc.gid)
			}
		})
	}
}

func unixToGoMode(m uint32) os.FileMode {
	var f os.FileMode
	if m&0o4000 != 0 {
		f |= os.ModeSetuid
	}
	if m&0o2000 != 0 {
		f |= os.ModeSetgid
	}
	if m&0o1000 != 0 {
		f |= os.ModeSticky
	}
	return f
}

func TestApplyChownKeepsCapability(t *testing.T) {
	apRequireRoot(t)
	root := t.TempDir()
	p := filepath.Join(root, "ping")
	must(t, os.WriteFile(p, []byte("x"), 0o755))
	must(t, unix.Setxattr(p, "security.capability", capNetRaw, 0))
	// Entry: other owner, same capability. The chown clears it; Apply must
	// put it back in the same run.
	m := apParse(t, "./ping  mode=0755  uid=0  gid=1000  type=file  xattr.security.capability="+b64(capNetRaw))
	res := apApply(t, root, m, ApplyOptions{})
	apNoErrors(t, res)
	if got := apXattr(t, p, "security.capability"); !bytes.Equal(got, capNetRaw) {
		t.Errorf("capability after chown = %x, want %x", got, capNetRaw)
	}
}

func TestApplyXattrsExact(t *testing.T) {
	apRequireRoot(t)
	root := t.TempDir()
	p := filepath.Join(root, "f")
	must(t, os.WriteFile(p, []byte("x"), 0o644))
	must(t, unix.Setxattr(p, "user.stale", []byte("old"), 0))
	must(t, unix.Setxattr(p, "user.keep", []byte("v1"), 0))
	m := apParse(t, "./f  mode=0644  uid=0  gid=0  type=file  xattr.user.keep="+b64([]byte("v2"))+"  xattr.user.new="+b64([]byte{0, 1, 2, 255}))
	res := apApply(t, root, m, ApplyOptions{})
	apNoErrors(t, res)
	if got := apXattr(t, p, "user.stale"); got != nil {
		t.Errorf("user.stale not removed: %q", got)
	}
	if got := apXattr(t, p, "user.keep"); string(got) != "v2" {
		t.Errorf("user.keep = %q", got)
	}
	if got := apXattr(t, p, "user.new"); !bytes.Equal(got, []byte{0, 1, 2, 255}) {
		t.Errorf("user.new = %x", got)
	}
	if fmt.Sprint(res.Touched) != "[f]" {
		t.Errorf("Touched = %v", res.Touched)
	}
}

func TestApplyIncremental(t *testing.T) {
	apRequireRoot(t)
	root := t.TempDir()
	for _, f := range []string{"a", "b", "c", "d"} {
		must(t, os.WriteFile(filepath.Join(root, f), []byte(f), 0o644))
	}
	old := apParse(t,
		".  mode=0755  uid=0  gid=0  type=dir",
		"./a  mode=0644  uid=0  gid=0  type=file",
		"./b  mode=0644  uid=0  gid=0  type=file",
		"./c  mode=0644  uid=0  gid=0  type=file",
		"./d  mode=0644  uid=0  gid=0  type=file",
		"./dev  mode=0755  uid=0  gid=0  type=dir",
		"./dev/gone  mode=0600  uid=0  gid=0  type=char  device=native,1,5",
		"./dev/kept  mode=0600  uid=0  gid=0  type=char  device=native,1,7",
		"./dev/modified  mode=0600  uid=0  gid=0  type=fifo",
		"./olddir  mode=0755  uid=0  gid=0  type=dir  empty=1",
	)
	res := apApply(t, root, old, ApplyOptions{})
	apNoErrors(t, res)
	must(t, os.Chmod(filepath.Join(root, "dev/modified"), 0o640)) // an admin's change: keep it
	new := apParse(t,
		".  mode=0755  uid=0  gid=0  type=dir",
		"./a  mode=0644  uid=0  gid=0  type=file",
		"./b  mode=0600  uid=0  gid=0  type=file", // changed
		"./c  mode=0644  uid=0  gid=0  type=file",
		"./d  mode=0644  uid=0  gid=0  type=file", // rewritten by git (Paths)
		"./dev  mode=0755  uid=0  gid=0  type=dir",
		"./dev/kept  mode=0600  uid=0  gid=0  type=char  device=native,1,7",
	)
	// git rewrote d with the umask.
	must(t, os.Chmod(filepath.Join(root, "d"), 0o664))
	// a drifted, but its entry did not change and git did not touch it:
	// an incremental apply does not look at it.
	must(t, os.Chmod(filepath.Join(root, "a"), 0o600))
	ctimeC := apLstat(t, filepath.Join(root, "c")).Ctim

	res = apApply(t, root, new, ApplyOptions{Old: old, Paths: []string{"d", "not/in/manifest"}})
	apNoErrors(t, res)
	if res.Visited != 2 {
		t.Errorf("Visited = %d, want 2 (b changed, d in Paths)", res.Visited)
	}
	if fmt.Sprint(res.Touched) != "[b d]" {
		t.Errorf("Touched = %v, want [b d]", res.Touched)
	}
	if res.Removed != 2 {
		t.Errorf("Removed = %d, want 2 (dev/gone, olddir)", res.Removed)
	}
	for p, want := range map[string]bool{"dev/gone": false, "olddir": false, "dev/kept": true, "dev/modified": true} {
		_, err := os.Lstat(filepath.Join(root, p))
		if (err == nil) != want {
			t.Errorf("%s exists=%v, want %v", p, err == nil, want)
		}
	}
	if got := apLstat(t, filepath.Join(root, "c")).Ctim; got != ctimeC {
		t.Errorf("unchanged file c was touched (ctime moved)")
	}
	if st := apLstat(t, filepath.Join(root, "a")); st.Mode&0o777 != 0o600 {
		t.Errorf("a was visited by an incremental apply")
	}
	if st := apLstat(t, filepath.Join(root, "d")); st.Mode&0o777 != 0o644 {
		t.Errorf("d mode %#o, want 0644", st.Mode&0o777)
	}
}

func TestApplyDryRun(t *testing.T) {
	apRequireRoot(t)
	root := t.TempDir()
	must(t, os.WriteFile(filepath.Join(root, "f"), []byte("x"), 0o644))
	m := apParse(t,
		"./d  mode=0755  uid=0  gid=0  type=dir",
		"./d/e  mode=0755  uid=0  gid=0  type=dir  empty=1",
		"./d/null  mode=0666  uid=0  gid=0  type=char  device=native,1,3",
		"./f  mode=0600  uid=7  gid=7  type=file",
	)
	var log []string
	res := apApply(t, root, m, ApplyOptions{DryRun: true, Log: func(s string) { log = append(log, s) }})
	apNoErrors(t, res)
	if res.Created != 3 || res.Changed != 4 || len(res.Touched) != 0 {
		t.Errorf("dry run: Created %d Changed %d Touched %v; log %q", res.Created, res.Changed, res.Touched, log)
	}
	if _, err := os.Lstat(filepath.Join(root, "d")); err == nil {
		t.Errorf("dry run created d")
	}
	if st := apLstat(t, filepath.Join(root, "f")); st.Mode&0o777 != 0o644 || st.Uid != 0 {
		t.Errorf("dry run changed f")
	}
}

func TestApplyTypeMismatchLeftAlone(t *testing.T) {
	apRequireRoot(t)
	tests := []struct {
		name  string
		setup func(root string)
		line  string
		want  string
	}{
		{"fifo entry over a file", func(r string) { os.WriteFile(filepath.Join(r, "x"), []byte("data"), 0o644) },
			"./x  mode=0600  uid=0  gid=0  type=fifo", "is a regular file in the tree but a fifo in .gitmeta"},
		{"dir entry over a symlink", func(r string) { os.Symlink("/tmp", filepath.Join(r, "x")) },
			"./x  mode=0700  uid=0  gid=0  type=dir", "is a symlink in the tree but a directory"},
		{"link entry with other target", func(r string) { os.Symlink("a", filepath.Join(r, "x")) },
			"./x  mode=0777  uid=0  gid=0  type=link  link=b", "git carries symlinks"},
		{"dir entry over a fifo", func(r string) { unix.Mkfifo(filepath.Join(r, "x"), 0o600) },
			"./x  mode=0700  uid=0  gid=0  type=dir  empty=1", "is a fifo in the tree but a directory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			tc.setup(root)
			before := apLstat(t, filepath.Join(root, "x"))
			res := apApply(t, root, apParse(t, tc.line), ApplyOptions{})
			if len(res.Errors) != 1 || !strings.Contains(res.Errors[0].Error(), tc.want) {
				t.Fatalf("errors = %v, want one containing %q", res.Errors, tc.want)
			}
			if after := apLstat(t, filepath.Join(root, "x")); after.Ino != before.Ino || after.Ctim != before.Ctim {
				t.Errorf("x was changed")
			}
		})
	}
}

// TestApplyHelperProcess is not a real test: it is the body of the
// subprocesses the tests below start (re-executing the test binary).
func TestApplyHelperProcess(t *testing.T) {
	switch os.Getenv("ONESIS_APPLY_HELPER") {
	case "":
		t.Skip("helper process only")
	case "apply":
		m, err := ParseBytes([]byte(os.Getenv("ONESIS_MANIFEST")))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		var log []string
		res, err := Apply(os.Getenv("ONESIS_ROOT"), m, ApplyOptions{Log: func(s string) { log = append(log, s) }})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(4)
		}
		var errs []string
		for _, e := range res.Errors {
			errs = append(errs, e.Error())
		}
		json.NewEncoder(os.Stdout).Encode(map[string]any{
			"OwnershipSkipped": res.OwnershipSkipped, "DevicesSkipped": res.DevicesSkipped,
			"OwnerAccessKept": res.OwnerAccessKept,
			"Created":         res.Created, "Errors": errs, "Euid": os.Geteuid(), "Log": log,
		})
		os.Exit(0)
	case "write":
		writeLoop()
	}
}

func TestApplyNonRoot(t *testing.T) {
	apRequireRoot(t)
	const nobody = 65534
	root := t.TempDir()
	must(t, os.Chmod(filepath.Dir(root), 0o755))
	must(t, os.Chown(root, nobody, nobody))
	must(t, os.WriteFile(filepath.Join(root, "su"), []byte("x"), 0o644))
	must(t, os.Chown(filepath.Join(root, "su"), nobody, nobody))
	must(t, os.WriteFile(filepath.Join(root, "shadow"), []byte("x"), 0o644))
	must(t, os.Chown(filepath.Join(root, "shadow"), nobody, nobody))
	m := apText(
		".  mode=0755  uid=0  gid=0  type=dir",
		"./d  mode=0555  uid=0  gid=0  type=dir",
		"./d/fifo  mode=0640  uid=0  gid=0  type=fifo",
		"./null  mode=0666  uid=0  gid=0  type=char  device=native,1,3",
		"./shadow  mode=0  uid=0  gid=42  type=file",
		"./su  mode=0700  uid=0  gid=0  type=file  xattr.trusted.x="+b64([]byte("1"))+"  xattr.user.y="+b64([]byte("2")),
	)
	// The test binary lives in a private build directory; give nobody a copy.
	bin := filepath.Join(filepath.Dir(root), "meta.test")
	exe, err := os.ReadFile(os.Args[0])
	must(t, err)
	must(t, os.WriteFile(bin, exe, 0o755))
	cmd := exec.Command(bin, "-test.run=^TestApplyHelperProcess$")
	cmd.Env = append(os.Environ(), "ONESIS_APPLY_HELPER=apply", "ONESIS_ROOT="+root, "ONESIS_MANIFEST="+m)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	var got struct {
		OwnershipSkipped, DevicesSkipped, OwnerAccessKept, Created, Euid int
		Errors, Log                                                      []string
	}
	if err := json.Unmarshal(out[:bytes.IndexByte(out, '\n')+1], &got); err != nil {
		t.Fatalf("helper output %q: %v", out, err)
	}
	if got.Euid != nobody {
		t.Fatalf("helper ran as %d", got.Euid)
	}
	if len(got.Errors) != 0 {
		t.Errorf("non-root apply errors: %q", got.Errors)
	}
	if got.OwnershipSkipped < 4 || got.DevicesSkipped != 1 || got.Created != 2 {
		t.Errorf("OwnershipSkipped %d (want >= 4), DevicesSkipped %d (want 1), Created %d (want 2)", got.OwnershipSkipped, got.DevicesSkipped, got.Created)
	}
	// The owner keeps access to its own files and directories (d is
	// recorded 0555, shadow 0000): root needs none, a non-root clone does.
	if got.OwnerAccessKept != 2 {
		t.Errorf("OwnerAccessKept %d, want 2 (d and shadow)", got.OwnerAccessKept)
	}
	// Verbose apply lists what it did, never what the kernel refused.
	for _, l := range got.Log {
		if strings.HasPrefix(l, "chown") || strings.HasPrefix(l, "mknod") || strings.HasPrefix(l, "setxattr trusted.") {
			t.Errorf("non-root apply logged a change it could not make: %q", l)
		}
	}
	if !slices.Contains(got.Log, "chmod 0400 shadow") {
		t.Errorf("log lacks the chmod it made: %q", got.Log)
	}
	for p, mode := range map[string]uint32{"d": 0o755, "d/fifo": 0o640, "su": 0o700, "shadow": 0o400} {
		if st := apLstat(t, filepath.Join(root, p)); st.Mode&07777 != mode {
			t.Errorf("%s mode %#o, want %#o", p, st.Mode&07777, mode)
		}
	}
	if got := apXattr(t, filepath.Join(root, "su"), "user.y"); string(got) != "2" {
		t.Errorf("user.y not set as non-root: %q", got)
	}
}

// TestApplyNoopCost checks that a no-op apply costs about one fstatat and
// one llistxattr per entry, by timing a few thousand entries (a sanity
// bound, not a benchmark).
func TestApplyNoopCost(t *testing.T) {
	root := t.TempDir()
	var lines []string
	lines = append(lines, fmt.Sprintf(".  mode=%s  uid=%d  gid=%d  type=dir", FormatMode(apLstat(t, root).Mode&07777), os.Geteuid(), os.Getegid()))
	for d := 0; d < 20; d++ {
		dir := fmt.Sprintf("d%02d", d)
		must(t, os.Mkdir(filepath.Join(root, dir), 0o755))
		lines = append(lines, fmt.Sprintf("./%s  mode=0755  uid=%d  gid=%d  type=dir", dir, os.Geteuid(), os.Getegid()))
		for f := 0; f < 250; f++ {
			p := fmt.Sprintf("%s/f%03d", dir, f)
			must(t, os.WriteFile(filepath.Join(root, p), nil, 0o644))
			must(t, os.Chmod(filepath.Join(root, p), 0o644))
			lines = append(lines, fmt.Sprintf("./%s  mode=0644  uid=%d  gid=%d  type=file", p, os.Geteuid(), os.Getegid()))
		}
	}
	sort.Strings(lines[1:])
	m := apParse(t, lines...)
	res := apApply(t, root, m, ApplyOptions{})
	apNoErrors(t, res)
	if res.Changed != 0 || res.Visited != len(m.Entries) {
		t.Errorf("no-op apply: Changed %d Visited %d", res.Changed, res.Visited)
	}
}

func BenchmarkApplyNoop(b *testing.B) {
	root := b.TempDir()
	var lines []string
	uid, gid := os.Geteuid(), os.Getegid()
	for d := 0; d < 100; d++ {
		dir := fmt.Sprintf("d%03d", d)
		os.Mkdir(filepath.Join(root, dir), 0o755)
		os.Chmod(filepath.Join(root, dir), 0o755)
		lines = append(lines, fmt.Sprintf("./%s  mode=0755  uid=%d  gid=%d  type=dir", dir, uid, gid))
		for f := 0; f < 100; f++ {
			p := fmt.Sprintf("%s/f%03d", dir, f)
			os.WriteFile(filepath.Join(root, p), nil, 0o644)
			os.Chmod(filepath.Join(root, p), 0o644)
			lines = append(lines, fmt.Sprintf("./%s  mode=0644  uid=%d  gid=%d  type=file", p, uid, gid))
		}
	}
	m, err := ParseBytes([]byte(apText(lines...)))
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := Apply(root, m, ApplyOptions{})
		if err != nil || res.Changed != 0 || len(res.Errors) != 0 {
			b.Fatalf("%v %+v", err, res)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(m.Entries)), "ns/entry")
}

// BenchmarkApplySyscalls compares the per-entry syscalls of a no-op apply.
func BenchmarkApplySyscalls(b *testing.B) {
	dir := b.TempDir()
	os.WriteFile(filepath.Join(dir, "f"), nil, 0o644)
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(fd)
	buf := make([]byte, 256)
	b.Run("fstatat", func(b *testing.B) {
		var st unix.Stat_t
		for i := 0; i < b.N; i++ {
			unix.Fstatat(fd, "f", &st, unix.AT_SYMLINK_NOFOLLOW)
		}
	})
	b.Run("llistxattr-proc", func(b *testing.B) {
		p := procFD(fd) + "/f"
		for i := 0; i < b.N; i++ {
			unix.Llistxattr(p, buf)
		}
	})
	b.Run("listxattrat", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := listxattrat(fd, "f", buf); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestApplyReplacesOwnSpecials: an object Apply made from Old (still
// exactly as Old recorded it) may be replaced when the new manifest
// changes its type or device numbers; one an admin changed may not.
func TestApplyReplacesOwnSpecials(t *testing.T) {
	apRequireRoot(t)
	tests := []struct {
		name      string
		old, new  string
		tamper    func(p string)
		wantType  uint32
		wantError string
	}{
		{"fifo becomes dir", "./x  mode=0600  uid=0  gid=0  type=fifo", "./x  mode=0700  uid=0  gid=0  type=dir  empty=1", nil, unix.S_IFDIR, ""},
		{"device numbers change", "./x  mode=0600  uid=0  gid=0  type=char  device=native,1,5", "./x  mode=0600  uid=0  gid=0  type=char  device=native,1,3", nil, unix.S_IFCHR, ""},
		// Specials hold no data and .gitmeta is their source of truth, so
		// even one an admin changed is replaced by the recorded kind.
		{"changed special is replaced", "./x  mode=0600  uid=0  gid=0  type=fifo", "./x  mode=0600  uid=0  gid=0  type=socket",
			func(p string) { os.Chmod(p, 0o640) }, unix.S_IFSOCK, ""},
		{"swapped device without Old", "./y  mode=0600  uid=0  gid=0  type=char  device=native,8,0", "./x  mode=0600  uid=0  gid=0  type=char  device=native,1,3",
			func(p string) { unix.Mknod(p, unix.S_IFCHR|0o600, int(unix.Mkdev(8, 0))) }, unix.S_IFCHR, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			old := apParse(t, tc.old)
			apNoErrors(t, apApply(t, root, old, ApplyOptions{}))
			p := filepath.Join(root, "x")
			if tc.tamper != nil {
				tc.tamper(p)
			}
			res := apApply(t, root, apParse(t, tc.new), ApplyOptions{Old: old})
			if tc.wantError == "" {
				apNoErrors(t, res)
			} else if len(res.Errors) != 1 || !strings.Contains(res.Errors[0].Error(), tc.wantError) {
				t.Errorf("errors %v, want %q", res.Errors, tc.wantError)
			}
			st := apLstat(t, p)
			if st.Mode&unix.S_IFMT != tc.wantType {
				t.Errorf("type %#o, want %#o", st.Mode&unix.S_IFMT, tc.wantType)
			}
			if tc.wantType == unix.S_IFCHR && unix.Minor(st.Rdev) != 3 {
				t.Errorf("device minor %d, want 3", unix.Minor(st.Rdev))
			}
		})
	}
}

func TestApplyHardlinkContentDiffers(t *testing.T) {
	apRequireRoot(t)
	root := t.TempDir()
	must(t, os.WriteFile(filepath.Join(root, "a"), []byte("one"), 0o644))
	must(t, os.WriteFile(filepath.Join(root, "b"), []byte("two"), 0o644))
	m := apParse(t, "./a  mode=0644  uid=0  gid=0  type=file", "./b  mode=0644  uid=0  gid=0  type=file  hardlink=./a")
	res := apApply(t, root, m, ApplyOptions{})
	if len(res.Errors) != 1 || !strings.Contains(res.Errors[0].Error(), "content differs from its hard-link primary a") {
		t.Fatalf("errors %v", res.Errors)
	}
	if c, _ := os.ReadFile(filepath.Join(root, "b")); string(c) != "two" {
		t.Errorf("b was replaced")
	}
}

// TestApplySplitsHardLink: a file .gitmeta records as standalone but that
// the tree has hard-linked to another gets an inode of its own, keeping its
// content, both in a full apply and when its changed entry is visited
// incrementally; the group's primary is left linked to its secondaries.
func TestApplySplitsHardLink(t *testing.T) {
	apRequireRoot(t)
	for _, incremental := range []bool{false, true} {
		t.Run(fmt.Sprintf("incremental=%v", incremental), func(t *testing.T) {
			root := t.TempDir()
			must(t, os.WriteFile(filepath.Join(root, "h1"), []byte("same"), 0o644))
			must(t, os.Link(filepath.Join(root, "h1"), filepath.Join(root, "h2")))
			must(t, os.Link(filepath.Join(root, "h1"), filepath.Join(root, "h3")))
			old := apParse(t,
				"./h1  mode=0644  uid=0  gid=0  type=file",
				"./h2  mode=0644  uid=0  gid=0  type=file  hardlink=./h1",
				"./h3  mode=0644  uid=0  gid=0  type=file  hardlink=./h1")
			new := apParse(t,
				"./h1  mode=0644  uid=0  gid=0  type=file",
				"./h2  mode=0600  uid=0  gid=0  type=file",
				"./h3  mode=0644  uid=0  gid=0  type=file  hardlink=./h1")
			o := ApplyOptions{}
			if incremental {
				o.Old = old
			}
			res := apApply(t, root, new, o)
			apNoErrors(t, res)
			s1, s2, s3 := apLstat(t, filepath.Join(root, "h1")), apLstat(t, filepath.Join(root, "h2")), apLstat(t, filepath.Join(root, "h3"))
			if s2.Ino == s1.Ino || s2.Nlink != 1 {
				t.Errorf("h2 still shares h1's inode (nlink %d)", s2.Nlink)
			}
			if s3.Ino != s1.Ino || s1.Nlink != 2 {
				t.Errorf("h1/h3 group broken: ino %d/%d nlink %d", s1.Ino, s3.Ino, s1.Nlink)
			}
			if s2.Mode&0o7777 != 0o600 || s1.Mode&0o7777 != 0o644 {
				t.Errorf("modes h1 %#o h2 %#o", s1.Mode&0o7777, s2.Mode&0o7777)
			}
			if c, _ := os.ReadFile(filepath.Join(root, "h2")); string(c) != "same" {
				t.Errorf("h2 content %q", c)
			}
			// A second apply finds nothing to do.
			res = apApply(t, root, new, ApplyOptions{})
			if res.Changed != 0 {
				t.Errorf("second apply changed %d entries", res.Changed)
			}
		})
	}
}

// TestApplyOutside: entries a sparse checkout leaves out are neither
// created, reported missing nor removed.
func TestApplyOutside(t *testing.T) {
	apRequireRoot(t)
	root := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(root, "in"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, "in/f"), []byte("x"), 0o644))
	old := apParse(t,
		"./in  mode=0755  uid=0  gid=0  type=dir",
		"./in/f  mode=0600  uid=0  gid=0  type=file",
		"./out  mode=0700  uid=0  gid=0  type=dir",
		"./out/dev  mode=0600  uid=0  gid=0  type=char  device=native,1,3",
		"./out/f  mode=0600  uid=0  gid=0  type=file",
		"./gone  mode=0755  uid=0  gid=0  type=dir  empty=1")
	new := apParse(t,
		"./in  mode=0755  uid=0  gid=0  type=dir",
		"./in/f  mode=0600  uid=0  gid=0  type=file",
		"./out  mode=0700  uid=0  gid=0  type=dir",
		"./out/f  mode=0600  uid=0  gid=0  type=file")
	outside := func(p string) bool { return p == "out" || strings.HasPrefix(p, "out/") || p == "gone" }
	res := apApply(t, root, new, ApplyOptions{Outside: outside})
	apNoErrors(t, res)
	if len(res.Missing) != 0 {
		t.Errorf("missing %v", res.Missing)
	}
	if _, err := os.Lstat(filepath.Join(root, "out")); err == nil {
		t.Error("out was created")
	}
	if st := apLstat(t, filepath.Join(root, "in/f")); st.Mode&0o777 != 0o600 {
		t.Errorf("in/f mode %#o", st.Mode&0o777)
	}
	must(t, os.Mkdir(filepath.Join(root, "gone"), 0o755))
	res = apApply(t, root, new, ApplyOptions{Old: old, Outside: outside})
	apNoErrors(t, res)
	if _, err := os.Lstat(filepath.Join(root, "gone")); err != nil {
		t.Error("an outside directory of the old manifest was removed")
	}
}
