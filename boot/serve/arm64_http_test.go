package serve

import (
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

	"github.com/onesis/git-onesis/boot/dhcp"
	"github.com/onesis/git-onesis/internal/testkit"
)

// TestServeARM64HTTPBootQEMU boots EDK2's arm64 firmware (Debian's AAVMF
// on QEMU's virt machine) by its own UEFI HTTP boot against the real
// serve, on a tap in a network namespace the test creates. PXE is turned
// off through fw_cfg, as a site would in firmware setup. serve's DHCP
// answers the firmware as efi-arm64-http with the URL of
// arm64-efi/snponly.efi in its --ipxe-dir, and serve's HTTP server sends
// that file, which the firmware fetches with a HEAD and a GET and then
// refuses to start: it is a stand-in, as Debian ships no arm64 iPXE. The
// node's firmware is recorded. Needs root, qemu-system-arm,
// qemu-efi-aarch64 and ipxe; about 75 s under TCG.
func TestServeARM64HTTPBootQEMU(t *testing.T) {
	testkit.NeedRoot(t, "creates a network namespace and a tap, binds ports 67, 69 and 111")
	qemu := testkit.NeedTool(t, "qemu-system-aarch64", "qemu-system-arm")
	const aavmf = "/usr/share/qemu-efi-aarch64/QEMU_EFI.fd"
	testkit.NeedFile(t, aavmf, "qemu-efi-aarch64")
	testkit.NeedFile(t, "/usr/lib/ipxe/snponly.efi", "ipxe")
	testkit.NeedTool(t, "curl", "curl")

	const mac = "52:54:00:a6:40:01"
	dir, r := imageRepo(t)
	addNodes(t, r, "network 10.77.0.0/24 router=10.77.0.1\nnode n1 mac="+mac+" ip=10.77.0.11\n")
	// serve's iPXE directory: Debian's binaries, and a stand-in where
	// Fedora's ipxe-bootimgs-aarch64 puts the arm64 one.
	ipxe := t.TempDir()
	for _, f := range []string{dhcp.BIOSBootFile, "ipxe.efi", dhcp.EFI64BootFile} {
		if b, err := os.ReadFile(filepath.Join("/usr/lib/ipxe", f)); err == nil {
			os.WriteFile(filepath.Join(ipxe, f), b, 0o644)
		}
	}
	nbp := bytes.Repeat([]byte("not an EFI program; "), 300<<10/20)
	os.MkdirAll(filepath.Join(ipxe, filepath.Dir(dhcp.ARM64BootFile)), 0o755)
	if err := os.WriteFile(filepath.Join(ipxe, dhcp.ARM64BootFile), nbp, 0o644); err != nil {
		t.Fatal(err)
	}

	ns := fmt.Sprintf("onesis-serve-arm64-%d", os.Getpid())
	testkit.Run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	testkit.Run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	testkit.Run(t, "ip", "-n", ns, "tuntap", "add", "dev", "tap0", "mode", "tap")
	testkit.Run(t, "ip", "-n", ns, "addr", "add", "10.77.0.1/24", "dev", "tap0")
	testkit.Run(t, "ip", "-n", ns, "link", "set", "tap0", "up")

	init := filepath.Join(t.TempDir(), "onesis-init") // never run: no initramfs is fetched here
	os.WriteFile(init, []byte("#!/bin/sh\n"), 0o755)
	state := t.TempDir()
	_, logs, _ := serveInNS(t, ns, map[string]string{"repo": dir, "init": init, "state": state, "iface": "tap0", "ipxe": ipxe})
	ready := false
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline) && !ready; time.Sleep(100 * time.Millisecond) {
		ready = exec.Command("ip", "netns", "exec", ns, "curl", "-sf", "--max-time", "2", "-o", "/dev/null", "http://10.77.0.1:8080/status").Run() == nil
	}
	if !ready {
		t.Fatalf("serve's HTTP server never answered; serve logs:\n%s", logs.String())
	}

	// After the IPv4 attempt (fetched, then refused as no EFI program) the
	// firmware moves on to its IPv6 HTTP boot option.
	const marker = "Start HTTP Boot over IPv6"
	serial := bootARM64(t, qemu, ns, aavmf, mac, marker)
	url := "http://10.77.0.1:8080/ipxe/" + dhcp.ARM64BootFile
	if !strings.Contains(serial, "URI: "+url) {
		t.Errorf("the firmware's console does not show the URI %s:\n%s", url, serial)
	}
	// serve logs each request for a boot loader with its method and size.
	for _, method := range []string{"HEAD", "GET"} {
		want := fmt.Sprintf("node=n1 client=10.77.0.11 name=%s method=%s size=%d", dhcp.ARM64BootFile, method, len(nbp))
		if !strings.Contains(logs.String(), want) {
			t.Errorf("serve's log has no %q; serve logs:\n%s", want, logs.String())
		}
	}
	if fw, err := ReadNodeFirmware(state); err != nil || fw["n1"].Firmware != "efi-arm64-http" {
		t.Errorf("recorded firmware of n1: %v %v, want efi-arm64-http", fw, err)
	}
	if regexp.MustCompile(`firmware=efi-arm64(\s|$)`).MatchString(logs.String()) {
		t.Error("the firmware also asked as PXE (efi-arm64), which fw_cfg turned off")
	}
}

// bootARM64 runs AAVMF with PXE off on tap0 in ns until marker appears on
// its serial console (or fails after 300 s), and returns the console so
// far.
func bootARM64(t *testing.T, qemu, ns, fw, mac, marker string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, qemu,
		"-machine", "virt,accel=tcg", "-cpu", "cortex-a57", "-m", "512", "-bios", fw,
		"-nographic", "-nodefaults", "-no-reboot", "-serial", "stdio",
		"-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no",
		"-device", "virtio-net-pci,netdev=n0,romfile=,bootindex=1,mac="+mac,
		"-device", "virtio-rng-pci",
		"-fw_cfg", "name=opt/org.tianocore/IPv4PXESupport,string=n",
		"-fw_cfg", "name=opt/org.tianocore/IPv6PXESupport,string=n")
	_, serial, ok := testkit.SerialUntil(t, cmd, marker)
	if !ok {
		t.Fatalf("%q never appeared on the serial console (timeout or QEMU exit); serial:\n%s", marker, serial)
	}
	return serial
}
