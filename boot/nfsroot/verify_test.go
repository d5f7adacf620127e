package nfsroot

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onesis/git-onesis/boot/integrity"
	"github.com/onesis/git-onesis/internal/testkit"
)

// reports collects integrity reports.
type reports struct {
	mu   sync.Mutex
	list []integrity.Report
}

func (r *reports) add(rep integrity.Report) {
	r.mu.Lock()
	r.list = append(r.list, rep)
	r.mu.Unlock()
}

func (r *reports) all() []integrity.Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]integrity.Report(nil), r.list...)
}

// quarantined lists the files in the NFS state's quarantine.
func quarantined(t testing.TB, state string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(state, "quarantine"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// TestServedBlobsVerified damages a stored blob in each way the store can
// be damaged and reads the file over NFS: the client gets git's bytes (or
// an I/O error when git no longer has them), never the damaged ones; the
// bad file is in quarantine, counted and reported.
func TestServedBlobsVerified(t *testing.T) {
	for _, tc := range []struct {
		name    string
		file    string
		damage  func(t *testing.T, p string)
		gitGone bool // the object is gone from git too
	}{
		{name: "flipped byte, large file", file: "big.bin", damage: func(t *testing.T, p string) { testkit.FlipByte(t, p, 200<<10) }},
		{name: "flipped byte, small file", file: "etc/passwd", damage: func(t *testing.T, p string) { testkit.FlipByte(t, p, 0) }},
		{name: "replaced by a symlink", file: "etc/passwd", damage: func(t *testing.T, p string) {
			os.Remove(p)
			if err := os.Symlink("/etc/hostname", p); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "replaced by a directory", file: "root/notes", damage: func(t *testing.T, p string) {
			os.Remove(p)
			if err := os.Mkdir(p, 0o700); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "truncated", file: "usr/bin/hello", damage: func(t *testing.T, p string) { os.Truncate(p, 3) }},
		{name: "missing", file: "usr/bin/hello", damage: func(t *testing.T, p string) { os.Remove(p) }},
		{name: "flipped and gone from git", file: "etc/passwd", gitGone: true, damage: func(t *testing.T, p string) { testkit.FlipByte(t, p, 1) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t)
			state := t.TempDir()
			var reps reports
			ts := startServer(t, Config{Objects: openGit(t, fx.repo), StateDir: state, Authorize: allowCommits(fx.commit), Report: reps.add}, "127.0.0.1:0")
			if err := ts.srv.Prepare(context.Background(), fx.commit); err != nil {
				t.Fatal(err)
			}
			blob := run(t, fx.repo, "git", "rev-parse", "HEAD:"+tc.file)
			want := []byte(run(t, fx.repo, "git", "cat-file", "blob", blob))
			if tc.file == "big.bin" {
				want = fx.big
			} else {
				want = append(want, '\n')
			}
			p := filepath.Join(state, "blobs", blob[:2], blob[2:])
			tc.damage(t, p)
			if tc.gitGone {
				if err := os.Remove(filepath.Join(fx.repo, ".git", "objects", blob[:2], blob[2:])); err != nil {
					t.Fatal(err)
				}
			}
			tg := mustMount(t, ts.port, "/c/"+fx.commit, 0, 0)
			got, err := readAll(t, tg, tc.file)
			switch {
			case tc.gitGone && err == nil:
				t.Fatalf("read %d bytes of a blob git no longer has, want an I/O error", len(got))
			case tc.gitGone && len(got) > 0:
				t.Fatalf("served %d bytes of a bad blob", len(got))
			case !tc.gitGone && err != nil:
				t.Fatalf("reading %s: %v", tc.file, err)
			case !tc.gitGone && !bytes.Equal(got, want):
				t.Fatalf("read %d bytes of %s, not git's %d bytes", len(got), tc.file, len(want))
			}
			if n := ts.srv.Stats().IntegrityFailures; n < 1 {
				t.Errorf("IntegrityFailures = %d, want at least 1", n)
			}
			rs := reps.all()
			if len(rs) < 1 || rs[0].Name != blob || rs[0].Store != integrity.StoreNFS || rs[0].Repaired == tc.gitGone {
				t.Fatalf("reports = %+v, want one for %s (repaired %v)", rs, blob, !tc.gitGone)
			}
			q := quarantined(t, state)
			if tc.name == "missing" {
				if len(q) != 0 {
					t.Errorf("quarantine = %v for a missing file", q)
				}
				return
			}
			if len(q) != 1 || !strings.HasPrefix(q[0], blob+".") {
				t.Fatalf("quarantine = %v, want %s.<time>", q, blob)
			}
			if rs[0].Quarantine != filepath.Join(state, "quarantine", q[0]) {
				t.Errorf("report names quarantine %q, the file is %s", rs[0].Quarantine, q[0])
			}
		})
	}
}

// TestBackgroundVerifyCatchesFlip flips a byte of a blob that was already
// verified and is held open by the read path: the background verifier
// finds it before any read does, moves it aside, rebuilds it and drops
// the cached descriptor, so the next read gets git's bytes.
func TestBackgroundVerifyCatchesFlip(t *testing.T) {
	fx := newFixture(t)
	state := t.TempDir()
	var reps reports
	ts := startServer(t, Config{Objects: openGit(t, fx.repo), StateDir: state, Authorize: allowCommits(fx.commit), Report: reps.add}, "127.0.0.1:0")
	tg := mustMount(t, ts.port, "/c/"+fx.commit, 0, 0)
	if got, err := readAll(t, tg, "big.bin"); err != nil || !bytes.Equal(got, fx.big) {
		t.Fatalf("first read: %d bytes, %v", len(got), err)
	}
	blob := run(t, fx.repo, "git", "rev-parse", "HEAD:big.bin")
	h := ts.srv.mustResolve(t, blob)
	ts.srv.store.fdMu.Lock()
	cached := ts.srv.store.fds[h] != nil
	ts.srv.store.fdMu.Unlock()
	if !cached {
		t.Fatal("the read path holds no descriptor of big.bin")
	}
	testkit.FlipByte(t, filepath.Join(state, "blobs", blob[:2], blob[2:]), 100)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		(&integrity.Background{Rate: 1 << 30, Sweep: 10 * time.Millisecond, MinPass: 10 * time.Millisecond,
			Stores: []integrity.Walkable{ts.srv.VerifyStore()}, Log: testLogger(t)}).Run(ctx)
		close(done)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for ts.srv.Stats().IntegrityFailures == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the background verifier did not stop")
	}
	if n := ts.srv.Stats().IntegrityFailures; n != 1 {
		t.Fatalf("IntegrityFailures = %d, want 1", n)
	}
	if q := quarantined(t, state); len(q) != 1 || !strings.HasPrefix(q[0], blob+".") {
		t.Fatalf("quarantine = %v", q)
	}
	if rs := reps.all(); len(rs) != 1 || !rs[0].Repaired {
		t.Fatalf("reports = %+v", rs)
	}
	ts.srv.store.fdMu.Lock()
	cached = ts.srv.store.fds[h] != nil
	ts.srv.store.fdMu.Unlock()
	if cached {
		t.Error("the bad file's descriptor is still cached")
	}
	if got, err := readAll(t, tg, "big.bin"); err != nil || !bytes.Equal(got, fx.big) {
		t.Fatalf("read after repair: %d bytes, %v", len(got), err)
	}
}

// TestFlipUnderOpenDescriptor flips a byte of a verified blob the read
// path holds open, with no background verifier: the fstat after the next
// pread sees the file changed, so the read is redone from a verified,
// rebuilt file and the flipped byte is never served.
func TestFlipUnderOpenDescriptor(t *testing.T) {
	fx := newFixture(t)
	state := t.TempDir()
	ts := startServer(t, Config{Objects: openGit(t, fx.repo), StateDir: state, Authorize: allowCommits(fx.commit)}, "127.0.0.1:0")
	tg := mustMount(t, ts.port, "/c/"+fx.commit, 0, 0)
	if got, err := readAll(t, tg, "big.bin"); err != nil || !bytes.Equal(got, fx.big) {
		t.Fatalf("first read: %d bytes, %v", len(got), err)
	}
	blob := run(t, fx.repo, "git", "rev-parse", "HEAD:big.bin")
	testkit.FlipByte(t, filepath.Join(state, "blobs", blob[:2], blob[2:]), 5)
	if got, err := readAll(t, tg, "big.bin"); err != nil || !bytes.Equal(got, fx.big) {
		t.Fatalf("read after the flip: %d bytes, %v (equal %v)", len(got), err, bytes.Equal(got, fx.big))
	}
	if n := ts.srv.Stats().IntegrityFailures; n != 1 {
		t.Fatalf("IntegrityFailures = %d, want 1", n)
	}
}

// TestBackgroundNeverStallsReads runs the background verifier over
// big.bin alone, so slowly that its hash would take minutes: a first read of that
// blob meanwhile is verified on its own and answered at once (it never
// waits for the paced hash), and the verifier stops as soon as asked.
func TestBackgroundNeverStallsReads(t *testing.T) {
	fx := newFixture(t)
	ts := startServer(t, Config{Objects: openGit(t, fx.repo), StateDir: t.TempDir(), Authorize: allowCommits(fx.commit)}, "127.0.0.1:0")
	if err := ts.srv.Prepare(context.Background(), fx.commit); err != nil {
		t.Fatal(err)
	}
	blob := run(t, fx.repo, "git", "rev-parse", "HEAD:big.bin")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		(&integrity.Background{Rate: 1024, Stores: []integrity.Walkable{only{ts.srv.VerifyStore(), blob}}, Log: testLogger(t)}).Run(ctx)
		close(done)
	}()
	time.Sleep(200 * time.Millisecond) // the walk is under way, waiting on its rate
	tg := mustMount(t, ts.port, "/c/"+fx.commit, 0, 0)
	read := make(chan error, 1)
	go func() {
		got, err := readAll(t, tg, "big.bin")
		if err == nil && !bytes.Equal(got, fx.big) {
			err = errors.New("wrong bytes")
		}
		read <- err
	}()
	select {
	case err := <-read:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a read waited for the background verifier")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the background verifier did not stop")
	}
}

// only is a store that lists one of its entries.
type only struct {
	integrity.Walkable
	name string
}

func (o only) List() ([]string, error) { return []string{o.name}, nil }
