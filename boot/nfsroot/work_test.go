package nfsroot

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	nfsc "github.com/willscott/go-nfs-client/nfs"
)

func allowWork(name, dir string, rw bool) func(net.IP, string) (Export, bool) {
	return func(ip net.IP, export string) (Export, bool) {
		if ip.IsLoopback() && export == "/w/"+name {
			return Export{Dir: dir, ReadWrite: rw}, true
		}
		return Export{}, false
	}
}

func TestMaintenanceExport(t *testing.T) {
	fx := newFixture(t)
	wt := filepath.Join(t.TempDir(), "wt")
	run(t, fx.repo, "git", "worktree", "add", "-q", wt, "-b", "update")
	if err := syscall.Chmod(filepath.Join(wt, "bin/suid"), 0o4755); err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	cfg := Config{Objects: openGit(t, fx.repo), StateDir: state, Authorize: allowWork("node1", wt, true)}
	ts := startServer(t, cfg, "127.0.0.1:0")
	tg := mustMount(t, ts.port, "/w/node1", 0, 0)

	got := listing(t, tg, "/")
	if strings.Contains(got, ".git") || !strings.Contains(got, "etc") {
		t.Errorf("worktree listing %q: want etc, and no .git*", got)
	}
	// ACCESS works (the arguments after the handle are read right).
	for _, tc := range []struct {
		path      string
		ask, want uint32
	}{{"etc", 0x3f, 0x1f}, {"etc/passwd", 0x0f, 0x0d}, {"usr/bin/hello", 0x21, 0x21}} {
		if got, err := tg.Access(tc.path, tc.ask); err != nil || got != tc.want {
			t.Errorf("ACCESS %s %#x = %#x, %v; want %#x", tc.path, tc.ask, got, err, tc.want)
		}
	}
	fi, _, err := tg.Lookup("bin/suid")
	if err != nil || fi.(*nfsc.Fattr).FileMode&07777 != 04755 {
		t.Errorf("bin/suid: %v %v; want mode 04755", fi, err)
	}
	f, err := tg.Open("hello.link")
	if err != nil {
		t.Fatal(err)
	}
	if target, err := f.Readlink(); err != nil || target != "/usr/bin/hello" {
		t.Errorf("readlink = %q, %v; want the raw target /usr/bin/hello", target, err)
	}
	// Read-write: a file written on the node lands in the worktree.
	nf, err := tg.OpenFile("etc/motd", 0o644)
	if err != nil {
		t.Fatalf("creating etc/motd: %v", err)
	}
	if _, err := nf.Write([]byte("hello from node1\n")); err != nil {
		t.Fatalf("writing etc/motd: %v", err)
	}
	nf.Close()
	if b, err := os.ReadFile(filepath.Join(wt, "etc/motd")); err != nil || string(b) != "hello from node1\n" {
		t.Errorf("etc/motd on the server: %q, %v", b, err)
	}
	if _, err := tg.OpenFile(".git/evil", 0o644); err == nil {
		t.Errorf("created a file under the hidden .git")
	}
	// chmod with setuid/setgid/sticky from the node reaches the file (go-nfs
	// alone would keep only 0777), and clearing them works too.
	for _, mode := range []uint32{0o4755, 0o2711, 0o755} {
		if err := tg.Setattr("usr/bin/hello", nfsc.Sattr3{Mode: nfsc.SetMode{SetIt: true, Mode: mode}}); err != nil {
			t.Fatalf("SETATTR mode %#o: %v", mode, err)
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(filepath.Join(wt, "usr/bin/hello"), &st); err != nil || st.Mode&0o7777 != mode {
			t.Errorf("after SETATTR %#o the file on the server has mode %#o (%v)", mode, st.Mode&0o7777, err)
		}
		if fi, err := tg.Getattr("usr/bin/hello"); err != nil || fi.FileMode&0o7777 != mode {
			t.Errorf("after SETATTR %#o GETATTR says %v, %v", mode, fi, err)
		}
	}
	_, fh, err := tg.Lookup("usr/bin/hello")
	if err != nil {
		t.Fatal(err)
	}
	ts.stop()

	// After a restart the old handle still resolves (by inode).
	ts2 := startServer(t, cfg, "127.0.0.1:0")
	tg2 := mustMount(t, ts2.port, "/w/node1", 0, 0)
	if _, err := tg2.GetAttr(fh); err != nil {
		t.Errorf("GETATTR with a pre-restart maintenance handle: %v", err)
	}
	_, fh2, _ := tg2.Lookup("usr/bin/hello")
	if !bytes.Equal(fh, fh2) {
		t.Errorf("maintenance handle changed across a restart")
	}

	// Read-only maintenance export: writes fail.
	ts3 := startServer(t, Config{Objects: openGit(t, fx.repo), StateDir: state, Authorize: allowWork("node2", wt, false)}, "127.0.0.1:0")
	tg3 := mustMount(t, ts3.port, "/w/node2", 0, 0)
	if nf, err := tg3.OpenFile("etc/motd2", 0o644); err == nil {
		if _, err := nf.Write([]byte("x")); err == nil {
			t.Errorf("wrote through a read-only maintenance export")
		}
	}
	if _, err := os.Stat(filepath.Join(wt, "etc/motd2")); err == nil {
		t.Errorf("etc/motd2 was created through a read-only export")
	}
	// node1's export is not node2's to mount.
	if _, err := mountAs(t, ts3.port, "/w/node1", 0, 0); err == nil {
		t.Errorf("MOUNT /w/node1 succeeded for a client only allowed /w/node2")
	}
}

// TestHandleLengths: go-nfs reads opaques without XDR padding, so a handle
// whose length is not a multiple of 4 would shift the arguments after it.
func TestHandleLengths(t *testing.T) {
	for name, n := range map[string]int{"commit": handleLen, "maintenance": workHandleLen} {
		if n%4 != 0 || n > 64 {
			t.Errorf("%s handles are %d bytes; want a multiple of 4, at most 64", name, n)
		}
	}
}
