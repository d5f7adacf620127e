package nfsroot

import (
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TestRootFSStaysInside: a maintenance export's filesystem never leaves
// its directory, whatever symlinks the image holds: writing or reading
// through a relative or absolute symlink that points out fails and
// touches nothing outside, while symlinks read back raw and files inside
// work as usual (names as presented to Open, which go-nfs stats).
func TestRootFSStaysInside(t *testing.T) {
	base := t.TempDir()
	dir, outside := filepath.Join(base, "wt"), filepath.Join(base, "outside")
	for _, d := range []string{filepath.Join(dir, "etc"), outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("host secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Symlink("../outside", filepath.Join(dir, "up"))
	os.Symlink(outside, filepath.Join(dir, "abs"))
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	r := &rootFS{root: root, dir: dir}

	for _, p := range []string{"up/new", "abs/new", "up/secret", "abs/secret", "../outside/new"} {
		if f, err := r.Create(p); err == nil {
			f.Close()
			t.Errorf("created %s through a symlink out of the export", p)
		}
		if f, err := r.Open(p); err == nil {
			f.Close()
			t.Errorf("opened %s out of the export", p)
		}
		if err := r.MkdirAll(p+"/d", 0o755); err == nil {
			t.Errorf("made a directory under %s out of the export", p)
		}
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 1 {
		t.Errorf("the directory outside holds %d entries, want its 1", len(ents))
	}
	if target, err := r.Readlink("abs"); err != nil || target != outside {
		t.Errorf("Readlink(abs) = %q, %v; want the raw %q", target, err, outside)
	}
	if fi, err := r.Stat("up"); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("Stat(up) = %v, %v; want the link itself", fi, err)
	}

	f, err := r.Create("etc/motd")
	if err != nil {
		t.Fatal(err)
	}
	if f.Name() != "etc/motd" {
		t.Errorf("Name() = %q, want the name given", f.Name())
	}
	io.WriteString(f, "hello\n")
	f.Close()
	if err := r.Rename("etc/motd", "etc/issue"); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "etc/issue")); err != nil || string(b) != "hello\n" {
		t.Errorf("etc/issue = %q, %v", b, err)
	}
	list, err := r.ReadDir("")
	if err != nil || len(list) != 3 {
		t.Errorf("ReadDir of the export = %d entries, %v; want 3", len(list), err)
	}
	if err := r.Remove(""); err == nil {
		t.Errorf("removed the export's own directory")
	}
}
