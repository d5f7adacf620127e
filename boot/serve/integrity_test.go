package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/onesis/git-onesis/boot/httpboot"
	"github.com/onesis/git-onesis/boot/integrity"
	"github.com/onesis/git-onesis/internal/testkit"
)

// cacheFile returns the path of commit's cached kernel or initramfs.
func cacheFile(t *testing.T, srv *Server, dir, commit, what string) string {
	t.Helper()
	if what == "kernel" {
		blob := sh(t, dir, "git", "rev-parse", commit+":boot/vmlinuz-6.1.0-10-amd64")
		return filepath.Join(srv.cfg.StateDir, "blobs", blob)
	}
	key, _, err := srv.art.initrdKey(commit)
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(srv.cfg.StateDir, "initrd", key)
}

// TestServedCacheVerified damages the cached kernel and initramfs after
// they were served once: the next GET gets the right bytes, the bad file
// is in quarantine, and /metrics and /status report it.
func TestServedCacheVerified(t *testing.T) {
	want := map[string]string{"kernel": "KERNEL 6.1.0-10", "initrd": "INITRD for 6.1.0-10-amd64"}
	for _, tc := range []struct {
		name, what string
		damage     func(t *testing.T, p string)
	}{
		{"kernel, flipped byte", "kernel", func(t *testing.T, p string) { testkit.FlipByte(t, p, 3) }},
		{"initrd, flipped byte", "initrd", func(t *testing.T, p string) { testkit.FlipByte(t, p, 0) }},
		{"kernel, symlink", "kernel", func(t *testing.T, p string) {
			os.Remove(p)
			if err := os.Symlink("/etc/hostname", p); err != nil {
				t.Fatal(err)
			}
		}},
		{"initrd, appended", "initrd", func(t *testing.T, p string) {
			f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteString(" init=/bin/sh")
			f.Close()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, r := imageRepo(t)
			addNodes(t, r, "node n1 mac=52:54:00:00:00:01 ip=10.77.0.11\n")
			c1 := sh(t, dir, "git", "rev-parse", "HEAD")
			var logs syncBuffer
			b := &fakeBuilder{}
			ts := startServe(t, dir, b, &logs)
			httpGet(t, ts.base+"/boot/52-54-00-00-00-01.ipxe")
			url := ts.base + "/c/" + c1 + "/" + tc.what
			if code, body := httpGet(t, url); code != 200 || body != want[tc.what] {
				t.Fatalf("first GET: %d %q", code, body)
			}
			p := cacheFile(t, ts.srv, dir, c1, tc.what)
			tc.damage(t, p)
			if code, body := httpGet(t, url); code != 200 || body != want[tc.what] {
				t.Fatalf("GET after the damage: %d %q, want %q", code, body, want[tc.what])
			}
			if got, err := os.ReadFile(p); err != nil || string(got) != want[tc.what] {
				t.Errorf("the cache file is %q, %v after the repair", got, err)
			}
			q, _ := filepath.Glob(filepath.Join(ts.srv.cfg.StateDir, "quarantine", filepath.Base(p)+".*"))
			if len(q) == 0 {
				t.Fatalf("no %s.* in quarantine", filepath.Base(p))
			}
			_, m := httpGet(t, ts.base+"/metrics")
			if !strings.Contains(m, `onesis_served_integrity_failures_total{store="`+tc.what+`"} 1`) {
				t.Errorf("metrics:\n%s", m)
			}
			_, st := httpGet(t, ts.base+"/status")
			var doc struct{ Integrity []httpboot.IntegrityEvent }
			if err := json.Unmarshal([]byte(st), &doc); err != nil {
				t.Fatal(err)
			}
			if len(doc.Integrity) != 1 || doc.Integrity[0].Store != tc.what || !doc.Integrity[0].Repaired ||
				doc.Integrity[0].Path != p || !strings.HasPrefix(doc.Integrity[0].Quarantine, filepath.Join(ts.srv.cfg.StateDir, "quarantine")) {
				t.Errorf("status integrity: %+v", doc.Integrity)
			}
			if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "not the object git names") {
				t.Errorf("no error logged:\n%s", logs.String())
			}
		})
	}
}

// TestCacheBackgroundVerify flips a byte of a cached kernel that was
// served and verified: the background verifier moves it aside and
// rebuilds it without any request.
func TestCacheBackgroundVerify(t *testing.T) {
	dir, gr := imageRepo(t)
	c1 := sh(t, dir, "git", "rev-parse", "HEAD")
	state := DefaultStateDir(gr)
	a, err := NewGitArtifacts(dir, state, &fakeBuilder{})
	if err != nil {
		t.Fatal(err)
	}
	var reps []integrity.Report
	a.Report = func(rep integrity.Report) { reps = append(reps, rep) }
	kb, err := a.Kernel(context.Background(), c1)
	if err != nil {
		t.Fatal(err)
	}
	kb.Content.Close()
	blob := sh(t, dir, "git", "rev-parse", c1+":boot/vmlinuz-6.1.0-10-amd64")
	p := filepath.Join(state, "blobs", blob)
	testkit.FlipByte(t, p, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	bg := &integrity.Background{Rate: 1 << 30, Sweep: 10 * time.Millisecond, MinPass: 10 * time.Millisecond,
		Stores: a.VerifyStores(), Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	done := make(chan struct{})
	go func() { bg.Run(ctx); close(done) }()
	for {
		k, _ := a.IntegrityFailures()
		if k > 0 || ctx.Err() != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if k, i := a.IntegrityFailures(); k != 1 || i != 0 {
		t.Fatalf("failures: kernel %d, initrd %d", k, i)
	}
	if len(reps) != 1 || !reps[0].Repaired || reps[0].Store != integrity.StoreKernel {
		t.Fatalf("reports: %+v", reps)
	}
	if got, _ := os.ReadFile(p); string(got) != "KERNEL 6.1.0-10" {
		t.Errorf("kernel after the background repair: %q", got)
	}
}

// TestCheckedFile reads a served file in TFTP-sized and odd pieces, with
// seeks, and checks every byte; a write in place ends the read with an
// error instead of serving the changed bytes.
func TestCheckedFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "k")
	want := make([]byte, 3*checkPiece+123)
	for i := range want {
		want[i] = byte(i * 13)
	}
	if err := os.WriteFile(p, want, 0o644); err != nil {
		t.Fatal(err)
	}
	open := func() *checkedFile {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		id, _, err := integrity.Fstat(int(f.Fd()))
		if err != nil {
			t.Fatal(err)
		}
		return newCheckedFile(f, id)
	}
	for _, piece := range []int{512, 1468, 32 << 10, checkPiece, 200 << 10} {
		f := open()
		var got []byte
		buf := make([]byte, piece)
		for {
			n, err := f.Read(buf)
			got = append(got, buf[:n]...)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("piece %d: %v", piece, err)
			}
		}
		f.Close()
		if !bytes.Equal(got, want) {
			t.Errorf("piece %d: read %d bytes, not the file's %d", piece, len(got), len(want))
		}
	}
	// net/http sends a syscall.Conn with sendfile(2), past every check.
	if _, ok := any(open()).(syscall.Conn); ok {
		t.Error("a checked file is a syscall.Conn: net/http would sendfile it unchecked")
	}
	// Seeks drop what was read ahead: SeekCurrent counts from what the
	// caller has read.
	f := open()
	b := make([]byte, 100)
	f.Read(b)
	if pos, err := f.Seek(10, io.SeekCurrent); err != nil || pos != 110 {
		t.Fatalf("Seek(10, current) after 100 bytes = %d, %v", pos, err)
	}
	f.Read(b[:1])
	if b[0] != want[110] {
		t.Errorf("byte 110 after the seek: %d, want %d", b[0], want[110])
	}
	f.Seek(0, io.SeekStart)
	// A write in place after the first piece was read ahead: the next
	// piece read fails.
	f.Read(b)
	testkit.FlipByte(t, p, checkPiece+5)
	rest := make([]byte, checkPiece)
	var err error
	for err == nil {
		_, err = f.Read(rest)
	}
	if !errors.Is(err, syscall.EIO) {
		t.Errorf("reading on after a write in place: %v, want EIO", err)
	}
	f.Close()
}

// TestInitrdBadRecord: an initramfs whose recorded sha256 is not a sha256
// is moved aside with its record and built again, not served unchecked.
func TestInitrdBadRecord(t *testing.T) {
	dir, gr := imageRepo(t)
	c1 := sh(t, dir, "git", "rev-parse", "HEAD")
	b := &fakeBuilder{}
	a, err := NewGitArtifacts(dir, DefaultStateDir(gr), b)
	if err != nil {
		t.Fatal(err)
	}
	var reps []integrity.Report
	a.Report = func(rep integrity.Report) { reps = append(reps, rep) }
	ib, err := a.Initrd(context.Background(), c1)
	if err != nil {
		t.Fatal(err)
	}
	ib.Content.Close()
	key, _, _ := a.initrdKey(c1)
	p := filepath.Join(DefaultStateDir(gr), "initrd", key)
	if err := os.WriteFile(p, []byte("INITRD with init=/bin/sh"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p+".sha256", []byte("not a sum\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ib, err = a.Initrd(context.Background(), c1)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(ib.Content)
	ib.Content.Close()
	if string(got) != "INITRD for 6.1.0-10-amd64" || b.builds != 2 {
		t.Errorf("served %q after %d builds", got, b.builds)
	}
	if len(reps) != 1 || reps[0].Quarantine == "" || !reps[0].Repaired {
		t.Errorf("reports: %+v", reps)
	}
	q, _ := filepath.Glob(filepath.Join(DefaultStateDir(gr), "quarantine", key+"*"))
	if len(q) != 2 {
		t.Errorf("quarantine: %v, want the initramfs and its record", q)
	}
}

// TestRefusesSHA256Repository: serve's go-git cannot read a SHA-256
// repository; it says so instead of go-git's "unknown extension".
func TestRefusesSHA256Repository(t *testing.T) {
	dir := t.TempDir()
	sh(t, dir, "git", "init", "-q", "--object-format=sha256")
	_, err := NewGitArtifacts(dir, t.TempDir(), nil)
	if err == nil || !strings.Contains(err.Error(), "sha256 object ids") {
		t.Fatalf("NewGitArtifacts on a SHA-256 repository: %v", err)
	}
}

// TestNFSIntegrityReported: what the NFS server reports (through
// NFSParams.Report, as nfsroot.Config.Report) reaches /metrics and
// /status and the log.
func TestNFSIntegrityReported(t *testing.T) {
	dir, _ := imageRepo(t)
	var logs syncBuffer
	ts := startServe(t, dir, &fakeBuilder{}, &logs)
	if ts.nfs.p.Report == nil {
		t.Fatal("serve gives the NFS server no Report")
	}
	ts.nfs.p.Report(integrity.Report{Store: integrity.StoreNFS, Name: strings.Repeat("ab", 20), Path: "/state/nfs/blobs/ab/x",
		Problem: "content does not match its name", Quarantine: "/state/nfs/quarantine/x.1", Repaired: true})
	_, m := httpGet(t, ts.base+"/metrics")
	for _, want := range []string{`onesis_served_integrity_failures_total{store="nfs"} 1`,
		`onesis_served_integrity_failures_total{store="kernel"} 0`, `onesis_served_integrity_failures_total{store="initrd"} 0`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s:\n%s", want, m)
		}
	}
	if _, st := httpGet(t, ts.base+"/status"); !strings.Contains(st, `"store": "nfs"`) || !strings.Contains(st, `"quarantine": "/state/nfs/quarantine/x.1"`) {
		t.Errorf("status:\n%s", st)
	}
	if !strings.Contains(logs.String(), "store=nfs") {
		t.Errorf("not logged:\n%s", logs.String())
	}
}
