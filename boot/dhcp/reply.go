package dhcp

import (
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

// DefaultLeaseTime is the lease time sent when Lease.LeaseTime is zero.
// Leases are static, so a long lease costs nothing and keeps a node whose
// root is on NFS from losing its address while the server restarts.
const DefaultLeaseTime = 12 * time.Hour

// Default boot files, as shipped by Debian's ipxe and pxelinux packages.
// Debian ships no iPXE for arm64: ARM64BootFile is where Fedora's
// ipxe-bootimgs-aarch64 puts it (and iPXE's own build, bin-arm64-efi/),
// relative to the iPXE directory.
const (
	BIOSBootFile     = "undionly.kpxe"
	EFI64BootFile    = "snponly.efi"
	ARM64BootFile    = "arm64-efi/snponly.efi"
	PXELinuxBootFile = "pxelinux.0"
)

// ipxeNoPXEDHCP is option 175 (iPXE's encapsulated options) carrying
// sub-option 176 "no-pxedhcp" = 1: iPXE then does not wait for a ProxyDHCP
// offer. ISC dhcpd's `option ipxe.no-pxedhcp 1` sends exactly these bytes.
var ipxeNoPXEDHCP = []byte{176, 1, 1}

// decision is the outcome of one request: the reply (nil = stay silent),
// where it goes, and the event describing it.
type decision struct {
	resp *dhcpv4.DHCPv4
	dest *net.UDPAddr
	ev   Event
	info ClientInfo
	// unknown is set when the MAC is not in the inventory (for Discover).
	unknown bool
}

// ignore fills in a silent decision.
func (d decision) ignore(reason string) decision {
	d.resp = nil
	d.ev.Answered = false
	d.ev.Reason = reason
	return d
}

// decide is the whole protocol logic. It has no side effects other than
// calling Config.Lookup, so Reply (tests, fuzzing) and the socket handler
// share it.
func (s *Server) decide(req *dhcpv4.DHCPv4) (d decision) {
	d.ev = Event{Time: s.now()}
	if req == nil {
		return d.ignore("empty packet")
	}
	defer func() {
		// Whatever the packet, a malformed one must never take the server
		// down: treat a panic in option parsing as garbage.
		if r := recover(); r != nil {
			d = decision{ev: Event{Time: d.ev.Time}}.ignore(fmt.Sprintf("malformed packet (%v)", r))
		}
	}()
	if req.OpCode != dhcpv4.OpcodeBootRequest {
		return d.ignore("not a BOOTREQUEST")
	}
	if req.HWType != iana.HWTypeEthernet || len(req.ClientHWAddr) != 6 {
		return d.ignore("not an Ethernet client (htype/hlen)")
	}
	d.info = clientInfo(req)
	d.ev.MAC = d.info.MAC
	d.ev.Message = d.info.Message
	d.ev.Firmware = d.info.Firmware.String()
	d.ev.Relay = d.info.Relay

	mt := req.MessageType()
	switch mt {
	case dhcpv4.MessageTypeDiscover, dhcpv4.MessageTypeRequest, dhcpv4.MessageTypeInform,
		dhcpv4.MessageTypeRelease, dhcpv4.MessageTypeDecline:
	case dhcpv4.MessageTypeNone:
		return d.ignore("plain BOOTP (no DHCP message type) is not supported")
	default:
		return d.ignore("not a client message")
	}

	lease, known := s.cfg.Lookup(req.ClientHWAddr)
	if !known {
		d.unknown = true
		return d.ignore("unknown MAC (not in the inventory)")
	}
	if lease.IP.To4() == nil {
		return d.ignore("the inventory gives this MAC no IPv4 address")
	}
	d.ev.IP = lease.IP.To4().String()
	relayed := !isZero(req.GatewayIPAddr)
	if relayed && lease.Mask != nil && !lease.IP.Mask(lease.Mask).Equal(req.GatewayIPAddr.To4().Mask(lease.Mask)) {
		return d.ignore(fmt.Sprintf("relayed by %s, which is not in the node's subnet %s/%d",
			req.GatewayIPAddr, lease.IP.Mask(lease.Mask), maskBits(lease.Mask)))
	}

	switch mt {
	case dhcpv4.MessageTypeRelease:
		return d.ignore("client released its lease (static lease kept)")
	case dhcpv4.MessageTypeDecline:
		return d.ignore(fmt.Sprintf("client declined %s: another host on the network answers ARP for it", d.ev.IP))
	case dhcpv4.MessageTypeRequest:
		if sid := req.ServerIdentifier(); sid != nil && !sid.Equal(s.serverIP) {
			return d.ignore(fmt.Sprintf("client selected another server (%s)", sid))
		}
		want := req.RequestedIPAddress()
		if want == nil || isZero(want) {
			want = req.ClientIPAddr // RENEWING/REBINDING: the address is in ciaddr
		}
		if want == nil || isZero(want) {
			return s.nak(d, req, "REQUEST names no address")
		}
		if !want.Equal(lease.IP) {
			return s.nak(d, req, fmt.Sprintf("client asked for %s, its address is %s", want, d.ev.IP))
		}
	}

	// DISCOVER, REQUEST (good), INFORM.
	bootFile, why := s.bootFile(d.info.Firmware)
	if why != "" {
		return d.ignore(why)
	}
	mods := []dhcpv4.Modifier{
		dhcpv4.WithServerIP(s.serverIP), // siaddr: next-server
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(s.serverIP)),
	}
	switch mt {
	case dhcpv4.MessageTypeDiscover:
		d.ev.Reply = "OFFER"
		mods = append(mods, dhcpv4.WithMessageType(dhcpv4.MessageTypeOffer))
	default:
		d.ev.Reply = "ACK"
		mods = append(mods, dhcpv4.WithMessageType(dhcpv4.MessageTypeAck))
	}
	if mt != dhcpv4.MessageTypeInform {
		// RFC 2131 4.3.5: an ACK to INFORM carries no yiaddr and no lease time.
		lt := lease.LeaseTime
		if lt <= 0 {
			lt = DefaultLeaseTime
		}
		secs := lt / time.Second
		if secs > 0xfffffffe {
			secs = 0xfffffffe
		}
		mods = append(mods, dhcpv4.WithYourIP(lease.IP.To4()), dhcpv4.WithLeaseTime(uint32(secs)))
	}
	if lease.Mask != nil {
		mods = append(mods, dhcpv4.WithNetmask(lease.Mask))
	}
	if lease.Router != nil && lease.Router.To4() != nil {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptRouter(lease.Router.To4())))
	}
	var dns []net.IP
	for _, ip := range lease.DNS {
		if ip.To4() != nil {
			dns = append(dns, ip.To4())
		}
	}
	if len(dns) > 0 {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptDNS(dns...)))
	}
	if lease.Hostname != "" {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptHostName(lease.Hostname)))
	}
	if lease.Domain != "" {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptDomainName(lease.Domain)))
	}
	resp, err := dhcpv4.NewReplyFromRequest(req, mods...)
	if err != nil {
		return d.ignore("cannot build reply: " + err.Error())
	}
	if bootFile != "" {
		d.ev.BootFile = bootFile
		if len(bootFile) <= 127 {
			resp.BootFileName = bootFile // the BOOTP file field: old PXE ROMs read only this
		}
		resp.UpdateOption(dhcpv4.OptBootFileName(bootFile))
		if d.info.Firmware != FirmwareIPXE && !d.info.Firmware.HTTPBoot() {
			resp.UpdateOption(dhcpv4.OptTFTPServerName(s.serverIP.String()))
		}
	}
	switch fw := d.info.Firmware; {
	case fw.HTTPBoot():
		// UEFI 2.5+ (24.7.2): the offer must say "HTTPClient", or the
		// firmware does not take option 67 as its boot URI.
		resp.UpdateOption(dhcpv4.OptClassIdentifier(httpClient))
	case fw.UEFIPXE():
		// No "PXEClient" for UEFI PXE: EDK2's PXE base code (PxeBcDhcp4.c)
		// takes an address offer that says "PXEClient" but has no PXE
		// discovery options (43) for a BINL offer, and asks siaddr:4011
		// for the boot file before it uses any (PXE-E16 when nothing
		// answers there). Without option 60 it is a "DHCP only" offer
		// with a boot file, which it boots from directly.
	case strings.HasPrefix(req.ClassIdentifier(), pxeClient):
		resp.UpdateOption(dhcpv4.OptClassIdentifier(pxeClient))
	}
	if guid := req.Options.Get(dhcpv4.OptionClientMachineIdentifier); guid != nil {
		resp.UpdateOption(dhcpv4.OptGeneric(dhcpv4.OptionClientMachineIdentifier, guid))
	}
	if d.info.Firmware == FirmwareIPXE || req.Options.Has(dhcpv4.OptionEtherboot) {
		resp.UpdateOption(dhcpv4.OptGeneric(dhcpv4.OptionEtherboot, ipxeNoPXEDHCP))
	}
	d.resp = resp
	d.dest = replyDest(req, resp)
	d.ev.Answered = true
	return d
}

// nak answers a REQUEST we cannot confirm (RFC 2131 4.3.2: the server
// SHOULD NAK a client that asks for an address it is not entitled to).
func (s *Server) nak(d decision, req *dhcpv4.DHCPv4, reason string) decision {
	resp, err := dhcpv4.NewReplyFromRequest(req,
		dhcpv4.WithMessageType(dhcpv4.MessageTypeNak),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(s.serverIP)),
		dhcpv4.WithOption(dhcpv4.OptMessage(reason)),
	)
	if err != nil {
		return d.ignore("cannot build NAK: " + err.Error())
	}
	if !isZero(req.GatewayIPAddr) {
		resp.SetBroadcast() // RFC 2131 4.1: a relayed NAK asks the relay to broadcast
	}
	d.resp = resp
	d.dest = &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ClientPort}
	if !isZero(req.GatewayIPAddr) {
		d.dest = &net.UDPAddr{IP: req.GatewayIPAddr.To4(), Port: dhcpv4.ServerPort}
	}
	d.ev.Reply = "NAK"
	d.ev.Answered = true
	d.ev.Reason = reason
	return d
}

// replyDest picks where a reply goes (RFC 2131 4.1): to the relay agent on
// port 67 when relayed, to ciaddr when the client has an address, else
// broadcast (server4 has no raw socket for an L2 unicast to chaddr; every
// PXE ROM, iPXE and udhcpc accept broadcast replies).
func replyDest(req, resp *dhcpv4.DHCPv4) *net.UDPAddr {
	switch {
	case !isZero(req.GatewayIPAddr):
		return &net.UDPAddr{IP: req.GatewayIPAddr.To4(), Port: dhcpv4.ServerPort}
	case !isZero(req.ClientIPAddr):
		return &net.UDPAddr{IP: req.ClientIPAddr.To4(), Port: dhcpv4.ClientPort}
	default:
		return &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ClientPort}
	}
}

// bootFile chooses the boot file for a firmware. A non-empty reason means
// the client must be ignored (a firmware we have nothing to boot with).
func (s *Server) bootFile(fw Firmware) (file, reason string) {
	if f, ok := s.cfg.BootFiles[fw]; ok {
		if f == "" {
			return "", fmt.Sprintf("no boot file configured for %s firmware", fw)
		}
		if fw.HTTPBoot() && !strings.Contains(f, "://") {
			if s.cfg.IPXEBaseURL == "" {
				return "", fmt.Sprintf("UEFI HTTP boot (%s) needs the HTTP server, which is off", fw)
			}
			f = s.cfg.IPXEBaseURL + f
		}
		return f, ""
	}
	switch fw {
	case FirmwareNone:
		return "", ""
	case FirmwareIPXE:
		if s.cfg.HTTPBootURL != "" {
			return s.cfg.HTTPBootURL, ""
		}
		return "", ""
	case FirmwareBIOS:
		if s.cfg.PXELinux {
			return PXELinuxBootFile, ""
		}
		return BIOSBootFile, ""
	case FirmwareEFI64:
		return EFI64BootFile, ""
	case FirmwareARM64:
		return ARM64BootFile, ""
	case FirmwareEFI64HTTP, FirmwareARM64HTTP:
		if s.cfg.IPXEBaseURL == "" {
			return "", fmt.Sprintf("UEFI HTTP boot (%s) needs the HTTP server, which is off", fw)
		}
		if fw == FirmwareARM64HTTP {
			return s.cfg.IPXEBaseURL + ARM64BootFile, ""
		}
		return s.cfg.IPXEBaseURL + EFI64BootFile, ""
	default:
		return "", fmt.Sprintf("no boot file configured for %s firmware", fw)
	}
}

func isZero(ip net.IP) bool {
	return ip == nil || ip.IsUnspecified()
}

func maskBits(m net.IPMask) int {
	n, _ := m.Size()
	return n
}
