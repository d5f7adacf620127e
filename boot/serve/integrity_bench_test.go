package serve

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/onesis/git-onesis/internal/testkit"
)

// BenchmarkServedKernel GETs a cached 8 MiB kernel over loopback HTTP
// (http.ServeContent, as httpboot serves it), verifying (the identity
// memo's fstat, an fstat per 64 KiB read; no sendfile) and not
// (Artifacts.SkipVerify: the plain *os.File, sent with sendfile); and
// "first", with the hash of the whole kernel a fresh process pays once.
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
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
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
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if mode == "first" {
					a.check.memo.Forget(p)
				}
				kb, err := a.Kernel(r.Context(), commit)
				if err != nil {
					http.Error(w, err.Error(), 500)
					return
				}
				defer kb.Content.Close()
				http.ServeContent(w, r, "", kb.ModTime, kb.Content)
			}))
			defer srv.Close()
			b.SetBytes(int64(len(kernel)))
			b.ResetTimer()
			for b.Loop() {
				resp, err := client.Get(srv.URL)
				if err != nil {
					b.Fatal(err)
				}
				n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{resp.Body}, buf)
				resp.Body.Close()
				if err != nil || n != int64(len(kernel)) {
					b.Fatalf("read %d bytes: %v", n, err)
				}
			}
		})
	}
}
