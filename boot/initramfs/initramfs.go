// Package initramfs builds the initramfs a diskless node boots with: a
// gzip-compressed newc cpio holding onesis-init as /init and the kernel
// modules the node needs to reach its NFS root, taken from the image's own
// lib/modules/<kver> with their dependencies.
//
// The archive is reproducible: entries are sorted, every mtime is 0, every
// owner is 0:0, inode numbers are assigned in order and the gzip header
// carries no name and no time, so the same inputs always give the same
// bytes and the server can content-address and cache it.
//
// Compressed modules (.ko.xz, .ko.zst, .ko.gz) are decompressed at build
// time and stored as plain .ko: the archive is compressed as a whole
// anyway, the init then needs no decompressor (it stays small and loads
// every module with a plain finit_module), and it does not depend on the
// kernel having CONFIG_MODULE_DECOMPRESS.
package initramfs

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/u-root/u-root/pkg/cpio"

	"github.com/onesis/git-onesis/boot/initramfs/moddep"
	"github.com/onesis/git-onesis/boot/kernel"
)

// DefaultModules is the netboot set: common virtual and physical NICs and
// the NFSv3 client stack. Modules an image does not have (or has built in)
// are skipped with a note.
var DefaultModules = []string{
	"virtio_pci", "virtio_net", "e1000", "e1000e", "igb", "ixgbe", "tg3", "bnx2", "r8169",
	"af_packet", "sunrpc", "grace", "lockd", "nfs_acl", "nfs", "nfsv3",
}

// ModuleListFile is where the archive lists the modules onesis-init loads,
// one name a line, dependencies first.
const ModuleListFile = "etc/onesis/modules"

// Options say what goes into the initramfs.
type Options struct {
	// Image is the image's root filesystem.
	Image fs.FS
	// KernelVersion selects lib/modules/<kver>; "" means the version of
	// the kernel kernel.Find picks, the one serve boots.
	KernelVersion string
	// Modules are added to DefaultModules (unless NoDefaults).
	Modules []string
	// NoDefaults leaves DefaultModules out.
	NoDefaults bool
	// Init is the onesis-init binary, stored as /init.
	Init []byte
}

// Entry is one object of the archive.
type Entry struct {
	Path string      `json:"path"`
	Mode fs.FileMode `json:"mode"`
	Size int64       `json:"size"`
	Why  string      `json:"why"`
}

// MarshalJSON writes the mode as ls does ("-rw-r--r--").
func (e Entry) MarshalJSON() ([]byte, error) {
	type plain Entry
	return json.Marshal(struct {
		plain
		Mode string `json:"mode"`
	}{plain(e), e.Mode.String()})
}

// Manifest says what went into an initramfs and why.
type Manifest struct {
	KernelVersion string `json:"kernel_version"`
	// Kernel is the kernel whose modules these are and why it was
	// chosen; nil when the version was given (--kver).
	Kernel  *kernel.Kernel  `json:"kernel,omitempty"`
	Modules []moddep.Module `json:"modules"`
	Skipped []string        `json:"skipped,omitempty"`
	Entries []Entry         `json:"entries"`
	Size    int64           `json:"size"`
}

// Write prints the manifest for an admin: the modules in load order with
// why each is there, what was skipped, then every entry.
func (m *Manifest) Write(w io.Writer) error {
	if m.Kernel != nil {
		fmt.Fprintf(w, "# kernel %s\n", m.Kernel)
	} else {
		fmt.Fprintf(w, "# kernel %s (given with --kver)\n", m.KernelVersion)
	}
	for i, mod := range m.Modules {
		fmt.Fprintf(w, "module %3d %-16s %s\n", i+1, mod.Name, mod.Why)
	}
	for _, s := range m.Skipped {
		fmt.Fprintf(w, "skipped    %s\n", s)
	}
	for _, e := range m.Entries {
		fmt.Fprintf(w, "%s %9d /%s    # %s\n", e.Mode, e.Size, e.Path, e.Why)
	}
	_, err := fmt.Fprintf(w, "# %d entries, %d bytes compressed\n", len(m.Entries), m.Size)
	return err
}

// Build writes the initramfs for o to w and returns its manifest.
func Build(w io.Writer, o Options) (*Manifest, error) {
	if o.Image == nil {
		return nil, errors.New("building an initramfs: no image was given")
	}
	if len(o.Init) == 0 {
		return nil, errors.New("building an initramfs: no onesis-init binary was given (build it with 'make build' or pass --init)")
	}
	kver := o.KernelVersion
	var k *kernel.Kernel
	if kver == "" {
		var err error
		if k, err = kernel.Find(o.Image); err != nil {
			return nil, err
		}
		kver = k.Version
	}
	if err := checkName(kver); err != nil {
		return nil, fmt.Errorf("kernel version %q: %w", kver, err)
	}
	modDir := path.Join("lib/modules", kver)
	depText, err := fs.ReadFile(o.Image, modDir+"/modules.dep")
	if err != nil {
		return nil, fmt.Errorf("reading /%s/modules.dep of the image (is kernel %s installed in it, and depmod run?): %w", modDir, kver, err)
	}
	deps, err := moddep.Parse(bytes.NewReader(depText))
	if err != nil {
		return nil, fmt.Errorf("/%s: %w", modDir, err)
	}
	builtin := map[string]bool{}
	if b, err := fs.ReadFile(o.Image, modDir+"/modules.builtin"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				builtin[moddep.Name(l)] = true
			}
		}
	}

	want := append([]string(nil), o.Modules...)
	if !o.NoDefaults {
		want = append(append([]string(nil), DefaultModules...), o.Modules...)
	}
	mods, missing, err := deps.Resolve(want)
	if err != nil {
		return nil, err
	}
	m := &Manifest{KernelVersion: kver, Kernel: k, Modules: mods}
	if m.Modules == nil {
		m.Modules = []moddep.Module{}
	}
	for _, n := range missing {
		if builtin[n] {
			m.Skipped = append(m.Skipped, n+": built into kernel "+kver)
		} else {
			m.Skipped = append(m.Skipped, n+": not in /"+modDir+"/modules.dep")
		}
	}

	a := newArchive()
	a.file("init", o.Init, 0o755, "onesis-init, the initramfs's PID 1")
	for _, d := range []string{"dev", "proc", "sys", "run", "newroot", "tmp"} {
		a.dir(d, 0o755, "mount point used by onesis-init")
	}
	a.chardev("dev/console", 0o600, 5, 1, "the console the kernel opens for /init")
	var list bytes.Buffer
	for _, mod := range mods {
		b, err := fs.ReadFile(o.Image, path.Join(modDir, mod.File))
		if err != nil {
			return nil, fmt.Errorf("reading module %s (/%s/%s) from the image: %w", mod.Name, modDir, mod.File, err)
		}
		plain, err := decompress(mod.File, b)
		if err != nil {
			return nil, fmt.Errorf("module %s (/%s/%s): %w", mod.Name, modDir, mod.File, err)
		}
		why := "module " + mod.Name + ": " + mod.Why
		if len(plain) != len(b) || plainName(mod.File) != mod.File {
			why += " (decompressed from " + path.Base(mod.File) + ")"
		}
		a.file(path.Join(modDir, plainName(mod.File)), plain, 0o644, why)
		list.WriteString(mod.Name + "\n")
		var missingFW []string
		for _, fw := range firmwareOf(plain) {
			fwPath := path.Join("lib/firmware", path.Clean(fw))
			if _, done := a.recs[fwPath]; done {
				continue
			}
			b, from, ok, err := findFirmware(o.Image, fw)
			if err != nil {
				return nil, fmt.Errorf("firmware %s of module %s (/%s): %w", fw, mod.Name, from, err)
			}
			if !ok {
				if !slices.Contains(missingFW, fw) {
					missingFW = append(missingFW, fw)
				}
				continue
			}
			why := "firmware for " + mod.Name
			if from != fwPath {
				why += " (from /" + from + ")"
			}
			a.file(fwPath, b, 0o644, why)
		}
		if len(missingFW) > 0 {
			m.Skipped = append(m.Skipped, fmt.Sprintf("firmware for %s: %d files not in the image's /lib/firmware (the distribution's firmware package has them): %s",
				mod.Name, len(missingFW), strings.Join(missingFW, " ")))
		}
	}
	var dep bytes.Buffer
	if err := moddep.Write(&dep, deps, mods, plainName); err != nil {
		return nil, err
	}
	a.file(modDir+"/modules.dep", dep.Bytes(), 0o644, "modules.dep trimmed to the modules in this initramfs")
	a.file(ModuleListFile, list.Bytes(), 0o644, "the modules onesis-init loads, dependencies first")

	cw := &countWriter{w: w}
	gz, err := gzip.NewWriterLevel(cw, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	// gzip.Header is left zero: no name, no comment, mtime 0.
	if err := a.write(gz); err != nil {
		return nil, fmt.Errorf("writing the initramfs: %w", err)
	}
	if err := gz.Close(); err != nil {
		return nil, fmt.Errorf("writing the initramfs: %w", err)
	}
	m.Entries = a.entries()
	m.Size = cw.n
	return m, nil
}

// checkName refuses a kernel version that is not one path component.
func checkName(s string) error {
	if s == "" || s == "." || s == ".." || strings.ContainsAny(s, "/\x00") {
		return errors.New("not a kernel version")
	}
	return nil
}

// plainName drops a compression suffix from a module file name.
func plainName(f string) string {
	for _, s := range []string{".xz", ".zst", ".gz"} {
		if strings.HasSuffix(f, ".ko"+s) {
			return strings.TrimSuffix(f, s)
		}
	}
	return f
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// archive collects entries and writes them sorted, parents first.
type archive struct {
	recs map[string]cpio.Record
	why  map[string]string
}

func newArchive() *archive {
	return &archive{recs: map[string]cpio.Record{}, why: map[string]string{}}
}

func (a *archive) parents(p string) {
	for d := path.Dir(p); d != "." && d != "/"; d = path.Dir(d) {
		if _, ok := a.recs[d]; !ok {
			a.recs[d] = cpio.Directory(d, 0o755)
			a.why[d] = "parent directory"
		}
	}
}

func (a *archive) dir(p string, perm uint64, why string) {
	a.parents(p)
	a.recs[p] = cpio.Directory(p, perm)
	a.why[p] = why
}

func (a *archive) file(p string, b []byte, perm uint64, why string) {
	a.parents(p)
	a.recs[p] = cpio.StaticRecord(b, cpio.Info{Name: p, Mode: cpio.S_IFREG | perm})
	a.why[p] = why
}

func (a *archive) chardev(p string, perm, major, minor uint64, why string) {
	a.parents(p)
	a.recs[p] = cpio.CharDev(p, perm, major, minor)
	a.why[p] = why
}

func (a *archive) names() []string {
	names := make([]string, 0, len(a.recs))
	for n := range a.recs {
		names = append(names, n)
	}
	// Sorting whole paths puts every directory before what it holds.
	sort.Strings(names)
	return names
}

func (a *archive) write(w io.Writer) error {
	rw := cpio.Newc.Writer(w)
	for i, n := range a.names() {
		r := a.recs[n]
		r.Ino = uint64(i + 1)
		r.NLink = 1
		if r.Mode&cpio.S_IFMT == cpio.S_IFDIR {
			r.NLink = 2
		}
		r = cpio.MakeReproducible(r)
		if err := rw.WriteRecord(r); err != nil {
			return err
		}
	}
	return cpio.WriteTrailer(rw)
}

func (a *archive) entries() []Entry {
	var es []Entry
	for _, n := range a.names() {
		r := a.recs[n]
		mode := fs.FileMode(r.Mode & 0o7777)
		switch r.Mode & cpio.S_IFMT {
		case cpio.S_IFDIR:
			mode |= fs.ModeDir
		case cpio.S_IFCHR:
			mode |= fs.ModeDevice | fs.ModeCharDevice
		}
		es = append(es, Entry{Path: n, Mode: mode, Size: int64(r.FileSize), Why: a.why[n]})
	}
	return es
}
