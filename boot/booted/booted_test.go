package booted

import (
	"os"
	"testing"

	"github.com/onesis/git-onesis/internal/git"
	"github.com/onesis/git-onesis/internal/testkit"
)

func TestMain(m *testing.M) { os.Exit(testkit.HermeticGit(m)) }

// TestRecordRead: what Record writes, Read returns (commit and tree), for
// the node names the inventory allows; a name that is no node is refused
// before any ref is written.
func TestRecordRead(t *testing.T) {
	dir := testkit.Repo(t, map[string]string{"etc/hostname": "v1"})
	c := testkit.Sh(t, dir, "git", "rev-parse", "HEAD")
	tree := testkit.Sh(t, dir, "git", "rev-parse", "HEAD^{tree}")
	r, err := git.Discover(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m, err := Read(r); err != nil || len(m) != 0 {
		t.Fatalf("Read with no boots = %v, %v", m, err)
	}
	w := NewWriter(r)
	for _, n := range []string{"n1", "rack1-n02"} {
		if err := w.Record(n, c, "branch main"); err != nil {
			t.Fatal(err)
		}
	}
	for _, bad := range []string{"../x", "a b", ""} {
		if err := w.Record(bad, c, "branch main"); err == nil {
			t.Errorf("Record(%q) succeeded", bad)
		}
	}
	m, err := Read(r)
	if err != nil {
		t.Fatal(err)
	}
	want := Ref{Commit: c, Tree: tree}
	if len(m) != 2 || m["n1"] != want || m["rack1-n02"] != want {
		t.Errorf("Read = %v, want n1 and rack1-n02 at %v", m, want)
	}
	if got := Commits(m); got["n1"] != c || len(got) != 2 {
		t.Errorf("Commits = %v", got)
	}
	if got := testkit.Sh(t, dir, "git", "rev-parse", Prefix+"n1"); got != c {
		t.Errorf("%sn1 = %s, want %s", Prefix, got, c)
	}
}

// TestHistory: every change of a node's booted commit is in its history,
// oldest first, with the reflog message's source, without
// core.logAllRefUpdates; a node without a reflog shows its current commit;
// KeepHistory sets the expiry once and leaves a site's own setting.
func TestHistory(t *testing.T) {
	dir := testkit.Repo(t, map[string]string{"etc/hostname": "v1"})
	c1 := testkit.Sh(t, dir, "git", "rev-parse", "HEAD")
	testkit.Sh(t, dir, "git", "commit", "-q", "--allow-empty", "-m", "v2")
	c2 := testkit.Sh(t, dir, "git", "rev-parse", "HEAD")
	testkit.Sh(t, dir, "git", "config", "core.logAllRefUpdates", "false")
	r, err := git.Discover(dir)
	if err != nil {
		t.Fatal(err)
	}
	w := NewWriter(r)
	for _, b := range [][3]string{{"n1", c1, "branch main"}, {"n2", c1, "node ref testing"}, {"n1", c1, "branch main"}, {"n1", c2, "serve --ref prod"}} {
		if err := w.Record(b[0], b[1], b[2]); err != nil {
			t.Fatal(err)
		}
	}
	// A ref written without a reflog (before serve kept them).
	testkit.Sh(t, dir, "git", "update-ref", Prefix+"n3", c2)
	h, err := History(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []Boot{{Node: "n1", Commit: c1, From: "branch main"}, {Node: "n1", Commit: c2, From: "serve --ref prod"}, {Node: "n2", Commit: c1, From: "node ref testing"}, {Node: "n3", Commit: c2}}
	if len(h) != len(want) {
		t.Fatalf("history %+v, want %d entries", h, len(want))
	}
	for i, b := range want {
		got := h[i]
		if got.Node != b.Node || got.Commit != b.Commit || got.From != b.From || got.Time.IsZero() != (b.Node == "n3") {
			t.Errorf("entry %d: %+v, want %+v", i, got, b)
		}
	}
	if h, err := History(r, []string{"n2"}); err != nil || len(h) != 1 || h[0].Node != "n2" {
		t.Errorf("History(n2) = %+v, %v", h, err)
	}
	if _, err := History(r, []string{"../x"}); err == nil {
		t.Error("History of a bad name succeeded")
	}
	testkit.Sh(t, dir, "git", "config", "gc."+Prefix+"*.reflogExpire", "never")
	set, err := KeepHistory(r)
	if err != nil || len(set) != 1 {
		t.Errorf("KeepHistory set %v, %v; want only the unset key", set, err)
	}
	if v := testkit.Sh(t, dir, "git", "config", "gc."+Prefix+"*.reflogExpire"); v != "never" {
		t.Errorf("KeepHistory replaced the site's setting: %s", v)
	}
	if set, _ := KeepHistory(r); len(set) != 0 {
		t.Errorf("second KeepHistory set %v", set)
	}
}
