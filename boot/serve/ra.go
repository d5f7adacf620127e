package serve

import (
	"errors"
	"fmt"
	"log/slog"
	"net"

	"golang.org/x/net/ipv6"
)

// raResponder answers IPv6 router solicitations on one interface with a
// router advertisement that carries no prefix, router lifetime 0 and the
// M and O flags clear. iPXE's IPv6 configurator, which `autoboot` runs
// alongside DHCP, otherwise waits for an advertisement that never comes
// (about 16 s, the gap seen in boot.md §5.2); iPXE's ndp.c ends
// autoconfiguration as soon as the first solicited advertisement without
// M/O arrives. Lifetime 0 means "not a default router", so no host routes
// IPv6 through us.
type raResponder struct {
	ifi *net.Interface
	c   net.PacketConn
	pc  *ipv6.PacketConn
	log *slog.Logger
}

var allRouters = net.ParseIP("ff02::2")

func newRAResponder(iface string, log *slog.Logger) (*raResponder, error) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, err
	}
	c, err := net.ListenPacket("ip6:ipv6-icmp", "::")
	if err != nil {
		return nil, fmt.Errorf("opening a raw ICMPv6 socket (needs CAP_NET_RAW; or pass --no-ra): %w", err)
	}
	pc := ipv6.NewPacketConn(c)
	var f ipv6.ICMPFilter
	f.SetAll(true)
	f.Accept(ipv6.ICMPTypeRouterSolicitation)
	steps := []error{
		pc.SetICMPFilter(&f),
		pc.SetControlMessage(ipv6.FlagInterface|ipv6.FlagSrc, true),
		pc.JoinGroup(ifi, &net.IPAddr{IP: allRouters}),
		pc.SetMulticastInterface(ifi),
		pc.SetMulticastHopLimit(255),
		pc.SetHopLimit(255),
	}
	if err := errors.Join(steps...); err != nil {
		c.Close()
		return nil, err
	}
	return &raResponder{ifi: ifi, c: c, pc: pc, log: log}, nil
}

// advertisement builds the RA: ICMPv6 type 134, hop limit 64, no flags,
// lifetime 0, with our link-layer address. The kernel fills the checksum.
func (r *raResponder) advertisement() []byte {
	b := []byte{134, 0, 0, 0, 64, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	if len(r.ifi.HardwareAddr) == 6 {
		b = append(b, 1, 1) // source link-layer address, 8 bytes
		b = append(b, r.ifi.HardwareAddr...)
	}
	return b
}

// Serve answers solicitations until Close.
func (r *raResponder) Serve() error {
	buf := make([]byte, 1500)
	ra := r.advertisement()
	for {
		n, cm, src, err := r.pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		if n < 8 || buf[0] != 133 || buf[1] != 0 || cm == nil || cm.IfIndex != r.ifi.Index {
			continue // not a router solicitation on our interface
		}
		dst := &net.IPAddr{IP: net.ParseIP("ff02::1"), Zone: r.ifi.Name}
		if ua, ok := src.(*net.IPAddr); ok && ua.IP.IsLinkLocalUnicast() {
			dst = &net.IPAddr{IP: ua.IP, Zone: r.ifi.Name}
		}
		if _, err := r.pc.WriteTo(ra, &ipv6.ControlMessage{IfIndex: r.ifi.Index, HopLimit: 255}, dst); err != nil {
			r.log.Warn("ra: cannot answer a router solicitation", "to", dst.String(), "err", err)
			continue
		}
		r.log.Debug("ra: answered a router solicitation", "to", dst.String())
	}
}

// Close stops Serve.
func (r *raResponder) Close() error { return r.c.Close() }
