package meta

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

func scanRequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the fixture makes device nodes, chowns to other uids and sets file capabilities")
	}
}

func scanRun(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func scanCheck(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// scanFixture builds a tree holding every kind of object Scan records.
func scanFixture(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	p := func(rel string) string { return filepath.Join(root, rel) }
	mkdir := func(rel string, mode uint32, uid, gid int) {
		scanCheck(t, os.MkdirAll(p(rel), 0o755))
		scanCheck(t, os.Chown(p(rel), uid, gid))
		scanCheck(t, unix.Chmod(p(rel), mode))
	}
	file := func(rel string, mode uint32, uid, gid int) {
		scanCheck(t, os.WriteFile(p(rel), []byte("x"), 0o600))
		scanCheck(t, os.Chown(p(rel), uid, gid))
		scanCheck(t, unix.Chmod(p(rel), mode))
	}
	scanCheck(t, unix.Chmod(root, 0o755))
	mkdir("bin", 0o755, 0, 0)
	file("bin/f0000", 0, 0, 0)
	file("bin/f0600", 0o600, 0, 0)
	file("bin/su", 0o4755, 0, 0)
	file("bin/ping", 0o755, 0, 0)
	scanRun(t, "setcap", "cap_net_raw+ep", p("bin/ping"))
	mkdir("sgid", 0o2755, 0, 50)
	file("sgid/f", 0o644, 0, 50)
	mkdir("tmp", 0o1777, 0, 0)
	mkdir("home/alice", 0o700, 1000, 1000)
	file("home/alice/.profile", 0o644, 1000, 1000)
	scanCheck(t, os.Symlink("/etc/passwd", p("abs")))
	scanCheck(t, os.Lchown(p("abs"), 1000, 1000))
	scanCheck(t, os.Symlink("nowhere/at all", p("dangle")))
	mkdir("dev", 0o755, 0, 0)
	scanCheck(t, unix.Mknod(p("dev/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	scanCheck(t, unix.Mknod(p("dev/sda"), unix.S_IFBLK|0o660, int(unix.Mkdev(8, 0))))
	scanCheck(t, os.Chown(p("dev/sda"), 0, 6))
	scanCheck(t, unix.Chmod(p("dev/null"), 0o666))
	scanCheck(t, unix.Chmod(p("dev/sda"), 0o660))
	mkdir("run", 0o755, 0, 0)
	scanCheck(t, unix.Mkfifo(p("run/fifo"), 0o600))
	sock, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	scanCheck(t, err)
	scanCheck(t, unix.Bind(sock, &unix.SockaddrUnix{Name: p("run/sock")}))
	unix.Close(sock)
	mkdir("e1/e2/e3", 0o755, 0, 0)
	mkdir("full/sub", 0o755, 0, 0)
	file("full/sub/file", 0o644, 0, 0)
	mkdir("linkonly", 0o755, 0, 0)
	scanCheck(t, os.Symlink("x", p("linkonly/l")))
	mkdir("devonly", 0o755, 0, 0)
	scanCheck(t, unix.Mkfifo(p("devonly/fifo"), 0o644))
	mkdir("hl", 0o755, 0, 0)
	file("hl/b", 0o644, 0, 0)
	scanCheck(t, os.Link(p("hl/b"), p("hl/a")))
	scanCheck(t, os.Link(p("hl/b"), p("hl/c")))
	scanCheck(t, unix.Mkfifo(p("hl/fifo1"), 0o600))
	scanCheck(t, os.Link(p("hl/fifo1"), p("hl/fifo0")))
	scanCheck(t, os.Symlink("target", p("hl/sym1")))
	scanCheck(t, unix.Linkat(unix.AT_FDCWD, p("hl/sym1"), unix.AT_FDCWD, p("hl/sym2"), 0))
	file("user", 0o644, 0, 0)
	scanCheck(t, unix.Lsetxattr(p("user"), "user.note", []byte("hello"), 0))
	scanCheck(t, unix.Lsetxattr(p("user"), "user.bin", []byte{0, 1, 2}, 0))
	file("acl", 0o644, 0, 0)
	scanRun(t, "setfacl", "-m", "u:1000:r-x", p("acl"))
	mkdir("odd", 0o755, 0, 0)
	for _, n := range []string{"sp ace", "new\nline", "tab\there", "back\\slash", "\xff\xfe", "-dash", "  mode=0", "#hash", "star*"} {
		file("odd/"+n, 0o644, 0, 0)
	}
	// Skipped by Scan itself, by Skip and by Keep.
	mkdir(".git/objects", 0o755, 0, 0)
	file(".git/HEAD", 0o644, 0, 0)
	mkdir("nested/.git", 0o755, 0, 0)
	file("nested/.git/config", 0o644, 0, 0)
	mkdir("skipme/deep", 0o755, 0, 0)
	file("skipme/deep/f", 0o644, 0, 0)
	file("bin/untracked.drop", 0o644, 0, 0)
	mkdir("droponly", 0o755, 0, 0)
	file("droponly/x.drop", 0o644, 0, 0)
	return root
}

func TestScanFixture(t *testing.T) {
	scanRequireRoot(t)
	root := scanFixture(t)
	var calls atomic.Int32
	m, err := Scan(root, ScanOptions{
		Skip:     func(p string, isDir bool) bool { return p == "skipme" && isDir },
		Keep:     func(p string, _ Type) bool { return !strings.HasSuffix(p, ".drop") },
		Workers:  3,
		Progress: func(int) { calls.Add(1) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls.Load() == 0 {
		t.Error("Progress was never called")
	}
	for i := 1; i < len(m.Entries); i++ {
		if !Less(m.Entries[i-1].Path, m.Entries[i].Path) {
			t.Fatalf("entries not in canonical order at %q", m.Entries[i].Path)
		}
	}
	capV, _ := hex.DecodeString("0100000200200000000000000000000000000000")

	tests := []struct {
		path string
		want Entry
	}{
		{".", Entry{Type: TypeDir, Mode: 0o755}},
		{"bin", Entry{Type: TypeDir, Mode: 0o755}},
		{"bin/f0000", Entry{Type: TypeFile, Mode: 0}},
		{"bin/f0600", Entry{Type: TypeFile, Mode: 0o600}},
		{"bin/su", Entry{Type: TypeFile, Mode: 0o4755}},
		{"bin/ping", Entry{Type: TypeFile, Mode: 0o755, Xattrs: []Xattr{{"security.capability", capV}}}},
		{"sgid", Entry{Type: TypeDir, Mode: 0o2755, GID: 50}},
		{"tmp", Entry{Type: TypeDir, Mode: 0o1777, Empty: true}},
		{"home/alice", Entry{Type: TypeDir, Mode: 0o700, UID: 1000, GID: 1000}},
		{"abs", Entry{Type: TypeSymlink, Mode: 0o777, UID: 1000, GID: 1000, Link: "/etc/passwd"}},
		{"dangle", Entry{Type: TypeSymlink, Mode: 0o777, Link: "nowhere/at all"}},
		{"dev", Entry{Type: TypeDir, Mode: 0o755, Empty: true}},
		{"dev/null", Entry{Type: TypeChar, Mode: 0o666, Major: 1, Minor: 3}},
		{"dev/sda", Entry{Type: TypeBlock, Mode: 0o660, GID: 6, Major: 8, Minor: 0}},
		{"run/fifo", Entry{Type: TypeFifo, Mode: 0o600}},
		{"run", Entry{Type: TypeDir, Mode: 0o755, Empty: true}},
		{"run/sock", Entry{Type: TypeSocket}}, // mode depends on the umask
		{"e1", Entry{Type: TypeDir, Mode: 0o755, Empty: true}},
		{"e1/e2", Entry{Type: TypeDir, Mode: 0o755, Empty: true}},
		{"e1/e2/e3", Entry{Type: TypeDir, Mode: 0o755, Empty: true}},
		{"full", Entry{Type: TypeDir, Mode: 0o755}},
		{"full/sub", Entry{Type: TypeDir, Mode: 0o755}},
		{"linkonly", Entry{Type: TypeDir, Mode: 0o755}},
		{"devonly", Entry{Type: TypeDir, Mode: 0o755, Empty: true}},
		{"devonly/fifo", Entry{Type: TypeFifo, Mode: 0o644}},
		{"droponly", Entry{Type: TypeDir, Mode: 0o755, Empty: true}},
		{"hl/a", Entry{Type: TypeFile, Mode: 0o644}},
		{"hl/b", Entry{Type: TypeFile, Mode: 0o644, Hardlink: "hl/a"}},
		{"hl/c", Entry{Type: TypeFile, Mode: 0o644, Hardlink: "hl/a"}},
		{"hl/fifo0", Entry{Type: TypeFifo, Mode: 0o600}},
		{"hl/fifo1", Entry{Type: TypeFifo, Mode: 0o600, Hardlink: "hl/fifo0"}},
		{"hl/sym1", Entry{Type: TypeSymlink, Mode: 0o777, Link: "target"}},
		{"hl/sym2", Entry{Type: TypeSymlink, Mode: 0o777, Link: "target"}},
		{"user", Entry{Type: TypeFile, Mode: 0o644, Xattrs: []Xattr{{"user.bin", []byte{0, 1, 2}}, {"user.note", []byte("hello")}}}},
		{"odd/sp ace", Entry{Type: TypeFile, Mode: 0o644}},
		{"odd/new\nline", Entry{Type: TypeFile, Mode: 0o644}},
		{"odd/tab\there", Entry{Type: TypeFile, Mode: 0o644}},
		{"odd/back\\slash", Entry{Type: TypeFile, Mode: 0o644}},
		{"odd/\xff\xfe", Entry{Type: TypeFile, Mode: 0o644}},
		{"odd/-dash", Entry{Type: TypeFile, Mode: 0o644}},
		{"odd/  mode=0", Entry{Type: TypeFile, Mode: 0o644}},
		{"odd/#hash", Entry{Type: TypeFile, Mode: 0o644}},
		{"odd/star*", Entry{Type: TypeFile, Mode: 0o644}},
		{"nested/.git", Entry{Type: TypeDir, Mode: 0o755}},
		{"nested/.git/config", Entry{Type: TypeFile, Mode: 0o644}},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%q", tc.path), func(t *testing.T) {
			got := m.Lookup(tc.path)
			if got == nil {
				t.Fatalf("%q missing from scan", tc.path)
			}
			want := tc.want
			want.Path = tc.path
			if tc.path == "run/sock" {
				want.Mode = got.Mode // depends on umask at bind time
			}
			if !got.Equal(&want) {
				t.Errorf("got  %s\nwant %s", AppendEntry(nil, got), AppendEntry(nil, &want))
			}
		})
	}

	// The ACL: the access ACL xattr must be present and decode.
	acl := m.Lookup("acl")
	if acl == nil {
		t.Fatal("acl missing")
	}
	v, ok := acl.Xattr("system.posix_acl_access")
	if !ok {
		t.Fatalf("acl: no system.posix_acl_access in %s", AppendEntry(nil, acl))
	}
	if got, want := DescribeXattr("system.posix_acl_access", v), "user::rw-,user:1000:r-x,group::r--,mask::r-x,other::r--"; got != want {
		t.Errorf("ACL = %q, want %q", got, want)
	}

	for _, gone := range []string{".git", ".git/HEAD", "skipme", "skipme/deep/f", "bin/untracked.drop", "droponly/x.drop"} {
		if m.Lookup(gone) != nil {
			t.Errorf("%q should have been left out", gone)
		}
	}

	// The scan must survive a round trip through the file format.
	b, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseBytes(b)
	if err != nil {
		t.Fatalf("scan result does not parse back: %v", err)
	}
	if len(back.Entries) != len(m.Entries) {
		t.Fatalf("round trip: %d entries, want %d", len(back.Entries), len(m.Entries))
	}
	for i := range back.Entries {
		if !back.Entries[i].Equal(&m.Entries[i]) {
			t.Errorf("round trip changed %q", m.Entries[i].Path)
		}
	}
}

func TestScanDeterministic(t *testing.T) {
	scanRequireRoot(t)
	root := scanFixture(t)
	var first []byte
	for _, w := range []int{1, 2, 8, 0} {
		m, err := Scan(root, ScanOptions{Workers: w})
		if err != nil {
			t.Fatal(err)
		}
		b, err := m.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = b
		} else if !bytes.Equal(first, b) {
			t.Fatalf("Workers=%d gave a different manifest", w)
		}
	}
}

func TestScanErrors(t *testing.T) {
	if _, err := Scan(filepath.Join(t.TempDir(), "missing"), ScanOptions{}); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing root: err = %v, want one naming the path", err)
	}
	if os.Geteuid() == 0 {
		// Root reads any directory; provoke a failure with a file in place
		// of the root instead.
		f := filepath.Join(t.TempDir(), "file")
		scanCheck(t, os.WriteFile(f, nil, 0o644))
		if _, err := Scan(f, ScanOptions{}); err == nil || !strings.Contains(err.Error(), "scanning "+f) {
			t.Errorf("file root: err = %v, want 'scanning %s: ...'", err, f)
		}
		return
	}
	root := t.TempDir()
	scanCheck(t, os.Mkdir(filepath.Join(root, "locked"), 0))
	_, err := Scan(root, ScanOptions{})
	if err == nil || !strings.Contains(err.Error(), "locked") {
		t.Errorf("unreadable dir: err = %v, want one naming locked", err)
	}
}

func TestScanGitFile(t *testing.T) {
	root := t.TempDir()
	scanCheck(t, os.WriteFile(filepath.Join(root, ".git"), []byte("gitdir: ../x\n"), 0o644))
	scanCheck(t, os.WriteFile(filepath.Join(root, "a"), nil, 0o644))
	m, err := Scan(root, ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Entries) != 2 || m.Entries[0].Path != "." || m.Entries[1].Path != "a" {
		t.Fatalf("got %+v, want . and a", m.Entries)
	}
	if m.Entries[0].Empty {
		t.Error("root marked Empty")
	}
}

// BenchmarkScan scans a synthetic tree of about 20k entries.
func BenchmarkScan(b *testing.B) {
	root := b.TempDir()
	n := 0
	for d := 0; d < 40; d++ {
		for s := 0; s < 10; s++ {
			dir := filepath.Join(root, fmt.Sprintf("d%d/s%d", d, s))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				b.Fatal(err)
			}
			for f := 0; f < 50; f++ {
				if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%d", f)), nil, 0o644); err != nil {
					b.Fatal(err)
				}
				n++
			}
		}
	}
	b.ResetTimer()
	for b.Loop() {
		m, err := Scan(root, ScanOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if len(m.Entries) < n {
			b.Fatalf("scanned %d entries, want at least %d", len(m.Entries), n)
		}
	}
	b.ReportMetric(float64(n), "files")
}

// TestSortParallel checks the parallel sort against slices.Sort on sizes
// around the chunking thresholds, with duplicates.
func TestSortParallel(t *testing.T) {
	for _, n := range []int{0, 1, 8191, 16384, 16385, 50000, 100003} {
		s := make([]int32, n)
		x := uint32(n)
		for i := range s {
			x = x*1664525 + 1013904223
			s[i] = int32(x % uint32(n/3+1))
		}
		want := slices.Clone(s)
		slices.Sort(want)
		for _, parts := range []int{0, 2, 3, 5, 8} {
			got := slices.Clone(s)
			sortInParts(got, func(a, b int32) int { return int(a) - int(b) }, parts)
			if !slices.Equal(got, want) {
				t.Errorf("n=%d, %d parts: not sorted like slices.Sort", n, parts)
			}
		}
	}
}

// TestScanDirReplaced: a name listed as a directory that is something
// else by the time the scan opens it is recorded as what it is then, and
// a symlink in its place is not followed. Skip runs between the listing
// and the open, so it makes the swap.
func TestScanDirReplaced(t *testing.T) {
	tests := []struct {
		name string
		swap func(p string) error
		want Type // TypeUnknown: not recorded
	}{
		{"file", func(p string) error { return os.WriteFile(p, []byte("x"), 0o644) }, TypeFile},
		{"symlink out", func(p string) error { return os.Symlink("/", p) }, TypeSymlink},
		{"fifo", func(p string) error { return unix.Mkfifo(p, 0o600) }, TypeFifo},
		{"gone", func(p string) error { return nil }, TypeUnknown},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			x := filepath.Join(root, "x")
			scanCheck(t, os.MkdirAll(filepath.Join(x, "inner"), 0o755))
			scanCheck(t, os.WriteFile(filepath.Join(root, "keep"), nil, 0o644))
			var swapped atomic.Bool
			skip := func(rel string, isDir bool) bool {
				if rel == "x" && isDir && swapped.CompareAndSwap(false, true) {
					scanCheck(t, os.RemoveAll(x))
					scanCheck(t, tc.swap(x))
				}
				return false
			}
			m, err := Scan(root, ScanOptions{Skip: skip, Workers: 1})
			if err != nil {
				t.Fatal(err)
			}
			if !swapped.Load() {
				t.Fatal("Skip never saw x as a directory")
			}
			e := m.Lookup("x")
			switch {
			case tc.want == TypeUnknown && e != nil:
				t.Errorf("x was removed before it was opened, yet recorded: %+v", e)
			case tc.want != TypeUnknown && (e == nil || e.Type != tc.want):
				t.Errorf("x recorded as %+v, want type %v", e, tc.want)
			}
			if m.Lookup("x/inner") != nil {
				t.Error("x/inner recorded though x was no directory when opened")
			}
			if m.Lookup("keep") == nil {
				t.Error("keep is missing")
			}
		})
	}
}
