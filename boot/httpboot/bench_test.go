package httpboot

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/onesis/git-onesis/boot/inventory"
)

// fileArtifacts serves one on-disk file as every kernel, as the git-backed
// cache does (an *os.File behind http.ServeContent).
type fileArtifacts struct{ path, hash string }

func (f fileArtifacts) open() (*Blob, error) {
	fh, err := os.Open(f.path)
	if err != nil {
		return nil, err
	}
	st, _ := fh.Stat()
	return &Blob{Content: fh, Size: st.Size(), Hash: f.hash, ModTime: time.Unix(0, 0)}, nil
}
func (f fileArtifacts) Kernel(context.Context, string) (*Blob, error) { return f.open() }
func (f fileArtifacts) Initrd(context.Context, string) (*Blob, error) { return f.open() }

// BenchmarkKernelFetch measures N concurrent nodes fetching an 8 MiB
// kernel over HTTP on loopback (N = 1, 8, 32); it reports MB/s. Run it
// with: go test -run '^$' -bench KernelFetch ./boot/httpboot
func BenchmarkKernelFetch(b *testing.B) {
	p := filepath.Join(b.TempDir(), "vmlinuz")
	buf := make([]byte, 8<<20)
	rand.Read(buf)
	if err := os.WriteFile(p, buf, 0o644); err != nil {
		b.Fatal(err)
	}
	inv := inventory.New()
	h, err := New(Config{BaseURL: "http://127.0.0.1:1", NFSServer: netip.MustParseAddr("127.0.0.1"),
		Inventory: func() *inventory.Inventory { return inv }, Resolver: fakeResolver{},
		Artifacts: fileArtifacts{p, "bench"}, Servable: func(string) bool { return true }})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	url := srv.URL + "/c/" + c1 + "/kernel"
	for _, n := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(buf)) * int64(n))
			for i := 0; i < b.N; i++ {
				var wg sync.WaitGroup
				for c := 0; c < n; c++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						resp, err := http.Get(url)
						if err != nil {
							b.Error(err)
							return
						}
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}()
				}
				wg.Wait()
			}
		})
	}
}
