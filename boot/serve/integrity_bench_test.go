package serve

import (
	"context"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/onesis/git-onesis/internal/testkit"
)

// BenchmarkServedKernel opens and reads a cached 8 MiB kernel as the HTTP
// path does (32 KiB reads), verifying (the identity memo's fstat, an
// fstat per read) and not (Artifacts.SkipVerify: the plain file); and
// "first", the hash of the whole kernel a fresh process pays once.
func BenchmarkServedKernel(b *testing.B) {
	dir := b.TempDir()
	testkit.Sh(b, dir, "git", "init", "-q", "-b", "main")
	kernel := make([]byte, 8<<20)
	for i := range kernel {
		kernel[i] = byte(i * 7)
	}
	testkit.WriteFile(b, dir, "boot/vmlinuz-6.1.0-10-amd64", string(kernel))
	testkit.Sh(b, dir, "git", "add", "-A")
	testkit.Sh(b, dir, "git", "commit", "-qm", "k")
	commit := testkit.Sh(b, dir, "git", "rev-parse", "HEAD")
	buf := make([]byte, 32<<10)
	for _, mode := range []string{"verify", "skip", "first"} {
		b.Run(mode, func(b *testing.B) {
			state := b.TempDir()
			a, err := NewGitArtifacts(dir, state, nil)
			if err != nil {
				b.Fatal(err)
			}
			a.SkipVerify = mode == "skip"
			p := filepath.Join(state, "blobs", testkit.Sh(b, dir, "git", "rev-parse", "HEAD:boot/vmlinuz-6.1.0-10-amd64"))
			for i := 0; i < 2; i++ {
				kb, err := a.Kernel(context.Background(), commit)
				if err != nil {
					b.Fatal(err)
				}
				kb.Content.Close()
				// Out of the racy window, as a cache file is after its
				// first second: the memo may keep it.
				time.Sleep(1100 * time.Millisecond)
			}
			b.SetBytes(int64(len(kernel)))
			b.ResetTimer()
			for b.Loop() {
				if mode == "first" {
					a.check.memo.Forget(p)
				}
				kb, err := a.Kernel(context.Background(), commit)
				if err != nil {
					b.Fatal(err)
				}
				if n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{kb.Content}, buf); err != nil || n != int64(len(kernel)) {
					b.Fatalf("read %d bytes: %v", n, err)
				}
				kb.Content.Close()
			}
		})
	}
}
