package dhcp

import (
	"strings"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

// FuzzDHCPReply feeds arbitrary bytes through the same path as the socket
// handler: dhcpv4.FromBytes, then Reply. Nothing may panic; a packet that
// does not parse gets no reply; a reply is only ever sent to a known MAC
// and always parses back; UEFI PXE never gets "PXEClient" back (EDK2 would
// ask port 4011), UEFI HTTP boot always gets "HTTPClient" and a URL.
func FuzzDHCPReply(f *testing.F) {
	s := captureServer(f, nil)
	for _, m := range []*dhcpv4.DHCPv4{
		pkt(f, knownMAC, dhcpv4.MessageTypeDiscover, arch(iana.INTEL_X86PC), vc("PXEClient:Arch:00000:UNDI:002001"), guid),
		pkt(f, knownMAC, dhcpv4.MessageTypeRequest, ipxeUC, reqIP(knownLease.IP), sid(testServer)),
		pkt(f, relayedMAC, dhcpv4.MessageTypeDiscover, dhcpv4.WithGatewayIP(relayedLse.Router)),
		pkt(f, unknownMAC, dhcpv4.MessageTypeDiscover),
	} {
		f.Add(m.ToBytes())
	}
	for _, c := range []string{"ovmf-pxe-discover", "ovmf-pxe-request", "ovmf-http-discover", "ovmf-http-request",
		"ipxe-efi-snponly-discover", "ipxe-efi-snponly-request", "ipxe-rom-bios-discover", "ipxe-rom-bios-request", "onesis-init-discover", "onesis-init-request"} {
		f.Add(readCapture(f, c).ToBytes())
	}
	f.Add([]byte{})
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := dhcpv4.FromBytes(b)
		if err != nil {
			return // the server drops what does not parse, before Reply
		}
		resp := s.Reply(req)
		if resp == nil {
			return
		}
		if _, ok := s.cfg.Lookup(req.ClientHWAddr); !ok {
			t.Fatalf("answered an unknown MAC %s", req.ClientHWAddr)
		}
		if resp.MessageType() != dhcpv4.MessageTypeNak {
			switch fw := firmwareOf(req); {
			case fw.UEFIPXE() && strings.HasPrefix(resp.ClassIdentifier(), pxeClient):
				t.Fatalf("UEFI PXE (%s) got option 60 %q", fw, resp.ClassIdentifier())
			case fw.HTTPBoot() && (resp.ClassIdentifier() != httpClient || !strings.HasPrefix(resp.BootFileNameOption(), "http://")):
				t.Fatalf("UEFI HTTP boot (%s) got option 60 %q, file %q", fw, resp.ClassIdentifier(), resp.BootFileNameOption())
			}
		}
		if req.OpCode != dhcpv4.OpcodeBootRequest {
			t.Fatalf("answered a non-request")
		}
		if _, err := dhcpv4.FromBytes(resp.ToBytes()); err != nil {
			t.Fatalf("reply does not parse: %v", err)
		}
	})
}
