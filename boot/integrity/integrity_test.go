package integrity

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestParseRate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		bad  bool
	}{
		{"0", 0, false},
		{"1000", 1000, false},
		{"32m", 32 << 20, false},
		{"32M", 32 << 20, false},
		{"1g", 1 << 30, false},
		{"512k", 512 << 10, false},
		{" 8K ", 8 << 10, false},
		{"", 0, true},
		{"-1", 0, true},
		{"1.5m", 0, true},
		{"10mb", 0, true},
		{"m", 0, true},
		{"99999999999g", 0, true},
	} {
		got, err := ParseRate(tc.in)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("ParseRate(%q) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.bad)
		}
	}
}

// writeFile writes content to a new file and returns it open with its
// identity.
func openFile(t *testing.T, content string) (string, int, Identity) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	fd, err := OpenNoFollow(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	id, reg, err := Fstat(fd)
	if err != nil || !reg {
		t.Fatal(err, reg)
	}
	return p, fd, id
}

// TestCheck compares with git's own blob ids (git hash-object) and
// sha256, for SHA-1 and SHA-256 ids, and a file larger than one hash
// buffer.
func TestCheck(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", hashBuf/8+3)
	for _, content := range []string{"", "hello\n", big} {
		p, fd, id := openFile(t, content)
		for _, format := range []string{"sha1", "sha256"} {
			repo := t.TempDir()
			if err := exec.Command("git", "init", "-q", "--object-format="+format, repo).Run(); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("git", "hash-object", "--no-filters", p)
			cmd.Dir = repo
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("git hash-object (%s): %v", format, err)
			}
			id0 := strings.TrimSpace(string(out))
			if want := map[string]int{"sha1": 40, "sha256": 64}[format]; len(id0) != want {
				t.Fatalf("git gave %q for %s", id0, format)
			}
			if err := Check(context.Background(), fd, id, Want{Blob: id0}, nil); err != nil {
				t.Errorf("%s of %d bytes: %v", format, len(content), err)
			}
			wrong := strings.Repeat("0", len(id0))
			if err := Check(context.Background(), fd, id, Want{Blob: wrong}, nil); !errors.Is(err, ErrMismatch) {
				t.Errorf("%s: a wrong id gives %v", format, err)
			}
		}
		sum, err := exec.Command("sha256sum", p).Output()
		if err != nil {
			t.Fatal(err)
		}
		if err := Check(context.Background(), fd, id, Want{SHA256: strings.Fields(string(sum))[0]}, nil); err != nil {
			t.Errorf("sha256 of %d bytes: %v", len(content), err)
		}
	}
}

// TestCheckChanged: a file that grew or shrank since its fstat is
// reported as changed, never as matching.
func TestCheckChanged(t *testing.T) {
	p, fd, id := openFile(t, "hello\n")
	os.WriteFile(p, []byte("hello, world\n"), 0o644)
	if err := Check(context.Background(), fd, id, Want{Blob: strings.Repeat("0", 40)}, nil); !errors.Is(err, ErrChanged) {
		t.Errorf("grown file: %v", err)
	}
}

// TestMemoSingleFlight: many concurrent verifications of one identity
// hash once; a new identity hashes again.
func TestMemoSingleFlight(t *testing.T) {
	m := NewMemo[string]()
	id := Identity{Ino: 1, Size: 5, Ctime: time.Now().Add(-time.Hour).UnixNano()}
	var calls atomic.Int32
	release := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := m.Verify("k", id, func() error { calls.Add(1); <-release; return nil }); err != nil {
				t.Error(err)
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Errorf("%d hashes for 50 concurrent first reads, want 1", n)
	}
	if err := m.Verify("k", id, func() error { t.Error("hashed a remembered identity"); return nil }); err != nil {
		t.Error(err)
	}
	id2 := id
	id2.Ctime++
	if err := m.Verify("k", id2, func() error { return ErrMismatch }); !errors.Is(err, ErrMismatch) {
		t.Errorf("changed identity: %v", err)
	}
	// A file changed within the racy window is not remembered.
	racy := Identity{Ino: 2, Ctime: time.Now().UnixNano()}
	m.Verify("r", racy, func() error { return nil })
	if m.Verified("r", racy) {
		t.Error("a file whose ctime is not older than its hash was remembered")
	}
}

func TestQuarantine(t *testing.T) {
	dir := t.TempDir()
	q := filepath.Join(dir, "quarantine")
	var got []string
	for i := 0; i < 3; i++ {
		p := filepath.Join(dir, "bad")
		os.WriteFile(p, []byte{byte(i)}, 0o600)
		dest, err := Quarantine(q, p, "bad")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s still there", p)
		}
		got = append(got, dest)
	}
	for i, d := range got {
		if b, err := os.ReadFile(d); err != nil || len(b) != 1 || b[0] != byte(i) {
			t.Errorf("quarantined file %s: %v %v", d, b, err)
		}
	}
}

func TestLimiterStops(t *testing.T) {
	var l *Limiter
	if err := l.Wait(context.Background(), 1<<30); err != nil {
		t.Errorf("nil limiter: %v", err)
	}
	l = NewLimiter(1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.Wait(ctx, 1<<20); !errors.Is(err, context.Canceled) {
		t.Errorf("a canceled wait returned %v", err)
	}
}
