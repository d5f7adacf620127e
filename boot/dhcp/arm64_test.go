package dhcp

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/onesis/git-onesis/internal/testkit"
)

// TestUEFIARM64PXEQEMU boots EDK2's arm64 firmware (Debian's AAVMF) on
// QEMU's virt machine, its own UEFI PXE on a virtio NIC with no option
// ROM, against this server: the firmware says arch 11, is offered and
// acked arm64-efi/snponly.efi, and downloads it over TFTP, which it
// reports on its console. Debian ships no arm64 iPXE
// (nor any arm64 EFI program an amd64 machine can install), so the file is
// a stand-in: the firmware's refusal to start it comes after the download
// this test is about. Needs root, qemu-system-arm and qemu-efi-aarch64;
// about 30-90 s under TCG.
func TestUEFIARM64PXEQEMU(t *testing.T) {
	needRoot(t)
	qemu := testkit.NeedTool(t, "qemu-system-aarch64", "qemu-system-arm")
	const fw = "/usr/share/qemu-efi-aarch64/QEMU_EFI.fd"
	testkit.NeedFile(t, fw, "qemu-efi-aarch64")
	ns := tapNS(t, "arm64")
	// 96 KiB and a bit, not a multiple of any block size: the last block is
	// short. (The helper gets its files in an environment variable, whose
	// one string the kernel caps at 128 KiB.)
	nbp := bytes.Repeat([]byte("not an EFI program; "), 96<<10/20)
	nbp = append(nbp, "end"...)
	cfg := helperConfig{
		Mode: "server", Iface: "tap0", ServerIP: "10.77.7.1",
		HTTPBootURL: "tftp://10.77.7.1/boot/${mac:hexhyp}.ipxe",
		Leases: map[string]helperLease{
			nsKnownMAC: {IP: "10.77.7.50", Mask: "255.255.255.0", Hostname: "node01"},
		},
		TFTPContent: map[string]string{ARM64BootFile: string(nbp)},
	}
	h := startHelper(t, ns, cfg)
	const marker = "NBP file downloaded successfully"
	got := bootQEMUWith(t, qemu, ns, marker, 300*time.Second,
		"virtio-net-pci,netdev=n0,romfile=,bootindex=1,mac="+nsKnownMAC,
		"-machine", "virt", "-cpu", "cortex-a57", "-m", "512", "-bios", fw)
	if !strings.Contains(got, marker) {
		t.Fatalf("console: %q", got)
	}
	var fws, replies []string
	for _, e := range h.eventsFor(nsKnownMAC) {
		if e.Answered {
			fws = append(fws, e.Firmware)
			replies = append(replies, e.Reply+" "+e.BootFile)
		}
	}
	t.Logf("firmware %q, answers %q", fws, replies)
	if !slices.Contains(fws, "efi-arm64") || !slices.Contains(replies, "OFFER "+ARM64BootFile) {
		t.Errorf("the firmware was not answered as UEFI arm64 PXE with %s: firmware %q, answers %q", ARM64BootFile, fws, replies)
	}
	sent := false
	for _, e := range h.tftpEvents() {
		if e.Name == ARM64BootFile && e.Status == "sent" && e.Bytes == int64(len(nbp)) {
			sent = true
		}
	}
	if !sent {
		b, _ := json.Marshal(h.tftpEvents())
		t.Errorf("no complete TFTP transfer of %s (%d bytes): %s", ARM64BootFile, len(nbp), b)
	}
}
