package tftp

import (
	"bytes"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Where Debian's packages put the boot loaders.
const (
	DefaultIPXEDir         = "/usr/lib/ipxe"                  // package ipxe
	DefaultPXELinuxDir     = "/usr/lib/PXELINUX"              // package pxelinux
	DefaultSyslinuxBIOSDir = "/usr/lib/syslinux/modules/bios" // package syslinux-common
)

// maxNameLen bounds a client name (RFC 1350 has no limit; ours is generous).
const maxNameLen = 255

// cleanName turns a client's file name into a namespace key. A leading "/"
// is allowed and stripped; anything with a ".." element, a NUL or other
// control byte, a backslash, or that is empty is refused (ok = false).
// The result is path.Clean'ed; it is only ever compared with the keys of
// the namespace, never joined onto a directory.
func cleanName(raw string) (name string, ok bool) {
	if raw == "" || len(raw) > maxNameLen {
		return "", false
	}
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c < 0x20 || c == 0x7f || c == '\\' {
			return "", false
		}
	}
	for _, el := range strings.Split(raw, "/") {
		if el == ".." {
			return "", false
		}
	}
	name = path.Clean("/" + raw)[1:]
	if name == "" || name == "." {
		return "", false
	}
	return name, true
}

// DefaultIPXEFiles maps the iPXE boot loaders found in dir (Debian's ipxe
// package installs them in DefaultIPXEDir): undionly.kpxe (BIOS),
// ipxe.efi and snponly.efi (UEFI x64). Files that do not exist are left
// out; an empty map means the package is not installed.
func DefaultIPXEFiles(dir string) map[string]string {
	return existing(dir, "undionly.kpxe", "ipxe.efi", "snponly.efi")
}

// PXELinuxFiles maps pxelinux.0 from pxelinuxDir and ldlinux.c32 from
// biosModulesDir (Debian: DefaultPXELinuxDir and DefaultSyslinuxBIOSDir),
// for `serve --pxelinux`. Missing files are left out.
func PXELinuxFiles(pxelinuxDir, biosModulesDir string) map[string]string {
	m := existing(pxelinuxDir, "pxelinux.0")
	for k, v := range existing(biosModulesDir, "ldlinux.c32") {
		m[k] = v
	}
	return m
}

func existing(dir string, names ...string) map[string]string {
	m := map[string]string{}
	for _, n := range names {
		p := filepath.Join(dir, n)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			m[n] = p
		}
	}
	return m
}

// Bytes is what Generate returns for a small generated file: b, its size
// and true.
func Bytes(b []byte) (io.ReadCloser, int64, bool) {
	return io.NopCloser(bytes.NewReader(b)), int64(len(b)), true
}
