// Package testkit holds what the boot tests share: the Debian kernel they
// boot under QEMU. It is imported by tests only.
package testkit

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// KernelCache is where the Debian kernel package is downloaded and
// unpacked once (never installed on the host). internal/demo/boot.sh uses
// the same place. XDG_CACHE_HOME, when set, moves it.
func KernelCache() string {
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "git-onesis-test")
	}
	return "/var/cache/git-onesis-test"
}

func run(t testing.TB, dir string, timeout time.Duration, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// DebianKernel returns the directory holding the unpacked kernel package
// that linux-image-amd64 depends on (boot/vmlinuz-<kver> and
// lib/modules/<kver> with modules.dep) and kver. The .deb is fetched with
// apt-get download and unpacked with dpkg-deb -x into KernelCache; a
// concurrent test unpacking the same package is tolerated. A machine where
// apt cannot fetch it fails the test: .ci/run runs apt-get update first.
func DebianKernel(t testing.TB) (root, kver string) {
	t.Helper()
	for _, tool := range []string{"apt-get", "apt-cache", "dpkg-deb", "depmod"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found; the boot tests need Debian's apt, dpkg and kmod (.ci/run installs kmod)", tool)
		}
	}
	deps := run(t, "", time.Minute, "apt-cache", "depends", "linux-image-amd64")
	m := regexp.MustCompile(`Depends: (linux-image-(\S+)-amd64)\b`).FindStringSubmatch(deps)
	if m == nil {
		t.Fatalf("apt-cache depends linux-image-amd64 names no kernel package (run apt-get update):\n%s", deps)
	}
	pkg := m[1]
	kver = m[2] + "-amd64"
	cache := KernelCache()
	root = filepath.Join(cache, pkg)
	if _, err := os.Stat(filepath.Join(root, "lib/modules", kver, "modules.dep")); err == nil {
		return root, kver
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	debs, _ := filepath.Glob(filepath.Join(cache, pkg+"_*.deb"))
	if len(debs) == 0 {
		run(t, cache, 5*time.Minute, "apt-get", "download", "-q", pkg)
		debs, _ = filepath.Glob(filepath.Join(cache, pkg+"_*.deb"))
		if len(debs) == 0 {
			t.Fatalf("apt-get download %s left no .deb in %s", pkg, cache)
		}
	}
	tmp, err := os.MkdirTemp(cache, "unpack-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	run(t, "", 2*time.Minute, "dpkg-deb", "-x", debs[0], tmp)
	run(t, "", 2*time.Minute, "depmod", "-b", tmp, kver)
	if err := os.Rename(tmp, root); err != nil {
		// Another test process may have unpacked it meanwhile.
		if _, serr := os.Stat(filepath.Join(root, "lib/modules", kver, "modules.dep")); serr != nil {
			t.Fatal(err)
		}
	}
	return root, kver
}
