package nfsroot

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onesis/git-onesis/internal/bootsim"
)

// TestConcurrentReaders: a dozen clients each walk a whole commit with
// READDIRPLUS and read every file to its end at the same time, as nodes
// do after a mass reboot; every client must get every file, byte for byte
// what git holds, and a symlink's target. Once with go-nfs-client (one
// call at a time), once with bootsim's pipelined client (many calls in
// flight on one connection, READs out of order), once with it listing by
// READDIR and a LOOKUP per name (mount -o nordirplus).
func TestConcurrentReaders(t *testing.T) {
	const clients = 12
	dir := t.TempDir()
	run(t, dir, "git", "init", "-q", "-b", "main")
	rng := rand.New(rand.NewPCG(1, 2))
	want := map[string][]byte{}
	dirs := map[string]bool{}
	for i := 0; i < 240; i++ {
		d := fmt.Sprintf("usr/lib/d%02d", i%17)
		if i%5 == 0 {
			d = fmt.Sprintf("etc/sub%d/deeper", i%3)
		}
		p := fmt.Sprintf("%s/f%03d", d, i)
		size := rng.IntN(96 << 10)
		if i%60 == 0 {
			size = 2<<20 + rng.IntN(1<<20) // some files span many READs
		}
		b := make([]byte, size)
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		want[p] = b
		for q := filepath.Dir(p); q != "."; q = filepath.Dir(q) {
			dirs[q] = true
		}
	}
	var lines []string
	for p, b := range want {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, p), b, 0o644); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, "./"+p+"  mode=0644  uid=0  gid=0  type=file")
	}
	for d := range dirs {
		lines = append(lines, "./"+d+"  mode=0755  uid=0  gid=0  type=dir")
	}
	os.Symlink("../lib/d00/f000", filepath.Join(dir, "usr/lib/link"))
	lines = append(lines, "./usr/lib/link  mode=0777  uid=0  gid=0  type=link  link=../lib/d00/f000")
	sort.Strings(lines)
	gm := "#mtree v2.0\n.  mode=0755  uid=0  gid=0  type=dir\n./.gitmeta  mode=0644  uid=0  gid=0  type=file\n" + strings.Join(lines, "\n") + "\n"
	os.WriteFile(filepath.Join(dir, ".gitmeta"), []byte(gm), 0o644)
	run(t, dir, "git", "add", "-A")
	run(t, dir, "git", "commit", "-qm", "load")
	commit := run(t, dir, "git", "rev-parse", "HEAD")

	srv, err := New(Config{Objects: openGit(t, dir), StateDir: t.TempDir(), Authorize: allowCommits(commit)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	port := l.Addr().(*net.TCPAddr).Port

	readers := []struct {
		name string
		read func(ctx context.Context, file func(string, []byte) error) (*bootsim.RootStats, error)
	}{
		{"go-nfs-client", func(ctx context.Context, file func(string, []byte) error) (*bootsim.RootStats, error) {
			return bootsim.ReadRoot(ctx, "127.0.0.1", port, "/c/"+commit, 0, 0, file)
		}},
		{"pipelined", func(ctx context.Context, file func(string, []byte) error) (*bootsim.RootStats, error) {
			return bootsim.ReadRootPipelined(ctx, "127.0.0.1", port, "/c/"+commit, bootsim.PipelineOptions{ReadSize: 64 << 10}, file)
		}},
		{"pipelined-nordirplus", func(ctx context.Context, file func(string, []byte) error) (*bootsim.RootStats, error) {
			return bootsim.ReadRootPipelined(ctx, "127.0.0.1", port, "/c/"+commit, bootsim.PipelineOptions{NoRdirplus: true, InFlight: 8, Procs: 4}, file)
		}},
	}
	for _, rd := range readers {
		t.Run(rd.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			var wg sync.WaitGroup
			errs := make([]error, clients)
			stats := make([]*bootsim.RootStats, clients)
			for c := 0; c < clients; c++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					seen := map[string]bool{}
					st, err := rd.read(ctx, func(p string, data []byte) error {
						w, ok := want[p]
						if !ok {
							return fmt.Errorf("unexpected file %s", p)
						}
						if !bytes.Equal(w, data) {
							return fmt.Errorf("%s: read %d bytes that differ from git's %d", p, len(data), len(w))
						}
						if seen[p] {
							return fmt.Errorf("%s read twice", p)
						}
						seen[p] = true
						return nil
					})
					if err == nil && len(seen) != len(want) {
						err = fmt.Errorf("read %d files, want %d", len(seen), len(want))
					}
					errs[c], stats[c] = err, st
				}()
			}
			wg.Wait()
			for c, err := range errs {
				if err != nil {
					t.Errorf("client %d: %v", c, err)
					continue
				}
				if stats[c].Symlinks != 1 || stats[c].Files != len(want) || stats[c].Dirs != len(dirs)+1 {
					t.Errorf("client %d: %+v; want 1 symlink, %d files, %d directories", c, stats[c], len(want), len(dirs)+1)
				}
			}
			t.Logf("%d clients, each %d files: %+v", clients, len(want), stats[0])
		})
	}
}
