package dhcp

import (
	"encoding/hex"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// The requests in testdata/captures were taken with tcpdump on the demo's
// bridge while OVMF (Debian's ovmf 2022.11, QEMU TCG, virtio-net without
// an option ROM) booted by its own UEFI PXE and HTTP boot, the iPXE it
// loaded (Debian's snponly.efi) asked again, and the kernel's onesis-init
// asked last; ipxe-rom-bios-* is QEMU's iPXE option ROM (ipxe-qemu) under
// SeaBIOS. One hex line per UDP payload, from MAC 52:54:00:0e:00:01.

var captureMAC = net.HardwareAddr{0x52, 0x54, 0x00, 0x0e, 0x00, 0x01}

func readCapture(t testing.TB, name string) *dhcpv4.DHCPv4 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "captures", name+".hex"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	m, err := dhcpv4.FromBytes(raw)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return m
}

func captureServer(t testing.TB, mod func(*Config)) *Server {
	return newTestServer(t, func(c *Config) {
		c.Lookup = func(mac net.HardwareAddr) (Lease, bool) {
			if mac.String() == captureMAC.String() {
				return Lease{IP: net.IPv4(10, 77, 0, 11), Mask: net.CIDRMask(24, 32), Hostname: "n1"}, true
			}
			return testLookup(mac)
		}
		withLoaders(c)
		if mod != nil {
			mod(c)
		}
	})
}

// TestCaptures: each real request is classified as what sent it and gets
// the reply its firmware accepts (see reply.go for why UEFI PXE gets no
// option 60 and HTTP boot gets "HTTPClient").
func TestCaptures(t *testing.T) {
	for _, tc := range []struct {
		file     string
		firmware Firmware
		reply    dhcpv4.MessageType
		bootFile string
		opt60    string
		opt66    bool
	}{
		{"ovmf-pxe-discover", FirmwareEFI64, dhcpv4.MessageTypeOffer, "snponly.efi", "", true},
		{"ovmf-pxe-request", FirmwareEFI64, dhcpv4.MessageTypeAck, "snponly.efi", "", true},
		{"ovmf-http-discover", FirmwareEFI64HTTP, dhcpv4.MessageTypeOffer, testLoaders + "snponly.efi", "HTTPClient", false},
		{"ovmf-http-request", FirmwareEFI64HTTP, dhcpv4.MessageTypeAck, testLoaders + "snponly.efi", "HTTPClient", false},
		{"ipxe-efi-snponly-discover", FirmwareIPXE, dhcpv4.MessageTypeOffer, testBootURL, "PXEClient", false},
		{"ipxe-efi-snponly-request", FirmwareIPXE, dhcpv4.MessageTypeAck, testBootURL, "PXEClient", false},
		{"ipxe-rom-bios-discover", FirmwareIPXE, dhcpv4.MessageTypeOffer, testBootURL, "PXEClient", false},
		{"ipxe-rom-bios-request", FirmwareIPXE, dhcpv4.MessageTypeAck, testBootURL, "PXEClient", false},
		{"onesis-init-discover", FirmwareNone, dhcpv4.MessageTypeOffer, "", "", false},
		{"onesis-init-request", FirmwareNone, dhcpv4.MessageTypeAck, "", "", false},
	} {
		t.Run(tc.file, func(t *testing.T) {
			req := readCapture(t, tc.file)
			if req.ClientHWAddr.String() != captureMAC.String() {
				t.Fatalf("capture is from %s", req.ClientHWAddr)
			}
			if fw := firmwareOf(req); fw != tc.firmware {
				t.Errorf("firmware %s, want %s (vendor class %q, arch %v, user class %q)", fw, tc.firmware,
					req.ClassIdentifier(), archs(req), req.Options.Get(dhcpv4.OptionUserClassInformation))
			}
			s := captureServer(t, nil)
			resp := s.Reply(req)
			if resp == nil {
				t.Fatalf("no reply: %s", s.decide(req).ev.Reason)
			}
			resp, err := dhcpv4.FromBytes(resp.ToBytes())
			if err != nil {
				t.Fatal(err)
			}
			if resp.MessageType() != tc.reply || resp.BootFileNameOption() != tc.bootFile || resp.ClassIdentifier() != tc.opt60 ||
				(resp.TFTPServerName() != "") != tc.opt66 {
				t.Errorf("reply %s file %q option 60 %q option 66 %q; want %s %q %q tftp=%v", resp.MessageType(), resp.BootFileNameOption(),
					resp.ClassIdentifier(), resp.TFTPServerName(), tc.reply, tc.bootFile, tc.opt60, tc.opt66)
			}
			if tc.bootFile != "" && len(tc.bootFile) <= 127 && resp.BootFileName != tc.bootFile {
				t.Errorf("file field %q", resp.BootFileName)
			}
			if !resp.ServerIPAddr.Equal(testServer) {
				t.Errorf("siaddr %v", resp.ServerIPAddr)
			}
			if typ, ok := edk2OfferType(resp); tc.firmware == FirmwareEFI64 && (typ != "dhcp-only" || !ok) {
				t.Errorf("EDK2 would take this offer for %s (boot file usable: %v), not a DHCP-only offer with a boot file", typ, ok)
			}
		})
	}
}

// edk2OfferType restates, for the test only, how EDK2's
// PxeBcParseDhcp4Packet (NetworkPkg/UefiPxeBcDxe/PxeBcDhcp4.c) sorts an
// offer: "PXEClient" in option 60 makes it a PXE offer; with no PXE
// discovery sub-options in option 43 it is a BINL offer, for which
// PxeBcHandleDhcp4Offer asks siaddr:4011 before it boots anything. A
// DHCP-only offer (no "PXEClient") with a boot file is booted directly.
func edk2OfferType(resp *dhcpv4.DHCPv4) (string, bool) {
	pxe := strings.HasPrefix(resp.ClassIdentifier(), pxeClient)
	switch {
	case resp.MessageType() == dhcpv4.MessageTypeNone:
		return "bootp", resp.BootFileName != ""
	case pxe && edk2Discovery(resp):
		return "pxe10", true
	case pxe:
		return "binl", true
	default:
		return "dhcp-only", resp.BootFileNameOption() != "" || resp.BootFileName != ""
	}
}

// edk2Discovery reports whether option 43 carries any of the PXE
// discovery tags EDK2 looks for (6, 7, 8, 9, 10).
func edk2Discovery(resp *dhcpv4.DHCPv4) bool {
	v := resp.Options.Get(dhcpv4.OptionVendorSpecificInformation)
	for i := 0; i+1 < len(v) && v[i] != 255; {
		if v[i] == 0 {
			i++
			continue
		}
		if v[i] >= 6 && v[i] <= 10 {
			return true
		}
		i += 2 + int(v[i+1])
	}
	return false
}

// TestEDK2OfferType: the restated classifier tells the reply that broke
// UEFI PXE (option 60 "PXEClient" echoed, no option 43) from ours.
func TestEDK2OfferType(t *testing.T) {
	s := captureServer(t, nil)
	resp := s.Reply(readCapture(t, "ovmf-pxe-discover"))
	if typ, ok := edk2OfferType(resp); typ != "dhcp-only" || !ok {
		t.Fatalf("our offer: %s %v", typ, ok)
	}
	resp.UpdateOption(dhcpv4.OptClassIdentifier("PXEClient"))
	if typ, _ := edk2OfferType(resp); typ != "binl" {
		t.Errorf("with PXEClient: %s, want binl", typ)
	}
	resp.UpdateOption(dhcpv4.OptGeneric(dhcpv4.OptionVendorSpecificInformation, []byte{6, 1, 8, 255}))
	if typ, _ := edk2OfferType(resp); typ != "pxe10" {
		t.Errorf("with PXEClient and discovery control: %s, want pxe10", typ)
	}
}
