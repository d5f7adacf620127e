package dhcp

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

var (
	testServer  = net.IPv4(10, 77, 0, 1).To4()
	knownMAC    = net.HardwareAddr{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}
	unknownMAC  = net.HardwareAddr{0x52, 0x54, 0x00, 0xde, 0xad, 0x00}
	relayedMAC  = net.HardwareAddr{0x52, 0x54, 0x00, 0x00, 0x02, 0x01}
	knownLease  = Lease{IP: net.IPv4(10, 77, 0, 50), Mask: net.CIDRMask(24, 32), Router: net.IPv4(10, 77, 0, 254), DNS: []net.IP{net.IPv4(10, 77, 0, 53)}, Hostname: "node01", Domain: "cluster.test", LeaseTime: time.Hour}
	relayedLse  = Lease{IP: net.IPv4(10, 78, 5, 20), Mask: net.CIDRMask(24, 32), Router: net.IPv4(10, 78, 5, 1), Hostname: "far01"}
	testBootURL = "http://10.77.0.1:8080/boot/${mac:hexhyp}.ipxe"
	testLoaders = "http://10.77.0.1:8080/ipxe/"
)

// withLoaders turns UEFI HTTP boot on (the HTTP server serves iPXE).
func withLoaders(c *Config) { c.IPXEBaseURL = testLoaders }

func testLookup(mac net.HardwareAddr) (Lease, bool) {
	switch mac.String() {
	case knownMAC.String():
		return knownLease, true
	case relayedMAC.String():
		return relayedLse, true
	}
	return Lease{}, false
}

func newTestServer(t testing.TB, mod func(*Config)) *Server {
	t.Helper()
	cfg := Config{ServerIP: testServer, Lookup: testLookup, HTTPBootURL: testBootURL,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if mod != nil {
		mod(&cfg)
	}
	s, err := newServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func pkt(t testing.TB, mac net.HardwareAddr, mt dhcpv4.MessageType, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	m, err := dhcpv4.New(append([]dhcpv4.Modifier{
		dhcpv4.WithHwAddr(mac), dhcpv4.WithMessageType(mt),
	}, mods...)...)
	if err != nil {
		t.Fatal(err)
	}
	// Round-trip through the wire format, as the server sees it.
	m, err = dhcpv4.FromBytes(m.ToBytes())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

var (
	arch   = func(a iana.Arch) dhcpv4.Modifier { return dhcpv4.WithOption(dhcpv4.OptClientArch(a)) }
	vc     = func(s string) dhcpv4.Modifier { return dhcpv4.WithOption(dhcpv4.OptClassIdentifier(s)) }
	ipxeUC = dhcpv4.WithOption(dhcpv4.OptUserClass("iPXE"))
	reqIP  = func(ip net.IP) dhcpv4.Modifier { return dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(ip)) }
	sid    = func(ip net.IP) dhcpv4.Modifier { return dhcpv4.WithOption(dhcpv4.OptServerIdentifier(ip)) }
	guid   = dhcpv4.WithGeneric(dhcpv4.OptionClientMachineIdentifier, append([]byte{0}, bytes.Repeat([]byte{0xab}, 16)...))
)

func TestReply(t *testing.T) {
	pxeVC := vc("PXEClient:Arch:00000:UNDI:002001")
	tests := []struct {
		name     string
		cfg      func(*Config)
		req      *dhcpv4.DHCPv4
		wantType dhcpv4.MessageType // MessageTypeNone = no reply
		wantFile string
		opt66    bool   // TFTP server name expected
		opt60    string // option 60 in the reply
		ipxe     bool   // option 175 with no-pxedhcp expected
	}{
		{name: "plain DISCOVER (OS client) gets OFFER without boot file",
			req: pkt(t, knownMAC, dhcpv4.MessageTypeDiscover), wantType: dhcpv4.MessageTypeOffer},
		{name: "unknown MAC is ignored",
			req: pkt(t, unknownMAC, dhcpv4.MessageTypeDiscover, arch(iana.INTEL_X86PC), pxeVC)},
		{name: "unknown MAC by UEFI PXE is ignored",
			req: pkt(t, unknownMAC, dhcpv4.MessageTypeDiscover, arch(iana.EFI_X86_64), vc("PXEClient:Arch:00007:UNDI:003000"))},
		{name: "unknown MAC by UEFI HTTP boot is ignored",
			cfg: withLoaders,
			req: pkt(t, unknownMAC, dhcpv4.MessageTypeDiscover, arch(iana.EFI_X86_64_HTTP), vc("HTTPClient:Arch:00016:UNDI:003000"))},
		{name: "unknown MAC REQUEST is ignored",
			req: pkt(t, unknownMAC, dhcpv4.MessageTypeRequest, reqIP(knownLease.IP), sid(testServer))},
		{name: "BIOS PXE gets undionly.kpxe",
			req:      pkt(t, knownMAC, dhcpv4.MessageTypeDiscover, arch(iana.INTEL_X86PC), pxeVC, guid),
			wantType: dhcpv4.MessageTypeOffer, wantFile: "undionly.kpxe", opt66: true, opt60: "PXEClient"},
		{name: "BIOS PXE with --pxelinux gets pxelinux.0",
			cfg:      func(c *Config) { c.PXELinux = true },
			req:      pkt(t, knownMAC, dhcpv4.MessageTypeDiscover, arch(iana.INTEL_X86PC), pxeVC),
			wantType: dhcpv4.MessageTypeOffer, wantFile: "pxelinux.0", opt66: true, opt60: "PXEClient"},
		{name: "PXE vendor class without option 93 is BIOS",
			req:      pkt(t, knownMAC, dhcpv4.MessageTypeDiscover, pxeVC),
			wantType: dhcpv4.MessageTypeOffer, wantFile: "undionly.kpxe", opt66: true, opt60: "PXEClient"},
		// UEFI PXE gets no "PXEClient" back: EDK2 takes such an offer
		// without option 43 for a BINL one and asks port 4011 first.
		{name: "UEFI x64 PXE (7) gets snponly.efi, without PXEClient",
			req:      pkt(t, knownMAC, dhcpv4.MessageTypeDiscover, arch(iana.EFI_X86_64), vc("PXEClient:Arch:00007:UNDI:003000"), guid),
			wantType: dhcpv4.MessageTypeOffer, wantFile: "snponly.efi", opt66: true},
		{name: "UEFI x64 PXE REQUEST gets ACK with snponly.efi, without PXEClient",
			req:      pkt(t, knownMAC, dhcpv4.MessageTypeRequest, arch(iana.EFI_X86_64), vc("PXEClient:Arch:00007:UNDI:003000"), reqIP(knownLease.IP), sid(testServer)),
			wantType: dhcpv4.MessageTypeAck, wantFile: "snponly.efi", opt66: true},
		{name: "UEFI BC (9) gets snponly.efi",
			req:      pkt(t, knownMAC, dhcpv4.MessageTypeDiscover, arch(iana.EFI_BC)),
			wantType: dhcpv4.MessageTypeOffer, wantFile: "snponly.efi", opt66: true},
		{name: "UEFI x64 PXE arch only in the vendor class",
			req:      pkt(t, knownMAC, dhcpv4.MessageTypeDiscover, vc("PXEClient:Arch:00007:UNDI:003000")),
			wantType: dhcpv4.MessageTypeOffer, wantFile: "snponly.efi", opt66: true},
		{name: "UEFI IA32 (6) ignored by default",
			req: pkt(t, knownMAC, dhcpv4.MessageTypeDiscover, arch(iana.EFI_IA32), vc("PXEClient:Arch:00006"))},
		{name: "UEFI IA32 (6) served when configured",
			cfg:      func(c *Config) { c.BootFiles = map[Firmware]string{FirmwareEFI32: "ipxe-ia32.efi"} },
			req:      pkt(t, knownMAC, dhcpv4.MessageTypeDiscover, arch(iana.EFI_IA32)),
			wantType: dhcpv4.MessageTypeOffer, wantFile: "ipxe-ia32.efi", opt66: true},
		{name: "UEFI arm64 PXE (11) gets the arm64 iPXE",
			req:      pkt(t, knownMAC, dhcpv4.MessageTypeDiscover, arch(iana.EFI_ARM64), vc("PXEClient:Arch:00011:UNDI:003000")),
			wantType: dhcpv4.MessageTypeOffer, wantFile: "arm64-efi/snponly.efi", opt66: true},
		{name: "UEFI arm64 PXE (11) gets a configured name",
			cfg:      func(c *Config) { c.BootFiles = map[Firmware]string{FirmwareARM64: "ipxe-arm64.efi"} },
			req:      pkt(t, knownMAC, dhcpv4.MessageTypeDiscover, arch(iana.EFI_ARM64)),
			wantType: dhcpv4.MessageTypeOffer, wantFile: "ipxe-arm64.efi", opt66: true},
		{name: "UEFI arm64 PXE (11) ignored when configured off",
			cfg: func(c *Config) { c.BootFiles = map[Firmware]string{FirmwareARM64: ""} },
			req: pkt(t, knownMAC, dhcpv4.MessageTypeDiscover, arch(iana.EFI_ARM64))},
		{name: "UEFI x64 HTTP boot (16) gets the snponly.efi URL and HTTPClient",
			cfg:      withLoaders,
			req:      pkt(t, knownMAC, dhcpv4.MessageTypeDiscover, arch(iana.EFI_X86_64_HTTP), vc("HTTPClient:Arch:00016:UNDI:003001")),
			wantType: dhcpv4.MessageTypeOffer, wantFile: testLoaders + "snponly.efi", opt60: "HTTPClient"},
		{name: "UEFI x64 HTTP boot REQUEST gets ACK with the URL and HTTPClient",
			cfg:      withLoaders,
			req:      pkt(t, knownMAC, dhcpv4.MessageTypeRequest, arch(iana.EFI_X86_64_HTTP), vc("HTTPClient:Arch:00016:UNDI:003001"), reqIP(knownLease.IP), sid(testServer)),
			wantType: dhcpv4.MessageTypeAck, wantFile: testLoaders + "snponly.efi", opt60: "HTTPClient"},
		{name: "UEFI x64 HTTP boot, arch only in the vendor class",
			cfg:      withLoaders,
			req:      pkt(t, knownMAC, dhcpv4.MessageTypeDiscover, vc("HTTPClient:Arch:00016:UNDI:003001")),
			wantType: dhcpv4.MessageTypeOffer, wantFile: testLoaders + "snponly.efi", opt60: "HTTPClient"},
		{name: "UEFI arm64 HTTP boot (19) gets the arm64 URL",
			cfg:      withLoaders,
			req:      pkt(t, knownMAC, dhcpv4.MessageTypeDiscover, arch(iana.EFI_ARM64_HTTP), vc("HTTPClient:Arch:00019:UNDI:003001")),
			wantType: dhcpv4.MessageTypeOffer, wantFile: testLoaders + "arm64-efi/snponly.efi", opt60: "HTTPClient"},
		{name: "UEFI arm64 HTTP boot (19) gets a configured name under the loader URL",
			cfg: func(c *Config) {
				withLoaders(c)
				c.BootFiles = map[Firmware]string{FirmwareARM64HTTP: "ipxe-arm64.efi"}
			},
			req:      pkt(t, knownMAC, dhcpv4.MessageTypeDiscover, arch(iana.EFI_ARM64_HTTP), vc("HTTPClient:Arch:00019:UNDI:003001")),
			wantType: dhcpv4.MessageTypeOffer, wantFile: testLoaders + "ipxe-arm64.efi", opt60: "HTTPClient"},
		{name: "UEFI HTTP boot with a configured full URL",
			cfg:      func(c *Config) { c.BootFiles = map[Firmware]string{FirmwareEFI64HTTP: "http://10.1.1.1/x.efi"} },
			req:      pkt(t, knownMAC, dhcpv4.MessageTypeDiscover, arch(iana.EFI_X86_64_HTTP), vc("HTTPClient:Arch:00016:UNDI:003001")),
			wantType: dhcpv4.MessageTypeOffer, wantFile: "http://10.1.1.1/x.efi", opt60: "HTTPClient"},
		{name: "UEFI HTTP boot ignored without the HTTP server",
			req: pkt(t, knownMAC, dhcpv4.MessageTypeDiscover, arch(iana.EFI_X86_64_HTTP), vc("HTTPClient:Arch:00016:UNDI:003001"))},
		{name: "IA32 HTTP boot (15) ignored",
			cfg: withLoaders,
			req: pkt(t, knownMAC, dhcpv4.MessageTypeDiscover, arch(iana.EFI_X86_HTTP), vc("HTTPClient:Arch:00015:UNDI:003001"))},
		{name: "HTTPClient without an arch ignored",
			cfg: withLoaders,
			req: pkt(t, knownMAC, dhcpv4.MessageTypeDiscover, vc("HTTPClient"))},
		{name: "iPXE started by UEFI HTTP boot gets the script",
			cfg:      withLoaders,
			req:      pkt(t, knownMAC, dhcpv4.MessageTypeDiscover, arch(iana.EFI_X86_64), vc("PXEClient:Arch:00007:UNDI:003010"), ipxeUC),
			wantType: dhcpv4.MessageTypeOffer, wantFile: testBootURL, opt60: "PXEClient", ipxe: true},
		{name: "iPXE (user class) on BIOS gets the HTTP script, not undionly again",
			req:      pkt(t, knownMAC, dhcpv4.MessageTypeDiscover, arch(iana.INTEL_X86PC), pxeVC, ipxeUC, dhcpv4.WithGeneric(dhcpv4.OptionEtherboot, []byte{0xb1, 1, 1})),
			wantType: dhcpv4.MessageTypeOffer, wantFile: testBootURL, opt60: "PXEClient", ipxe: true},
		{name: "iPXE RFC 3004 user class on EFI gets the HTTP script",
			req:      pkt(t, knownMAC, dhcpv4.MessageTypeRequest, arch(iana.EFI_BC), dhcpv4.WithOption(dhcpv4.OptRFC3004UserClass([]string{"iPXE"})), reqIP(knownLease.IP), sid(testServer)),
			wantType: dhcpv4.MessageTypeAck, wantFile: testBootURL, ipxe: true},
		{name: "REQUEST selecting us with the right IP gets ACK",
			req:      pkt(t, knownMAC, dhcpv4.MessageTypeRequest, arch(iana.INTEL_X86PC), pxeVC, reqIP(knownLease.IP), sid(testServer)),
			wantType: dhcpv4.MessageTypeAck, wantFile: "undionly.kpxe", opt66: true, opt60: "PXEClient"},
		{name: "REQUEST selecting another server is ignored",
			req: pkt(t, knownMAC, dhcpv4.MessageTypeRequest, reqIP(knownLease.IP), sid(net.IPv4(10, 77, 0, 2)))},
		{name: "REQUEST for a wrong IP gets NAK",
			req: pkt(t, knownMAC, dhcpv4.MessageTypeRequest, reqIP(net.IPv4(10, 77, 0, 99)), sid(testServer)), wantType: dhcpv4.MessageTypeNak},
		{name: "INIT-REBOOT REQUEST (no server id) for the right IP gets ACK",
			req: pkt(t, knownMAC, dhcpv4.MessageTypeRequest, reqIP(knownLease.IP)), wantType: dhcpv4.MessageTypeAck},
		{name: "INIT-REBOOT REQUEST for a wrong IP gets NAK",
			req: pkt(t, knownMAC, dhcpv4.MessageTypeRequest, reqIP(net.IPv4(192, 168, 1, 5))), wantType: dhcpv4.MessageTypeNak},
		{name: "RENEW (ciaddr) gets ACK",
			req: pkt(t, knownMAC, dhcpv4.MessageTypeRequest, dhcpv4.WithClientIP(knownLease.IP)), wantType: dhcpv4.MessageTypeAck},
		{name: "RENEW from a wrong ciaddr gets NAK",
			req: pkt(t, knownMAC, dhcpv4.MessageTypeRequest, dhcpv4.WithClientIP(net.IPv4(10, 77, 0, 77))), wantType: dhcpv4.MessageTypeNak},
		{name: "REQUEST naming no address gets NAK",
			req: pkt(t, knownMAC, dhcpv4.MessageTypeRequest, sid(testServer)), wantType: dhcpv4.MessageTypeNak},
		{name: "INFORM gets ACK",
			req: pkt(t, knownMAC, dhcpv4.MessageTypeInform, dhcpv4.WithClientIP(knownLease.IP)), wantType: dhcpv4.MessageTypeAck},
		{name: "RELEASE gets no reply",
			req: pkt(t, knownMAC, dhcpv4.MessageTypeRelease, dhcpv4.WithClientIP(knownLease.IP), sid(testServer))},
		{name: "DECLINE gets no reply",
			req: pkt(t, knownMAC, dhcpv4.MessageTypeDecline, reqIP(knownLease.IP), sid(testServer))},
		{name: "an OFFER from another server is ignored",
			req: pkt(t, knownMAC, dhcpv4.MessageTypeOffer)},
		{name: "plain BOOTP is ignored",
			req: pkt(t, knownMAC, dhcpv4.MessageTypeNone, dhcpv4.WithoutOption(dhcpv4.OptionDHCPMessageType))},
		{name: "relayed DISCOVER gets OFFER with the node's own subnet",
			req:      pkt(t, relayedMAC, dhcpv4.MessageTypeDiscover, dhcpv4.WithGatewayIP(net.IPv4(10, 78, 5, 1)), arch(iana.INTEL_X86PC), pxeVC),
			wantType: dhcpv4.MessageTypeOffer, wantFile: "undionly.kpxe", opt66: true, opt60: "PXEClient"},
		{name: "relayed from a subnet that is not the node's is ignored",
			req: pkt(t, relayedMAC, dhcpv4.MessageTypeDiscover, dhcpv4.WithGatewayIP(net.IPv4(10, 79, 0, 1)))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer(t, tc.cfg)
			resp := s.Reply(tc.req)
			if tc.wantType == dhcpv4.MessageTypeNone {
				if resp != nil {
					t.Fatalf("want no reply, got %s", resp.Summary())
				}
				return
			}
			if resp == nil {
				t.Fatalf("want %s, got no reply (%s)", tc.wantType, s.decide(tc.req).ev.Reason)
			}
			// The reply must survive the wire.
			resp, err := dhcpv4.FromBytes(resp.ToBytes())
			if err != nil {
				t.Fatal(err)
			}
			if resp.MessageType() != tc.wantType {
				t.Fatalf("message type %s, want %s", resp.MessageType(), tc.wantType)
			}
			if resp.OpCode != dhcpv4.OpcodeBootReply || resp.TransactionID != tc.req.TransactionID || resp.ClientHWAddr.String() != tc.req.ClientHWAddr.String() {
				t.Errorf("reply header does not match the request: %s", resp.Summary())
			}
			if !resp.ServerIdentifier().Equal(testServer) {
				t.Errorf("option 54 = %v, want %v", resp.ServerIdentifier(), testServer)
			}
			if tc.wantType == dhcpv4.MessageTypeNak {
				if !isZero(resp.YourIPAddr) || resp.BootFileName != "" {
					t.Errorf("NAK carries an address or boot file: %s", resp.Summary())
				}
				if resp.Message() == "" {
					t.Errorf("NAK without a message (option 56)")
				}
				return
			}
			lease, _ := testLookup(tc.req.ClientHWAddr)
			if tc.req.MessageType() == dhcpv4.MessageTypeInform {
				if !isZero(resp.YourIPAddr) || resp.Options.Has(dhcpv4.OptionIPAddressLeaseTime) {
					t.Errorf("ACK to INFORM carries yiaddr or a lease time: %s", resp.Summary())
				}
			} else {
				if !resp.YourIPAddr.Equal(lease.IP) {
					t.Errorf("yiaddr %v, want %v", resp.YourIPAddr, lease.IP)
				}
				want := lease.LeaseTime
				if want == 0 {
					want = DefaultLeaseTime
				}
				if got := resp.IPAddressLeaseTime(0); got != want {
					t.Errorf("lease time %v, want %v", got, want)
				}
			}
			if resp.SubnetMask().String() != lease.Mask.String() {
				t.Errorf("mask %v, want %v", resp.SubnetMask(), lease.Mask)
			}
			if r := resp.Router(); len(r) != 1 || !r[0].Equal(lease.Router) {
				t.Errorf("router %v, want %v", r, lease.Router)
			}
			if resp.HostName() != lease.Hostname {
				t.Errorf("hostname %q, want %q", resp.HostName(), lease.Hostname)
			}
			if resp.DomainName() != lease.Domain {
				t.Errorf("domain %q, want %q", resp.DomainName(), lease.Domain)
			}
			if len(lease.DNS) > 0 && (len(resp.DNS()) != 1 || !resp.DNS()[0].Equal(lease.DNS[0])) {
				t.Errorf("dns %v, want %v", resp.DNS(), lease.DNS)
			}
			if !resp.ServerIPAddr.Equal(testServer) {
				t.Errorf("siaddr %v, want %v", resp.ServerIPAddr, testServer)
			}
			if resp.BootFileName != tc.wantFile || resp.BootFileNameOption() != tc.wantFile {
				t.Errorf("boot file field %q / option 67 %q, want %q", resp.BootFileName, resp.BootFileNameOption(), tc.wantFile)
			}
			if got := resp.TFTPServerName() == testServer.String(); got != tc.opt66 {
				t.Errorf("option 66 = %q, want present=%v", resp.TFTPServerName(), tc.opt66)
			}
			if got := resp.ClassIdentifier(); got != tc.opt60 {
				t.Errorf("option 60 = %q, want %q", got, tc.opt60)
			}
			if g := tc.req.Options.Get(dhcpv4.OptionClientMachineIdentifier); !bytes.Equal(g, resp.Options.Get(dhcpv4.OptionClientMachineIdentifier)) {
				t.Errorf("option 97 not echoed: %x vs %x", g, resp.Options.Get(dhcpv4.OptionClientMachineIdentifier))
			}
			if got := bytes.Equal(resp.Options.Get(dhcpv4.OptionEtherboot), ipxeNoPXEDHCP); got != tc.ipxe {
				t.Errorf("option 175 = %x, want no-pxedhcp=%v", resp.Options.Get(dhcpv4.OptionEtherboot), tc.ipxe)
			}
		})
	}
}

func TestReplyDestination(t *testing.T) {
	s := newTestServer(t, nil)
	tests := []struct {
		name string
		req  *dhcpv4.DHCPv4
		want string
	}{
		{"fresh client: broadcast", pkt(t, knownMAC, dhcpv4.MessageTypeDiscover), "255.255.255.255:68"},
		{"relayed: to the relay's port 67", pkt(t, relayedMAC, dhcpv4.MessageTypeDiscover, dhcpv4.WithGatewayIP(net.IPv4(10, 78, 5, 1))), "10.78.5.1:67"},
		{"relayed NAK: to the relay", pkt(t, relayedMAC, dhcpv4.MessageTypeRequest, dhcpv4.WithGatewayIP(net.IPv4(10, 78, 5, 1)), reqIP(net.IPv4(10, 78, 5, 99))), "10.78.5.1:67"},
		{"renewing client: unicast to ciaddr", pkt(t, knownMAC, dhcpv4.MessageTypeRequest, dhcpv4.WithClientIP(knownLease.IP)), "10.77.0.50:68"},
		{"INFORM: unicast to ciaddr", pkt(t, knownMAC, dhcpv4.MessageTypeInform, dhcpv4.WithClientIP(knownLease.IP)), "10.77.0.50:68"},
		{"NAK to a renewing client: broadcast", pkt(t, knownMAC, dhcpv4.MessageTypeRequest, dhcpv4.WithClientIP(net.IPv4(10, 77, 0, 9))), "255.255.255.255:68"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := s.decide(tc.req)
			if d.resp == nil || d.dest == nil {
				t.Fatalf("no reply: %s", d.ev.Reason)
			}
			if d.dest.String() != tc.want {
				t.Errorf("destination %s, want %s", d.dest, tc.want)
			}
			if !isZero(tc.req.GatewayIPAddr) && !d.resp.GatewayIPAddr.Equal(tc.req.GatewayIPAddr) {
				t.Errorf("giaddr not kept in the reply")
			}
		})
	}
}

// TestRelayAgentInfoEchoed: a relay that adds option 82 (circuit and
// remote id, as switches and ISC dhcrelay -a do) gets it back unchanged in
// every reply (RFC 3046 2.2), OFFER, ACK and NAK alike; relays use it to
// find the client's port and may drop replies without it.
func TestRelayAgentInfoEchoed(t *testing.T) {
	s := newTestServer(t, nil)
	gw := dhcpv4.WithGatewayIP(net.IPv4(10, 78, 5, 1))
	o82 := dhcpv4.WithOption(dhcpv4.OptRelayAgentInfo(
		dhcpv4.OptGeneric(dhcpv4.GenericOptionCode(1), []byte("Gi1/0/7")),
		dhcpv4.OptGeneric(dhcpv4.GenericOptionCode(2), []byte{0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff})))
	tests := []struct {
		name  string
		req   *dhcpv4.DHCPv4
		reply string
	}{
		{"DISCOVER", pkt(t, relayedMAC, dhcpv4.MessageTypeDiscover, gw, o82), "OFFER"},
		{"REQUEST", pkt(t, relayedMAC, dhcpv4.MessageTypeRequest, gw, o82, reqIP(relayedLse.IP)), "ACK"},
		{"REQUEST for another address", pkt(t, relayedMAC, dhcpv4.MessageTypeRequest, gw, o82, reqIP(net.IPv4(10, 78, 5, 99))), "NAK"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := s.decide(tc.req)
			if d.resp == nil {
				t.Fatalf("no reply: %s", d.ev.Reason)
			}
			if d.ev.Reply != tc.reply {
				t.Errorf("reply %s, want %s", d.ev.Reply, tc.reply)
			}
			want := tc.req.Options.Get(dhcpv4.OptionRelayAgentInformation)
			got := d.resp.Options.Get(dhcpv4.OptionRelayAgentInformation)
			if len(want) == 0 || !bytes.Equal(got, want) {
				t.Errorf("option 82 in the reply = %x, want the request's %x", got, want)
			}
			if d.dest.String() != "10.78.5.1:67" {
				t.Errorf("sent to %s, want the relay 10.78.5.1:67", d.dest)
			}
		})
	}
}

func TestDecideEvents(t *testing.T) {
	s := newTestServer(t, nil)
	tests := []struct {
		req        *dhcpv4.DHCPv4
		answered   bool
		reply      string
		reasonPart string
	}{
		{pkt(t, unknownMAC, dhcpv4.MessageTypeDiscover), false, "", "unknown MAC"},
		{pkt(t, knownMAC, dhcpv4.MessageTypeDiscover, arch(iana.EFI_IA32)), false, "", "efi-ia32"},
		{pkt(t, knownMAC, dhcpv4.MessageTypeDiscover, arch(iana.EFI_X86_64_HTTP)), false, "", "needs the HTTP server"},
		{pkt(t, knownMAC, dhcpv4.MessageTypeRequest, reqIP(knownLease.IP), sid(net.IPv4(10, 0, 0, 9))), false, "", "another server"},
		{pkt(t, knownMAC, dhcpv4.MessageTypeRequest, reqIP(net.IPv4(10, 77, 0, 9))), true, "NAK", "10.77.0.9"},
		{pkt(t, knownMAC, dhcpv4.MessageTypeDiscover, ipxeUC), true, "OFFER", ""},
	}
	for _, tc := range tests {
		d := s.decide(tc.req)
		if d.ev.Answered != tc.answered || d.ev.Reply != tc.reply || !strings.Contains(d.ev.Reason, tc.reasonPart) {
			t.Errorf("%s %s: event %+v, want answered=%v reply=%q reason~%q", d.ev.MAC, d.ev.Message, d.ev, tc.answered, tc.reply, tc.reasonPart)
		}
		if d.ev.MAC != tc.req.ClientHWAddr.String() {
			t.Errorf("event MAC %q", d.ev.MAC)
		}
	}
}

func TestLongBootURLOnlyInOption67(t *testing.T) {
	long := "http://10.77.0.1:8080/boot/" + strings.Repeat("x", 120) + "/${mac:hexhyp}.ipxe"
	s := newTestServer(t, func(c *Config) { c.HTTPBootURL = long })
	resp := s.Reply(pkt(t, knownMAC, dhcpv4.MessageTypeDiscover, ipxeUC))
	if resp == nil {
		t.Fatal("no reply")
	}
	resp, err := dhcpv4.FromBytes(resp.ToBytes())
	if err != nil {
		t.Fatal(err)
	}
	if resp.BootFileName != "" || resp.BootFileNameOption() != long {
		t.Errorf("file %q option 67 %q: a truncated URL must not go into the 128-byte file field", resp.BootFileName, resp.BootFileNameOption())
	}
}

func TestConfigValidation(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no lookup", Config{Iface: "lo"}, "lookup"},
		{"URL too long", Config{Iface: "lo", Lookup: testLookup, HTTPBootURL: strings.Repeat("u", 256)}, "255"},
		{"IPv6 server address", Config{Iface: "lo", Lookup: testLookup, ServerIP: net.ParseIP("fe80::1")}, "not IPv4"},
		{"no interface", Config{Lookup: testLookup}, "--iface"},
		{"missing interface", Config{Iface: "onesis-nope0", Lookup: testLookup}, `"onesis-nope0"`},
		{"server IP not on the interface", Config{Iface: "lo", Lookup: testLookup, ServerIP: net.IPv4(10, 77, 250, 250)}, `10.77.250.250 is not an address of interface "lo"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(tc.cfg)
			if err == nil {
				s.Close()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}
