package serve

import (
	"testing"
	"time"

	"github.com/onesis/git-onesis/boot/dhcp"
	"github.com/onesis/git-onesis/boot/tftp"
)

// TestWired checks that the real services are linked in and that their
// events map onto status events.
func TestWired(t *testing.T) {
	if Wired.DHCP == nil || Wired.TFTP == nil || Wired.NFS == nil || Wired.Portmap == nil || Wired.Initrd == nil {
		t.Fatalf("a service is not wired: %+v", Wired)
	}
	ev := dhcpEvent(dhcp.Event{Time: time.Now(), MAC: "52:54:00:00:00:01", Message: "REQUEST", Reply: "ACK", Answered: true, IP: "10.77.0.11"})
	if ev.Outcome != "ack" || ev.Stage != "dhcp" || ev.MAC.String() != "52:54:00:00:00:01" || ev.IP.String() != "10.77.0.11" {
		t.Errorf("dhcp ack: %+v", ev)
	}
	ev = dhcpEvent(dhcp.Event{MAC: "52:54:00:00:00:09", Message: "DISCOVER", Reason: "unknown MAC"})
	if ev.Outcome != "ignored" || ev.Stage != "" {
		t.Errorf("dhcp ignored: %+v", ev)
	}
	ev = tftpEvent(tftp.Event{Client: "10.77.0.11", Name: "undionly.kpxe", Status: "sent"})
	if ev.Outcome != "sent" || ev.Stage != "tftp undionly.kpxe" || ev.IP.String() != "10.77.0.11" {
		t.Errorf("tftp: %+v", ev)
	}
}
