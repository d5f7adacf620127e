package nfsroot

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestPrune: blobs only unkept commits use are removed with their size
// records; a pruned commit served again is rebuilt from git, whole; a
// commit the server has an index for is kept whatever the caller says;
// and Prune refuses to run when another process has the store open or
// when a commit to keep does not resolve.
func TestPrune(t *testing.T) {
	fx := newFixture(t)
	state := t.TempDir()
	c1 := fx.commit
	os.WriteFile(filepath.Join(fx.repo, "etc/passwd"), []byte("changed\n"), 0o644)
	os.WriteFile(filepath.Join(fx.repo, "new"), []byte("new file\n"), 0o644)
	run(t, fx.repo, "git", "add", "-A")
	run(t, fx.repo, "git", "commit", "-qm", "second")
	c2 := run(t, fx.repo, "git", "rev-parse", "HEAD")
	oldPasswd := run(t, fx.repo, "git", "rev-parse", c1+":etc/passwd")

	a, err := New(Config{Objects: openGit(t, fx.repo), StateDir: state, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{c1, c2} {
		if err := a.Prepare(t.Context(), c); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	before := countBlobs(t, state)
	blob := filepath.Join(state, "blobs", oldPasswd[:2], oldPasswd[2:])
	if _, err := os.Stat(blob); err != nil {
		t.Fatalf("c1's etc/passwd is not in the store: %v", err)
	}

	b, err := New(Config{Objects: openGit(t, fx.repo), StateDir: state, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// Another process's store user: nothing may be removed meanwhile.
	other, err := New(Config{Objects: openGit(t, fx.repo), StateDir: state, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Prune([]string{c2}); !errors.Is(err, ErrStoreBusy) {
		t.Errorf("Prune with another user of the store: %v, want ErrStoreBusy", err)
	}
	other.Close()
	// The refused prune must not have dropped b's own shared lock.
	lf, err := os.Open(filepath.Join(state, "lock"))
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(lf.Fd()), unix.LOCK_EX|unix.LOCK_NB); err == nil {
		t.Error("after a refused prune the store's lock could be taken exclusively: the server lost its shared lock")
	}
	lf.Close()
	if _, err := b.Prune([]string{c2, "no-such-branch"}); err == nil || !strings.Contains(err.Error(), "no-such-branch") {
		t.Errorf("Prune keeping an unknown revision: %v, want an error naming it", err)
	}
	if got := countBlobs(t, state); got != before {
		t.Fatalf("refused prunes removed blobs: %d, was %d", got, before)
	}

	st, err := b.Prune([]string{"main"}) // = c2
	if err != nil {
		t.Fatal(err)
	}
	if st.Commits != 1 || st.Removed != 1 || st.SizeRecords != 1 || st.Kept != before-1 {
		t.Errorf("Prune stats %+v; want 1 commit kept, 1 blob and 1 size record removed, %d blobs kept", st, before-1)
	}
	if _, err := os.Stat(blob); !os.IsNotExist(err) {
		t.Errorf("c1's old etc/passwd is still stored: %v", err)
	}
	if _, err := os.Stat(filepath.Join(state, "commits", c1)); !os.IsNotExist(err) {
		t.Errorf("c1's size record survived: %v", err)
	}
	if _, err := os.Stat(filepath.Join(state, "commits", c2)); err != nil {
		t.Errorf("c2's size record was removed: %v", err)
	}
	if got := countBlobs(t, state); got != before-1 {
		t.Errorf("%d blobs after the prune, want %d", got, before-1)
	}

	// c1 again: its blob comes back from git, whole.
	if err := b.Prepare(t.Context(), c1); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(blob)
	if err != nil || string(got) != "root:x:0:0:root:/root:/bin/sh\n" {
		t.Errorf("c1's etc/passwd after serving c1 again: %q, %v", got, err)
	}
	// c1 now has an index in this server: a prune keeping only c2 must
	// not take c1's blobs from under it.
	st, err = b.Prune([]string{c2})
	if err != nil {
		t.Fatal(err)
	}
	if st.Commits != 2 || st.Removed != 0 {
		t.Errorf("Prune with c1 being served: %+v; want c1 kept too, nothing removed", st)
	}
	if got, err := os.ReadFile(blob); err != nil || string(got) != "root:x:0:0:root:/root:/bin/sh\n" {
		t.Errorf("c1's etc/passwd after a prune while c1 is served: %q, %v", got, err)
	}

	// Without size records, what to keep comes from c2's tree.
	b.Close()
	if err := os.RemoveAll(filepath.Join(state, "commits")); err != nil {
		t.Fatal(err)
	}
	d, err := New(Config{Objects: openGit(t, fx.repo), StateDir: state, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if st, err := d.Prune([]string{c2}); err != nil || st.Removed != 1 || st.Kept != before-1 {
		t.Errorf("Prune from the tree = %+v, %v; want c1's old etc/passwd removed, %d blobs kept", st, err, before-1)
	}
	if _, err := os.Stat(blob); !os.IsNotExist(err) {
		t.Errorf("c1's old etc/passwd survived a prune from c2's tree: %v", err)
	}
}

// TestStaleTempOnlyWhenAlone: a new store user removes temporary files
// only when no other process has the store open, since they may be that
// process's batch in progress.
func TestStaleTempOnlyWhenAlone(t *testing.T) {
	fx := newFixture(t)
	state := t.TempDir()
	a, err := New(Config{Objects: openGit(t, fx.repo), StateDir: state, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(state, "blobs", "tmp", "blob-inflight")
	if err := os.WriteFile(tmp, []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := New(Config{Objects: openGit(t, fx.repo), StateDir: state, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	if _, err := os.Stat(tmp); err != nil {
		t.Fatalf("another process's temporary file was removed: %v", err)
	}
	a.Close()
	c, err := New(Config{Objects: openGit(t, fx.repo), StateDir: state, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Errorf("a stale temporary file survived a start with the store to itself: %v", err)
	}
}
