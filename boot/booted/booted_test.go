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
