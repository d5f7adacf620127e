package nfsroot

import (
	"log/slog"
	"net"
	"testing"

	nfs "github.com/willscott/go-nfs"
	nfsc "github.com/willscott/go-nfs-client/nfs"
	"github.com/willscott/go-nfs-client/nfs/rpc"
)

// BenchmarkRead reads a 300 KiB file over loopback, through the permission
// interposer and (for comparison) straight into go-nfs.
func BenchmarkRead(b *testing.B) {
	fx := newFixture(b)
	srv, err := New(Config{Objects: openGit(b, fx.repo), StateDir: b.TempDir(), Authorize: allowCommits(fx.commit)})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	for _, mode := range []string{"interposed", "plain-go-nfs"} {
		b.Run(mode, func(b *testing.B) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			if mode == "interposed" {
				go srv.Serve(l)
			} else {
				go (&nfs.Server{Handler: (*handler)(srv)}).Serve(l)
				defer l.Close()
			}
			readBig(b, fx, l)
		})
	}
}

// BenchmarkReadVerify reads a 300 KiB file over loopback through the
// interposer from a server verifying its blobs (the default: an fstat
// after each pread once the blob is verified) and from one that does not
// (Config.SkipVerify): what verification costs a warm read.
func BenchmarkReadVerify(b *testing.B) {
	fx := newFixture(b)
	for _, mode := range []string{"verify", "skip"} {
		b.Run(mode, func(b *testing.B) {
			srv, err := New(Config{Objects: openGit(b, fx.repo), StateDir: b.TempDir(), Authorize: allowCommits(fx.commit), SkipVerify: mode == "skip",
				Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				b.Fatal(err)
			}
			defer srv.Close()
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			go srv.Serve(l)
			readBig(b, fx, l)
		})
	}
}

// readBig mounts fx's commit from the server listening on l and reads
// big.bin b.N times (b.Loop), timing the reads only.
func readBig(b *testing.B, fx *fixture, l net.Listener) {
	b.Helper()
	client, err := nfsc.DialServiceAtPort("127.0.0.1", l.Addr().(*net.TCPAddr).Port)
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	tg, err := (&nfsc.Mount{Client: client}).Mount("/c/"+fx.commit, rpc.NewAuthUnix("b", 1000, 1000).Auth())
	if err != nil {
		b.Fatal(err)
	}
	f, err := tg.Open("big.bin")
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, len(fx.big))
	b.SetBytes(int64(len(fx.big)))
	b.ResetTimer()
	for b.Loop() {
		n := 0
		for n < len(buf) {
			m, err := f.ReadAt(buf[n:], int64(n))
			n += m
			if err != nil {
				break
			}
		}
		if n != len(buf) {
			b.Fatalf("read %d of %d bytes", n, len(buf))
		}
	}
}
