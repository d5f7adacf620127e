// Package kernel decides which kernel an image boots and which version it
// is. It is the one home of that decision: serve hands the node the
// kernel Find picks, and the initramfs is built from the modules of the
// version Find reads, so the two always match.
//
// The choice, in order:
//
//  1. boot/vmlinuz, then vmlinuz (the names Debian's and Red Hat's kernel
//     packages keep current): a symlink is followed inside the image
//     only, a regular file is the kernel itself;
//  2. else the only, or the newest by version, boot/vmlinuz-<version>.
//
// A symlink that leaves the image or leads nowhere is an error, not a
// reason to boot another kernel. The version is the one in the kernel's
// own bzImage header (what 'uname -r' will say on the node); the file
// name is used only when the file has no such header (another
// architecture's image, a test fixture), and for a plain copy without one
// (boot/vmlinuz) the name of the boot/vmlinuz-<version> with the same
// content. A name and header that disagree are reported in Why.
package kernel

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
)

// Kernel is the kernel an image boots.
type Kernel struct {
	// Path is the kernel file relative to the image root, symlinks
	// resolved.
	Path string `json:"path"`
	// Version is the kernel release ('uname -r'), the directory of
	// lib/modules its modules are in.
	Version string `json:"version"`
	// VersionFrom says where Version was read: "bzImage header", "file
	// name", or "file name of its copy /boot/vmlinuz-<version>".
	VersionFrom string `json:"version_from"`
	// Why says how Path was chosen, for an admin.
	Why string `json:"why"`
}

// Links are the names an image marks its default kernel with, in the
// order they are looked at.
var Links = []string{"boot/vmlinuz", "vmlinuz"}

// maxLinks bounds the symlinks followed from one name.
const maxLinks = 40

// ErrNoKernel is returned (wrapped) when an image has no kernel at all.
var ErrNoKernel = errors.New("the image has no kernel")

// Find picks the kernel of image (see the package comment) and reads its
// version. image must implement fs.ReadLinkFS for symlinks to be
// followed (internal/gitfs and os.Root's FS do).
func Find(image fs.FS) (*Kernel, error) {
	for _, name := range Links {
		p, why, ok, err := resolve(image, name)
		if err != nil {
			return nil, err
		}
		if ok {
			return withVersion(image, &Kernel{Path: p, Why: why})
		}
	}
	ents, err := fs.ReadDir(image, "boot")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("looking for a kernel in the image's /boot: %w", err)
	}
	var names []string
	for _, e := range ents {
		if v, ok := strings.CutPrefix(e.Name(), "vmlinuz-"); ok && v != "" && e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%w: no /boot/vmlinuz, /vmlinuz or /boot/vmlinuz-<version> (install the distribution's kernel package in the image)", ErrNoKernel)
	}
	slices.SortFunc(names, CompareVersions)
	k := &Kernel{Path: "boot/" + names[len(names)-1]}
	if len(names) == 1 {
		k.Why = "the only boot/vmlinuz-*"
	} else {
		k.Why = fmt.Sprintf("the newest of %d boot/vmlinuz-* by version (no boot/vmlinuz or vmlinuz)", len(names))
	}
	return withVersion(image, k)
}

// resolve follows name through symlinks inside image. ok is false when
// name does not exist. The result must be a regular file.
func resolve(image fs.FS, name string) (p, why string, ok bool, err error) {
	p = name
	var chain []string
	for range maxLinks {
		fi, err := fs.Lstat(image, p)
		if errors.Is(err, fs.ErrNotExist) && len(chain) == 0 {
			return "", "", false, nil
		}
		if err != nil {
			return "", "", false, fmt.Errorf("the image's /%s: %w", strings.Join(append(chain, p), " -> /"), err)
		}
		switch {
		case fi.Mode().IsRegular():
			if len(chain) == 0 {
				return p, "/" + p + " (a regular file)", true, nil
			}
			return p, "/" + strings.Join(chain, " -> /") + " -> /" + p, true, nil
		case fi.Mode()&fs.ModeSymlink == 0:
			return "", "", false, fmt.Errorf("the image's /%s is not a kernel file (mode %s)", p, fi.Mode())
		}
		target, err := fs.ReadLink(image, p)
		if err != nil {
			return "", "", false, fmt.Errorf("reading the image's symlink /%s: %w", p, err)
		}
		chain = append(chain, p)
		next := target
		if !path.IsAbs(target) {
			next = path.Join(path.Dir(p), target)
		}
		next = path.Clean(strings.TrimPrefix(next, "/"))
		if next == "." || next == ".." || strings.HasPrefix(next, "../") {
			return "", "", false, fmt.Errorf("the image's /%s: symlink target %q leaves the image", chain[len(chain)-1], target)
		}
		p = next
	}
	return "", "", false, fmt.Errorf("the image's /%s: too many levels of symbolic links", name)
}

// withVersion fills k.Version from the kernel's header, else its name.
func withVersion(image fs.FS, k *Kernel) (*Kernel, error) {
	f, err := image.Open(k.Path)
	if err != nil {
		return nil, fmt.Errorf("opening the kernel /%s: %w", k.Path, err)
	}
	hv, herr := HeaderVersion(f)
	f.Close()
	nv, _ := strings.CutPrefix(path.Base(k.Path), "vmlinuz-")
	if nv == path.Base(k.Path) {
		nv = ""
	}
	switch {
	case herr == nil:
		k.Version, k.VersionFrom = hv, "bzImage header"
		if nv != "" && nv != hv {
			k.Why += fmt.Sprintf("; its name says %s but its header says %s, and the header is what the kernel reports", nv, hv)
		}
	case nv != "":
		k.Version, k.VersionFrom = nv, "file name"
	default:
		// A plain copy (boot/vmlinuz) of a kernel without a header
		// version: the name of the boot/vmlinuz-* it copies.
		twin, err := sameAs(image, k.Path)
		if err != nil {
			return nil, err
		}
		if twin == "" {
			return nil, fmt.Errorf("cannot tell the version of the kernel /%s (chosen as %s): %w, and no /boot/vmlinuz-<version> has its content; make it a symlink to one", k.Path, k.Why, herr)
		}
		k.Version, k.VersionFrom = strings.TrimPrefix(path.Base(twin), "vmlinuz-"), "file name of its copy /"+twin
	}
	if err := checkVersion(k.Version); err != nil {
		return nil, fmt.Errorf("the kernel /%s: %w", k.Path, err)
	}
	return k, nil
}

// sameAs returns the boot/vmlinuz-* whose content is p's, or "".
func sameAs(image fs.FS, p string) (string, error) {
	want, err := fs.ReadFile(image, p)
	if err != nil {
		return "", fmt.Errorf("reading the kernel /%s: %w", p, err)
	}
	ents, _ := fs.ReadDir(image, "boot")
	for _, e := range ents {
		q := "boot/" + e.Name()
		if v, ok := strings.CutPrefix(e.Name(), "vmlinuz-"); !ok || v == "" || !e.Type().IsRegular() || q == p {
			continue
		}
		if fi, err := e.Info(); err != nil || fi.Size() != int64(len(want)) {
			continue
		}
		got, err := fs.ReadFile(image, q)
		if err == nil && bytes.Equal(got, want) {
			return q, nil
		}
	}
	return "", nil
}

// checkVersion refuses a version that cannot name a lib/modules directory.
func checkVersion(v string) error {
	if v == "" || v == "." || v == ".." || strings.ContainsAny(v, "/\x00") {
		return fmt.Errorf("kernel version %q cannot name a directory of lib/modules", v)
	}
	return nil
}

// The x86 boot protocol's setup header (Documentation/arch/x86/boot.rst):
// "HdrS" at 0x202, the protocol version at 0x206 and, from protocol 2.00,
// kernel_version at 0x20E: the offset, less 0x200, of a NUL-terminated
// string that begins with the kernel release.
const (
	offBootFlag   = 0x1FE
	offMagic      = 0x202
	offProtocol   = 0x206
	offVersionPtr = 0x20E
	headerEnd     = 0x210
	maxVersionLen = 256
)

// ErrNoHeader is returned (wrapped) by HeaderVersion for a file that is
// not an x86 bzImage with a version string.
var ErrNoHeader = errors.New("no x86 boot header with a kernel version")

// HeaderVersion reads the kernel release from an x86 bzImage's setup
// header: the first word of the kernel_version string, as 'uname -r'
// prints it. It reads at most the first 64 KiB of r.
func HeaderVersion(r io.Reader) (string, error) {
	buf := make([]byte, 0x200+0xFFFF+maxVersionLen)
	n, err := io.ReadFull(r, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading the kernel header: %w", err)
	}
	buf = buf[:n]
	if len(buf) < headerEnd || string(buf[offMagic:offMagic+4]) != "HdrS" ||
		binary.LittleEndian.Uint16(buf[offBootFlag:]) != 0xAA55 {
		return "", ErrNoHeader
	}
	if binary.LittleEndian.Uint16(buf[offProtocol:]) < 0x0200 {
		return "", fmt.Errorf("%w (boot protocol older than 2.00)", ErrNoHeader)
	}
	ptr := int(binary.LittleEndian.Uint16(buf[offVersionPtr:]))
	if ptr == 0 || 0x200+ptr >= len(buf) {
		return "", fmt.Errorf("%w (kernel_version is %#x)", ErrNoHeader, ptr)
	}
	s := buf[0x200+ptr:]
	if i := slices.Index(s, 0); i >= 0 {
		s = s[:i]
	}
	if len(s) > maxVersionLen {
		s = s[:maxVersionLen]
	}
	f := strings.Fields(string(s))
	if len(f) == 0 {
		return "", fmt.Errorf("%w (the version string is empty)", ErrNoHeader)
	}
	for _, c := range f[0] {
		if c < '!' || c > '~' {
			return "", fmt.Errorf("%w (the version string %q is not printable)", ErrNoHeader, f[0])
		}
	}
	return f[0], nil
}

// CompareVersions orders kernel versions, or vmlinuz-<version> names,
// piece by piece with numbers compared as numbers, so 6.1.0-10 sorts
// after 6.1.0-9.
func CompareVersions(a, b string) int {
	split := func(s string) []string {
		return strings.FieldsFunc(s, func(r rune) bool { return r == '.' || r == '-' || r == '_' || r == '+' || r == '~' })
	}
	pa, pb := split(a), split(b)
	for i := 0; i < len(pa) && i < len(pb); i++ {
		na, ea := strconv.Atoi(pa[i])
		nb, eb := strconv.Atoi(pb[i])
		if ea == nil && eb == nil {
			if c := cmp.Compare(na, nb); c != 0 {
				return c
			}
			continue
		}
		if c := strings.Compare(pa[i], pb[i]); c != 0 {
			return c
		}
	}
	return cmp.Or(cmp.Compare(len(pa), len(pb)), strings.Compare(a, b))
}

// String describes k in one line: "6.1.0-57-amd64 (bzImage header) at
// /boot/vmlinuz-6.1.0-57-amd64: /vmlinuz -> /boot/vmlinuz-6.1.0-57-amd64".
func (k *Kernel) String() string {
	return fmt.Sprintf("%s (%s) at /%s: %s", k.Version, k.VersionFrom, k.Path, k.Why)
}
