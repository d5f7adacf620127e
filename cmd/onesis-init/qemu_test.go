package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/onesis/git-onesis/boot/initramfs"
	"github.com/onesis/git-onesis/boot/initramfs/moddep"
	"github.com/onesis/git-onesis/boot/kernel"
	"github.com/onesis/git-onesis/internal/testkit"
)

// Addresses used only inside the test's own network namespace.
const (
	qemuServerIP = "10.77.41.1"
	qemuClientIP = "10.77.41.10"
	qemuMAC      = "52:54:00:4f:4e:01"
	qemuHost     = "node7"
	// bootTimeout bounds each QEMU boot (a boot takes 10-25 s under TCG).
	bootTimeout = 150 * time.Second
	qemuClass   = "cluster.compute"
)

func writeFile(t *testing.T, p string, data string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	os.Chmod(p, mode)
}

func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dst, string(b), mode)
}

// imageInit is the test image's /sbin/init: it prints what the node sees
// and powers off.
const imageInit = `#!/bin/sh
echo "IMAGE-INIT: running as pid $$"
mount -t proc proc /proc 2>/dev/null
echo "IMAGE-HOSTNAME: $(hostname)"
echo "IMAGE-FSTAB: $(cat /etc/fstab)"
echo "IMAGE-FSTAB-LINK: $(readlink /etc/fstab) -> $(readlink /ram/etc/fstab)"
if touch /written-by-node 2>/dev/null; then echo "IMAGE-ROOT: writable"; else echo "IMAGE-ROOT: read-only"; fi
echo "IMAGE-ROOTMOUNT: $(grep ' / ' /proc/mounts | grep -v rootfs)"
echo "IMAGE-RAMMOUNT: $(grep ' /ram ' /proc/mounts)"
echo "IMAGE-NETCONF: $(grep -E '^(HOSTNAME|IPV4ADDR)=' /run/net-eth0.conf | tr '\n' ' ')"
echo IMAGE-DONE
poweroff -f
`

// testImage builds a tiny image: busybox, the init above, a sysimage.conf
// mapping the test host to a class with a class variant of /etc/fstab,
// transformed (the /etc/fstab link into /ram, the /ram mount point) the
// way `git onesis sysimage` does, and the kernel's netboot modules.
func testImage(t *testing.T, kroot, kver string) string {
	img := filepath.Join(t.TempDir(), "image")
	bb := testkit.NeedTool(t, "busybox", "busybox-static")
	copyFile(t, bb, filepath.Join(img, "bin/busybox"), 0o755)
	for _, a := range []string{"sh", "cat", "echo", "mount", "hostname", "readlink", "grep", "touch", "poweroff", "ls", "sleep"} {
		if err := os.Symlink("busybox", filepath.Join(img, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(img, "sbin/init"), imageInit, 0o755)
	writeFile(t, filepath.Join(img, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n", 0o644)
	writeFile(t, filepath.Join(img, "etc/group"), "root:x:0:\n", 0o644)
	writeFile(t, filepath.Join(img, "etc/fstab"), "default fstab\n", 0o644)
	writeFile(t, filepath.Join(img, "etc/fstab."+qemuClass), "compute fstab\n", 0o644)
	writeFile(t, filepath.Join(img, "etc/sysimage.conf"),
		"NODECLASS_MAP "+qemuHost+" "+qemuClass+"\nRAMSIZE 16m\nLINKBACK /etc/fstab CLASS\nRAMDIR /tmp -m 1777\n", 0o644)
	for _, d := range []string{"proc", "sys", "dev", "run", "tmp"} {
		os.MkdirAll(filepath.Join(img, d), 0o755)
	}
	transform(t, img)
	if l, err := os.Readlink(filepath.Join(img, "etc/fstab")); err != nil || l != "/ram/etc/fstab" {
		t.Fatalf("after the transform /etc/fstab is %q %v", l, err)
	}

	// The image's own lib/modules: the kernel's netboot modules (the
	// initramfs takes them from here), with the kernel's modules.dep.
	kmods := filepath.Join(kroot, "lib/modules", kver)
	f, err := os.Open(filepath.Join(kmods, "modules.dep"))
	if err != nil {
		t.Fatal(err)
	}
	deps, err := moddep.Parse(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	mods, _, err := deps.Resolve(initramfs.DefaultModules)
	if err != nil {
		t.Fatal(err)
	}
	imods := filepath.Join(img, "lib/modules", kver)
	for _, m := range mods {
		copyFile(t, filepath.Join(kmods, m.File), filepath.Join(imods, m.File), 0o644)
	}
	for _, n := range []string{"modules.dep", "modules.builtin", "modules.order"} {
		copyFile(t, filepath.Join(kmods, n), filepath.Join(imods, n), 0o644)
	}
	copyFile(t, filepath.Join(kroot, "boot", "vmlinuz-"+kver), filepath.Join(img, "boot", "vmlinuz-"+kver), 0o644)
	return img
}

type lockedBuffer = testkit.Buffer

// TestQEMUBoot boots the Debian kernel with an initramfs from
// `initramfs.Build` (onesis-init as /init) in QEMU (TCG) inside a network
// namespace the test creates, against a test-only DHCP + NFS server, and
// checks on the serial console that the node got its hostname and class,
// that /etc/fstab resolves to the class variant through /ram, and that the
// image's own init runs as PID 1 from the read-only NFS root.
func TestQEMUBoot(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root: creates a network namespace and a tap device, runs QEMU on it")
	}
	for tool, pkg := range map[string]string{"qemu-system-x86_64": "qemu-system-x86", "ip": "iproute2",
		"depmod": "kmod", "busybox": "busybox-static"} {
		testkit.NeedTool(t, tool, pkg)
	}
	testkit.NeedFile(t, "/usr/lib/klibc/bin/nfsmount", "klibc-utils")
	start := time.Now()
	kroot, kver := testkit.DebianKernel(t)
	img := testImage(t, kroot, kver)
	work := t.TempDir()

	// onesis-init, static, as make build builds it.
	initBin := filepath.Join(work, "onesis-init")
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", initBin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building onesis-init: %v\n%s", err, out)
	}
	initData, err := os.ReadFile(initBin)
	if err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(img)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	k, err := kernel.Find(root.FS())
	kpath, fkver := "", ""
	if k != nil {
		kpath, fkver = k.Path, k.Version
	}
	if err != nil || fkver != kver {
		t.Fatalf("kernel.Find = %s %s %v, want version %s", kpath, fkver, err, kver)
	}
	var initrd bytes.Buffer
	man, err := initramfs.Build(&initrd, initramfs.Options{Image: root.FS(), Init: initData})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range man.Modules {
		names = append(names, m.Name)
	}
	if !strings.Contains(" "+strings.Join(names, " ")+" ", " virtio_net ") || !strings.Contains(strings.Join(names, " "), "nfsv3") {
		t.Fatalf("initramfs modules lack virtio_net or nfsv3: %v", names)
	}
	// Real modules declare firmware (bnx2 does); the image has none, which
	// the manifest notes.
	if !regexp.MustCompile(`firmware for bnx2: \d+ files not in the image's /lib/firmware .*: bnx2/\S+`).MatchString(strings.Join(man.Skipped, "\n")) {
		t.Errorf("the manifest does not note bnx2's missing firmware:\n%s", strings.Join(man.Skipped, "\n"))
	}
	initrdPath := filepath.Join(work, "initrd")
	if err := os.WriteFile(initrdPath, initrd.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("kernel %s, initramfs %d bytes with %d modules (%s)", kver, initrd.Len(), len(names), time.Since(start).Round(time.Millisecond))

	// The namespace, with a tap for QEMU.
	ns := fmt.Sprintf("onesis-init-test-%d", os.Getpid())
	testkit.Run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	for _, args := range [][]string{
		{"-n", ns, "link", "set", "lo", "up"},
		{"-n", ns, "tuntap", "add", "dev", "tap0", "mode", "tap"},
		{"-n", ns, "addr", "add", qemuServerIP + "/24", "dev", "tap0"},
		{"-n", ns, "link", "set", "tap0", "up"},
	} {
		testkit.Run(t, "ip", args...)
	}

	// The test-only servers, in the namespace (a re-exec of this binary).
	// The server lives as long as the test (killed by t.Cleanup, and in
	// any case after 10 minutes); each boot has its own time limit.
	srvCtx, srvCancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer srvCancel()
	srv := exec.CommandContext(srvCtx, "ip", "netns", "exec", ns, os.Args[0], "-test.run=^TestHelperServer$", "-test.v")
	sha := strings.Repeat("5a", 20)
	// DHCP's root path (option 17) names a port nobody serves: the first
	// boot's nfsroot= must win over it, the second boot (no nfsroot=) must
	// take it and fail.
	srv.Env = append(os.Environ(), envServer+"=1", envImage+"="+img, envIface+"=tap0",
		envServerIP+"="+qemuServerIP, envClientIP+"="+qemuClientIP, envHostname+"="+qemuHost,
		envRootPath+"="+qemuServerIP+":/c/"+sha+",port=2050,mountport=2050")
	srvOut, err := srv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var srvLog lockedBuffer
	srv.Stderr = &srvLog
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(srvOut)
		for sc.Scan() {
			srvLog.Write([]byte(sc.Text() + "\n"))
			if sc.Text() == "READY" {
				ready <- true
			}
		}
		ready <- false
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatalf("the test server exited:\n%s", srvLog.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the test server did not start in 30s:\n%s", srvLog.String())
	}

	mac := strings.ReplaceAll(qemuMAC, ":", "-")
	// The command line as git onesis serve renders it (contract 1).
	cmdline := func(nfsroot bool) string {
		args := []string{"initrd=initrd", "ip=dhcp"}
		if nfsroot {
			args = append(args, "BOOTIF=01-"+mac)
			args = append(args, "nfsroot="+qemuServerIP+":/c/"+sha+",port=2049,mountport=2049,vers=3,proto=tcp,nolock")
		}
		return strings.Join(append(args,
			"ro", "onesis.commit="+sha, "onesis.node="+qemuHost, "onesis.retries=2", "onesis.panic=halt",
			"console=ttyS0", "panic=-1"), " ")
	}
	boot := func(name, initrdPath, nicModel, appendArgs string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
		defer cancel()
		qemu := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "qemu-system-x86_64",
			"-machine", "accel=tcg", "-nographic", "-m", "512", "-no-reboot",
			"-kernel", filepath.Join(kroot, "boot", "vmlinuz-"+kver), "-initrd", initrdPath,
			"-append", appendArgs,
			"-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no",
			"-device", nicModel+",netdev=n0,romfile=,mac="+qemuMAC)
		var serial lockedBuffer
		qemu.Stdout, qemu.Stderr = &serial, &serial
		qemuStart := time.Now()
		err := qemu.Run()
		log := serial.String()
		os.WriteFile(filepath.Join(work, name+".log"), []byte(log), 0o644)
		if ctx.Err() != nil {
			t.Fatalf("%s: QEMU did not power off within %s; serial log:\n%s\nserver log:\n%s", name, bootTimeout, tail(log, 80), srvLog.String())
		}
		if err != nil {
			t.Errorf("%s: QEMU: %v", name, err)
		}
		var ours []string
		for _, l := range strings.Split(log, "\n") {
			if strings.HasPrefix(l, "onesis:") || strings.HasPrefix(l, "IMAGE-") {
				ours = append(ours, strings.TrimRight(l, "\r"))
			}
		}
		t.Logf("%s: QEMU ran %s; console lines of onesis-init and the image's init:\n%s", name, time.Since(qemuStart).Round(time.Second), strings.Join(ours, "\n"))
		return log
	}

	log := boot("boot", initrdPath, "virtio-net-pci", cmdline(true))
	for _, want := range []string{
		"onesis: boot NIC ",
		"onesis: DHCP: " + qemuClientIP + "/24 from " + qemuServerIP,
		"onesis: hostname=" + qemuHost + " class=" + qemuClass + " commit=" + sha,
		"IMAGE-INIT: running as pid 1",
		"IMAGE-HOSTNAME: " + qemuHost,
		"IMAGE-FSTAB: compute fstab",
		"IMAGE-FSTAB-LINK: /ram/etc/fstab -> /etc/fstab." + qemuClass,
		"IMAGE-ROOT: read-only",
		"IMAGE-NETCONF: IPV4ADDR='" + qemuClientIP + "' HOSTNAME='" + qemuHost + "'",
		"IMAGE-DONE",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("serial console lacks %q", want)
		}
	}
	if !regexp.MustCompile(`IMAGE-ROOTMOUNT: ` + qemuServerIP + `:/c/` + sha + ` / nfs ro,`).MatchString(log) {
		t.Errorf("the root is not the read-only NFS mount")
	}
	if !regexp.MustCompile(`IMAGE-RAMMOUNT: tmpfs /ram tmpfs rw,.*size=16384k`).MatchString(log) {
		t.Errorf("/ram is not the 16m tmpfs")
	}
	if _, err := os.Lstat(filepath.Join(img, "written-by-node")); err == nil {
		t.Errorf("the node wrote into the image")
	}
	if t.Failed() {
		t.Fatalf("serial log:\n%s\nserver log:\n%s", tail(log, 120), srvLog.String())
	}

	// An e1000 NIC and no BOOTIF: the NIC is chosen by carrier. No
	// nfsroot=, so DHCP's root path, which names a port nobody serves
	// (2050): the root path is used, then one clear line
	// saying what failed and what was tried, the bounded retries, then a
	// halt as onesis.panic=halt asks (QEMU exits).
	log = boot("no-server", initrdPath, "e1000", cmdline(false))
	for _, want := range []string{
		"onesis: boot NIC eth0 (" + qemuMAC + ", first interface with carrier)",
		"onesis: root from DHCP option 17: " + qemuServerIP + ":/c/" + sha + ",port=2050,mountport=2050",
		"onesis: mounting " + qemuServerIP + ":/c/" + sha + " failed (attempt 1 of 2): mount(2) nfs " + qemuServerIP + ":/c/" + sha + " with port=2050,",
		"onesis: FAILED: mounting " + qemuServerIP + ":/c/" + sha + " on /newroot: ",
		"gave up after 2 attempts",
		"onesis: boot failed; halting",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("no-server: serial console lacks %q", want)
		}
	}
	if strings.Contains(log, "IMAGE-INIT") {
		t.Error("no-server: the image's init ran without a root")
	}
	if t.Failed() {
		t.Fatalf("serial log:\n%s", tail(log, 60))
	}

	// The stock path: an initramfs-tools-like /init (klibc ipconfig and
	// run-init) runs the nfs-bottom script of docs/initramfs.md, which
	// runs onesis-init --personality-only on ${rootmnt}. The hostname
	// comes from the /run/net-eth0.conf ipconfig wrote.
	stockPath := filepath.Join(work, "initrd-stock")
	overlay := stockOverlay(t, initData, qemuServerIP+":/c/"+sha)
	if err := os.WriteFile(stockPath, append(append([]byte(nil), initrd.Bytes()...), overlay...), 0o644); err != nil {
		t.Fatal(err)
	}
	log = boot("stock", stockPath, "virtio-net-pci", "console=ttyS0 panic=-1 ro onesis.commit="+sha)
	for _, want := range []string{
		"STOCK: ipconfig IPV4ADDR=" + qemuClientIP + " HOSTNAME=" + qemuHost,
		"Begin: git-onesis: building /ram",
		"onesis: hostname=" + qemuHost + " class=" + qemuClass + " commit=" + sha,
		"STOCK: nfs-bottom done",
		"IMAGE-INIT: running as pid 1",
		"IMAGE-HOSTNAME: ",
		"IMAGE-FSTAB: compute fstab",
		"IMAGE-ROOT: read-only",
		"IMAGE-DONE",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("stock: serial console lacks %q", want)
		}
	}
	if !regexp.MustCompile(`IMAGE-RAMMOUNT: tmpfs /ram tmpfs rw,.*size=16384k`).MatchString(log) {
		t.Errorf("stock: /ram is not the 16m tmpfs after run-init")
	}
	if t.Failed() {
		t.Logf("serial log:\n%s", tail(log, 80))
	}
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
