package meta

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestLstatDirent: the stat of a name given as the bytes before a NUL (as
// getdents leaves it) is lstat's, whether or not a NUL follows in memory,
// a symlink is not followed, and a missing name is ENOENT, as the scan
// compares it.
func TestLstatDirent(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "file"), []byte("x"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("file", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	for _, tt := range []struct {
		what string
		name []byte
		path string // "" when it must not exist
	}{
		{"NUL follows", []byte("file\x00junk")[:4], "file"},
		{"NUL follows, a symlink", []byte("link\x00")[:4], "link"},
		{"no room after the name", []byte("file"), "file"},
		{"another byte follows", []byte("filex")[:4], "file"},
		{"missing", []byte("nope\x00")[:4], ""},
	} {
		var got unix.Stat_t
		err := lstatDirent(fd, tt.name, &got)
		if tt.path == "" {
			if err != unix.ENOENT {
				t.Errorf("%s: %v; want ENOENT", tt.what, err)
			}
			continue
		}
		var want unix.Stat_t
		if err2 := unix.Lstat(filepath.Join(dir, tt.path), &want); err != nil || err2 != nil {
			t.Fatalf("%s: %v, %v", tt.what, err, err2)
		}
		if got.Ino != want.Ino || got.Mode != want.Mode || got.Size != want.Size || got.Ctim != want.Ctim {
			t.Errorf("%s: ino %d mode %o size %d; lstat says ino %d mode %o size %d", tt.what, got.Ino, got.Mode, got.Size, want.Ino, want.Mode, want.Size)
		}
	}
}
