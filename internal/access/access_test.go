package access

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/onesis/git-onesis/internal/git"
	"github.com/onesis/git-onesis/internal/testkit"
)

func TestMain(m *testing.M) { os.Exit(testkit.HermeticGit(m)) }

// repo makes a repository with one commit, written under umask 022 (so
// world-readable, as plain git leaves it), in a directory others may
// search.
func repo(t *testing.T) *git.Repo {
	t.Helper()
	dir, err := os.MkdirTemp("", "onesis-access-") // t.TempDir's parent is 0700
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "secret"), []byte("s3cret\n"), 0o600)
	for _, args := range [][]string{{"init", "-q"}, {"add", "-A"}, {"commit", "-q", "-m", "one"}} {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	r, err := git.Discover(dir)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestRestrict: without a group, nothing of the git directory is left to
// group or others; with one, the group may read and search, never write,
// and directories pass the group on. Exposed sees the difference.
func TestRestrict(t *testing.T) {
	r := repo(t)
	if p, err := Exposed(r.CommonDir); err != nil || p == "" {
		t.Fatalf("a fresh git repository is not reported world-readable: %q %v", p, err)
	}
	res, err := Restrict(r, "")
	if err != nil {
		t.Fatal(err)
	}
	if res.Shared != OwnerOnly || res.Group != "" || res.Changed == 0 {
		t.Errorf("Restrict(no group) = %+v", res)
	}
	if v, _, _ := r.Config("core.sharedRepository"); v != OwnerOnly {
		t.Errorf("core.sharedRepository = %q", v)
	}
	walk(t, r.CommonDir, func(p string, m fs.FileMode, gid int) {
		if m.Perm()&0o077 != 0 {
			t.Errorf("%s: mode %v, want nothing for group and others", p, m)
		}
	})
	if p, err := Exposed(r.CommonDir); err != nil || p != "" {
		t.Errorf("Exposed after Restrict: %q %v", p, err)
	}

	// A group: the caller's own, so this runs as any user.
	gid := os.Getegid()
	res, err = Restrict(r, strconv.Itoa(gid))
	if err != nil {
		t.Fatal(err)
	}
	if res.Shared != WithGroup || res.GID != gid {
		t.Errorf("Restrict(group) = %+v", res)
	}
	walk(t, r.CommonDir, func(p string, m fs.FileMode, g int) {
		want := fs.FileMode(0o040)
		if m.IsDir() {
			want = 0o050
			if m&fs.ModeSetgid == 0 {
				t.Errorf("%s: directory not setgid", p)
			}
		}
		if m.Perm()&0o070 != want || m.Perm()&0o007 != 0 || g != gid {
			t.Errorf("%s: mode %v gid %d, want group %d read-only, others nothing", p, m, g, gid)
		}
	})
	// Later objects follow: git applies core.sharedRepository itself.
	cmd := exec.Command("git", "commit", "-q", "--allow-empty", "-m", "two")
	cmd.Dir = r.Top
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if p, err := Exposed(r.CommonDir); err != nil || p != "" {
		t.Errorf("Exposed after a new commit: %q %v", p, err)
	}
	if _, err := Restrict(r, "no-such-group-onesis"); err == nil {
		t.Error("Restrict with an unknown group succeeded")
	}
}

func walk(t *testing.T, dir string, f func(p string, m fs.FileMode, gid int)) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink != 0 {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		f(p, info.Mode(), gidOf(info))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func gidOf(info fs.FileInfo) int {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return int(st.Gid)
	}
	return -1
}
