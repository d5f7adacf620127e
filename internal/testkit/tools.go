package testkit

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// NeedTool returns the path of the command tool, looked up in PATH and then
// in /usr/sbin and /sbin. When it is missing the test fails, naming pkg, the
// Debian package that provides it: every package a test uses is listed in
// .ci/packages, which `make test` and CI install, so a missing tool is a
// broken setup, not a reason to skip. NeedTool also fails when pkg is not
// on that list, so the list cannot fall behind the tests.
func NeedTool(t testing.TB, tool, pkg string) string {
	t.Helper()
	needListed(t, pkg)
	if p, err := exec.LookPath(tool); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		p := filepath.Join(dir, tool)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	t.Fatalf("%s not found: it comes with the Debian package %s (listed in .ci/packages); install the test packages as root: .ci/deps test", tool, pkg)
	return ""
}

// NeedFile fails the test unless path exists, naming pkg, the Debian package
// that ships it, as NeedTool does for commands.
func NeedFile(t testing.TB, path, pkg string) {
	t.Helper()
	needListed(t, pkg)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("%s not found: it comes with the Debian package %s (listed in .ci/packages); install the test packages as root: .ci/deps test", path, pkg)
	}
}

var (
	listOnce sync.Once
	listed   map[string]bool
	listErr  error
)

// needListed fails t unless pkg is on .ci/packages for the test target.
func needListed(t testing.TB, pkg string) {
	t.Helper()
	listOnce.Do(func() { listed, listErr = TestPackages() })
	if listErr != nil {
		t.Fatalf("reading the package list: %v", listErr)
	}
	if !listed[pkg] {
		t.Fatalf("the test needs the Debian package %s, which .ci/packages does not list for target test: add it there (make test and CI install only what is listed)", pkg)
	}
}

// TestPackages reads .ci/packages at the module root and returns the
// packages listed for the test target.
func TestPackages() (map[string]bool, error) {
	root, err := ModuleRoot()
	if err != nil {
		return nil, err
	}
	f, err := os.Open(filepath.Join(root, ".ci", "packages"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]bool{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 3 {
			return nil, fmt.Errorf(".ci/packages:%d: want 'package targets reason', got %q", n, line)
		}
		for _, tgt := range strings.Split(fields[1], ",") {
			if tgt == "test" {
				out[fields[0]] = true
			}
		}
	}
	return out, sc.Err()
}

// ModuleRoot is the directory holding go.mod, found upwards from the
// current directory (a test runs in its package's directory).
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the test's directory")
		}
		dir = parent
	}
}
