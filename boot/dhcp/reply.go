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

// decide is the whole protocol logic for a request on port 67. It has no
// side effects other than calling Config.Lookup, so Reply (tests,
// fuzzing) and the socket handler share it.
func (s *Server) decide(req *dhcpv4.DHCPv4) decision { return s.decideOn(req, false) }

// decideOn is decide for a request on port 67 (binl = false) or on the
// PXE boot server port 4011 (binl = true). It is a chain, as coredhcp's
// handlers are: is the packet a client message (admit), is the client a
// node (leaseFor), does the message ask for an answer (answerable), then
// the reply (reply; binlReply, proxyOffer). Each step either decides or
// hands on.
func (s *Server) decideOn(req *dhcpv4.DHCPv4, binl bool) (d decision) {
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
	d, mt, ok := admit(d, req)
	if !ok {
		return d
	}
	d, lease, ok := s.leaseFor(d, req)
	if !ok {
		return d
	}
	switch {
	case binl:
		return s.binlReply(d, req, lease)
	case s.cfg.Proxy:
		return s.proxyOffer(d, req)
	}
	if d, ok = s.answerable(d, req, lease, mt); !ok {
		return d
	}
	return s.reply(d, req, lease, mt)
}

// admit keeps Ethernet BOOTREQUESTs carrying a DHCP client message and
// fills in what the event says of the client.
func admit(d decision, req *dhcpv4.DHCPv4) (decision, dhcpv4.MessageType, bool) {
	if req.OpCode != dhcpv4.OpcodeBootRequest {
		return d.ignore("not a BOOTREQUEST"), 0, false
	}
	if req.HWType != iana.HWTypeEthernet || len(req.ClientHWAddr) != 6 {
		return d.ignore("not an Ethernet client (htype/hlen)"), 0, false
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
		return d, mt, true
	case dhcpv4.MessageTypeNone:
		return d.ignore("plain BOOTP (no DHCP message type) is not supported"), mt, false
	default:
		return d.ignore("not a client message"), mt, false
	}
}

// leaseFor finds the client's lease: a known MAC with an IPv4 address,
// and, when relayed, a relay inside the node's subnet.
func (s *Server) leaseFor(d decision, req *dhcpv4.DHCPv4) (decision, Lease, bool) {
	lease, known := s.cfg.Lookup(req.ClientHWAddr)
	if !known {
		d.unknown = true
		return d.ignore("unknown MAC (not in the inventory)"), lease, false
	}
	if lease.IP.To4() == nil {
		return d.ignore("the inventory gives this MAC no IPv4 address"), lease, false
	}
	d.ev.IP = lease.IP.To4().String()
	relayed := !isZero(req.GatewayIPAddr)
	if relayed && lease.Mask != nil && !lease.IP.Mask(lease.Mask).Equal(req.GatewayIPAddr.To4().Mask(lease.Mask)) {
		return d.ignore(fmt.Sprintf("relayed by %s, which is not in the node's subnet %s/%d",
			req.GatewayIPAddr, lease.IP.Mask(lease.Mask), maskBits(lease.Mask))), lease, false
	}
	return d, lease, true
}

// answerable decides the messages that get no OFFER or ACK: RELEASE and
// DECLINE (static leases are kept), a REQUEST for another server (silence)
// or for another address (NAK).
func (s *Server) answerable(d decision, req *dhcpv4.DHCPv4, lease Lease, mt dhcpv4.MessageType) (decision, bool) {
	switch mt {
	case dhcpv4.MessageTypeRelease:
		return d.ignore("client released its lease (static lease kept)"), false
	case dhcpv4.MessageTypeDecline:
		return d.ignore(fmt.Sprintf("client declined %s: another host on the network answers ARP for it", d.ev.IP)), false
	case dhcpv4.MessageTypeRequest:
		if sid := req.ServerIdentifier(); sid != nil && !sid.Equal(s.serverIP) {
			return d.ignore(fmt.Sprintf("client selected another server (%s)", sid)), false
		}
		want := req.RequestedIPAddress()
		if want == nil || isZero(want) {
			want = req.ClientIPAddr // RENEWING/REBINDING: the address is in ciaddr
		}
		if want == nil || isZero(want) {
			return s.nak(d, req, "REQUEST names no address"), false
		}
		if !want.Equal(lease.IP) {
			return s.nak(d, req, fmt.Sprintf("client asked for %s, its address is %s", want, d.ev.IP)), false
		}
	}
	return d, true
}

// reply builds the OFFER (to DISCOVER) or ACK (to REQUEST and INFORM):
// the lease, the network's options and the boot file for the firmware.
func (s *Server) reply(d decision, req *dhcpv4.DHCPv4, lease Lease, mt dhcpv4.MessageType) decision {
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
		mods = append(mods, dhcpv4.WithYourIP(lease.IP.To4()), dhcpv4.WithLeaseTime(leaseSeconds(lease.LeaseTime)))
	}
	mods = append(mods, networkOptions(lease)...)
	resp, err := dhcpv4.NewReplyFromRequest(req, mods...)
	if err != nil {
		return d.ignore("cannot build reply: " + err.Error())
	}
	s.bootOptions(resp, req, d.info.Firmware, bootFile)
	d.ev.BootFile = bootFile
	if d.info.Firmware == FirmwareIPXE || req.Options.Has(dhcpv4.OptionEtherboot) {
		resp.UpdateOption(dhcpv4.OptGeneric(dhcpv4.OptionEtherboot, ipxeNoPXEDHCP))
	}
	d.resp = resp
	d.dest = replyDest(req, resp)
	d.ev.Answered = true
	return d
}

// leaseSeconds is option 51 for lease time lt (DefaultLeaseTime when
// zero), below the 0xffffffff that means infinite.
func leaseSeconds(lt time.Duration) uint32 {
	if lt <= 0 {
		lt = DefaultLeaseTime
	}
	secs := lt / time.Second
	if secs > 0xfffffffe {
		secs = 0xfffffffe
	}
	return uint32(secs)
}

// networkOptions are the lease's mask (1), router (3), DNS servers (6),
// host name (12) and domain (15), those it has.
func networkOptions(lease Lease) []dhcpv4.Modifier {
	var mods []dhcpv4.Modifier
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
	return mods
}

// bootOptions puts what firmware fw needs to boot bootFile into resp: the
// file (field and option 67), the TFTP server (66) for PXE, option 60 as
// the firmware expects it, and the client's GUID (97) back.
func (s *Server) bootOptions(resp, req *dhcpv4.DHCPv4, fw Firmware, bootFile string) {
	if bootFile != "" {
		if len(bootFile) <= 127 {
			resp.BootFileName = bootFile // the BOOTP file field: old PXE ROMs read only this
		}
		resp.UpdateOption(dhcpv4.OptBootFileName(bootFile))
		if fw != FirmwareIPXE && !fw.HTTPBoot() {
			resp.UpdateOption(dhcpv4.OptTFTPServerName(s.serverIP.String()))
		}
	}
	switch {
	case fw.HTTPBoot():
		// UEFI 2.5+ (24.7.2): the offer must say "HTTPClient", or the
		// firmware does not take option 67 as its boot URI.
		resp.UpdateOption(dhcpv4.OptClassIdentifier(httpClient))
	case fw.UEFIPXE():
		// No "PXEClient" echoed to UEFI PXE: EDK2's PXE
		// base code (PxeBcDhcp4.c) takes an address offer that says
		// "PXEClient" but has no PXE discovery options (43) for a BINL
		// offer, and asks siaddr:4011 for the boot file before it uses
		// any (PXE-E16 when nothing answers there). Without option 60 it
		// is a "DHCP only" offer with a boot file, booted directly.
		// (Proxy offers and port 4011 replies set "PXEClient" first.)
	case strings.HasPrefix(req.ClassIdentifier(), pxeClient):
		resp.UpdateOption(dhcpv4.OptClassIdentifier(pxeClient))
	}
	if guid := req.Options.Get(dhcpv4.OptionClientMachineIdentifier); guid != nil {
		resp.UpdateOption(dhcpv4.OptGeneric(dhcpv4.OptionClientMachineIdentifier, guid))
	}
}

// proxyOffer answers a DISCOVER as a PXE proxy DHCP server (Config.Proxy):
// the site's DHCP server gives the address, we give an offer without one
// (yiaddr 0, no lease) that names the boot server and file. Only boot
// firmware gets one; every REQUEST on port 67 is the site server's.
func (s *Server) proxyOffer(d decision, req *dhcpv4.DHCPv4) decision {
	if req.MessageType() != dhcpv4.MessageTypeDiscover {
		return d.ignore("proxy DHCP: the site's DHCP server answers " + d.info.Message)
	}
	if d.info.Firmware == FirmwareNone {
		return d.ignore("proxy DHCP: not a boot firmware (no PXEClient or HTTPClient vendor class); the site's DHCP server answers it")
	}
	d = s.bootOnly(d, req, dhcpv4.MessageTypeOffer)
	if d.resp != nil {
		d.dest = replyDest(req, d.resp)
		d.ev.IP = ""
		d.ev.Reason = "proxy offer"
	}
	return d
}

// bootOnly fills in a reply of type mt that carries the boot server and
// file for the request's firmware but no address (yiaddr 0, no lease
// options): a proxy offer, or the answer on port 4011. Option 60 is
// "PXEClient", by which firmware knows such a reply (PXE 2.1, 2.2.5), or
// "HTTPClient" for UEFI HTTP boot.
func (s *Server) bootOnly(d decision, req *dhcpv4.DHCPv4, mt dhcpv4.MessageType) decision {
	bootFile, why := s.bootFile(d.info.Firmware)
	if why != "" {
		return d.ignore(why)
	}
	resp, err := dhcpv4.NewReplyFromRequest(req,
		dhcpv4.WithMessageType(mt),
		dhcpv4.WithServerIP(s.serverIP),
		dhcpv4.WithYourIP(net.IPv4zero),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(s.serverIP)),
	)
	if err != nil {
		return d.ignore("cannot build reply: " + err.Error())
	}
	if !d.info.Firmware.HTTPBoot() {
		resp.UpdateOption(dhcpv4.OptClassIdentifier(pxeClient))
	}
	s.bootOptions(resp, req, d.info.Firmware, bootFile)
	d.ev.Reply, d.ev.BootFile = msgName(mt), bootFile
	d.resp = resp
	d.ev.Answered = true
	return d
}

// binlReply answers a REQUEST on port 4011, which PXE firmware sends to
// the server of a proxy offer (and EDK2 to the server of an offer that
// says "PXEClient" without discovery options, its "BINL" offer): an ACK
// naming the boot file, unicast back to where it came from. The client
// already has its address (ciaddr); it must be the node's, or the node's
// script and NFS root would be refused later.
func (s *Server) binlReply(d decision, req *dhcpv4.DHCPv4, lease Lease) decision {
	if req.MessageType() != dhcpv4.MessageTypeRequest && req.MessageType() != dhcpv4.MessageTypeInform {
		return d.ignore("port 4011: not a REQUEST")
	}
	if d.info.Firmware == FirmwareNone {
		return d.ignore("port 4011: not a boot firmware")
	}
	if !isZero(req.ClientIPAddr) && !req.ClientIPAddr.Equal(lease.IP) {
		return d.ignore(fmt.Sprintf("port 4011: the client has address %s, the inventory gives it %s: give the node that fixed address on the site's DHCP server", req.ClientIPAddr, d.ev.IP))
	}
	d = s.bootOnly(d, req, dhcpv4.MessageTypeAck)
	if d.resp != nil {
		d.ev.Reason = "port 4011"
	}
	return d // d.dest: the handler answers the packet's source
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
