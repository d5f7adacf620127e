package udpbuf

import (
	"net"
	"os"
	"testing"
)

// TestGrow: as root (CI) the buffer goes past the default rmem_max; as
// another user it grows at least to what rmem_max allows.
func TestGrow(t *testing.T) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := Grow(c)
	if os.Geteuid() == 0 && got < Size {
		t.Errorf("receive buffer %d bytes as root, want at least %d", got, Size)
	}
	if got == 0 {
		t.Error("could not read the receive buffer size back")
	}
}
