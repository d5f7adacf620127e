package dhcp

import (
	"errors"
	"net"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

func newRelayedDiscover(mac net.HardwareAddr, giaddr net.IP) (*dhcpv4.DHCPv4, error) {
	return dhcpv4.NewDiscovery(mac,
		dhcpv4.WithGatewayIP(giaddr),
		func(d *dhcpv4.DHCPv4) { d.HopCount = 1 },
		dhcpv4.WithOption(dhcpv4.OptClientArch(iana.INTEL_X86PC)),
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00000:UNDI:002001")),
	)
}

func parseReply(b []byte, req *dhcpv4.DHCPv4) (relayResult, error) {
	m, err := dhcpv4.FromBytes(b)
	if err != nil {
		return relayResult{}, err
	}
	if m.TransactionID != req.TransactionID || m.OpCode != dhcpv4.OpcodeBootReply {
		return relayResult{}, errors.New("not our reply")
	}
	r := relayResult{
		Type: msgName(m.MessageType()), YourIP: m.YourIPAddr.String(), ServerIP: m.ServerIPAddr.String(),
		Gateway: m.GatewayIPAddr.String(), File: m.BootFileName, Hostname: m.HostName(), Broadcast: m.IsBroadcast(),
	}
	if mask := m.SubnetMask(); mask != nil {
		r.Mask = net.IP(mask).String()
	}
	if rt := m.Router(); len(rt) > 0 {
		r.Router = rt[0].String()
	}
	return r, nil
}
