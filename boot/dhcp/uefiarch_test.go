package dhcp

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/onesis/git-onesis/internal/testkit"
)

// uefiArch is EDK2 firmware for another architecture than x64, as Debian
// packages it, and how QEMU runs it.
type uefiArch struct {
	name          string // the firmware as serve names it (Firmware)
	qemu, qemuPkg string
	fwFile, fwPkg string
	bootFile      string // what serve offers it
	efi32BootFile string // helperConfig.EFI32BootFile
	args          func(t *testing.T, fw string) []string
}

var uefiArches = []uefiArch{
	{
		// Debian's AAVMF on QEMU's virt machine.
		name: "efi-arm64", qemu: "qemu-system-aarch64", qemuPkg: "qemu-system-arm",
		fwFile: "/usr/share/qemu-efi-aarch64/QEMU_EFI.fd", fwPkg: "qemu-efi-aarch64",
		bootFile: ARM64BootFile,
		args: func(t *testing.T, fw string) []string {
			return []string{"-machine", "virt", "-cpu", "cortex-a57", "-m", "512", "-bios", fw}
		},
	},
	{
		// Debian's OVMF for IA32, built with Secure Boot (so SMM and a
		// q35 machine); its variables hold no keys, so nothing is
		// enforced. serve offers IA32 nothing unless told a file.
		name: "efi-ia32", qemu: "qemu-system-i386", qemuPkg: "qemu-system-x86",
		fwFile: "/usr/share/OVMF/OVMF32_CODE_4M.secboot.fd", fwPkg: "ovmf-ia32",
		bootFile: "ia32/boot.efi", efi32BootFile: "ia32/boot.efi",
		args: func(t *testing.T, fw string) []string {
			vars := filepath.Join(t.TempDir(), "vars.fd")
			b, err := os.ReadFile("/usr/share/OVMF/OVMF32_VARS_4M.fd")
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(vars, b, 0o644); err != nil {
				t.Fatal(err)
			}
			return []string{"-machine", "q35,smm=on", "-m", "512",
				"-global", "driver=cfi.pflash01,property=secure,value=on",
				"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + fw,
				"-drive", "if=pflash,format=raw,unit=1,file=" + vars}
		},
	},
}

// TestUEFIArchPXEQEMU boots EDK2's firmware for arm64 (AAVMF) and IA32
// (OVMF32), each its own UEFI PXE on a virtio NIC with no option ROM,
// against this server: the firmware says its arch (11, 6), is offered and
// acked its boot file, and downloads it whole over TFTP, which it reports
// on its console. Debian ships no iPXE for either (nor any EFI program of
// those architectures an amd64 machine can install), so the file is a
// stand-in: the firmware's refusal to start it comes after the download
// this test is about. Needs root, qemu-system-arm, qemu-efi-aarch64,
// qemu-system-x86 and ovmf-ia32; about 10-60 s each under TCG.
func TestUEFIArchPXEQEMU(t *testing.T) {
	needRoot(t)
	for _, a := range uefiArches {
		t.Run(a.name, func(t *testing.T) { uefiArchPXE(t, a) })
	}
}

func uefiArchPXE(t *testing.T, a uefiArch) {
	qemu := testkit.NeedTool(t, a.qemu, a.qemuPkg)
	testkit.NeedFile(t, a.fwFile, a.fwPkg)
	ns := tapNS(t, strings.TrimPrefix(a.name, "efi-"))
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
		EFI32BootFile: a.efi32BootFile,
		TFTPContent:   map[string]string{a.bootFile: string(nbp)},
	}
	h := startHelper(t, ns, cfg)
	const marker = "NBP file downloaded successfully"
	got := bootQEMUWith(t, qemu, ns, marker, 300*time.Second,
		"virtio-net-pci,netdev=n0,romfile=,bootindex=1,mac="+nsKnownMAC, a.args(t, a.fwFile)...)
	if !strings.Contains(got, marker) {
		t.Fatalf("console: %q", got)
	}
	fws, replies := h.answers(nsKnownMAC)
	t.Logf("firmware %q, answers %q", fws, replies)
	if !slices.Contains(fws, a.name) || !slices.Contains(replies, "OFFER "+a.bootFile) {
		t.Errorf("the firmware was not answered as %s with %s: firmware %q, answers %q", a.name, a.bootFile, fws, replies)
	}
	sent := false
	for _, e := range h.tftpEvents() {
		if e.Name == a.bootFile && e.Status == "sent" && e.Bytes == int64(len(nbp)) {
			sent = true
		}
	}
	if !sent {
		b, _ := json.Marshal(h.tftpEvents())
		t.Errorf("no complete TFTP transfer of %s (%d bytes): %s", a.bootFile, len(nbp), b)
	}
}
