package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onesis/git-onesis/internal/testkit"
)

// TestInitramfs builds an initramfs from the work tree and from --rev of
// the same commit: both must be byte-identical (reproducible, and the two
// image readers agree), --list must explain each module, and a module
// added only to the work tree must not appear at --rev.
func TestInitramfs(t *testing.T) {
	img := filepath.Join(t.TempDir(), "image")
	k := "6.1.0-7-amd64"
	md := "lib/modules/" + k + "/"
	writeTree(t, img, map[string]string{
		"boot/vmlinuz-" + k: "kernel\n",
		md + "modules.dep": "kernel/drivers/net/virtio_net.ko: kernel/net/core/failover.ko\n" +
			"kernel/net/core/failover.ko:\n" +
			"kernel/fs/nfs/nfsv3.ko: kernel/fs/nfs/nfs.ko kernel/net/sunrpc/sunrpc.ko\n" +
			"kernel/fs/nfs/nfs.ko: kernel/net/sunrpc/sunrpc.ko\n" +
			"kernel/net/sunrpc/sunrpc.ko:\n",
		md + "kernel/drivers/net/virtio_net.ko": "virtio_net\n",
		md + "kernel/net/core/failover.ko":      "failover\n",
		md + "kernel/fs/nfs/nfsv3.ko":           "nfsv3\n",
		md + "kernel/fs/nfs/nfs.ko":             "nfs\n",
		md + "kernel/net/sunrpc/sunrpc.ko":      "sunrpc\n",
	})
	initBin := filepath.Join(t.TempDir(), "onesis-init")
	if err := os.WriteFile(initBin, []byte("fake init\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	must(t, img, "git", "init", "-q")
	must(t, img, "git", "add", "-A")
	must(t, img, "git", "commit", "-qm", "image")
	out := t.TempDir()

	wt := onesis(t, img, "initramfs", "--init", initBin, "-o", filepath.Join(out, "wt"), "--list")
	if wt.code != 0 {
		t.Fatalf("initramfs: %d\n%s%s", wt.code, wt.out, wt.err)
	}
	for _, want := range []string{"# kernel " + k + " (file name) at /boot/vmlinuz-" + k + ": the only boot/vmlinuz-*", "failover         needed by virtio_net", "virtio_net       requested", "nfsv3            requested", "skipped    e1000e: not in", "/init    # onesis-init"} {
		if !strings.Contains(wt.out, want) {
			t.Errorf("--list lacks %q:\n%s", want, wt.out)
		}
	}
	rev := onesis(t, img, "initramfs", "--rev", "HEAD", "--init", initBin, "-o", filepath.Join(out, "rev"), "-q")
	if rev.code != 0 {
		t.Fatalf("initramfs --rev: %d\n%s%s", rev.code, rev.out, rev.err)
	}
	a, _ := os.ReadFile(filepath.Join(out, "wt"))
	b, _ := os.ReadFile(filepath.Join(out, "rev"))
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Errorf("work tree and --rev HEAD builds differ (%d vs %d bytes)", len(a), len(b))
	}

	// --rev needs no work tree: a bare clone (as a server keeps) gives the
	// same bytes.
	bare := filepath.Join(t.TempDir(), "image.git")
	must(t, img, "git", "clone", "-q", "--bare", img, bare)
	rb := onesis(t, bare, "initramfs", "--rev", "HEAD", "--init", initBin, "-o", filepath.Join(out, "bare"), "-q")
	if rb.code != 0 {
		t.Fatalf("initramfs --rev in a bare repository: %d\n%s%s", rb.code, rb.out, rb.err)
	}
	if c, _ := os.ReadFile(filepath.Join(out, "bare")); !bytes.Equal(a, c) {
		t.Error("the bare repository's --rev build differs")
	}

	// A module only in the work tree: -m finds it there, not at --rev.
	writeTree(t, img, map[string]string{md + "kernel/drivers/net/e1000.ko": "e1000\n"})
	f, _ := os.OpenFile(filepath.Join(img, md+"modules.dep"), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("kernel/drivers/net/e1000.ko:\n")
	f.Close()
	wt2 := onesis(t, img, "initramfs", "--init", initBin, "-o", "-", "--no-default-modules", "-m", "e1000", "--json")
	if wt2.code != 0 || !strings.Contains(wt2.err, `"name": "e1000"`) {
		t.Errorf("work tree -m e1000: %d\n%s", wt2.code, wt2.err)
	}
	rev2 := onesis(t, img, "initramfs", "--rev", "HEAD", "--init", initBin, "-o", "-", "--no-default-modules", "-m", "e1000", "--list")
	if rev2.code != 0 || !strings.Contains(rev2.err, "skipped    e1000: not in") {
		t.Errorf("--rev -m e1000: %d\n%s", rev2.code, rev2.err)
	}

	bad := onesis(t, img, "initramfs", "--init", filepath.Join(out, "nope"))
	if bad.code != 128 || !strings.Contains(bad.err, "init binary") {
		t.Errorf("missing --init: %d %s", bad.code, bad.err)
	}
	bad = onesis(t, img, "initramfs", "--init", initBin, "--kver", "9.9", "-o", filepath.Join(out, "x"))
	if bad.code != 128 || !strings.Contains(bad.err, "modules.dep") {
		t.Errorf("--kver 9.9: %d %s", bad.code, bad.err)
	}
	if _, err := os.Stat(filepath.Join(out, "x")); err == nil {
		t.Error("a failed build left an output file")
	}
}

// TestInitramfsTwoKernels: an image with two kernels, each with its
// modules, and boot/vmlinuz naming one. --list says which kernel and why,
// and the archive holds that kernel's modules only, from the work tree
// and from --rev alike; a plain copy named boot/vmlinuz is taken by its
// header's version, not the newest name.
func TestInitramfsTwoKernels(t *testing.T) {
	const oldV, newV = "6.1.0-57-amd64", "9.9.9-zz"
	files := map[string]string{}
	for _, v := range []string{oldV, newV} {
		files["boot/vmlinuz-"+v] = string(testkit.BzImage(v))
		files["lib/modules/"+v+"/modules.dep"] = "kernel/drivers/net/virtio_net.ko:\n"
		files["lib/modules/"+v+"/kernel/drivers/net/virtio_net.ko"] = "virtio_net " + v + "\n"
	}
	img := testkit.Repo(t, files)
	initBin := filepath.Join(t.TempDir(), "onesis-init")
	if err := os.WriteFile(initBin, []byte("fake init\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	check := func(what, want, why string) {
		t.Helper()
		for _, args := range [][]string{{}, {"--rev", "HEAD"}} {
			r := onesis(t, img, append([]string{"initramfs", "--init", initBin, "-o", "-", "--no-default-modules", "-m", "virtio_net", "--list"}, args...)...)
			head := "# kernel " + want + " (bzImage header) at "
			if r.code != 0 || !strings.Contains(r.err, head) || !strings.Contains(r.err, why) {
				t.Errorf("%s %v: exit %d, --list lacks %q and %q:\n%s", what, args, r.code, head, why, r.err)
			}
			other := oldV
			if want == oldV {
				other = newV
			}
			if !strings.Contains(r.err, "/lib/modules/"+want+"/") || strings.Contains(r.err, "/lib/modules/"+other+"/") {
				t.Errorf("%s %v: the archive does not hold %s's modules only:\n%s", what, args, want, r.err)
			}
		}
	}
	must(t, img, "ln", "-s", "vmlinuz-"+newV, "boot/vmlinuz")
	must(t, img, "git", "add", "-A")
	must(t, img, "git", "commit", "-qm", "boot/vmlinuz -> the newer")
	check("symlink", newV, "/boot/vmlinuz -> /boot/vmlinuz-"+newV)

	must(t, img, "rm", "boot/vmlinuz")
	must(t, img, "cp", "boot/vmlinuz-"+oldV, "boot/vmlinuz")
	must(t, img, "git", "add", "-A")
	must(t, img, "git", "commit", "-qm", "boot/vmlinuz a copy of the older")
	check("plain copy", oldV, "/boot/vmlinuz (a regular file)")
}
