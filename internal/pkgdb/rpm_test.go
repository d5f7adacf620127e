package pkgdb

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/onesis/git-onesis/internal/testkit"
)

func TestCompareRPMVersions(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"1.0-1", "1.0-1", 0},
		{"1.0-1", "1.0-2", -1},
		{"1.10-1", "1.9-1", 1},
		{"1.0a-1", "1.0-1", 1},     // more segments win
		{"1.0-1", "1.0.1-1", -1},   // ditto
		{"1a-1", "1.1-1", -1},      // numbers beat letters
		{"1.0~rc1-1", "1.0-1", -1}, // tilde before the end
		{"1.0^git1-1", "1.0-1", 1}, // caret after the end
		{"1.0^git1-1", "1.0.1-1", -1},
		{"2:1.0-1", "1:9.9-1", 1},
		{"0:1.0-1", "1.0-1", 0},
		{"5.14.0-70.el9", "5.14.0-162.el9", -1},
		{"1.0-1.el9", "1.0-1.el9_1", -1},
		{"001-1", "1-1", 0},
		{"1.0_1-1", "1.0.1-1", 0}, // separators are equivalent
	} {
		if got := CompareRPMVersions(tt.a, tt.b); sign(got) != tt.want {
			t.Errorf("CompareRPMVersions(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := CompareRPMVersions(tt.b, tt.a); sign(got) != -tt.want {
			t.Errorf("CompareRPMVersions(%q, %q) = %d, want %d", tt.b, tt.a, got, -tt.want)
		}
	}
}

// TestReadRPMReal builds two real rpm databases with Debian's rpm and
// rpmbuild (a test image's var/lib/rpm), reads them in pure Go, and diffs.
func TestReadRPMReal(t *testing.T) {
	for _, tool := range []string{"rpm", "rpmbuild"} {
		testkit.NeedTool(t, tool, "rpm")
	}
	dir := t.TempDir()
	spec := filepath.Join(dir, "t.spec")
	os.WriteFile(spec, []byte("Name: %{n}\nVersion: %{v}\nRelease: 1\nSummary: t\nLicense: MIT\nBuildArch: noarch\n%description\nt\n%files\n"), 0o644)
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = append(os.Environ(), "HOME="+dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	top := filepath.Join(dir, "top")
	build := func(name, ver string) string {
		run("rpmbuild", "-bb", "--quiet", "--define", "_topdir "+top, "--define", "n "+name, "--define", "v "+ver, spec)
		return filepath.Join(top, "RPMS", "noarch", name+"-"+ver+"-1.noarch.rpm")
	}
	tool10, tool11, other := build("tool", "1.0"), build("tool", "1.1"), build("other", "2.0")
	db := func(root string, pkgs ...string) []Package {
		t.Helper()
		run("rpm", "--root", root, "--dbpath", "/var/lib/rpm", "--initdb")
		run(append([]string{"rpm", "--root", root, "--dbpath", "/var/lib/rpm", "-i", "--nodeps", "--noscripts", "--justdb"}, pkgs...)...)
		files := map[string][]byte{}
		layout := RPMDatabases[1]
		for _, f := range layout {
			if b, err := os.ReadFile(filepath.Join(root, f)); err == nil {
				files[f] = b
			}
		}
		ps, err := ReadRPM(files, layout)
		if err != nil {
			t.Fatal(err)
		}
		return ps
	}
	old := db(filepath.Join(dir, "r1"), tool10, other)
	if want := []Package{{"other", "noarch", "2.0-1"}, {"tool", "noarch", "1.0-1"}}; !reflect.DeepEqual(old, want) {
		t.Fatalf("read %+v, want %+v", old, want)
	}
	cur := db(filepath.Join(dir, "r2"), tool11)
	var got []string
	for _, c := range Diff(old, cur, CompareRPMVersions) {
		got = append(got, c.String())
	}
	if want := []string{"- other:noarch 2.0-1", "> tool:noarch 1.0-1 -> 1.1-1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Diff = %q, want %q", got, want)
	}
	// Garbage is an error, not a crash.
	if _, err := ReadRPM(map[string][]byte{"var/lib/rpm/Packages": []byte("not a database at all, not at all")}, RPMDatabases[4]); err == nil {
		t.Error("garbage read as an rpm database")
	}
}
