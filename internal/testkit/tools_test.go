package testkit

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TestPackageList checks .ci/packages: every line names a package, known
// targets and a reason; no package twice; and .ci/deps --list reads the
// same list for the test target as TestPackages does.
func TestPackageList(t *testing.T) {
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, ".ci", "packages"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 3 {
			t.Errorf(".ci/packages:%d: want 'package targets reason': %q", i+1, line)
			continue
		}
		if prev, dup := seen[f[0]]; dup {
			t.Errorf(".ci/packages:%d: %s is already on line %d", i+1, f[0], prev)
		}
		seen[f[0]] = i + 1
		for _, tgt := range strings.Split(f[1], ",") {
			if tgt != "test" && tgt != "demo" && tgt != "bench" {
				t.Errorf(".ci/packages:%d: unknown target %q (test, demo, bench)", i+1, tgt)
			}
		}
	}
	pkgs, err := TestPackages()
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for p := range pkgs {
		want = append(want, p)
	}
	sort.Strings(want)
	out, err := exec.Command("bash", filepath.Join(root, ".ci", "deps"), "--list", "test").Output()
	if err != nil {
		t.Fatalf(".ci/deps --list test: %v", err)
	}
	got := strings.Fields(string(out))
	sort.Strings(got)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf(".ci/deps --list test = %v\nTestPackages     = %v", got, want)
	}
	if err := exec.Command("bash", filepath.Join(root, ".ci", "deps"), "--list", "nosuch").Run(); err == nil {
		t.Error(".ci/deps --list nosuch succeeded; want a usage error")
	}
}
