package initramfs

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// LocateInit finds the onesis-init binary to put in an initramfs: explicit
// when given, else onesis-init next to the running executable, else
// $PREFIX/lib/git-onesis/onesis-init for the prefix the executable is
// installed under (<prefix>/bin/git-onesis), else
// /usr/local/lib/git-onesis/onesis-init and /usr/lib/git-onesis/onesis-init.
func LocateInit(explicit string) (string, error) {
	if explicit != "" {
		fi, err := os.Stat(explicit)
		if err != nil {
			return "", fmt.Errorf("the init binary %s: %w", explicit, err)
		}
		if !fi.Mode().IsRegular() {
			return "", fmt.Errorf("the init binary %s is not a regular file", explicit)
		}
		return explicit, nil
	}
	var tried []string
	if exe, err := os.Executable(); err == nil {
		if r, err := filepath.EvalSymlinks(exe); err == nil {
			exe = r
		}
		dir := filepath.Dir(exe)
		tried = append(tried, filepath.Join(dir, "onesis-init"),
			filepath.Join(filepath.Dir(dir), "lib", "git-onesis", "onesis-init"))
	}
	tried = append(tried, "/usr/local/lib/git-onesis/onesis-init", "/usr/lib/git-onesis/onesis-init")
	for _, p := range tried {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", fmt.Errorf("no onesis-init binary found (tried %s); build it with 'make build' or pass --init FILE", strings.Join(tried, ", "))
}
