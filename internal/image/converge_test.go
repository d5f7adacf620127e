package image

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/onesis/git-onesis/meta"
)

// convergeRepo is a repository with three files recorded 0600, 0640 and
// 0644, committed, with no hooks: the test plays the hooks by calling
// Converge after each git command, as they would.
func convergeRepo(t *testing.T) (string, *Image) {
	t.Helper()
	dir := t.TempDir()
	gitOut(t, dir, "init", "-q", "-b", "main")
	for name, mode := range map[string]os.FileMode{"secret": 0o600, "group": 0o640, "public": 0o644} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(name+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chmod(filepath.Join(dir, name), mode)
	}
	im := recordAndCommit(t, dir)
	if _, err := im.ApplyWorktreeMeta(ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	return dir, im
}

// recordAndCommit stages the whole tree, records .gitmeta and commits.
func recordAndCommit(t *testing.T, dir string) *Image {
	t.Helper()
	gitOut(t, dir, "add", "-A")
	im, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := im.Record(true); err != nil {
		t.Fatal(err)
	}
	gitOut(t, dir, "commit", "-q", "-m", "one")
	return im
}

func modeOf(t *testing.T, p string) uint32 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Mode & 0o7777
}

// TestConverge: what each kind of git command gets applied. A file git
// rewrote gets its recorded mode; drift on a file git left alone is kept
// after a write and undone after a discard; an index-only command applies
// nothing; a missing record means a full apply.
func TestConverge(t *testing.T) {
	umask := unix.Umask(0o022)
	defer unix.Umask(umask)
	dir, im := convergeRepo(t)
	p := func(n string) string { return filepath.Join(dir, n) }

	// 'git checkout -- secret' after an edit: git writes it 0644.
	os.WriteFile(p("secret"), []byte("edited\n"), 0o600)
	os.Chmod(p("group"), 0o604) // drift git does not touch
	gitOut(t, dir, "checkout", "--", "secret")
	if m := modeOf(t, p("secret")); m != 0o644 {
		t.Fatalf("git wrote secret %04o; the test expects the umask's 0644", m)
	}
	cv, err := im.Converge(Wrote)
	if err != nil {
		t.Fatal(err)
	}
	if cv.Full || cv.Result == nil {
		t.Fatalf("converge after a file checkout: full=%v result=%v; want incremental", cv.Full, cv.Result)
	}
	if m := modeOf(t, p("secret")); m != 0o600 {
		t.Errorf("secret %04o after Converge(Wrote); want 0600", m)
	}
	if m := modeOf(t, p("group")); m != 0o604 {
		t.Errorf("drift on group undone by Converge(Wrote): %04o", m)
	}

	// 'git add' writes the index only: nothing is applied.
	os.Chmod(p("secret"), 0o644)
	gitOut(t, dir, "add", "secret")
	if cv, err := im.Converge(IndexOnly); err != nil || cv.Result != nil {
		t.Fatalf("Converge(IndexOnly) = %+v, %v; want nothing applied", cv, err)
	}
	if m := modeOf(t, p("secret")); m != 0o644 {
		t.Errorf("Converge(IndexOnly) changed secret to %04o", m)
	}

	// 'git reset --hard' discards: every drift is undone.
	gitOut(t, dir, "reset", "-q", "--hard")
	if _, err := im.Converge(Discarded); err != nil {
		t.Fatal(err)
	}
	for n, want := range map[string]uint32{"secret": 0o600, "group": 0o640, "public": 0o644} {
		if m := modeOf(t, p(n)); m != want {
			t.Errorf("%s %04o after Converge(Discarded); want %04o", n, m, want)
		}
	}

	// Without a record (an interrupted apply, a new worktree) the next
	// apply is full.
	im.forgetApplied()
	os.Chmod(p("public"), 0o600)
	cv, err = im.Converge(Wrote)
	if err != nil {
		t.Fatal(err)
	}
	if !cv.Full || modeOf(t, p("public")) != 0o644 {
		t.Errorf("converge without a record: full=%v, public %04o; want a full apply", cv.Full, modeOf(t, p("public")))
	}
}

// TestConvergeRetries: a path the last apply could not fix is visited
// again by the next incremental apply, though git did not write it again,
// and is dropped from the list once fixed.
func TestConvergeRetries(t *testing.T) {
	dir, im := convergeRepo(t)
	p := filepath.Join(dir, "secret")
	os.Chmod(p, 0o644) // as if an apply had failed on it
	im.saveRetry(&meta.ApplyResult{Errors: []error{&meta.ApplyError{Path: "secret", Op: "chmod", Err: os.ErrPermission}}})
	if got := im.loadRetry(); len(got) != 1 || got[0] != "secret" {
		t.Fatalf("retry list %q; want [secret]", got)
	}
	if _, err := im.Converge(Wrote); err != nil {
		t.Fatal(err)
	}
	if m := modeOf(t, p); m != 0o600 {
		t.Errorf("secret %04o after the retry; want 0600", m)
	}
	if got := im.loadRetry(); len(got) != 0 {
		t.Errorf("retry list %q after a clean apply", got)
	}
}

// TestApplyRefreshesIndexInPlace: after an apply changes files' modes,
// git's index holds their new stat data (plumbing that does not refresh,
// like 'git diff-files', sees them clean) without git reading them again;
// a file whose content was changed behind git's back (mtime put back, so
// only its ctime tells) is not made to look clean.
func TestApplyRefreshesIndexInPlace(t *testing.T) {
	dir, im := convergeRepo(t)
	p := func(n string) string { return filepath.Join(dir, n) }
	ageFiles(t, dir, ".gitmeta", "secret", "group", "public")
	// group: same size, new content, mtime put back.
	var st unix.Stat_t
	unix.Lstat(p("group"), &st)
	os.WriteFile(p("group"), []byte("GROUP\n"), 0o640)
	unix.UtimesNano(p("group"), []unix.Timespec{st.Atim, st.Mtim})

	m, err := im.ReadWorktreeMeta()
	if err != nil {
		t.Fatal(err)
	}
	for i := range m.Entries {
		if e := &m.Entries[i]; e.Type == meta.TypeFile && e.Path != ".gitmeta" {
			e.Mode = 0o400
		}
	}
	res, err := im.ApplyTree(m, ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Touched) != 3 {
		t.Fatalf("touched %q; want the three files", res.Touched)
	}
	if got := gitOut(t, dir, "diff-files", "--name-only"); got != "group" {
		t.Errorf("git diff-files after the apply: %q; want only the edited group", got)
	}
	if got := gitOut(t, dir, "status", "--porcelain"); got != "M group" {
		t.Errorf("git status: %q; want the edit to group", got)
	}
	dbg := gitOut(t, dir, "ls-files", "--debug", "secret")
	unix.Lstat(p("secret"), &st)
	if want := fmt.Sprintf("ctime: %d:%d", st.Ctim.Sec, st.Ctim.Nsec); !strings.Contains(dbg, want) {
		t.Errorf("index entry of secret:\n%s\nlacks the file's %s", dbg, want)
	}
}

// TestSameFiles compares files across the chunk boundary, by size and by a
// difference in the last byte, and what is not a regular file.
func TestSameFiles(t *testing.T) {
	dir := t.TempDir()
	big := strings.Repeat("x", compareChunk)
	for _, tc := range []struct {
		name string
		a, b string // "" with noFile: missing
		same bool
	}{
		{"empty", "", "", true},
		{"short", "abc", "abc", true},
		{"short differs", "abc", "abd", false},
		{"one chunk", big, big, true},
		{"chunk and a byte", big + "y", big + "y", true},
		{"last byte differs", big + "y", big + "z", false},
		{"sizes differ", big, big + "y", false},
		{"prefix", "ab", "abc", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := filepath.Join(dir, tc.name+".a"), filepath.Join(dir, tc.name+".b")
			os.WriteFile(a, []byte(tc.a), 0o644)
			os.WriteFile(b, []byte(tc.b), 0o644)
			if got := sameFiles(a, b); got != tc.same {
				t.Errorf("sameFiles = %v, want %v", got, tc.same)
			}
			if got := sameAs(a, []byte(tc.b)); got != tc.same {
				t.Errorf("sameAs = %v, want %v", got, tc.same)
			}
		})
	}
	if sameFiles(dir, dir) || sameAs(dir, nil) {
		t.Error("a directory compared equal")
	}
	missing := filepath.Join(dir, "missing")
	if sameFiles(missing, missing) || sameAs(missing, nil) {
		t.Error("a missing file compared equal")
	}
}

// TestSaveSeenLeavesNoTemporary: saving the index the hooks have already
// seen (post-checkout after post-index-change) must not leave the
// temporary link behind, as rename(2) between two links of one file
// would; and links left by processes that are gone are removed.
func TestSaveSeenLeavesNoTemporary(t *testing.T) {
	_, im := convergeRepo(t)
	idx := im.Git.IndexFile()
	seen := im.statePath(SeenIndexFile)
	stale := seen + ".999999999" // no such process
	os.MkdirAll(filepath.Dir(seen), 0o755)
	if err := os.Link(idx, stale); err != nil {
		t.Fatal(err)
	}
	os.Remove(seen)
	im.saveSeen(idx)
	im.saveSeen(idx) // the very file again
	if !im.seenIsCurrent(idx) {
		t.Fatal("index.seen is not the current index after saveSeen")
	}
	ents, err := os.ReadDir(filepath.Dir(seen))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), filepath.Base(seen)+".") {
			t.Errorf("%s left in %s", e.Name(), filepath.Dir(seen))
		}
	}
}
