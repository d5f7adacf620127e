package main

// TEST-ONLY servers for TestQEMUBoot: a minimal DHCP responder
// (insomniacslk server4) and an NFSv3 server (go-nfs over the image
// directory), run in the test's network namespace as a re-exec of the test
// binary. They are deliberately small and stand in for `git onesis serve`
// (boot/dhcp, boot/nfsroot) until the test is switched to those.

import (
	"fmt"
	"net"
	"os"
	"testing"

	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-billy/v5/osfs"
	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	nfs "github.com/willscott/go-nfs"
	nfshelper "github.com/willscott/go-nfs/helpers"
)

// Environment of the helper process.
const (
	envServer   = "ONESIS_TEST_SERVER" // set to "1" in the helper process
	envImage    = "ONESIS_TEST_IMAGE"
	envIface    = "ONESIS_TEST_IFACE"
	envServerIP = "ONESIS_TEST_SERVER_IP"
	envClientIP = "ONESIS_TEST_CLIENT_IP"
	envHostname = "ONESIS_TEST_HOSTNAME"
	envRootPath = "ONESIS_TEST_ROOT_PATH" // DHCP option 17
)

// readOnly makes go-nfs refuse every change to the exported image.
type readOnly struct{ nfs.Handler }

func (readOnly) Change(billy.Filesystem) billy.Change { return nil }

// TestHelperServer is not a test: it is the body of the server process
// TestQEMUBoot starts inside its namespace. Run normally, it skips.
func TestHelperServer(t *testing.T) {
	if os.Getenv(envServer) != "1" {
		t.Skip("helper process for TestQEMUBoot")
	}
	srv := net.ParseIP(os.Getenv(envServerIP)).To4()
	client := net.ParseIP(os.Getenv(envClientIP)).To4()
	host := os.Getenv(envHostname)
	iface := os.Getenv(envIface)

	handler := func(conn net.PacketConn, peer net.Addr, m *dhcpv4.DHCPv4) {
		var typ dhcpv4.MessageType
		switch m.MessageType() {
		case dhcpv4.MessageTypeDiscover:
			typ = dhcpv4.MessageTypeOffer
		case dhcpv4.MessageTypeRequest:
			typ = dhcpv4.MessageTypeAck
		default:
			return
		}
		resp, err := dhcpv4.NewReplyFromRequest(m,
			dhcpv4.WithMessageType(typ), dhcpv4.WithYourIP(client), dhcpv4.WithServerIP(srv),
			dhcpv4.WithOption(dhcpv4.OptServerIdentifier(srv)),
			dhcpv4.WithNetmask(net.CIDRMask(24, 32)), dhcpv4.WithLeaseTime(3600),
			dhcpv4.WithOption(dhcpv4.OptHostName(host)),
			dhcpv4.WithOption(dhcpv4.OptRootPath(os.Getenv(envRootPath))))
		if err != nil {
			return
		}
		fmt.Printf("dhcp: %s %s -> %s\n", m.MessageType(), m.ClientHWAddr, typ)
		conn.WriteTo(resp.ToBytes(), peer)
	}
	ds, err := server4.NewServer(iface, &net.UDPAddr{IP: net.IPv4zero, Port: 67}, handler)
	if err != nil {
		t.Fatal(err)
	}
	go ds.Serve()

	l, err := net.Listen("tcp", srv.String()+":2049")
	if err != nil {
		t.Fatal(err)
	}
	fs := osfs.New(os.Getenv(envImage), osfs.WithBoundOS())
	h := nfshelper.NewCachingHandler(readOnly{nfshelper.NewNullAuthHandler(fs)}, 8192)
	fmt.Println("READY")
	os.Stdout.Sync()
	t.Log(nfs.Serve(l, h))
}
