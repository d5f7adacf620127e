package nfsroot

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onesis/git-onesis/meta"
)

func TestDenyList(t *testing.T) {
	d, err := newDenyList(nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path string
		want bool
	}{
		{"etc/shadow", true},
		{"etc/shadow-", true},
		{"etc/gshadow", true},
		{"etc/ssh/ssh_host_ed25519_key", true},
		{"etc/ssh/ssh_host_ed25519_key.pub", false},
		{"root/.ssh", true},
		{"etc/krb5.keytab", true},
		{"var/lib/http.keytab", true},
		{"etc/munge/munge.key", true},
		{"etc/ssl/private", true},
		{"etc/passwd", false},
		{"usr/share/etc/shadow", false},
		{"home/u/.ssh", false},
	}
	for _, tc := range tests {
		if got := d.match(tc.path); got != tc.want {
			t.Errorf("match(%q) = %v, want %v", tc.path, got, tc.want)
		}
	}
	if _, err := newDenyList([]string{"etc/[x"}); err == nil {
		t.Errorf("a bad glob was accepted")
	}
	none, _ := newDenyList([]string{})
	if none.match("etc/shadow") {
		t.Errorf("an empty deny list denied etc/shadow")
	}
}

func countBlobs(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	filepath.WalkDir(filepath.Join(dir, "blobs"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			n++
		}
		return nil
	})
	return n
}

// TestNewCommitCostsItsDiff: serving a second commit stores only its new
// blobs; equal contents are stored once.
func TestNewCommitCostsItsDiff(t *testing.T) {
	fx := newFixture(t)
	state := t.TempDir()
	srv, err := New(Config{Objects: openGit(t, fx.repo), StateDir: state, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if err := srv.Prepare(t.Context(), fx.commit); err != nil {
		t.Fatal(err)
	}
	first := countBlobs(t, state)
	// 12 image files: vi == editor, two denied (never stored); .gitmeta and
	// .gitignore are hidden and symlinks are not stored.
	if first != 9 {
		t.Errorf("first commit stored %d blobs, want 9", first)
	}
	if st, err := os.Stat(filepath.Join(state, "commits", fx.commit)); err != nil || st.Size() != 9*sizeRecord {
		t.Errorf("size list of the first commit: %v, %v; want %d bytes", st, err, 9*sizeRecord)
	}
	// A restarted server rebuilds the commit from the size list, same sizes.
	srv2, err := New(Config{Objects: openGit(t, fx.repo), StateDir: state, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv2.Close()
	e2, err := srv2.index(t.Context(), srv2.mustResolve(t, fx.commit))
	if err != nil {
		t.Fatal(err)
	}
	if n := e2.ix.lookup("big.bin"); n == nil || n.size != int64(len(fx.big)) {
		t.Errorf("big.bin after a restart: %+v; want size %d", n, len(fx.big))
	}
	os.WriteFile(filepath.Join(fx.repo, "etc/passwd"), []byte("changed\n"), 0o644)
	os.WriteFile(filepath.Join(fx.repo, "new"), []byte("new file\n"), 0o644)
	os.WriteFile(filepath.Join(fx.repo, "copy"), []byte("root notes\n"), 0o644) // same as root/notes
	run(t, fx.repo, "git", "add", "-A")
	run(t, fx.repo, "git", "commit", "-qm", "second")
	if err := srv.Prepare(t.Context(), "HEAD"); err != nil {
		t.Fatal(err)
	}
	if got := countBlobs(t, state); got != first+2 {
		t.Errorf("second commit: %d blobs, want %d (only the two new contents)", got, first+2)
	}
	// Files the second commit's .gitmeta does not list get git's mode, root owner.
	h := srv.mustResolve(t, "HEAD")
	e, err := srv.index(t.Context(), h)
	if err != nil {
		t.Fatal(err)
	}
	if n := e.ix.lookup("new"); n == nil || n.mode != 0o644 || n.uid != 0 || n.size != 9 {
		t.Errorf("new: %+v", n)
	}
}

// TestHardLinkToSecretDenied: a hard link to a denied file is a
// placeholder too, or the secret would leak under another name.
func TestHardLinkToSecretDenied(t *testing.T) {
	fx := newFixture(t)
	gm, _ := os.ReadFile(filepath.Join(fx.repo, ".gitmeta"))
	m, err := meta.ParseBytes(gm)
	if err != nil {
		t.Fatal(err)
	}
	shadow := *m.Lookup("etc/shadow")
	backup := shadow
	backup.Path, backup.Hardlink = "var/shadow.bak", "etc/shadow"
	m.Entries = append(m.Entries, backup)
	m.Sort()
	b, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(fx.repo, ".gitmeta"), b, 0o644)
	content, _ := os.ReadFile(filepath.Join(fx.repo, "etc/shadow"))
	os.MkdirAll(filepath.Join(fx.repo, "var"), 0o755)
	if err := os.WriteFile(filepath.Join(fx.repo, "var/shadow.bak"), content, 0o640); err != nil {
		t.Fatal(err)
	}
	run(t, fx.repo, "git", "add", "-A")
	run(t, fx.repo, "git", "commit", "-qm", "backup")
	srv, err := New(Config{Objects: openGit(t, fx.repo), StateDir: t.TempDir(), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	e, err := srv.index(t.Context(), srv.mustResolve(t, "HEAD"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"etc/shadow", "var/shadow.bak"} {
		n := e.ix.lookup(p)
		if n == nil || n.size != 0 || !n.blob.IsZero() || n.mode != 0o600 || n.gid != 0 {
			t.Errorf("%s: %+v; want an empty 0600 root placeholder", p, n)
		}
	}
	if strings.Contains(string(b), "var/shadow.bak") && e.ix.lookup("etc/shadow").fileid == e.ix.lookup("var/shadow.bak").fileid {
		t.Errorf("placeholders must not share a file id")
	}
}

// TestLargeBlobsStreamed: blobs above bigBlob take the streaming path and
// come back byte-exact.
func TestLargeBlobsStreamed(t *testing.T) {
	old := bigBlob
	bigBlob = 1024
	defer func() { bigBlob = old }()
	fx := newFixture(t)
	state := t.TempDir()
	srv, err := New(Config{Objects: openGit(t, fx.repo), StateDir: state, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	e, err := srv.index(t.Context(), srv.mustResolve(t, fx.commit))
	if err != nil {
		t.Fatal(err)
	}
	f, err := e.fs.Open("big.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := make([]byte, len(fx.big)+1)
	n, _ := f.ReadAt(got, 0)
	if n != len(fx.big) || string(got[:n]) != string(fx.big) {
		t.Errorf("big.bin: %d bytes back, want %d identical", n, len(fx.big))
	}
	if left, _ := filepath.Glob(filepath.Join(state, "blobs", "tmp", "*")); len(left) != 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}

func TestNewDefaultsAndErrors(t *testing.T) {
	fx := newFixture(t)
	wt := filepath.Join(t.TempDir(), "wt")
	run(t, fx.repo, "git", "worktree", "add", "-q", wt, "-b", "update")
	// A linked worktree: its branches are the common git dir's.
	state := t.TempDir()
	srv, err := New(Config{Objects: openGit(t, wt), StateDir: state, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	srv.Close()
	if _, err := os.Stat(filepath.Join(state, keyFile)); err != nil {
		t.Errorf("state dir: %v", err)
	}
	if err := srv.Prepare(t.Context(), "update"); err != nil {
		t.Errorf("Prepare of a branch name: %v", err)
	}
	if _, err := OpenGitForTest(t.TempDir()); err == nil {
		t.Errorf("opened a directory that is no repository")
	}
	for _, cfg := range []Config{
		{},
		{StateDir: t.TempDir()},
		{Objects: openGit(t, fx.repo)},
		{Objects: openGit(t, fx.repo), StateDir: t.TempDir(), Deny: []string{"etc/[oops"}},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
	if err := srv.Prepare(t.Context(), strings.Repeat("0", 40)); err == nil {
		t.Errorf("Prepare of a missing commit succeeded")
	}
	if err := srv.Prepare(t.Context(), "no-such-branch"); err == nil {
		t.Errorf("Prepare of a missing branch succeeded")
	}
}
