package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPackagesDiff commits two dpkg databases with real git and checks
// list and diff against revisions, the work tree, JSON and exit codes.
func TestPackagesDiff(t *testing.T) {
	dir := t.TempDir()
	status := filepath.Join(dir, "var", "lib", "dpkg", "status")
	if err := os.MkdirAll(filepath.Dir(status), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(status, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	must(t, dir, "git", "init", "-q")
	write("Package: bash\nStatus: install ok installed\nArchitecture: amd64\nVersion: 5.2.15-2\n\n" +
		"Package: old\nStatus: install ok installed\nArchitecture: all\nVersion: 1.0-1\n")
	must(t, dir, "git", "add", "-A")
	must(t, dir, "git", "commit", "-qm", "one")
	must(t, dir, "git", "tag", "one")
	write("Package: bash\nStatus: install ok installed\nArchitecture: amd64\nVersion: 5.2.15-2+b2\n\n" +
		"Package: new\nStatus: install ok installed\nArchitecture: all\nVersion: 0.9~rc1-1\n")
	must(t, dir, "git", "commit", "-qam", "two")

	r := onesis(t, dir, "packages", "diff", "one", "HEAD")
	want := "> bash:amd64 5.2.15-2 -> 5.2.15-2+b2\n+ new 0.9~rc1-1\n- old 1.0-1\n"
	if r.code != 0 || r.out != want {
		t.Errorf("packages diff one HEAD: exit %d\n got %q\nwant %q\nstderr %s", r.code, r.out, want, r.err)
	}
	// The work tree against HEAD: downgrade bash by hand.
	write("Package: bash\nStatus: install ok installed\nArchitecture: amd64\nVersion: 5.2.15-1\n\n" +
		"Package: new\nStatus: install ok installed\nArchitecture: all\nVersion: 0.9~rc1-1\n")
	r = onesis(t, dir, "packages", "diff", "--exit-code")
	if r.code != 1 || r.out != "< bash:amd64 5.2.15-2+b2 -> 5.2.15-1\n" {
		t.Errorf("packages diff --exit-code (work tree): exit %d, out %q, stderr %s", r.code, r.out, r.err)
	}
	r = onesis(t, dir, "packages", "diff", "--json", "one", "one")
	if r.code != 0 || strings.TrimSpace(r.out) != "[]" {
		t.Errorf("packages diff --json one one: exit %d, out %q", r.code, r.out)
	}
	r = onesis(t, dir, "packages", "list", "--rev", "one", "--json")
	var ps []struct{ Name, Version string }
	if err := json.Unmarshal([]byte(r.out), &ps); err != nil || len(ps) != 2 || ps[1].Name != "old" {
		t.Errorf("packages list --rev one --json: %v, %+v (exit %d, %s)", err, ps, r.code, r.err)
	}
	if r := onesis(t, dir, "packages", "--rev", "one"); r.code != 0 || r.out != "bash:amd64 5.2.15-2\nold 1.0-1\n" {
		t.Errorf("packages --rev one: exit %d, out %q", r.code, r.out)
	}
	// Errors: a damaged database names its line; a bad revision; usage.
	write("Package: bash\nno colon here\n")
	if r := onesis(t, dir, "packages"); r.code != 128 || !strings.Contains(r.err, "var/lib/dpkg/status line 2") {
		t.Errorf("damaged database: exit %d, stderr %q", r.code, r.err)
	}
	if r := onesis(t, dir, "packages", "diff", "no-such-rev"); r.code != 128 || !strings.Contains(r.err, "bad revision") {
		t.Errorf("bad revision: exit %d, stderr %q", r.code, r.err)
	}
	if r := onesis(t, dir, "packages", "diff", "a", "b", "c"); r.code != 129 {
		t.Errorf("three revisions: exit %d, want 129", r.code)
	}
	// An image with no database at all.
	empty := t.TempDir()
	must(t, empty, "git", "init", "-q")
	must(t, empty, "git", "commit", "-q", "--allow-empty", "-m", "empty")
	if r := onesis(t, empty, "packages"); r.code != 128 || !strings.Contains(r.err, "no package database") {
		t.Errorf("no database: exit %d, stderr %q", r.code, r.err)
	}
}
