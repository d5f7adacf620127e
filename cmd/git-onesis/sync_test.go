package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSync: a boot server's clone follows the central repository (and its
// node inventory), prepares HEAD and each node's ref into serve's caches,
// and leaves local changes alone.
func TestSync(t *testing.T) {
	base := t.TempDir()
	central := filepath.Join(base, "central")
	k := "6.1.0-7-amd64"
	md := "lib/modules/" + k + "/"
	writeTree(t, central, map[string]string{
		"boot/vmlinuz-" + k:                     "kernel v1\n",
		md + "modules.dep":                      "kernel/drivers/net/virtio_net.ko:\n",
		md + "kernel/drivers/net/virtio_net.ko": "virtio_net\n",
		"etc/motd":                              "v1\n",
	})
	initBin := filepath.Join(base, "onesis-init")
	if err := os.WriteFile(initBin, []byte("fake init\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	must(t, central, "git", "init", "-q")
	must(t, central, "git", "onesis", "init", "--commit", "-q")
	must(t, central, "git", "branch", "b2")
	must(t, central, "git", "onesis", "node", "add", "n2", "--mac", "52:54:00:00:00:02", "--ip", "10.77.0.12", "--ref", "b2")
	// b2 moves on: n2's ref is not HEAD.
	must(t, central, "git", "checkout", "-q", "b2")
	writeTree(t, central, map[string]string{"etc/motd": "b2\n"})
	must(t, central, "git", "onesis", "commit", "-qam", "b2 motd")
	must(t, central, "git", "checkout", "-q", "main")
	b2 := strings.TrimSpace(must(t, central, "git", "rev-parse", "b2"))

	server := filepath.Join(base, "server")
	must(t, base, "git", "clone", "-q", central, server)
	must(t, server, "git", "onesis", "install", "-q")
	state := filepath.Join(base, "state")
	r := onesis(t, server, "sync", "--state-dir", state, "--init", initBin)
	v1 := strings.TrimSpace(must(t, server, "git", "rev-parse", "HEAD"))
	if r.code != 0 || !strings.Contains(r.out, "main: up to date with origin") ||
		!strings.Contains(r.out, "prepared "+v1[:12]) || !strings.Contains(r.out, "prepared "+b2[:12]) {
		t.Fatalf("first sync: exit %d\n%s%s", r.code, r.out, r.err)
	}
	if _, err := os.Stat(filepath.Join(state, "initrd")); err != nil {
		t.Errorf("no initramfs cache after sync: %v", err)
	}
	if _, err := os.Stat(filepath.Join(state, "nfs")); err != nil {
		t.Errorf("no NFS state after sync: %v", err)
	}
	if got := strings.TrimSpace(must(t, server, "git", "rev-parse", "refs/onesis/inventory")); got != strings.TrimSpace(must(t, central, "git", "rev-parse", "refs/onesis/inventory")) {
		t.Error("the inventory was not fetched")
	}

	// The central branch moves: the server follows it, metadata applied.
	writeTree(t, central, map[string]string{"etc/motd": "v2\n"})
	os.Chmod(filepath.Join(central, "etc/motd"), 0o600)
	must(t, central, "git", "onesis", "commit", "-qam", "v2")
	v2 := strings.TrimSpace(must(t, central, "git", "rev-parse", "HEAD"))
	r = onesis(t, server, "sync", "--state-dir", state, "--init", initBin)
	if r.code != 0 || !strings.Contains(r.out, "main: "+v1[:12]+" -> "+v2[:12]) || !strings.Contains(r.out, "prepared "+v2[:12]) {
		t.Fatalf("second sync: exit %d\n%s%s", r.code, r.out, r.err)
	}
	wantMode(t, filepath.Join(server, "etc/motd"), 0o600)
	if b, _ := os.ReadFile(filepath.Join(server, "etc/motd")); string(b) != "v2\n" {
		t.Errorf("server etc/motd = %q after sync", b)
	}

	// Local changes on the server are never overwritten.
	writeTree(t, server, map[string]string{"etc/motd": "local edit\n"})
	writeTree(t, central, map[string]string{"etc/motd": "v3\n"})
	must(t, central, "git", "onesis", "commit", "-qam", "v3")
	r = onesis(t, server, "sync", "--state-dir", state, "--init", initBin)
	if r.code != 0 || !strings.Contains(r.err, "uncommitted change") {
		t.Errorf("sync over local changes: exit %d\n%s%s", r.code, r.out, r.err)
	}
	if b, _ := os.ReadFile(filepath.Join(server, "etc/motd")); string(b) != "local edit\n" {
		t.Errorf("sync overwrote a local edit: %q", b)
	}
	if r := onesis(t, server, "sync", "--remote", "nosuch"); r.code != 128 {
		t.Errorf("sync from an unknown remote: exit %d", r.code)
	}
}
