package dhcp

import (
	"encoding/json"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

// recordConn is a net.PacketConn that records what is written to it. It
// stands in for the socket so handle() can be tested without root; the
// real socket is exercised by the namespace tests.
type recordConn struct {
	net.PacketConn
	mu   sync.Mutex
	sent []sentPacket
}

type sentPacket struct {
	to  string
	msg *dhcpv4.DHCPv4
}

func (c *recordConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	m, err := dhcpv4.FromBytes(b)
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	c.sent = append(c.sent, sentPacket{addr.String(), m})
	c.mu.Unlock()
	return len(b), nil
}

func TestHandle(t *testing.T) {
	var events []Event
	var discovered []ClientInfo
	s := newTestServer(t, func(c *Config) {
		c.Event = func(e Event) { events = append(events, e) }
		c.Discover = func(mac net.HardwareAddr, ci ClientInfo) { discovered = append(discovered, ci) }
	})
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s.now = func() time.Time { return now }
	conn := &recordConn{}
	peer := &net.UDPAddr{IP: net.IPv4bcast, Port: 68}

	s.handle(conn, peer, pkt(t, knownMAC, dhcpv4.MessageTypeDiscover, arch(iana.INTEL_X86PC)), false)
	s.handle(conn, peer, pkt(t, unknownMAC, dhcpv4.MessageTypeDiscover, arch(iana.EFI_BC), vc("PXEClient:Arch:00009")), false)
	s.handle(conn, peer, pkt(t, unknownMAC, dhcpv4.MessageTypeRelease), false)
	s.handle(conn, peer, nil, false)

	if len(conn.sent) != 1 || conn.sent[0].to != "255.255.255.255:68" || conn.sent[0].msg.MessageType() != dhcpv4.MessageTypeOffer {
		t.Fatalf("sent %+v, want one OFFER broadcast", conn.sent)
	}
	if len(events) != 3 {
		t.Fatalf("events %+v, want 3 (the nil packet has no MAC)", events)
	}
	if e := events[0]; !e.Answered || e.Reply != "OFFER" || e.BootFile != "undionly.kpxe" || e.IP != "10.77.0.50" || !e.Time.Equal(now) || e.Firmware != "bios" {
		t.Errorf("event %+v", e)
	}
	if e := events[1]; e.Answered || e.MAC != unknownMAC.String() || e.Firmware != "efi-x64" {
		t.Errorf("event %+v", e)
	}
	if len(discovered) != 1 || discovered[0].MAC != unknownMAC.String() || discovered[0].Firmware != FirmwareEFI64 ||
		discovered[0].VendorClass != "PXEClient:Arch:00009" || len(discovered[0].Arch) != 1 || discovered[0].Arch[0] != 9 {
		t.Errorf("Discover got %+v, want the unknown MAC's DISCOVER only", discovered)
	}
	if b, _ := json.Marshal(discovered[0]); !strings.Contains(string(b), `"firmware":"efi-x64"`) {
		t.Errorf("ClientInfo JSON %s: firmware should be a name", b)
	}
	st := s.Status()
	if len(st) != 2 || st[0].MAC != knownMAC.String() || st[1].MAC != unknownMAC.String() || st[1].Message != "RELEASE" {
		t.Errorf("Status() = %+v", st)
	}
}

func TestStatusBounded(t *testing.T) {
	s := newTestServer(t, nil)
	conn := &recordConn{}
	base := time.Now()
	for i := 0; i < maxStatus+10; i++ {
		i := i
		s.now = func() time.Time { return base.Add(time.Duration(i) * time.Second) }
		mac := net.HardwareAddr{0x02, 0, 0, byte(i >> 16), byte(i >> 8), byte(i)}
		s.handle(conn, nil, pkt(t, mac, dhcpv4.MessageTypeDiscover), false)
	}
	st := s.Status()
	if len(st) != maxStatus {
		t.Fatalf("status holds %d MACs, want the bound %d", len(st), maxStatus)
	}
	for _, e := range st {
		if e.MAC == "02:00:00:00:00:00" {
			t.Errorf("the oldest MAC was kept")
		}
	}
}

func TestIgnoredClientsLogOnce(t *testing.T) {
	var buf strings.Builder
	s := newTestServer(t, func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	base := time.Now()
	conn := &recordConn{}
	for _, dt := range []time.Duration{0, 4 * time.Second, 8 * time.Second, quietFor + 9*time.Second} {
		s.now = func() time.Time { return base.Add(dt) }
		s.handle(conn, nil, pkt(t, unknownMAC, dhcpv4.MessageTypeDiscover), false)
	}
	if n := strings.Count(buf.String(), "ignored unknown MAC"); n != 2 {
		t.Errorf("logged %d times, want 2 (first time, then after %v):\n%s", n, quietFor, buf.String())
	}
	if !strings.Contains(buf.String(), "mac="+unknownMAC.String()) {
		t.Errorf("log does not name the MAC:\n%s", buf.String())
	}
}

func TestCloseBeforeServe(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root: binds a DHCP socket with SO_BINDTODEVICE")
	}
	s, err := New(Config{Iface: "lo", ServerIP: net.IPv4(127, 0, 0, 1), Port: 6767, Lookup: testLookup})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve after Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve after Close did not return")
	}
}

// TestQueueBounded: requests beyond the queue are dropped and counted,
// not turned into goroutines; the queued ones are all answered once the
// workers run, and Close stops them.
func TestQueueBounded(t *testing.T) {
	s := newTestServer(t, nil)
	conn := &recordConn{}
	peer := &net.UDPAddr{IP: net.IPv4bcast, Port: 68}
	const extra = 25
	for range queueLen + extra {
		s.enqueue(conn, peer, pkt(t, knownMAC, dhcpv4.MessageTypeDiscover))
	}
	if got := s.dropped.Load(); got != extra {
		t.Fatalf("dropped %d requests, want %d (the queue holds %d)", got, extra, queueLen)
	}
	s.startWorkers()
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn.mu.Lock()
		n := len(conn.sent)
		conn.mu.Unlock()
		if n == queueLen {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d queued requests answered", n, queueLen)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
