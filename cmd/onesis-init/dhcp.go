package main

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
)

// lease is what the node takes from DHCP (or from a static ip=).
type lease struct {
	IP       net.IP
	Mask     net.IPMask
	Router   net.IP
	Server   net.IP // the DHCP server (the NFS server when nfsroot= names none)
	Hostname string // option 12
	RootPath string // option 17
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
	out := &lease{IP: ack.YourIPAddr, Mask: ack.SubnetMask(), Hostname: ack.HostName(), RootPath: ack.RootPath(), Server: ack.ServerIdentifier()}
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
