package gitobjects

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onesis/git-onesis/boot/nfsroot"
	"github.com/onesis/git-onesis/internal/testkit"
)

func TestMain(m *testing.M) { os.Exit(testkit.HermeticGit(m)) }

func id(t *testing.T, s string) nfsroot.ID {
	t.Helper()
	h, ok := nfsroot.ParseID(s)
	if !ok {
		t.Fatalf("%q is not an object id", s)
	}
	return h
}

// TestReadsWhatGitHolds: a real repository with every kind of tree entry
// git has, read through Repo, gives what git itself says: the commit a
// branch names, its tree and committer time, each entry's kind and id,
// and each blob's size and bytes, also when several goroutines read at
// once (a read path rebuilding a blob while a commit is built).
func TestReadsWhatGitHolds(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB
	dir := testkit.Repo(t, map[string]string{"etc/passwd": "root:x:0:0::/root:/bin/sh\n", "bin/tool": "#!/bin/sh\n", "big.bin": string(big)})
	testkit.Sh(t, dir, "chmod", "+x", "bin/tool")
	if err := os.Symlink("etc/passwd", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	testkit.Sh(t, dir, "git", "add", "-A")
	sub := testkit.Sh(t, dir, "git", "rev-parse", "HEAD")
	testkit.Sh(t, dir, "git", "update-index", "--add", "--cacheinfo", "160000,"+sub+",sub")
	cmd := []string{"env", "GIT_COMMITTER_DATE=2026-03-04T05:06:07Z", "git", "commit", "-qm", "v2"}
	testkit.Sh(t, dir, cmd...)
	head := testkit.Sh(t, dir, "git", "rev-parse", "HEAD")

	r, err := Open(filepath.Join(dir, "etc")) // a subdirectory of the work tree
	if err != nil {
		t.Fatal(err)
	}
	if got, err := r.Resolve("main"); err != nil || got.String() != head {
		t.Fatalf("Resolve(main) = %v, %v; want %s", got, err, head)
	}
	c, err := r.Commit(id(t, head))
	if err != nil {
		t.Fatal(err)
	}
	if want := testkit.Sh(t, dir, "git", "rev-parse", "HEAD^{tree}"); c.Tree.String() != want {
		t.Errorf("tree %s, want %s", c.Tree, want)
	}
	if want := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC); !c.Time.Equal(want) {
		t.Errorf("committer time %v, want %v", c.Time, want)
	}
	ents, err := r.Tree(c.Tree)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]nfsroot.Entry{}
	for _, e := range ents {
		got[e.Name] = e
	}
	for _, tc := range []struct {
		name string
		mode nfsroot.Mode
	}{
		{"etc", nfsroot.ModeDir},
		{"big.bin", nfsroot.ModeRegular},
		{"bin", nfsroot.ModeDir},
		{"link", nfsroot.ModeSymlink},
		{"sub", nfsroot.ModeSubmodule},
	} {
		e, ok := got[tc.name]
		want := testkit.Sh(t, dir, "git", "rev-parse", "HEAD:"+tc.name)
		if !ok || e.Mode != tc.mode || e.ID.String() != want {
			t.Errorf("%s: %+v, want mode %v id %s", tc.name, e, tc.mode, want)
		}
	}
	bin, err := r.Tree(got["bin"].ID)
	if err != nil || len(bin) != 1 || bin[0].Mode != nfsroot.ModeExecutable {
		t.Errorf("bin: %+v, %v; want one executable", bin, err)
	}
	if _, err := r.Resolve("no-such-branch"); err == nil || !strings.Contains(err.Error(), r.CommonDir()) {
		t.Errorf("Resolve of a missing branch: %v (want an error naming %s)", err, r.CommonDir())
	}
	if _, err := r.Commit(nfsroot.ID{1}); err == nil {
		t.Errorf("Commit of a missing commit succeeded")
	}

	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, name := range []string{"big.bin", "link", "etc/passwd"} {
				want := []byte(testkit.Sh(t, dir, "git", "cat-file", "blob", "HEAD:"+name))
				if name == "big.bin" {
					want = big
				} else if name != "link" {
					want = append(want, '\n')
				}
				rc, size, err := r.Blob(id(t, testkit.Sh(t, dir, "git", "rev-parse", "HEAD:"+name)))
				if err != nil {
					t.Error(err)
					return
				}
				b, err := io.ReadAll(rc)
				rc.Close()
				if err != nil || size != int64(len(want)) || !bytes.Equal(b, want) {
					t.Errorf("%s: %d bytes (size %d), %v; want git's %d", name, len(b), size, err, len(want))
				}
				if _, err := r.Tree(c.Tree); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
}

// TestRefusesSHA256Repository: nfsroot's ids, handles and blob store are
// 20 bytes, so a SHA-256 repository is refused when opened, saying why.
func TestRefusesSHA256Repository(t *testing.T) {
	dir := t.TempDir()
	testkit.Sh(t, dir, "git", "init", "-q", "--object-format=sha256")
	_, err := Open(dir)
	if err == nil || !strings.Contains(err.Error(), "sha256") || !strings.Contains(err.Error(), "SHA-1") {
		t.Fatalf("Open of a SHA-256 repository: %v", err)
	}
	if _, err := Open(t.TempDir()); err == nil {
		t.Fatalf("Open of a directory that is no repository succeeded")
	}
}

// TestSeesPacksMadeAfterOpen: go-git lists pack files once; objects that
// a gc, repack or fetch moved into new packs after Open (git onesis sync
// beside a running serve) are still found: a blob read before a repack,
// and a new commit and its blob after one that deleted the old pack.
func TestSeesPacksMadeAfterOpen(t *testing.T) {
	dir := testkit.Repo(t, map[string]string{"etc/motd": "one\n"})
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	read := func(rev, want string) {
		t.Helper()
		c, err := r.Resolve(rev)
		if err != nil {
			t.Fatalf("Resolve(%s): %v", rev, err)
		}
		if _, err := r.Commit(c); err != nil {
			t.Fatalf("Commit(%s): %v", rev, err)
		}
		rc, _, err := r.Blob(id(t, testkit.Sh(t, dir, "git", "rev-parse", rev+":etc/motd")))
		if err != nil {
			t.Fatalf("Blob(%s:etc/motd): %v", rev, err)
		}
		defer rc.Close()
		if b, err := io.ReadAll(rc); err != nil || string(b) != want {
			t.Fatalf("%s:etc/motd = %q, %v; want %q", rev, b, err, want)
		}
	}
	read("main", "one\n")
	testkit.Sh(t, dir, "git", "repack", "-adq")
	read("main", "one\n")
	testkit.WriteFile(t, dir, "etc/motd", "two\n")
	testkit.Sh(t, dir, "git", "commit", "-qam", "v2")
	testkit.Sh(t, dir, "git", "repack", "-adq")
	read("main", "two\n")
	read("main~1", "one\n")
}
