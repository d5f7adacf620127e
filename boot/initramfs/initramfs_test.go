package initramfs

import (
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/klauspost/compress/zstd"
	"github.com/u-root/u-root/pkg/cpio"
	"github.com/ulikunitz/xz"
)

const kver = "6.1.0-99-amd64"

func xzBytes(t *testing.T, b []byte) []byte {
	var out bytes.Buffer
	w, err := xz.NewWriter(&out)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(b)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func zstdBytes(t *testing.T, b []byte) []byte {
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	return enc.EncodeAll(b, nil)
}

// modContent is a module's stand-in contents: its name, so a test can
// tell which file landed where after decompression.
func modContent(name string) []byte { return []byte("\x7fELF module " + name + "\n") }

// testImage is an image with the fixture modules.dep and a file for each
// module, virtio_net compressed with xz and net_failover with zstd.
func testImage(t *testing.T) fstest.MapFS {
	t.Helper()
	dep, err := os.ReadFile("testdata/modules.dep")
	if err != nil {
		t.Fatal(err)
	}
	builtin, err := os.ReadFile("testdata/modules.builtin")
	if err != nil {
		t.Fatal(err)
	}
	md := "lib/modules/" + kver + "/"
	img := fstest.MapFS{
		"boot/vmlinuz-" + kver: {Data: []byte("kernel"), Mode: 0o644},
		md + "modules.dep":     {Data: dep, Mode: 0o644},
		md + "modules.builtin": {Data: builtin, Mode: 0o644},
		"etc/sysimage.conf":    {Data: []byte("\n"), Mode: 0o644},
	}
	for _, l := range strings.Split(string(dep), "\n") {
		f, _, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		name := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(path.Base(f), ".xz"), ".zst"), ".ko")
		c := modContent(name)
		switch {
		case strings.HasSuffix(f, ".xz"):
			c = xzBytes(t, c)
		case strings.HasSuffix(f, ".zst"):
			c = zstdBytes(t, c)
		}
		img[md+f] = &fstest.MapFile{Data: c, Mode: 0o644}
	}
	return img
}

func build(t *testing.T, o Options) ([]byte, *Manifest) {
	t.Helper()
	var buf bytes.Buffer
	m, err := Build(&buf, o)
	if err != nil {
		t.Fatal(err)
	}
	if m.Size != int64(buf.Len()) {
		t.Errorf("manifest size %d, archive %d bytes", m.Size, buf.Len())
	}
	return buf.Bytes(), m
}

// readBack decompresses and parses the archive with u-root's newc reader.
func readBack(t *testing.T, b []byte) []cpio.Record {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if zr.Header.Name != "" || !zr.Header.ModTime.IsZero() {
		t.Errorf("gzip header carries name %q / time %v", zr.Header.Name, zr.Header.ModTime)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func TestBuild(t *testing.T) {
	img := testImage(t)
	initBin := []byte("#!fake onesis-init\n")
	b, m := build(t, Options{Image: img, Init: initBin, Modules: []string{"sd_mod", "nosuch"}})

	if m.KernelVersion != kver {
		t.Errorf("kernel version %q", m.KernelVersion)
	}
	var order []string
	for _, mod := range m.Modules {
		order = append(order, mod.Name)
	}
	wantOrder := "failover net_failover virtio_net e1000 sunrpc grace lockd netfs fscache nfs nfsv3 scsi_mod sd_mod"
	if got := strings.Join(order, " "); got != wantOrder {
		t.Errorf("modules\n got %s\nwant %s", got, wantOrder)
	}
	skipped := strings.Join(m.Skipped, "\n")
	for _, want := range []string{"virtio_pci: built into kernel", "af_packet: built into kernel", "e1000e: not in", "nosuch: not in"} {
		if !strings.Contains(skipped, want) {
			t.Errorf("skipped list lacks %q:\n%s", want, skipped)
		}
	}

	recs := readBack(t, b)
	got := map[string]cpio.Record{}
	var names []string
	for _, r := range recs {
		names = append(names, r.Name)
		got[r.Name] = r
		if r.MTime != 0 || r.UID != 0 || r.GID != 0 {
			t.Errorf("%s: mtime %d owner %d:%d", r.Name, r.MTime, r.UID, r.GID)
		}
	}
	for i := 1; i < len(names); i++ {
		if names[i-1] >= names[i] {
			t.Errorf("entries not sorted: %s before %s", names[i-1], names[i])
		}
	}
	content := func(name string) string {
		r, ok := got[name]
		if !ok {
			t.Errorf("archive lacks %s", name)
			return ""
		}
		c, err := io.ReadAll(io.NewSectionReader(r, 0, int64(r.FileSize)))
		if err != nil {
			t.Fatal(err)
		}
		return string(c)
	}
	if c := content("init"); c != string(initBin) || got["init"].Mode != cpio.S_IFREG|0o755 {
		t.Errorf("init: %q mode %o", c, got["init"].Mode)
	}
	md := "lib/modules/" + kver + "/"
	// Compressed modules are stored decompressed under their .ko name.
	if c := content(md + "kernel/drivers/net/virtio_net.ko"); c != string(modContent("virtio_net")) {
		t.Errorf("virtio_net.ko: %q", c)
	}
	if c := content(md + "kernel/drivers/net/net_failover.ko"); c != string(modContent("net_failover")) {
		t.Errorf("net_failover.ko: %q", c)
	}
	for _, n := range []string{md + "kernel/drivers/net/virtio_net.ko.xz", md + "kernel/drivers/scsi/../net/dummy-net.ko", md + "kernel/drivers/net/dummy-net.ko", "etc/sysimage.conf"} {
		if _, ok := got[n]; ok {
			t.Errorf("archive holds %s", n)
		}
	}
	for _, d := range []string{"dev", "proc", "sys", "run", "newroot", "lib", "lib/modules", md[:len(md)-1]} {
		if r, ok := got[d]; !ok || r.Mode&cpio.S_IFMT != cpio.S_IFDIR {
			t.Errorf("directory %s missing or not a directory", d)
		}
	}
	if r := got["dev/console"]; r.Mode != cpio.S_IFCHR|0o600 || r.Rmajor != 5 || r.Rminor != 1 {
		t.Errorf("dev/console: mode %o dev %d:%d", r.Mode, r.Rmajor, r.Rminor)
	}
	dep := content(md + "modules.dep")
	if !strings.Contains(dep, "kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko\n") || strings.Contains(dep, "dummy") || strings.Contains(dep, ".xz") {
		t.Errorf("trimmed modules.dep:\n%s", dep)
	}
	if list := content(ModuleListFile); list != strings.ReplaceAll(wantOrder, " ", "\n")+"\n" {
		t.Errorf("module list:\n%s", list)
	}

	// The real tools read it too.
	dir := t.TempDir()
	f := filepath.Join(dir, "initrd")
	if err := os.WriteFile(f, b, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tool := range [][]string{{"sh", "-c", "gzip -dc " + f + " | cpio -t --quiet"}, {"bsdtar", "-tf", f}} {
		out, err := exec.Command(tool[0], tool[1:]...).CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", tool, err, out)
		}
		if got := strings.Join(strings.Fields(string(out)), "\n"); got != strings.Join(names, "\n") {
			t.Errorf("%v lists\n%s\nwant\n%s", tool, got, strings.Join(names, "\n"))
		}
	}
	// cpio extracts the decompressed module intact.
	x := filepath.Join(dir, "x")
	os.Mkdir(x, 0o755)
	cmd := exec.Command("sh", "-c", "gzip -dc "+f+" | cpio -id --quiet '*/nfsv3.ko'")
	cmd.Dir = x
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio -id: %v\n%s", err, out)
	}
	if c, err := os.ReadFile(filepath.Join(x, md, "kernel/fs/nfs/nfsv3.ko")); err != nil || string(c) != string(modContent("nfsv3")) {
		t.Errorf("extracted nfsv3.ko: %q %v", c, err)
	}

	var list bytes.Buffer
	m.Write(&list)
	if !strings.Contains(list.String(), "net_failover     needed by virtio_net") || !strings.Contains(list.String(), "(decompressed from virtio_net.ko.xz)") {
		t.Errorf("--list output:\n%s", list.String())
	}
}

func TestReproducible(t *testing.T) {
	o := Options{Image: testImage(t), Init: []byte("init"), Modules: []string{"sd_mod"}}
	a, _ := build(t, o)
	o.Image = testImage(t) // fresh compression, same contents
	o.Modules = []string{"sd_mod", "sd-mod"}
	b, _ := build(t, o)
	if !bytes.Equal(a, b) {
		t.Error("two builds from the same inputs differ")
	}
	o.Init = []byte("init2")
	c, _ := build(t, o)
	if bytes.Equal(a, c) {
		t.Error("a different init gave the same archive")
	}
}

func TestBuildErrors(t *testing.T) {
	img := testImage(t)
	md := "lib/modules/" + kver + "/"
	broken := testImage(t)
	broken[md+"kernel/drivers/net/virtio_net.ko.xz"] = &fstest.MapFile{Data: []byte("not xz")}
	noDep := testImage(t)
	delete(noDep, md+"modules.dep")
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"no init", Options{Image: img}, "no onesis-init"},
		{"no image", Options{Init: []byte("x")}, "no image"},
		{"bad kver", Options{Image: img, Init: []byte("x"), KernelVersion: "../x"}, "not a kernel version"},
		{"missing kver", Options{Image: img, Init: []byte("x"), KernelVersion: "5.0"}, "modules.dep"},
		{"no modules.dep", Options{Image: noDep, Init: []byte("x")}, "depmod"},
		{"corrupt xz", Options{Image: broken, Init: []byte("x")}, "virtio_net"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Build(io.Discard, tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestLocateInit(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "my-init")
	os.WriteFile(f, []byte("x"), 0o755)
	if p, err := LocateInit(f); err != nil || p != f {
		t.Errorf("explicit: %q %v", p, err)
	}
	if _, err := LocateInit(filepath.Join(dir, "nope")); err == nil {
		t.Error("a missing explicit init was accepted")
	}
	if _, err := LocateInit(dir); err == nil {
		t.Error("a directory was accepted as the init")
	}
}

// TestMergedUsr: with /lib a symlink to usr/lib (Debian 12, RHEL), the
// modules are found through it.
func TestMergedUsr(t *testing.T) {
	img := fstest.MapFS{"lib": &fstest.MapFile{Data: []byte("usr/lib"), Mode: fs.ModeSymlink | 0o777}}
	for name, f := range testImage(t) {
		if strings.HasPrefix(name, "lib/") {
			name = "usr/" + name
		}
		img[name] = f
	}
	_, m := build(t, Options{Image: img, Init: []byte("init"), NoDefaults: true, Modules: []string{"virtio_net"}})
	if len(m.Modules) != 3 || m.Modules[2].Name != "virtio_net" {
		t.Errorf("modules through the /lib symlink: %+v", m.Modules)
	}
}
