package dhcp

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/onesis/git-onesis/internal/testkit"
)

// The tests in this file boot QEMU's own iPXE ROM (TCG, no disk) on a tap
// in a namespace against the DHCP server (and boot/tftp for the files):
// real firmware must accept our broadcast OFFER/ACK and fetch what we tell
// it to. Each needs root, qemu-system-x86 and ipxe-qemu, and takes about
// 20-40 s under TCG.

func needQEMU(t *testing.T) string {
	t.Helper()
	needRoot(t)
	qemu := testkit.NeedTool(t, "qemu-system-x86_64", "qemu-system-x86")
	testkit.NeedFile(t, "/usr/lib/ipxe/qemu/efi-virtio.rom", "ipxe-qemu")
	return qemu
}

// tapNS creates a namespace with tap0 = 10.77.7.1/24.
func tapNS(t *testing.T, suffix string) string {
	t.Helper()
	ns := fmt.Sprintf("onesis-dhcp-%d-%s", os.Getpid(), suffix)
	mustRun(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	mustRun(t, "ip", "-n", ns, "link", "set", "lo", "up")
	mustRun(t, "ip", "-n", ns, "tuntap", "add", "dev", "tap0", "mode", "tap")
	mustRun(t, "ip", "-n", ns, "addr", "add", "10.77.7.1/24", "dev", "tap0")
	mustRun(t, "ip", "-n", ns, "link", "set", "tap0", "up")
	return ns
}

// bootQEMU network-boots a VM with nsKnownMAC and returns the first serial
// line containing marker (killing QEMU then), or fails after 150 s.

func bootQEMU(t *testing.T, qemu, ns, marker string) string {
	t.Helper()
	return bootQEMUWith(t, qemu, ns, marker, 150*time.Second, "virtio-net-pci,netdev=n0,mac="+nsKnownMAC, "-boot", "n")
}

// bootOVMF is bootQEMU with OVMF's own network stack: UEFI firmware, no
// option ROM on the NIC, and only the boot protocols fw_cfg leaves on.
func bootOVMF(t *testing.T, qemu, ns, marker string, fwcfg ...string) string {
	t.Helper()
	const ovmf = "/usr/share/ovmf/OVMF.fd"
	testkit.NeedFile(t, ovmf, "ovmf")
	args := []string{"-bios", ovmf, "-m", "384", "-device", "virtio-rng-pci"}
	for _, f := range fwcfg {
		args = append(args, "-fw_cfg", "name=opt/org.tianocore/"+f+",string=n")
	}
	return bootQEMUWith(t, qemu, ns, marker, 300*time.Second, "virtio-net-pci,netdev=n0,romfile=,bootindex=1,mac="+nsKnownMAC, args...)
}

// bootQEMUWith starts QEMU on tap0 of ns with the NIC device nic and
// extra arguments, and returns the first serial line containing marker.
func bootQEMUWith(t *testing.T, qemu, ns, marker string, timeout time.Duration, nic string, extra ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	args := append([]string{"netns", "exec", ns, qemu,
		"-machine", "accel=tcg", "-nographic", "-m", "256", "-no-reboot", "-nodefaults", "-serial", "stdio",
		"-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no",
		"-device", nic}, extra...)
	line, serial, ok := testkit.SerialUntil(t, exec.CommandContext(ctx, "ip", args...), marker)
	if !ok {
		t.Fatalf("%q never appeared on the serial console (timeout or QEMU exit); serial:\n%s", marker, serial)
	}
	return line
}

// TestIPXEFirmware: QEMU's iPXE ROM says user class "iPXE", so it gets the
// boot URL. The URL is a tftp:// one served by boot/tftp (no HTTP server
// needed); the script prints a marker with what iPXE got from DHCP.
func TestIPXEFirmware(t *testing.T) {
	qemu := needQEMU(t)
	ns := tapNS(t, "q")
	cfg := helperConfig{
		Mode: "server", Iface: "tap0", ServerIP: "10.77.7.1",
		HTTPBootURL: "tftp://10.77.7.1/boot/${mac:hexhyp}.ipxe",
		Leases: map[string]helperLease{
			nsKnownMAC: {IP: "10.77.7.50", Mask: "255.255.255.0", Router: "10.77.7.1", Hostname: "node01"},
		},
		TFTPContent: map[string]string{
			"boot/52-54-00-12-34-56.ipxe": "#!ipxe\necho ONESIS-NET-OK ip=${net0/ip} host=${hostname} next=${next-server}\nsleep 600\n",
		},
	}
	h := startHelper(t, ns, cfg)
	got := bootQEMU(t, qemu, ns, "ONESIS-NET-OK ")
	want := "ONESIS-NET-OK ip=10.77.7.50 host=node01 next=10.77.7.1"
	if got != want {
		t.Errorf("iPXE printed %q, want %q", got, want)
	}
	h.waitEvent(nsKnownMAC, func(e Event) bool { return e.Reply == "ACK" }, 10*time.Second)
	var offer, ack bool
	for _, e := range h.eventsFor(nsKnownMAC) {
		if e.Firmware != "ipxe" {
			t.Errorf("QEMU's iPXE classified as %q: %+v", e.Firmware, e)
		}
		offer = offer || e.Reply == "OFFER"
		ack = ack || e.Reply == "ACK" && e.BootFile == cfg.HTTPBootURL
	}
	if !offer || !ack {
		t.Errorf("server events %+v: want an OFFER and an ACK with the boot URL", h.eventsFor(nsKnownMAC))
	}
}

// TestPXELinuxFirmware: the real PXELINUX (Debian's pxelinux.0 and
// ldlinux.c32) is fetched over boot/tftp, looks for its config through
// several names (refused with "file not found" until ours), and runs the
// generated pxelinux.cfg/01-<mac>. The iPXE ROM is pointed at pxelinux.0
// through the BootFiles override, standing in for a BIOS PXE ROM.
func TestPXELinuxFirmware(t *testing.T) {
	qemu := needQEMU(t)
	testkit.NeedFile(t, "/usr/lib/PXELINUX/pxelinux.0", "pxelinux")
	testkit.NeedFile(t, "/usr/lib/syslinux/modules/bios/ldlinux.c32", "syslinux-common")
	ns := tapNS(t, "p")
	cfg := helperConfig{
		Mode: "server", Iface: "tap0", ServerIP: "10.77.7.1",
		IPXEBootFile: "pxelinux.0", TFTPPXELinux: true,
		Leases: map[string]helperLease{
			nsKnownMAC: {IP: "10.77.7.50", Mask: "255.255.255.0", Router: "10.77.7.1", Hostname: "node01"},
		},
		TFTPContent: map[string]string{
			"pxelinux.cfg/01-52-54-00-12-34-56": "SERIAL 0 115200\nSAY ONESIS-PXELINUX-OK\nPROMPT 0\nTIMEOUT 600\nDEFAULT x\nLABEL x\n  KERNEL nonexistent\n",
		},
	}
	h := startHelper(t, ns, cfg)
	bootQEMU(t, qemu, ns, "ONESIS-PXELINUX-OK")
	// The last transfer's event may still be on its way from the helper.
	var sent []string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		sent = sent[:0]
		for _, e := range h.tftpEvents() {
			if e.Status == "sent" {
				sent = append(sent, e.Name)
			}
		}
		if len(sent) >= 3 {
			break
		}
	}
	want := "pxelinux.0 ldlinux.c32 pxelinux.cfg/01-52-54-00-12-34-56"
	if strings.Join(sent, " ") != want {
		t.Errorf("TFTP sent %v, want %s", sent, want)
	}
}
