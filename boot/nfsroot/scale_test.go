package nfsroot

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// BenchmarkPrepare times serving a generated image of many files, then a
// second commit that changes a handful of them.
func BenchmarkPrepare(b *testing.B) {
	n := 20000
	if s := os.Getenv("ONESIS_BENCH_FILES"); s != "" {
		fmt.Sscan(s, &n)
	}
	dir := b.TempDir()
	run(b, dir, "git", "init", "-q", "-b", "main")
	var gm strings.Builder
	gm.WriteString("#mtree v2.0\n.  mode=0755  uid=0  gid=0  type=dir\n")
	for d := 0; d < n/100; d++ {
		dp := fmt.Sprintf("usr/d%04d", d)
		os.MkdirAll(filepath.Join(dir, dp), 0o755)
		for f := 0; f < 100; f++ {
			p := fmt.Sprintf("%s/f%03d", dp, f)
			os.WriteFile(filepath.Join(dir, p), []byte(p+"\n"), 0o644)
		}
	}
	os.WriteFile(filepath.Join(dir, ".gitmeta"), []byte(gm.String()), 0o644)
	run(b, dir, "git", "add", "-A")
	run(b, dir, "git", "commit", "-qm", "big")
	srv, err := New(Config{Objects: openGit(b, dir), StateDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	start := time.Now()
	if err := srv.Prepare(b.Context(), "HEAD"); err != nil {
		b.Fatal(err)
	}
	b.Logf("first commit, %d files: %v", n, time.Since(start))
	for i := 0; i < 5; i++ {
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("usr/d0000/f%03d", i)), []byte("changed\n"), 0o644)
	}
	run(b, dir, "git", "commit", "-qam", "small change")
	start = time.Now()
	if err := srv.Prepare(b.Context(), "HEAD"); err != nil {
		b.Fatal(err)
	}
	b.Logf("second commit (5 files changed): %v", time.Since(start))
	for b.Loop() {
		srv.mu.Lock()
		clear(srv.indexes)
		srv.mu.Unlock()
		if err := srv.Prepare(b.Context(), "HEAD"); err != nil {
			b.Fatal(err)
		}
	}
}
