package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onesis/git-onesis/internal/testkit"
)

// TestFsckServed fills serve's default state directory with the real
// writers (git onesis sync: NFS blob store, kernel and initramfs caches),
// damages one file of each store, and checks fsck --served finds each
// (exit 1, naming the path), that --repair moves them aside and rebuilds
// the blobs, and that the next run is clean.
func TestFsckServed(t *testing.T) {
	base := t.TempDir()
	central, initBin := centralImage(t, base, map[string]string{
		"etc/motd":  "message of the day\n",
		"etc/hosts": "127.0.0.1 localhost\n",
	})
	server := filepath.Join(base, "server")
	must(t, base, "git", "clone", "-q", central, server)
	must(t, server, "git", "onesis", "install", "-q")
	if r := onesis(t, server, "sync", "--init", initBin); r.code != 0 {
		t.Fatalf("sync: exit %d\n%s%s", r.code, r.out, r.err)
	}
	state := filepath.Join(server, ".git", "onesis", "serve")

	if r := onesis(t, server, "fsck", "--served"); r.code != 0 || r.out != "" {
		t.Fatalf("fsck of a fresh state: exit %d\n%s%s", r.code, r.out, r.err)
	}
	r := onesis(t, server, "fsck", "--served", "--json")
	var doc struct {
		Clean    bool
		Checked  map[string]int
		Problems []fsckProblem
	}
	if err := json.Unmarshal([]byte(r.out), &doc); err != nil || r.code != 0 || !doc.Clean ||
		doc.Checked["nfs"] < 3 || doc.Checked["kernel"] != 1 || doc.Checked["initrd"] != 1 {
		t.Fatalf("fsck --json of a fresh state: exit %d, %v\n%s", r.code, err, r.out)
	}

	motd := strings.TrimSpace(must(t, server, "git", "rev-parse", "HEAD:etc/motd"))
	hosts := strings.TrimSpace(must(t, server, "git", "rev-parse", "HEAD:etc/hosts"))
	kernel := strings.TrimSpace(must(t, server, "git", "rev-parse", "HEAD:boot/vmlinuz-6.1.0-7-amd64"))
	nfsMotd := filepath.Join(state, "nfs", "blobs", motd[:2], motd[2:])
	nfsHosts := filepath.Join(state, "nfs", "blobs", hosts[:2], hosts[2:])
	kpath := filepath.Join(state, "blobs", kernel)
	initrds, _ := filepath.Glob(filepath.Join(state, "initrd", strings.Repeat("?", 64)))
	if len(initrds) != 1 {
		t.Fatalf("initramfs cache: %v", initrds)
	}
	testkit.FlipByte(t, nfsMotd, 0)
	testkit.FlipByte(t, kpath, 2)
	testkit.FlipByte(t, initrds[0], 10)
	os.Remove(nfsHosts)
	if err := os.Symlink("/etc/hosts", nfsHosts); err != nil {
		t.Fatal(err)
	}
	bad := []string{nfsMotd, nfsHosts, kpath, initrds[0]}

	r = onesis(t, server, "fsck", "--served")
	if r.code != 1 || len(strings.Split(strings.TrimSpace(r.out), "\n")) != len(bad) {
		t.Fatalf("fsck of a damaged state: exit %d, want 1 and %d lines\n%s%s", r.code, len(bad), r.out, r.err)
	}
	for _, p := range bad {
		if !strings.Contains(r.out, p+": ") {
			t.Errorf("fsck does not name %s:\n%s", p, r.out)
		}
	}
	if r := onesis(t, server, "fsck", "--served", "-q"); r.code != 1 || r.out != "" {
		t.Errorf("fsck -q: exit %d, %q", r.code, r.out)
	}
	// An explicit --state-dir, the NFS store alone.
	if r := onesis(t, server, "fsck", "--served", "--state-dir", filepath.Join(state, "nfs")); r.code != 1 ||
		!strings.Contains(r.out, nfsMotd) || strings.Contains(r.out, kpath) {
		t.Errorf("fsck --state-dir nfs: exit %d\n%s", r.code, r.out)
	}

	r = onesis(t, server, "fsck", "--served", "--repair", "--json")
	doc.Problems = nil
	if err := json.Unmarshal([]byte(r.out), &doc); err != nil || r.code != 1 || len(doc.Problems) != len(bad) {
		t.Fatalf("fsck --repair: exit %d, %v\n%s%s", r.code, err, r.out, r.err)
	}
	for _, p := range doc.Problems {
		if p.Store != "initrd" && !p.Repaired {
			t.Errorf("not repaired: %+v", p)
		}
		if p.Store == "nfs" && p.Path == nfsMotd && !strings.HasPrefix(p.Quarantine, filepath.Join(state, "nfs", "quarantine", motd+".")) {
			t.Errorf("quarantine of the NFS blob: %+v", p)
		}
		if p.Quarantine != "" {
			if _, err := os.Lstat(p.Quarantine); err != nil {
				t.Errorf("the bad file is not in quarantine: %v", err)
			}
		}
	}
	if r := onesis(t, server, "fsck", "--served"); r.code != 0 {
		t.Fatalf("fsck after --repair: exit %d\n%s%s", r.code, r.out, r.err)
	}
	for p, want := range map[string]string{nfsMotd: "message of the day\n", nfsHosts: "127.0.0.1 localhost\n", kpath: "kernel v1\n"} {
		if b, err := os.ReadFile(p); err != nil || string(b) != want {
			t.Errorf("%s after --repair: %q, %v", p, b, err)
		}
	}
	if _, err := os.Lstat(initrds[0]); !os.IsNotExist(err) {
		t.Errorf("the bad initramfs is still in place: %v", err)
	}

	// Usage and fatal errors.
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"fsck"}, 129},
		{[]string{"fsck", "--served", "--json", "-q"}, 129},
		{[]string{"fsck", "--served", "extra"}, 129},
		{[]string{"fsck", "--served", "--state-dir", filepath.Join(server, "etc", "motd")}, 128},
		{[]string{"fsck", "--served", "--state-dir", filepath.Join(base, "nosuch")}, 128},
	} {
		if r := onesis(t, server, tc.args...); r.code != tc.code {
			t.Errorf("%v: exit %d, want %d\n%s", tc.args, r.code, tc.code, r.err)
		}
	}
}
