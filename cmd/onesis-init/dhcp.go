package main

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	uiorand "github.com/u-root/uio/rand"
	"golang.org/x/sys/unix"
)

// xidReader gives the DHCP client its transaction IDs without waiting for
// the kernel's CRNG: early in boot (no RDRAND, as under QEMU TCG) the
// blocking getrandom the library uses can stall for minutes, and an xid
// only has to differ between clients, not be secret. GRND_INSECURE
// (Linux 5.6+) never blocks; older kernels fall back to GRND_NONBLOCK and
// then to the clock.
type xidReader struct{}

func (xidReader) Read(b []byte) (int, error) { return xidReader{}.ReadContext(context.Background(), b) }

func (xidReader) ReadContext(_ context.Context, b []byte) (int, error) {
	if n, err := unix.Getrandom(b, unix.GRND_INSECURE); err == nil && n == len(b) {
		return n, nil
	}
	if n, err := unix.Getrandom(b, unix.GRND_NONBLOCK); err == nil && n == len(b) {
		return n, nil
	}
	v := uint64(time.Now().UnixNano())
	for i := range b {
		b[i] = byte(v >> (8 * (i % 8)))
	}
	return len(b), nil
}

func init() { uiorand.Reader = xidReader{} }

// lease is what the node takes from DHCP (or from a static ip=).
type lease struct {
	IP       net.IP
	Mask     net.IPMask
	Router   net.IP
	Server   net.IP // the DHCP server (the NFS server when nfsroot= names none)
	Hostname string // option 12
	RootPath string // option 17
	Proto    string // "dhcp" or "none" (static), for /run/net-<dev>.conf
}

// runDHCP does one DISCOVER/OFFER/REQUEST/ACK exchange on iface.
func runDHCP(ctx context.Context, iface string, debug bool) (*lease, error) {
	opts := []nclient4.ClientOpt{nclient4.WithTimeout(3 * time.Second), nclient4.WithRetry(3)}
	if debug {
		opts = append(opts, nclient4.WithSummaryLogger())
	}
	c, err := nclient4.New(iface, opts...)
	if err != nil {
		return nil, fmt.Errorf("opening a DHCP socket on %s: %w", iface, err)
	}
	defer c.Close()
	l, err := c.Request(ctx,
		dhcpv4.WithRequestedOptions(dhcpv4.OptionSubnetMask, dhcpv4.OptionRouter, dhcpv4.OptionHostName,
			dhcpv4.OptionRootPath, dhcpv4.OptionDomainNameServer, dhcpv4.OptionDomainName),
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier("onesis-init")))
	if err != nil {
		return nil, fmt.Errorf("DHCP on %s: %w", iface, err)
	}
	ack := l.ACK
	out := &lease{Proto: "dhcp", IP: ack.YourIPAddr, Mask: ack.SubnetMask(), Hostname: ack.HostName(), RootPath: ack.RootPath(), Server: ack.ServerIdentifier()}
	if out.Server == nil || out.Server.IsUnspecified() {
		out.Server = ack.ServerIPAddr
	}
	if r := ack.Router(); len(r) > 0 {
		out.Router = r[0]
	}
	if out.Mask == nil {
		out.Mask = out.IP.DefaultMask()
	}
	if out.IP == nil || out.IP.IsUnspecified() {
		return nil, fmt.Errorf("DHCP on %s: the ACK from %s carries no address", iface, out.Server)
	}
	return out, nil
}
