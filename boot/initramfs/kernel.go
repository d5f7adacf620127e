package initramfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// FindKernel finds the kernel an image boots: the target of /vmlinuz (or
// /boot/vmlinuz) when that symlink names a boot/vmlinuz-<kver> inside the
// image, else the only boot/vmlinuz-<kver>, else the newest by version.
// It returns the kernel's path relative to the image root and its version.
func FindKernel(image fs.FS) (kernelPath, kver string, err error) {
	for _, link := range []string{"vmlinuz", "boot/vmlinuz"} {
		t, err := fs.ReadLink(image, link)
		if err != nil {
			continue
		}
		p := t
		if !path.IsAbs(t) {
			p = path.Join(path.Dir(link), t)
		}
		p = strings.TrimPrefix(path.Clean("/"+p), "/")
		if v, ok := strings.CutPrefix(p, "boot/vmlinuz-"); ok && !strings.Contains(v, "/") {
			if fi, err := fs.Stat(image, p); err == nil && fi.Mode().IsRegular() {
				return p, v, nil
			}
		}
	}
	ents, err := fs.ReadDir(image, "boot")
	if err != nil {
		return "", "", fmt.Errorf("looking for a kernel in the image's /boot: %w", err)
	}
	var vers []string
	for _, e := range ents {
		v, ok := strings.CutPrefix(e.Name(), "vmlinuz-")
		if !ok || v == "" || !e.Type().IsRegular() {
			continue
		}
		vers = append(vers, v)
	}
	if len(vers) == 0 {
		return "", "", errors.New("the image has no kernel: no /boot/vmlinuz-<version> (install the distribution's kernel package in the image)")
	}
	sort.Slice(vers, func(i, j int) bool { return versionLess(vers[i], vers[j]) })
	v := vers[len(vers)-1]
	return "boot/vmlinuz-" + v, v, nil
}

// versionLess compares kernel versions piece by piece, numbers as numbers.
func versionLess(a, b string) bool {
	split := func(s string) []string {
		return strings.FieldsFunc(s, func(r rune) bool { return r == '.' || r == '-' || r == '_' || r == '+' })
	}
	pa, pb := split(a), split(b)
	for i := 0; i < len(pa) && i < len(pb); i++ {
		na, ea := strconv.Atoi(pa[i])
		nb, eb := strconv.Atoi(pb[i])
		switch {
		case ea == nil && eb == nil && na != nb:
			return na < nb
		case (ea != nil || eb != nil) && pa[i] != pb[i]:
			return pa[i] < pb[i]
		}
	}
	if len(pa) != len(pb) {
		return len(pa) < len(pb)
	}
	return a < b
}

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
