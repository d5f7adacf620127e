package invref

import (
	"bytes"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onesis/git-onesis/boot/inventory"
	"github.com/onesis/git-onesis/internal/git"
	"github.com/onesis/git-onesis/internal/testkit"
)

// TestMain makes every git run hermetic.
func TestMain(m *testing.M) { os.Exit(testkit.HermeticGit(m)) }

func newRepo(t testing.TB) *git.Repo {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("git", "init", "-q", "-b", "main", dir).CombinedOutput(); err != nil {
		t.Fatalf("git init: %v\n%s", err, out)
	}
	r, err := git.Discover(dir)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func run(t testing.TB, r *git.Repo, args ...string) string {
	t.Helper()
	out, err := r.Run(args...)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

func mustMAC(s string) net.HardwareAddr {
	m, err := inventory.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func TestStoreAuditTrail(t *testing.T) {
	r := newRepo(t)
	inv, err := Load(r)
	if err != nil || len(inv.Nodes) != 0 || inv.Commit != "" {
		t.Fatalf("empty repo: %v %+v", err, inv)
	}
	n1 := &inventory.Node{Name: "n1", MACs: []net.HardwareAddr{mustMAC("52:54:00:00:00:01")}, IP: netip.MustParseAddr("10.77.0.11")}
	got, err := Update(r, "node add n1 (52:54:00:00:00:01)", func(i *inventory.Inventory) error { return i.Put(n1) })
	if err != nil {
		t.Fatal(err)
	}
	if got.Commit == "" || got.ByName("n1") == nil {
		t.Fatalf("Update result: %+v", got)
	}
	_, err = Update(r, "node add n2", func(i *inventory.Inventory) error {
		return i.Put(&inventory.Node{Name: "n2", MACs: []net.HardwareAddr{mustMAC("52:54:00:00:00:01")}, IP: netip.MustParseAddr("10.77.0.12")})
	})
	if err == nil || !strings.Contains(err.Error(), "already used by node n1") {
		t.Errorf("duplicate MAC accepted: %v", err)
	}
	if _, err := Update(r, "node rm n1", func(i *inventory.Inventory) error { return i.Remove("n1") }); err != nil {
		t.Fatal(err)
	}
	// The history shows who changed what, newest first.
	log := run(t, r, "log", "--format=%an <%ae>|%s", Ref)
	want := "Ada Admin <ada@example.invalid>|node rm n1\nAda Admin <ada@example.invalid>|node add n1 (52:54:00:00:00:01)"
	if log != want {
		t.Errorf("git log:\n%s\nwant:\n%s", log, want)
	}
	// A no-op change makes no commit.
	before := run(t, r, "rev-parse", Ref)
	if _, err := Update(r, "noop", func(*inventory.Inventory) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if run(t, r, "rev-parse", Ref) != before {
		t.Error("a no-op update made a commit")
	}
	// The branch checked out is untouched, and HEAD is still unborn.
	if _, ok, _ := r.HeadCommit(); ok {
		t.Error("HEAD moved")
	}
}

func TestUpdateRetriesOnRace(t *testing.T) {
	r := newRepo(t)
	calls := 0
	_, err := Update(r, "node add a", func(i *inventory.Inventory) error {
		calls++
		if calls == 1 { // another admin commits in between
			if _, err := Update(r, "node add b", func(j *inventory.Inventory) error {
				return j.Put(&inventory.Node{Name: "b", MACs: []net.HardwareAddr{mustMAC("52:54:00:00:00:02")}, IP: netip.MustParseAddr("10.77.0.2")})
			}); err != nil {
				t.Fatal(err)
			}
		}
		return i.Put(&inventory.Node{Name: "a", MACs: []net.HardwareAddr{mustMAC("52:54:00:00:00:01")}, IP: netip.MustParseAddr("10.77.0.1")})
	})
	if err != nil {
		t.Fatal(err)
	}
	inv, err := Load(r)
	if err != nil || inv.ByName("a") == nil || inv.ByName("b") == nil || calls != 2 {
		t.Errorf("after race: err=%v calls=%d nodes=%v", err, calls, inv.Nodes)
	}
}

func TestWatcherKeepsLastGood(t *testing.T) {
	r := newRepo(t)
	var logs bytes.Buffer
	w, err := NewWatcher(r, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if changed, _ := w.Poll(); changed {
		t.Error("Poll reported a change with no ref")
	}
	if _, err := Update(r, "node add n1", func(i *inventory.Inventory) error {
		return i.Put(&inventory.Node{Name: "n1", MACs: []net.HardwareAddr{mustMAC("52:54:00:00:00:01")}, IP: netip.MustParseAddr("10.77.0.11")})
	}); err != nil {
		t.Fatal(err)
	}
	var seen int
	w.OnChange(func(inv *inventory.Inventory) { seen = len(inv.Nodes) })
	if changed, err := w.Poll(); !changed || err != nil || w.Current().ByName("n1") == nil || seen != 1 {
		t.Fatalf("reload: changed=%v err=%v seen=%d", changed, err, seen)
	}
	good := w.Current().Commit

	// A hand edit with a duplicate IP, committed with plumbing.
	bad := "node n1 mac=52:54:00:00:00:01 ip=10.77.0.11\nnode n2 mac=52:54:00:00:00:02 ip=10.77.0.11\n"
	blob := strings.TrimSpace(string(must(r.RunInput([]byte(bad), "hash-object", "-w", "--stdin"))))
	tree := strings.TrimSpace(string(must(r.RunInput([]byte("100644 blob "+blob+"\tnodes\n"), "mktree"))))
	commit := run(t, r, "commit-tree", tree, "-p", good, "-m", "hand edit")
	run(t, r, "update-ref", Ref, commit)

	changed, err := w.Poll()
	if changed || err == nil || !strings.Contains(err.Error(), "nodes:2: IP 10.77.0.11 of node n2 is already used by node n1 (line 1)") {
		t.Errorf("bad edit: changed=%v err=%v", changed, err)
	}
	if w.Current().Commit != good {
		t.Error("bad edit replaced the last good inventory")
	}
	if !strings.Contains(logs.String(), "nodes:2:") || !strings.Contains(logs.String(), "bad edit ignored") {
		t.Errorf("log does not say what is wrong:\n%s", logs.String())
	}
	if _, err := NewWatcher(r, nil); err == nil {
		t.Error("NewWatcher started on a broken inventory")
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func TestSharedAcrossWorktrees(t *testing.T) {
	r := newRepo(t)
	run(t, r, "commit", "-q", "--allow-empty", "-m", "init")
	wt := filepath.Join(t.TempDir(), "wt")
	run(t, r, "worktree", "add", "-q", "-b", "update", wt)
	r2, err := git.Discover(wt)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Update(r2, "node add n1", func(i *inventory.Inventory) error {
		return i.Put(&inventory.Node{Name: "n1", MACs: []net.HardwareAddr{mustMAC("52:54:00:00:00:01")}, IP: netip.MustParseAddr("10.77.0.11")})
	}); err != nil {
		t.Fatal(err)
	}
	inv, err := Load(r)
	if err != nil || inv.ByName("n1") == nil {
		t.Errorf("inventory written in a linked worktree is not seen by the main one: %v", err)
	}
}
