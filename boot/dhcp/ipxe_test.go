package dhcp

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestIPXEFirmware boots QEMU's own iPXE ROM (TCG, no disk) on a tap in a
// namespace against the DHCP server: the real firmware must accept our
// broadcast OFFER/ACK (with option 175 no-pxedhcp), be classified as
// iPXE, and fetch the boot URL we gave it. The URL is a tftp:// one served
// by boot/tftp so no HTTP server is needed; the script echoes a marker with
// the address and host name iPXE got. Needs root, qemu-system-x86 and
// ipxe-qemu; about 20-40 s under TCG.
func TestIPXEFirmware(t *testing.T) {
	needRoot(t)
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Skip("needs qemu-system-x86_64 (Debian: qemu-system-x86, ipxe-qemu)")
	}
	if _, err := os.Stat("/usr/lib/ipxe/qemu/efi-virtio.rom"); err != nil {
		t.Skip("needs QEMU's iPXE ROMs (Debian: ipxe-qemu)")
	}
	ns := fmt.Sprintf("onesis-dhcp-%d-q", os.Getpid())
	mustRun(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	mustRun(t, "ip", "-n", ns, "link", "set", "lo", "up")
	mustRun(t, "ip", "-n", ns, "tuntap", "add", "dev", "tap0", "mode", "tap")
	mustRun(t, "ip", "-n", ns, "addr", "add", "10.77.7.1/24", "dev", "tap0")
	mustRun(t, "ip", "-n", ns, "link", "set", "tap0", "up")

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

	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, qemu,
		"-machine", "accel=tcg", "-nographic", "-m", "256", "-no-reboot", "-nodefaults", "-serial", "stdio",
		"-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no",
		"-device", "virtio-net-pci,netdev=n0,mac="+nsKnownMAC, "-boot", "n")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var serial strings.Builder
	found := ""
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		serial.WriteString(line + "\n")
		if i := strings.Index(line, "ONESIS-NET-OK "); i >= 0 && !strings.Contains(line, "echo") {
			found = strings.TrimSpace(line[i:])
			break
		}
	}
	cmd.Process.Kill()
	if found == "" {
		t.Fatalf("iPXE never ran our script (timeout or QEMU exit); serial:\n%s", serial.String())
	}
	want := "ONESIS-NET-OK ip=10.77.7.50 host=node01 next=10.77.7.1"
	if found != want {
		t.Errorf("iPXE printed %q, want %q", found, want)
	}
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
