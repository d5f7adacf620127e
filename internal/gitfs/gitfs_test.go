package gitfs

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

func run(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.invalid",
		"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.invalid", "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// testRepo makes a real repository with two commits and returns it with
// the SHA of the first.
func testRepo(t *testing.T) (string, string) {
	t.Helper()
	dir := t.TempDir()
	run(t, dir, "init", "-q", "-b", "main")
	w := func(p, s string, mode os.FileMode) {
		p = filepath.Join(dir, p)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(s), mode); err != nil {
			t.Fatal(err)
		}
	}
	l := func(target, p string) {
		if err := os.Symlink(target, filepath.Join(dir, p)); err != nil {
			t.Fatal(err)
		}
	}
	w("etc/fstab", "first\n", 0o644)
	w("etc/hostname", "node\n", 0o644)
	w("sbin/init", "#!/bin/sh\n", 0o755)
	w("boot/vmlinuz-6.1.0-1-amd64", "kernel\n", 0o644)
	w("lib/modules/6.1.0-1-amd64/modules.dep", "kernel/a.ko:\n", 0o644)
	l("boot/vmlinuz-6.1.0-1-amd64", "vmlinuz")
	l("/etc", "abs-etc")
	l("../../../../../etc/hostname", "etc/escape")
	l("loop2", "loop1")
	l("loop1", "loop2")
	l("nowhere", "dangling")
	l("/", "rootlink")
	run(t, dir, "add", "-A")
	run(t, dir, "commit", "-qm", "one")
	first := run(t, dir, "rev-parse", "HEAD")
	w("etc/fstab", "second\n", 0o644)
	run(t, dir, "commit", "-qam", "two")
	return dir, first
}

func TestFS(t *testing.T) {
	dir, first := testRepo(t)
	r, err := Open(filepath.Join(dir, "etc")) // a subdirectory finds the repository
	if err != nil {
		t.Fatal(err)
	}
	for rev, want := range map[string]string{"HEAD": "second\n", "main~1": "first\n", first: "first\n", first[:10]: "first\n"} {
		f, err := r.FS(rev)
		if err != nil {
			t.Fatalf("FS(%s): %v", rev, err)
		}
		if b, err := fs.ReadFile(f, "etc/fstab"); err != nil || string(b) != want {
			t.Errorf("%s: etc/fstab = %q %v, want %q", rev, b, err, want)
		}
	}
	if sha, err := r.Resolve("main~1"); err != nil || sha != first {
		t.Errorf("Resolve = %s %v, want %s", sha, err, first)
	}
	// The git directory itself, and a bare clone, open too.
	for _, d := range []string{filepath.Join(dir, ".git"), bareClone(t, dir)} {
		g, err := Open(d)
		if err != nil {
			t.Fatalf("Open(%s): %v", d, err)
		}
		if sha, err := g.Resolve("HEAD~1"); err != nil || sha != first {
			t.Errorf("%s: HEAD~1 = %s %v", d, sha, err)
		}
	}
	if _, err := Open(t.TempDir()); err == nil {
		t.Error("Open of a plain directory succeeded")
	}
	if _, err := r.FS("nosuch"); err == nil {
		t.Error("FS of a missing revision succeeded")
	}

	f, err := r.FS("HEAD")
	if err != nil {
		t.Fatal(err)
	}
	// fstest.TestFS on the parts without dangling or looping links (on
	// which Open fails, as it would on a real directory).
	for sub, want := range map[string][]string{"etc": {"fstab", "escape"}, "lib": {"modules/6.1.0-1-amd64/modules.dep"}, "boot": {"vmlinuz-6.1.0-1-amd64"}, "sbin": {"init"}} {
		s, err := fs.Sub(f, sub)
		if err != nil {
			t.Fatal(err)
		}
		if err := fstest.TestFS(s, want...); err != nil {
			t.Errorf("%s: %v", sub, err)
		}
	}

	tests := []struct {
		name      string
		lmode     fs.FileMode // Lstat type and perm
		link      string      // ReadLink
		content   string      // ReadFile ("" = want an error)
		errSubstr string
	}{
		{"sbin/init", 0o755, "", "#!/bin/sh\n", ""},
		{"etc/hostname", 0o644, "", "node\n", ""},
		{"vmlinuz", fs.ModeSymlink | 0o777, "boot/vmlinuz-6.1.0-1-amd64", "kernel\n", ""},
		{"abs-etc", fs.ModeSymlink | 0o777, "/etc", "", "directory"},
		{"abs-etc/fstab", 0o644, "", "second\n", ""},                                        // absolute link starts at the tree's root
		{"etc/escape", fs.ModeSymlink | 0o777, "../../../../../etc/hostname", "node\n", ""}, // ".." stops at the root
		{"rootlink/etc/hostname", 0o644, "", "node\n", ""},
		{"loop1", fs.ModeSymlink | 0o777, "loop2", "", "too many levels"},
		{"dangling", fs.ModeSymlink | 0o777, "nowhere", "", "not exist"},
		{"etc/hostname/x", 0, "", "", "not a directory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fi, err := fs.Lstat(f, tc.name)
			if tc.lmode != 0 && (err != nil || fi.Mode() != tc.lmode) {
				t.Errorf("Lstat mode %v %v, want %v", fi, err, tc.lmode)
			}
			if tc.link != "" {
				if l, err := fs.ReadLink(f, tc.name); err != nil || l != tc.link {
					t.Errorf("ReadLink = %q %v", l, err)
				}
			}
			b, err := fs.ReadFile(f, tc.name)
			if tc.content != "" && (err != nil || string(b) != tc.content) {
				t.Errorf("ReadFile = %q %v, want %q", b, err, tc.content)
			}
			if tc.errSubstr != "" && (err == nil || !strings.Contains(err.Error(), tc.errSubstr)) {
				t.Errorf("ReadFile error %v, want %q", err, tc.errSubstr)
			}
		})
	}
	if _, err := fs.ReadLink(f, "etc/hostname"); err == nil {
		t.Error("ReadLink of a regular file succeeded")
	}
	if _, err := f.Open("../x"); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("Open(../x) = %v, want ErrInvalid", err)
	}
	ents, err := fs.ReadDir(f, ".")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name()+":"+e.Type().String())
	}
	want := "abs-etc:L--------- boot:d--------- dangling:L--------- etc:d--------- lib:d--------- loop1:L--------- loop2:L--------- rootlink:L--------- sbin:d--------- vmlinuz:L---------"
	if strings.Join(got, " ") != want {
		t.Errorf("ReadDir(.) =\n%s\nwant\n%s", strings.Join(got, " "), want)
	}
	fi, err := fs.Stat(f, "boot/vmlinuz-6.1.0-1-amd64")
	if err != nil || fi.Size() != int64(len("kernel\n")) {
		t.Errorf("Stat size: %v %v", fi, err)
	}
	fh, err := f.Open("sbin/init")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(fh)
	fh.Close()
	if string(b) != "#!/bin/sh\n" {
		t.Errorf("Open/Read = %q", b)
	}
}

func bareClone(t *testing.T, dir string) string {
	t.Helper()
	bare := filepath.Join(t.TempDir(), "bare.git")
	run(t, dir, "clone", "-q", "--bare", dir, bare)
	return bare
}
