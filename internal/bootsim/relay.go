package bootsim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/onesis/git-onesis/internal/udpbuf"
)

// Relay plays a DHCP relay agent (RFC 1542) for many simulated nodes at
// once: one UDP socket on port 67 of the relay's own address, which it
// puts in giaddr; the server answers there, and each answer goes to the
// node whose transaction it is. Hundreds of nodes then share one
// interface, as nodes behind a router share its relay, without hundreds
// of raw sockets each seeing every broadcast. Set Config.Relay to use it.
type Relay struct {
	conn   *net.UDPConn
	server *net.UDPAddr
	giaddr net.IP

	mu      sync.Mutex
	waiting map[dhcpv4.TransactionID]chan *dhcpv4.DHCPv4
	done    chan struct{}
}

// NewRelay binds addr:67 (addr must be an address of this namespace) and
// relays to server:67.
func NewRelay(addr, server net.IP) (*Relay, error) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: addr, Port: dhcpv4.ServerPort})
	if err != nil {
		return nil, fmt.Errorf("relay socket on %s:67: %w", addr, err)
	}
	udpbuf.Grow(c) // the answers to hundreds of nodes arrive at once
	r := &Relay{conn: c, server: &net.UDPAddr{IP: server, Port: dhcpv4.ServerPort}, giaddr: addr.To4(),
		waiting: map[dhcpv4.TransactionID]chan *dhcpv4.DHCPv4{}, done: make(chan struct{})}
	go r.receive()
	return r, nil
}

// Close stops the relay.
func (r *Relay) Close() error {
	err := r.conn.Close()
	<-r.done
	return err
}

func (r *Relay) receive() {
	defer close(r.done)
	buf := make([]byte, 1500)
	for {
		n, _, err := r.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		m, err := dhcpv4.FromBytes(buf[:n])
		if err != nil || m.OpCode != dhcpv4.OpcodeBootReply {
			continue
		}
		r.mu.Lock()
		ch := r.waiting[m.TransactionID]
		r.mu.Unlock()
		if ch != nil {
			select {
			case ch <- m:
			default: // a duplicate answer nobody waits for
			}
		}
	}
}

// exchange sends req to the server and waits for an answer of one of the
// wanted types to it.
func (r *Relay) exchange(ctx context.Context, req *dhcpv4.DHCPv4, want ...dhcpv4.MessageType) (*dhcpv4.DHCPv4, error) {
	req.GatewayIPAddr = r.giaddr
	req.HopCount = 1
	ch := make(chan *dhcpv4.DHCPv4, 4)
	r.mu.Lock()
	r.waiting[req.TransactionID] = ch
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.waiting, req.TransactionID)
		r.mu.Unlock()
	}()
	if _, err := r.conn.WriteToUDP(req.ToBytes(), r.server); err != nil {
		return nil, fmt.Errorf("relaying %s: %w", req.MessageType(), err)
	}
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no answer to %s: %w", req.MessageType(), ctx.Err())
		case m := <-ch:
			if m.MessageType() == dhcpv4.MessageTypeNak {
				return nil, fmt.Errorf("%s answered with a NAK: %s", req.MessageType(), m.Message())
			}
			for _, w := range want {
				if m.MessageType() == w {
					return m, nil
				}
			}
		}
	}
}

// Request does DISCOVER, OFFER, REQUEST, ACK for mac through the relay,
// each step bounded by ctx, and returns the ACK.
func (r *Relay) Request(ctx context.Context, mac net.HardwareAddr, mods ...dhcpv4.Modifier) (*dhcpv4.DHCPv4, error) {
	disc, err := dhcpv4.NewDiscovery(mac, mods...)
	if err != nil {
		return nil, err
	}
	offer, err := r.exchange(ctx, disc, dhcpv4.MessageTypeOffer)
	if err != nil {
		return nil, err
	}
	req, err := dhcpv4.NewRequestFromOffer(offer, mods...)
	if err != nil {
		return nil, err
	}
	ack, err := r.exchange(ctx, req, dhcpv4.MessageTypeAck)
	if err != nil {
		return nil, err
	}
	if ack.YourIPAddr == nil || ack.YourIPAddr.IsUnspecified() {
		return nil, errors.New("the ACK gives no address")
	}
	return ack, nil
}
