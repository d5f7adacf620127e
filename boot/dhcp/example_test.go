package dhcp_test

import (
	"log"
	"net"
	"time"

	"github.com/onesis/git-onesis/boot/dhcp"
)

// A server for one known node on eth1; everything else is ignored.
func ExampleNew() {
	node := net.HardwareAddr{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}
	srv, err := dhcp.New(dhcp.Config{
		Iface:       "eth1",
		ServerIP:    net.IPv4(10, 77, 0, 1),
		HTTPBootURL: "http://10.77.0.1:8080/boot/${mac:hexhyp}.ipxe",
		Lookup: func(mac net.HardwareAddr) (dhcp.Lease, bool) {
			if mac.String() != node.String() {
				return dhcp.Lease{}, false
			}
			return dhcp.Lease{IP: net.IPv4(10, 77, 0, 50), Mask: net.CIDRMask(24, 32),
				Hostname: "node01", LeaseTime: 12 * time.Hour}, true
		},
		Event: func(e dhcp.Event) { log.Printf("%s %s -> %q %s", e.MAC, e.Message, e.Reply, e.Reason) },
	})
	if err != nil {
		log.Fatal(err) // e.g. `dhcp: interface "eth1": route ip+net: no such network interface`
	}
	go srv.Serve()
	defer srv.Close()
}
