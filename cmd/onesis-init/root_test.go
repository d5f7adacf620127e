package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/onesis/git-onesis/boot/cmdline"
	"github.com/onesis/git-onesis/boot/mksysimage"
	"github.com/onesis/git-onesis/boot/sysimage"
)

// smallImage is a transformed image (as `git onesis sysimage` leaves it)
// with a class variant of /etc/fstab.
func smallImage(t *testing.T) string {
	t.Helper()
	img := t.TempDir()
	writeFile(t, filepath.Join(img, "etc/passwd"), "root:x:0:0::/root:/bin/sh\n", 0o644)
	writeFile(t, filepath.Join(img, "etc/group"), "root:x:0:\n", 0o644)
	writeFile(t, filepath.Join(img, "etc/fstab"), "default\n", 0o644)
	writeFile(t, filepath.Join(img, "etc/fstab.cluster.compute"), "compute\n", 0o644)
	writeFile(t, filepath.Join(img, "etc/sysimage.conf"), "NODECLASS_RANGE node[1-9] cluster.compute\nLINKBACK /etc/fstab CLASS\nRAMSIZE 8m\n", 0o644)
	transform(t, img)
	return img
}

// transform runs the sysimage transform on img, as 'git onesis sysimage'
// does: the LINK* paths become links into /ram.
func transform(t *testing.T, img string) {
	t.Helper()
	r, err := os.OpenRoot(img)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cfg, err := sysimage.Parse(func(p string) ([]byte, error) { return r.ReadFile(strings.TrimPrefix(p, "/")) }, "/etc/sysimage.conf")
	if err != nil {
		t.Fatal(err)
	}
	tr, err := mksysimage.Plan(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := mksysimage.Execute(img, tr.Ops); err != nil {
		t.Fatal(err)
	}
}

// TestPersonalityOnly runs the initramfs-tools mode against a directory
// standing in for ${rootmnt}: /ram gets the node's links. As root the
// tmpfs is really mounted (and unmounted afterwards); otherwise the
// existing directory is filled (--no-mount).
func TestPersonalityOnly(t *testing.T) {
	img := smallImage(t)
	args := []string{"--root", img, "--host", "node3"}
	if os.Getuid() == 0 {
		t.Cleanup(func() { unix.Unmount(filepath.Join(img, "ram"), unix.MNT_DETACH) })
	} else {
		args = append(args, "--no-mount")
	}
	if code := personalityOnly(args); code != 0 {
		t.Fatalf("personalityOnly exit %d", code)
	}
	if l, err := os.Readlink(filepath.Join(img, "ram/etc/fstab")); err != nil || l != "/etc/fstab.cluster.compute" {
		t.Errorf("ram/etc/fstab -> %q %v", l, err)
	}
	if os.Getuid() == 0 {
		var st unix.Statfs_t
		if err := unix.Statfs(filepath.Join(img, "ram"), &st); err != nil || st.Type != unix.TMPFS_MAGIC {
			t.Errorf("ram is not a tmpfs: %v", err)
		}
	}

	// An image without /ram is refused with the fix in the message.
	bare := t.TempDir()
	writeFile(t, filepath.Join(bare, "etc/sysimage.conf"), "NODECLASS_MAP node3 c\n", 0o644)
	if _, err := applyPersonality(bare, "node3", "", false); err == nil || !strings.Contains(err.Error(), "git onesis sysimage") {
		t.Errorf("image without /ram: %v", err)
	}
	// An image without sysimage.conf gets no personality, and no error.
	if c, err := applyPersonality(t.TempDir(), "node3", "x", false); err != nil || c != "x" {
		t.Errorf("image without sysimage.conf: %q %v", c, err)
	}
	if code := personalityOnly([]string{"--root", img, "--host", "bad_name!", "--no-mount"}); code == 0 {
		t.Error("a bad host name was accepted")
	}
}

func TestPersonalityHost(t *testing.T) {
	run := t.TempDir()
	writeFile(t, filepath.Join(run, "net-eth0.conf"), "DEVICE='eth0'\nHOSTNAME='node9'\nDNSDOMAIN=''\n", 0o644)
	tests := []struct {
		cfg  cmdline.Config
		run  string
		want string
	}{
		{cmdline.Config{Hostname: "h1", Node: "n1"}, run, "h1"},
		{cmdline.Config{Node: "n1"}, run, "node9"},
		{cmdline.Config{Node: "n1"}, t.TempDir(), "n1"},
	}
	for _, tc := range tests {
		if got := personalityHost(&tc.cfg, tc.run); got != tc.want {
			t.Errorf("personalityHost(%+v) = %q, want %q", tc.cfg, got, tc.want)
		}
	}
}
