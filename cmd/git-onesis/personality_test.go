package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// writeTree creates files (path -> content) under root with mode 0644.
func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, body := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSysimageTransformAndRevert is the proof for the transform:
// an image with etc/sysimage.conf is committed, transformed and committed
// again (the hooks record the new links and /ram); the personality of a
// node is planned at that revision and executed into a directory; then
// --revert gives back a tree equal to the first commit, content and
// metadata, with no drift.
func TestSysimageTransformAndRevert(t *testing.T) {
	needRoot(t)
	img := filepath.Join(t.TempDir(), "image")
	writeTree(t, img, map[string]string{
		"etc/passwd":                "root:x:0:0::/root:/bin/sh\n",
		"etc/group":                 "root:x:0:\nadm:x:4:\n",
		"etc/fstab":                 "default\n",
		"etc/fstab.cluster.compute": "compute\n",
		"var/log/messages":          "log\n",
		"etc/sysimage.conf": "NODECLASS_RANGE node[1-4] cluster.compute\n" +
			"LINKBACK: /etc/fstab CLASS\n" +
			"LINKDIR /var/log -d   # logs live in /ram\n" +
			"RAMSIZE 32m\n",
	})
	if err := os.Chmod(filepath.Join(img, "var/log"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(filepath.Join(img, "var/log"), 0, 4); err != nil {
		t.Fatal(err)
	}
	if r := onesis(t, img, "init", "--commit", "-q"); r.code != 0 {
		t.Fatalf("init: %d %s", r.code, r.err)
	}

	dry := onesis(t, img, "sysimage", "--dry-run")
	if dry.code != 0 || !strings.Contains(dry.out, "link    /etc/fstab -> /ram/etc/fstab  (original kept as /etc/fstab.default)") {
		t.Fatalf("sysimage --dry-run: %d\n%s%s", dry.code, dry.out, dry.err)
	}
	if _, err := os.Lstat(filepath.Join(img, "ram")); err == nil {
		t.Fatal("--dry-run created /ram")
	}
	r := onesis(t, img, "sysimage")
	if r.code != 0 {
		t.Fatalf("sysimage: %d\n%s%s", r.code, r.out, r.err)
	}
	if again := onesis(t, img, "sysimage"); again.code != 0 || !strings.Contains(again.out, "Nothing to do") {
		t.Errorf("second sysimage run is not a no-op: %d\n%s%s", again.code, again.out, again.err)
	}
	must(t, img, "git", "add", "-A")
	if r := onesis(t, img, "commit", "-q", "-m", "mk-sysimage"); r.code != 0 {
		t.Fatalf("commit: %d %s", r.code, r.err)
	}
	gm, _ := os.ReadFile(filepath.Join(img, ".gitmeta"))
	for _, want := range []string{
		"./etc/fstab  mode=0777  uid=0  gid=0  type=link  link=/ram/etc/fstab",
		"./var/log  mode=0777  uid=0  gid=0  type=link  link=/ram/var/log",
		"./var/log.default  mode=0750  uid=0  gid=4  type=dir",
		"./ram  mode=0755  uid=0  gid=0  type=dir  empty=1",
	} {
		if !strings.Contains(string(gm), want) {
			t.Errorf(".gitmeta lacks %q", want)
		}
	}
	if st := onesis(t, img, "status"); st.code != 0 {
		t.Errorf("status after committing the transform: %d\n%s", st.code, st.out)
	}

	// The personality at the committed revision, and executed into a dir.
	p := onesis(t, img, "personality", "--host", "node2", "--rev", "HEAD")
	for _, want := range []string{
		"# host node2  class cluster.compute (cluster.compute -> cluster)  properties (none)",
		"mount   tmpfs on /ram (size=32m,mode=0755)",
		"symlink /ram/etc/fstab -> /etc/fstab.cluster.compute",
		"copy    /var/log.default -> /ram/var/log",
	} {
		if p.code != 0 || !strings.Contains(p.out, want) {
			t.Errorf("personality --rev HEAD lacks %q: %d\n%s%s", want, p.code, p.out, p.err)
		}
	}
	js := onesis(t, img, "personality", "--host", "web9", "--json")
	if js.code != 0 || !strings.Contains(js.out, `"target": "/etc/fstab.default"`) {
		t.Errorf("personality --json for a classless host: %d\n%s%s", js.code, js.out, js.err)
	}
	ram := t.TempDir()
	if x := onesis(t, img, "personality", "--host", "node2", "--root", img, "--ram", ram, "-q"); x.code != 0 {
		t.Fatalf("personality --ram: %d %s", x.code, x.err)
	}
	if l, _ := os.Readlink(filepath.Join(ram, "etc/fstab")); l != "/etc/fstab.cluster.compute" {
		t.Errorf("ram etc/fstab -> %q", l)
	}
	assertMode(t, filepath.Join(ram, "var/log"), 0o750, 0, 4)
	if b, _ := os.ReadFile(filepath.Join(ram, "var/log/messages")); string(b) != "log\n" {
		t.Errorf("ram var/log/messages = %q", b)
	}

	// Revert: the tree equals the first commit, content and metadata.
	if r := onesis(t, img, "sysimage", "--revert"); r.code != 0 {
		t.Fatalf("sysimage --revert: %d\n%s%s", r.code, r.out, r.err)
	}
	must(t, img, "git", "add", "-A")
	if d := runIn(t, img, "git", "diff", "--cached", "--stat", "--exit-code", "HEAD~1", "--", ".", ":!.gitmeta"); d.code != 0 {
		t.Errorf("content differs from the first commit after --revert:\n%s", d.out)
	}
	if d := onesis(t, img, "diff", "--exit-code", "HEAD~1"); d.code != 0 {
		t.Errorf("metadata differs from the first commit after --revert:\n%s%s", d.out, d.err)
	}
	if r := onesis(t, img, "commit", "-q", "-m", "revert"); r.code != 0 {
		t.Fatalf("commit: %d %s", r.code, r.err)
	}
	if st := onesis(t, img, "status"); st.code != 0 {
		t.Errorf("status after the revert: %d\n%s", st.code, st.out)
	}
	if d := runIn(t, img, "git", "diff", "--exit-code", "HEAD~2", "HEAD"); d.code != 0 {
		t.Errorf("HEAD differs from the first commit:\n%s", d.out)
	}
}

// TestSysimageRefusesInittab: a clear error, exit 128, nothing changed.
func TestSysimageRefusesInittab(t *testing.T) {
	img := t.TempDir()
	writeTree(t, img, map[string]string{
		"etc/inittab":       "id:3:initdefault:\n",
		"etc/sysimage.conf": "LINKDIR /etc\n",
	})
	must(t, img, "git", "init", "-q")
	r := onesis(t, img, "sysimage")
	if r.code != exitFatal || !strings.Contains(r.err, "/etc cannot be linked into /ram: it holds /etc/inittab") {
		t.Errorf("sysimage with LINKDIR /etc: %d\n%s", r.code, r.err)
	}
	if _, err := os.Lstat(filepath.Join(img, "ram")); err == nil {
		t.Error("a refused transform created /ram")
	}
}

// TestCopyRootfs copies a small live-looking tree with a tmpfs mounted
// inside it: pseudo-filesystem contents and the nested mount's contents
// are left out (their directories kept), hard links, setuid bits and
// owners survive, and the result is ready for 'git onesis init'.
func TestCopyRootfs(t *testing.T) {
	needRoot(t)
	needTool(t, "rsync")
	base := t.TempDir()
	src := filepath.Join(base, "live")
	writeTree(t, src, map[string]string{
		"etc/hostname":      "rook\n",
		"proc/1/status":     "x\n",
		"sys/kernel/x":      "x\n",
		"dev/pts/0":         "x\n",
		"dev/console":       "x\n",
		"run/lock/x":        "x\n",
		"tmp/junk":          "x\n",
		"var/tmp/junk":      "x\n",
		"usr/bin/su":        "#!/bin/sh\n",
		"usr/lib/libfoo.so": "elf\n",
		"mnt/data/.keep":    "",
	})
	if err := os.Link(filepath.Join(src, "usr/lib/libfoo.so"), filepath.Join(src, "usr/lib/libfoo.so.1")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Chmod(filepath.Join(src, "usr/bin/su"), 0o4755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(filepath.Join(src, "etc/hostname"), 1234, 5); err != nil {
		t.Fatal(err)
	}
	mnt := filepath.Join(src, "mnt/data")
	mounted := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=1m") == nil
	if mounted {
		defer unix.Unmount(mnt, 0)
		writeTree(t, mnt, map[string]string{"on-the-mount": "must not be copied\n"})
	} else {
		t.Log("cannot mount a tmpfs here; the nested-mount part is not checked")
	}

	dest := filepath.Join(base, "image")
	dry := onesis(t, base, "copy-rootfs", "--dry-run", src, dest)
	if dry.code != 0 || !strings.Contains(dry.out, "rsync -aHAX --numeric-ids --one-file-system") {
		t.Fatalf("copy-rootfs --dry-run: %d\n%s%s", dry.code, dry.out, dry.err)
	}
	if _, err := os.Lstat(dest); err == nil {
		t.Fatal("--dry-run created the destination")
	}
	r := onesis(t, base, "copy-rootfs", src, dest)
	if r.code != 0 {
		t.Fatalf("copy-rootfs: %d\n%s%s", r.code, r.out, r.err)
	}
	wantExcl := []string{"/proc/*", "/sys/*", "/dev/pts/*", "/run/*", "/tmp/*", "/var/tmp/*"}
	if mounted {
		wantExcl = append(wantExcl, "/mnt/data/*")
	}
	for _, e := range wantExcl {
		if !strings.Contains(r.out, "  "+e+" ") {
			t.Errorf("copy-rootfs does not list the exclude %s:\n%s", e, r.out)
		}
	}
	for _, gone := range []string{"proc/1", "sys/kernel", "dev/pts/0", "run/lock", "tmp/junk", "var/tmp/junk", "mnt/data/on-the-mount"} {
		if _, err := os.Lstat(filepath.Join(dest, gone)); err == nil {
			t.Errorf("%s was copied", gone)
		}
	}
	for _, kept := range []string{"proc", "sys", "dev/pts", "dev/console", "run", "tmp", "var/tmp", "mnt/data"} {
		if fi, err := os.Lstat(filepath.Join(dest, kept)); err != nil {
			t.Errorf("%s missing from the copy: %v", kept, err)
		} else if kept != "dev/console" && !fi.IsDir() {
			t.Errorf("%s is not a directory in the copy", kept)
		}
	}
	assertMode(t, filepath.Join(dest, "usr/bin/su"), 0o4755, 0, 0)
	assertMode(t, filepath.Join(dest, "etc/hostname"), 0o644, 1234, 5)
	a, _ := inode(t, filepath.Join(dest, "usr/lib/libfoo.so"))
	b, _ := inode(t, filepath.Join(dest, "usr/lib/libfoo.so.1"))
	if a != b {
		t.Error("the hard link was not kept")
	}
	if r := onesis(t, dest, "init", "--commit", "-q"); r.code != 0 {
		t.Fatalf("init on the copy: %d %s", r.code, r.err)
	}
	if st := onesis(t, dest, "status"); st.code != 0 {
		t.Errorf("status on the fresh copy: %d\n%s", st.code, st.out)
	}
}
