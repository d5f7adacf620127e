package serve

// The adapter from serve to package dhcp.

import (
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/onesis/git-onesis/boot/dhcp"
	"github.com/onesis/git-onesis/boot/httpboot"
	"github.com/onesis/git-onesis/boot/inventory"
)

func newDHCP(p DHCPParams) (Service, error) {
	cfg := dhcp.Config{
		Iface:       p.Iface,
		ServerIP:    p.ServerIP,
		HTTPBootURL: p.HTTPBootURL,
		IPXEBaseURL: p.IPXEBaseURL,
		PXELinux:    p.PXELinux,
		Proxy:       p.Proxy,
		Logger:      p.Logger,
		Lookup:      p.Lookup,
	}
	for name, f := range p.BootFiles {
		fw, ok := dhcp.ParseFirmware(name)
		if !ok {
			return nil, fmt.Errorf("no firmware called %q", name)
		}
		if cfg.BootFiles == nil {
			cfg.BootFiles = map[dhcp.Firmware]string{}
		}
		cfg.BootFiles[fw] = f
	}
	if p.Discover != nil {
		cfg.Discover = func(mac net.HardwareAddr, info dhcp.ClientInfo) {
			desc := "firmware=" + info.Firmware.String()
			if info.VendorClass != "" {
				desc += " vendor_class=" + info.VendorClass
			}
			if len(info.UserClass) > 0 {
				desc += " user_class=" + strings.Join(info.UserClass, ",")
			}
			if info.Hostname != "" {
				desc += " hostname=" + info.Hostname
			}
			p.Discover(mac, desc)
		}
	}
	if p.Event != nil {
		cfg.Event = func(e dhcp.Event) { p.Event(dhcpEvent(e)) }
	}
	return dhcp.New(cfg)
}

// dhcpEvent maps a DHCP outcome onto a status event: outcome "offer",
// "ack" or "nak" when answered, else "ignored"; an ACK moves the node to
// stage "dhcp".
func dhcpEvent(e dhcp.Event) httpboot.Event {
	ev := httpboot.Event{Time: e.Time, Service: "dhcp", Outcome: "ignored", Firmware: e.Firmware}
	if e.Answered && e.Reply != "" {
		ev.Outcome = strings.ToLower(e.Reply)
	}
	if ev.Outcome == "ack" {
		ev.Stage = "dhcp"
	}
	ev.MAC, _ = inventory.ParseMAC(e.MAC)
	if ip, err := netip.ParseAddr(e.IP); err == nil {
		ev.IP = ip
	}
	ev.Detail = strings.TrimSpace(strings.Join([]string{e.Message, e.Firmware, e.BootFile, e.Reason}, " "))
	return ev
}
