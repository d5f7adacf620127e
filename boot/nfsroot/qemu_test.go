package nfsroot

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/onesis/git-onesis/internal/testkit"
)

// moduleClosure lists the module files (relative to lib/modules/<kver>)
// needed to load the named modules, dependencies first.
func moduleClosure(t *testing.T, modDir string, names ...string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(modDir, "modules.dep"))
	if err != nil {
		t.Fatal(err)
	}
	deps := map[string][]string{}
	byName := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		mod, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		deps[mod] = strings.Fields(rest)
		base := strings.TrimSuffix(filepath.Base(mod), filepath.Ext(mod))
		base = strings.TrimSuffix(base, ".ko")
		byName[strings.ReplaceAll(base, "-", "_")] = mod
	}
	var out []string
	seen := map[string]bool{}
	var add func(m string)
	add = func(m string) {
		if seen[m] {
			return
		}
		seen[m] = true
		for _, d := range deps[m] {
			add(d)
		}
		out = append(out, m)
	}
	for _, n := range names {
		m, ok := byName[n]
		if !ok {
			continue // built in
		}
		add(m)
	}
	return out
}

const guestInit = `#!/bin/busybox sh
/bin/busybox --install -s /bin
mkdir -p /proc /sys /dev /mnt /tmp
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /modules); do insmod /lib/modules/$m 2>/dev/null; done
ip link set lo up
ip link set eth0 up
ip addr add 10.77.0.2/24 dev eth0
mount -t nfs -o ro,vers=3,proto=tcp,port=2049,mountport=2049,nolock,noacl,timeo=20,addr=10.77.0.1 10.77.0.1:/c/@COMMIT@ /mnt
echo "MOUNT rc=$?"
for f in bin/suid bin/sgid tmp owned etc/shadow dev/null; do stat -c "STAT $f %a %u %g %F" /mnt/$f; done
echo "LINK $(readlink /mnt/hello.link)"
echo "ROOTREAD $(cat /mnt/secret600)"
su -s /bin/sh -c 'cat /mnt/secret600' u 2>&1 | sed 's/^/USERREAD /'
su -s /bin/sh -c 'cat /mnt/etc/passwd' u 2>&1 | sed 's/^/USERPASSWD /'
su -s /bin/sh -c 'ls /mnt/root' u 2>&1 | sed 's/^/USERLS /'
echo PHASE1
read -t 60 x < /dev/ttyS0 2>/dev/null || sleep 10
echo "AFTER $(cat /mnt/usr/bin/hello | tail -n 1) $(stat -c %a /mnt/bin/suid)"
if [ -x /usr/lib/klibc/bin/nfsmount ]; then
  mkdir -p /mnt2
  /usr/lib/klibc/bin/nfsmount -o ro,nolock,tcp 10.77.0.1:/c/@COMMIT@ /mnt2 2>&1 | sed 's/^/KLIBCOUT /'
  stat -c "KLIBC %a %u %g" /mnt2/bin/suid
fi
mkdir -p /w
mount -t nfs -o rw,vers=3,proto=tcp,port=2049,mountport=2049,nolock,noacl,timeo=20,addr=10.77.0.1 10.77.0.1:/w/node1 /w
echo "WMOUNT rc=$?"
echo "written on the node" > /w/etc/motd
chmod 4755 /w/usr/bin/hello
mkdir -m 1777 /w/scratch
ln -s /usr/bin/hello /w/newlink
rm /w/root/notes
stat -c "WSTAT %n %a" /w/usr/bin/hello /w/scratch
ls -a /w | tr '\n' ' ' | sed 's/^/WLS /'; echo
umount /w
echo "WUMOUNT rc=$?"
echo DONE
poweroff -f
`

// TestQEMUKernelClient mounts an export with the Linux NFS client of a real
// Debian kernel under QEMU (TCG), in a network namespace the test creates:
// modes, owners, raw symlinks, placeholder secrets, uid-1000 denial, and a
// server restart under the mounted node.
func TestQEMUKernelClient(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root: network namespace and tap device")
	}
	testkit.NeedTool(t, "qemu-system-x86_64", "qemu-system-x86")
	testkit.NeedTool(t, "ip", "iproute2")
	testkit.NeedTool(t, "cpio", "cpio")
	testkit.NeedFile(t, "/bin/busybox", "busybox-static")
	kroot, kver := testkit.DebianKernel(t)
	fx := newFixture(t)

	// The guest's initramfs: static busybox, the NFS and virtio modules, /init.
	ird := t.TempDir()
	modDir := filepath.Join(kroot, "lib/modules", kver)
	mods := moduleClosure(t, modDir, "virtio_pci", "virtio_net", "nfsv3")
	for _, m := range mods {
		dst := filepath.Join(ird, "lib/modules", m)
		os.MkdirAll(filepath.Dir(dst), 0o755)
		b, err := os.ReadFile(filepath.Join(modDir, m))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(dst, b, 0o644)
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"modules":     strings.Join(mods, "\n") + "\n",
		"etc/passwd":  "root:x:0:0:root:/:/bin/sh\nu:x:1000:1000:u:/:/bin/sh\n",
		"etc/group":   "root:x:0:\nu:x:1000:\n",
		"init":        strings.ReplaceAll(guestInit, "@COMMIT@", fx.commit),
		"bin/busybox": string(bb),
	}
	for p, c := range files {
		os.MkdirAll(filepath.Join(ird, filepath.Dir(p)), 0o755)
		if err := os.WriteFile(filepath.Join(ird, p), []byte(c), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// klibc nfsmount (Debian initramfs-tools' NFS client) finds the MOUNT
	// and NFS ports only through the portmapper.
	klibc := false
	if so, _ := filepath.Glob("/usr/lib/klibc-*.so"); len(so) == 1 {
		if nm, err := os.ReadFile("/usr/lib/klibc/bin/nfsmount"); err == nil {
			lib, _ := os.ReadFile(so[0])
			os.MkdirAll(filepath.Join(ird, "lib"), 0o755)
			os.MkdirAll(filepath.Join(ird, "usr/lib/klibc/bin"), 0o755)
			os.WriteFile(filepath.Join(ird, "lib", filepath.Base(so[0])), lib, 0o755)
			os.WriteFile(filepath.Join(ird, "usr/lib/klibc/bin/nfsmount"), nm, 0o755)
			klibc = true
		}
	}
	initrd := filepath.Join(t.TempDir(), "initrd.cpio")
	mk := exec.Command("sh", "-c", "find . | cpio -o -H newc --quiet > "+initrd)
	mk.Dir = ird
	if out, err := mk.CombinedOutput(); err != nil {
		t.Fatalf("cpio: %v: %s", err, out)
	}

	// The namespace, with a tap for the guest.
	ns := fmt.Sprintf("onesis-nfsq-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"tuntap", "add", "dev", "tap0", "mode", "tap"},
		{"addr", "add", "10.77.0.1/24", "dev", "tap0"},
		{"link", "set", "tap0", "up"},
	} {
		if out, err := exec.Command("ip", append([]string{"-n", ns}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	wt := filepath.Join(t.TempDir(), "wt")
	run(t, fx.repo, "git", "worktree", "add", "-q", wt, "-b", "update")
	env := []string{"ONESIS_NFS_WORK=" + wt, helperEnv + "=1", "ONESIS_NFS_COMMIT=" + fx.commit, "ONESIS_NFS_REPO=" + fx.repo,
		"ONESIS_NFS_STATE=" + t.TempDir(), "ONESIS_NFS_ADDR=10.77.0.1:2049", "ONESIS_NFS_CLIENT=10.77.0.2",
		"ONESIS_PORTMAP_ADDR=10.77.0.1:111"}
	h := startHelper(t, ns, env)

	ctx, cancel := context.WithTimeout(context.Background(), 240*time.Second)
	defer cancel()
	qemu := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "qemu-system-x86_64",
		"-machine", "accel=tcg", "-nographic", "-m", "384", "-no-reboot", "-nodefaults", "-serial", "stdio",
		"-kernel", filepath.Join(kroot, "boot", "vmlinuz-"+kver), "-initrd", initrd,
		"-append", "console=ttyS0 panic=-1 quiet",
		"-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no",
		"-device", "virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56")
	stdout, _ := qemu.StdoutPipe()
	stdin, _ := qemu.StdinPipe()
	qemu.Stderr = os.Stderr
	if err := qemu.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var serial bytes.Buffer
	lines := map[string][]string{}
	phase1 := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := strings.TrimRight(sc.Text(), "\r")
			mu.Lock()
			serial.WriteString(line + "\n")
			if k, _, ok := strings.Cut(line, " "); ok {
				lines[k] = append(lines[k], line)
			}
			mu.Unlock()
			if line == "PHASE1" {
				close(phase1)
			}
		}
	}()
	select {
	case <-phase1:
		h.stop() // restart the server under the mounted node
		startHelper(t, ns, env)
		stdin.Write([]byte("go\n"))
	case <-done:
	case <-ctx.Done():
	}
	select {
	case <-done:
	case <-ctx.Done():
	}
	qemu.Wait()
	mu.Lock()
	defer mu.Unlock()
	if t.Failed() || !strings.Contains(serial.String(), "DONE") || os.Getenv("ONESIS_TEST_SERIAL") != "" {
		t.Logf("serial console:\n%s", serial.String())
	}
	want := []string{
		"MOUNT rc=0",
		"STAT bin/suid 4755 0 0 regular file",
		"STAT bin/sgid 2755 0 0 regular file",
		"STAT tmp 1777 0 0 directory",
		"STAT owned 640 1234 5678 regular file",
		"STAT etc/shadow 600 0 0 regular empty file",
		"STAT dev/null 666 0 0 character special file",
		"LINK /usr/bin/hello",
		"ROOTREAD root-only-secret",
		"USERPASSWD root:x:0:0:root:/root:/bin/sh",
		"AFTER echo hello 4755",
		"DONE",
	}
	text := serial.String()
	for _, w := range want {
		if !strings.Contains(text, w+"\n") {
			t.Errorf("serial console lacks %q", w)
		}
	}
	if klibc && !strings.Contains(text, "KLIBC 4755 0 0\n") {
		t.Errorf("klibc nfsmount through our portmapper did not mount: %q", lines["KLIBCOUT"])
	} else if !klibc {
		t.Log("klibc-utils not installed: the klibc nfsmount + portmap check did not run")
	}
	// The maintenance export: what the node did is in the worktree.
	for _, w := range []string{"WMOUNT rc=0", "WSTAT /w/usr/bin/hello 4755", "WSTAT /w/scratch 1777", "WUMOUNT rc=0"} {
		if !strings.Contains(text, w+"\n") {
			t.Errorf("serial console lacks %q", w)
		}
	}
	if ls := strings.Join(lines["WLS"], " "); strings.Contains(ls, ".git") || !strings.Contains(ls, "etc") {
		t.Errorf("maintenance listing %q: want etc and no .git", ls)
	}
	if b, err := os.ReadFile(filepath.Join(wt, "etc/motd")); err != nil || string(b) != "written on the node\n" {
		t.Errorf("etc/motd in the worktree: %q, %v", b, err)
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(filepath.Join(wt, "usr/bin/hello"), &st); err != nil || st.Mode&0o7777 != 0o4755 {
		t.Errorf("usr/bin/hello in the worktree: mode %#o, %v; want 04755", st.Mode&0o7777, err)
	}
	if err := syscall.Lstat(filepath.Join(wt, "scratch"), &st); err != nil || st.Mode&0o7777 != 0o1777 {
		t.Errorf("scratch in the worktree: mode %#o, %v; want 01777", st.Mode&0o7777, err)
	}
	if l, err := os.Readlink(filepath.Join(wt, "newlink")); err != nil || l != "/usr/bin/hello" {
		t.Errorf("newlink in the worktree: %q, %v", l, err)
	}
	if _, err := os.Lstat(filepath.Join(wt, "root/notes")); err == nil {
		t.Errorf("root/notes still in the worktree after rm on the node")
	}
	if u := strings.Join(lines["USERREAD"], "\n"); !strings.Contains(u, "Permission denied") || strings.Contains(u, "root-only-secret") {
		t.Errorf("uid 1000 reading secret600: %q; want Permission denied", u)
	}
	if u := strings.Join(lines["USERLS"], "\n"); !strings.Contains(u, "Permission denied") {
		t.Errorf("uid 1000 listing root/ (0700): %q; want Permission denied", u)
	}
}
