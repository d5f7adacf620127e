package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSync: a boot server's clone follows the central repository (and its
// node inventory), prepares HEAD and each node's ref into serve's caches,
// and leaves local changes alone.
func TestSync(t *testing.T) {
	base := t.TempDir()
	central, initBin := centralImage(t, base, map[string]string{"etc/motd": "v1\n"})
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

// TestSyncCloneAgrees is the proof that node list, class and serve answer
// "which commit, which class" the same way on a boot server's clone kept
// by 'git onesis sync', where a node's branch exists only as a
// remote-tracking ref (before, node list showed no class for n2, whose
// ref serve booted without trouble).
func TestSyncCloneAgrees(t *testing.T) {
	base := t.TempDir()
	central := filepath.Join(base, "central")
	writeTree(t, central, map[string]string{
		"boot/vmlinuz-6.1.0-7-amd64":                                 "kernel\n",
		"lib/modules/6.1.0-7-amd64/modules.dep":                      "kernel/drivers/net/virtio_net.ko:\n",
		"lib/modules/6.1.0-7-amd64/kernel/drivers/net/virtio_net.ko": "virtio_net\n",
		"etc/sysimage.conf":                                          "NODECLASS_RANGE: n[1-2] cluster.compute\n",
	})
	must(t, central, "git", "init", "-q", "-b", "main")
	must(t, central, "git", "onesis", "init", "--commit", "-q")
	must(t, central, "git", "checkout", "-q", "-b", "testing")
	writeTree(t, central, map[string]string{"etc/sysimage.conf": "NODECLASS_RANGE: n[1-2] cluster.io\n"})
	must(t, central, "git", "onesis", "commit", "-qam", "testing: io class")
	must(t, central, "git", "checkout", "-q", "main")
	must(t, central, "git", "onesis", "node", "add", "n1", "--mac", "52:54:00:00:00:01", "--ip", "10.77.0.11")
	must(t, central, "git", "onesis", "node", "add", "n2", "--mac", "52:54:00:00:00:02", "--ip", "10.77.0.12", "--ref", "testing")
	mainC := strings.TrimSpace(must(t, central, "git", "rev-parse", "main"))
	testingC := strings.TrimSpace(must(t, central, "git", "rev-parse", "testing"))

	server := filepath.Join(base, "server")
	must(t, base, "git", "clone", "-q", central, server)
	must(t, server, "git", "onesis", "install", "-q")
	initBin := filepath.Join(base, "onesis-init")
	if err := os.WriteFile(initBin, []byte("fake init\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if r := onesis(t, server, "sync", "--state-dir", filepath.Join(base, "state"), "--init", initBin); r.code != 0 {
		t.Fatalf("sync: exit %d\n%s%s", r.code, r.out, r.err)
	}
	if _, err := exec.Command("git", "-C", server, "rev-parse", "--verify", "-q", "refs/heads/testing").Output(); err == nil {
		t.Fatal("the clone has a local testing branch; the test needs it remote-tracking only")
	}

	want := map[string]struct{ commit, class, rev string }{
		"n1": {mainC, "cluster.compute", "HEAD"},
		"n2": {testingC, "cluster.io", "testing"},
	}
	// node list
	l := onesis(t, server, "node", "list", "--json")
	var nodes []jsonNode
	if err := json.Unmarshal([]byte(l.out), &nodes); err != nil || l.code != 0 || len(nodes) != 2 {
		t.Fatalf("node list --json: %d %v\n%s%s", l.code, err, l.out, l.err)
	}
	if strings.Contains(l.err, "warning") {
		t.Errorf("node list warns: %s", l.err)
	}
	for _, n := range nodes {
		w := want[n.Name]
		if n.Commit != w.commit || n.Class != w.class {
			t.Errorf("node list: %s boots %.12s (%s) class %q; want %.12s class %q", n.Name, n.Commit, n.CommitFrom, n.Class, w.commit, w.class)
		}
	}
	// class, reading the commit each node boots
	for name, w := range want {
		c := onesis(t, server, "class", "--rev", w.rev, name)
		if c.code != 0 || !strings.Contains(c.out, name+": class "+w.class) {
			t.Errorf("class --rev %s %s: %d\n%s%s", w.rev, name, c.code, c.out, c.err)
		}
	}
	// serve: the boot script names the commit, and the booted ref records it
	s := startServe(t, server)
	for name, mac := range map[string]string{"n1": "52:54:00:00:00:01", "n2": "52:54:00:00:00:02"} {
		code, body := bootScript(t, s.base, mac)
		if code != 200 || !strings.Contains(body, "onesis.commit="+want[name].commit) {
			t.Errorf("serve: %s's script (%d) does not boot %.12s:\n%s", name, code, want[name].commit, body)
		}
	}
	l = onesis(t, server, "node", "list", "--json")
	nodes = nil
	if err := json.Unmarshal([]byte(l.out), &nodes); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if n.Booted != want[n.Name].commit || n.Booted != n.Commit {
			t.Errorf("after boot: %s booted %.12s, node list says it boots %.12s; want %.12s", n.Name, n.Booted, n.Commit, want[n.Name].commit)
		}
	}
}

// centralImage makes an image repository base/central with a kernel
// (6.1.0-7-amd64, "kernel v1\n"), its modules and files, committed with
// git onesis init, and a stand-in onesis-init binary for its initramfs.
func centralImage(t *testing.T, base string, files map[string]string) (central, initBin string) {
	t.Helper()
	central = filepath.Join(base, "central")
	k := "6.1.0-7-amd64"
	md := "lib/modules/" + k + "/"
	tree := map[string]string{
		"boot/vmlinuz-" + k:                     "kernel v1\n",
		md + "modules.dep":                      "kernel/drivers/net/virtio_net.ko:\n",
		md + "kernel/drivers/net/virtio_net.ko": "virtio_net\n",
	}
	for p, c := range files {
		tree[p] = c
	}
	writeTree(t, central, tree)
	initBin = filepath.Join(base, "onesis-init")
	if err := os.WriteFile(initBin, []byte("fake init\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	must(t, central, "git", "init", "-q")
	must(t, central, "git", "onesis", "init", "--commit", "-q")
	return central, initBin
}
