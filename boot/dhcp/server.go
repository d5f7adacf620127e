// Package dhcp is git-onesis's DHCPv4 server: authoritative for the MACs in
// the node inventory only, with static leases, and with the boot file
// chosen by the client's firmware (BIOS PXE, UEFI, or an iPXE that is
// already running and gets the HTTP script URL).
//
// It is built on insomniacslk/dhcp's server4 socket (0.0.0.0:67 with
// SO_BINDTODEVICE on the provisioning interface). Unknown MACs never get an
// answer, so the server can share a LAN with the site's own DHCP server as
// long as the two do not both know a MAC.
package dhcp

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"

	"github.com/onesis/git-onesis/internal/udpbuf"
)

// Lease is a node's static address and the options that go with it.
type Lease struct {
	IP        net.IP
	Mask      net.IPMask
	Router    net.IP   // option 3; nil = none
	DNS       []net.IP // option 6
	Hostname  string   // option 12
	Domain    string   // option 15
	LeaseTime time.Duration
}

// Config configures a Server.
type Config struct {
	// Iface is the provisioning interface (required). The socket is bound
	// to it with SO_BINDTODEVICE, so nothing is answered on other links.
	Iface string
	// ServerIP is our address on Iface: option 54, siaddr (next-server)
	// and option 66. nil = the interface's first IPv4 address.
	ServerIP net.IP
	// Port to listen on; 0 = 67. (Tests only.)
	Port int
	// Lookup returns the lease of a known MAC; false = not ours, ignore it.
	Lookup func(mac net.HardwareAddr) (Lease, bool)
	// HTTPBootURL is the boot file for a running iPXE (user class "iPXE"),
	// e.g. "http://10.77.0.1:8080/boot/${mac:hexhyp}.ipxe"; iPXE expands
	// ${mac:hexhyp} itself.
	HTTPBootURL string
	// IPXEBaseURL is where the HTTP server serves the iPXE binaries,
	// ending in "/" (e.g. "http://10.77.0.1:8080/ipxe/"). UEFI HTTP boot
	// clients get it joined with their binary's name; "" = ignore them.
	IPXEBaseURL string
	// PXELinux makes BIOS clients get pxelinux.0 instead of undionly.kpxe.
	PXELinux bool
	// BootFiles overrides the boot file per firmware; "" means "ignore
	// clients with that firmware". For the HTTP boot kinds a name without
	// "://" is taken relative to IPXEBaseURL. Defaults: BIOS undionly.kpxe
	// (or pxelinux.0), UEFI x64 snponly.efi, UEFI arm64 ARM64BootFile,
	// the same two under IPXEBaseURL for UEFI HTTP boot, iPXE
	// HTTPBootURL, and none for UEFI IA32 (ignored with a log line).
	BootFiles map[Firmware]string
	// Proxy makes the server a PXE proxy DHCP server: the site's own DHCP
	// server gives addresses (it must give each node its inventory
	// address); this one answers only the boot firmware of known MACs,
	// with offers that carry no address, and their requests on port 4011.
	Proxy bool
	// Discover, when set, is told about every DISCOVER/REQUEST from a MAC
	// the inventory does not know (serve --discover).
	Discover func(mac net.HardwareAddr, info ClientInfo)
	// Event, when set, receives every request's outcome (for /status and
	// /metrics). It is called from the packet's goroutine: do not block.
	Event func(Event)
	// Logger gets structured logs; nil = slog.Default().
	Logger *slog.Logger
}

// Event is the outcome of one client message.
type Event struct {
	Time     time.Time `json:"time"`
	MAC      string    `json:"mac"`
	Message  string    `json:"message"`         // DISCOVER, REQUEST, RELEASE, DECLINE, INFORM
	Reply    string    `json:"reply,omitempty"` // OFFER, ACK, NAK; "" = no reply
	Answered bool      `json:"answered"`
	Reason   string    `json:"reason,omitempty"` // why we stayed silent (or NAKed)
	IP       string    `json:"ip,omitempty"`     // the node's address
	BootFile string    `json:"boot_file,omitempty"`
	Firmware string    `json:"firmware,omitempty"`
	Relay    string    `json:"relay,omitempty"` // giaddr when relayed
}

// quietFor is how long a repeatedly ignored client stays at debug level.
const quietFor = 10 * time.Minute

// maxStatus bounds the per-MAC status table (unknown MACs could flood it).
const maxStatus = 4096

// queueLen bounds the requests waiting for a worker. A power-on storm of
// thousands of nodes fits. Beyond it a server that cannot keep up drops
// the newest requests, whose clients retry as after any loss, instead of
// piling up one goroutine per packet whose late answers nobody waits for.
const queueLen = 4096

// request is one received packet waiting for a worker.
type request struct {
	conn net.PacketConn
	peer net.Addr
	req  *dhcpv4.DHCPv4
	binl bool // came in on port 4011
}

// BINLPort is the PXE boot server port (PXE 2.1): firmware sends its
// REQUEST for the boot file here after a proxy offer, and EDK2 after an
// offer it takes for a "BINL" one.
const BINLPort = 4011

// macState is what we remember per MAC: its last event, and when we last
// logged an ignored request from it at info level.
type macState struct {
	ev     Event
	logged time.Time
}

// Server is a running DHCPv4 server.
type Server struct {
	cfg      Config
	log      *slog.Logger
	serverIP net.IP
	srv      *server4.Server
	binl     *net.UDPConn // port 4011 on serverIP; nil in tests
	now      func() time.Time

	queue   chan request
	done    chan struct{}
	workers sync.Once
	dropped atomic.Int64 // requests dropped because the queue was full

	mu     sync.Mutex
	last   map[string]macState
	closed bool
}

// New validates cfg and opens the socket, so a wrong interface, address or
// a port already in use fails here, naming what is wrong.
func New(cfg Config) (*Server, error) {
	s, err := newServer(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.Iface == "" {
		return nil, errors.New("dhcp: no provisioning interface given (--iface)")
	}
	ifi, err := net.InterfaceByName(cfg.Iface)
	if err != nil {
		return nil, fmt.Errorf("dhcp: interface %q: %w", cfg.Iface, err)
	}
	addrs, err := ifaceIPv4(ifi)
	if err != nil {
		return nil, fmt.Errorf("dhcp: interface %q: %w", cfg.Iface, err)
	}
	if s.serverIP == nil {
		if len(addrs) == 0 {
			return nil, fmt.Errorf("dhcp: interface %q has no IPv4 address; give it one or set the server address", cfg.Iface)
		}
		s.serverIP = addrs[0]
	} else {
		found := false
		for _, a := range addrs {
			found = found || a.Equal(s.serverIP)
		}
		if !found {
			return nil, fmt.Errorf("dhcp: server address %s is not an address of interface %q (it has %v)", s.serverIP, cfg.Iface, addrs)
		}
	}
	port := cfg.Port
	if port == 0 {
		port = dhcpv4.ServerPort
	}
	conn, err := server4.NewIPv4UDPConn(cfg.Iface, &net.UDPAddr{IP: net.IPv4zero, Port: port})
	if err != nil {
		return nil, fmt.Errorf("dhcp: cannot listen on UDP port %d of interface %q (another DHCP server running? need root?): %w", port, cfg.Iface, err)
	}
	udpbuf.Grow(conn) // a power-on storm's DISCOVERs arrive in one burst
	binlPort := BINLPort
	if cfg.Port != 0 {
		binlPort = 0 // tests on another port: any free one
	}
	s.binl, err = net.ListenUDP("udp4", &net.UDPAddr{IP: s.serverIP, Port: binlPort})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("dhcp: cannot listen on %s port %d (PXE boot server requests): %w", s.serverIP, binlPort, err)
	}
	s.srv, err = server4.NewServer(cfg.Iface, nil, s.enqueue, server4.WithConn(conn))
	if err != nil {
		conn.Close()
		s.binl.Close()
		return nil, fmt.Errorf("dhcp: %w", err)
	}
	return s, nil
}

// newServer checks everything but the network; Reply works on its result.
func newServer(cfg Config) (*Server, error) {
	if cfg.Lookup == nil {
		return nil, errors.New("dhcp: no inventory lookup configured")
	}
	if len(cfg.HTTPBootURL) > 255 {
		return nil, fmt.Errorf("dhcp: HTTP boot URL is %d bytes, DHCP option 67 holds at most 255", len(cfg.HTTPBootURL))
	}
	if cfg.IPXEBaseURL != "" && !strings.HasSuffix(cfg.IPXEBaseURL, "/") {
		return nil, fmt.Errorf("dhcp: iPXE base URL %q must end in /", cfg.IPXEBaseURL)
	}
	for fw, f := range cfg.BootFiles {
		if fw.HTTPBoot() && f != "" && !strings.Contains(f, "://") {
			f = cfg.IPXEBaseURL + f
		}
		if len(f) > 255 {
			return nil, fmt.Errorf("dhcp: boot file for %s is %d bytes, DHCP option 67 holds at most 255", fw, len(f))
		}
	}
	s := &Server{cfg: cfg, log: cfg.Logger, now: time.Now, last: map[string]macState{},
		queue: make(chan request, queueLen), done: make(chan struct{})}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("service", "dhcp")
	if cfg.ServerIP != nil {
		if cfg.ServerIP.To4() == nil {
			return nil, fmt.Errorf("dhcp: server address %s is not IPv4", cfg.ServerIP)
		}
		s.serverIP = cfg.ServerIP.To4()
	}
	return s, nil
}

func ifaceIPv4(ifi *net.Interface) ([]net.IP, error) {
	as, err := ifi.Addrs()
	if err != nil {
		return nil, err
	}
	var out []net.IP
	for _, a := range as {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
			out = append(out, n.IP.To4())
		}
	}
	return out, nil
}

// ServerIP is the address the server answers as (option 54).
func (s *Server) ServerIP() net.IP { return s.serverIP }

// Serve answers requests until Close. It returns nil after Close.
func (s *Server) Serve() error {
	s.log.Info("DHCP server listening", "iface", s.cfg.Iface, "server_ip", s.serverIP.String(), "proxy", s.cfg.Proxy)
	s.startWorkers()
	if s.binl != nil {
		go s.serveBINL()
	}
	err := s.srv.Serve()
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return nil
	}
	return fmt.Errorf("dhcp: serving on %q: %w", s.cfg.Iface, err)
}

// Close stops Serve and closes the socket.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.done)
	if s.binl != nil {
		s.binl.Close()
	}
	if s.srv == nil {
		return nil
	}
	return s.srv.Close()
}

// serveBINL reads port 4011 until Close, queueing each request like port
// 67's, for the same workers.
func (s *Server) serveBINL() {
	buf := make([]byte, 1500)
	for {
		n, peer, err := s.binl.ReadFromUDP(buf)
		if err != nil {
			select {
			case <-s.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("reading port 4011", "err", err)
			continue
		}
		req, err := dhcpv4.FromBytes(buf[:n])
		if err != nil {
			s.log.Debug("port 4011: not a DHCP packet", "peer", peer.String(), "err", err)
			continue
		}
		select {
		case s.queue <- request{s.binl, peer, req, true}:
		default:
			s.dropped.Add(1)
		}
	}
}

// BINLAddr is the address of the port 4011 socket (tests).
func (s *Server) BINLAddr() net.Addr {
	if s.binl == nil {
		return nil
	}
	return s.binl.LocalAddr()
}

// Reply computes the answer to req without sending anything; nil means no
// reply. It only calls Config.Lookup (no events, no logs), for tests and
// fuzzing.
func (s *Server) Reply(req *dhcpv4.DHCPv4) *dhcpv4.DHCPv4 {
	return s.decide(req).resp
}

// ReplyBINL is Reply for a request that came in on port 4011.
func (s *Server) ReplyBINL(req *dhcpv4.DHCPv4) *dhcpv4.DHCPv4 {
	return s.decideOn(req, true).resp
}

// Status returns the last event of every MAC seen recently, sorted by MAC.
func (s *Server) Status() []Event {
	s.mu.Lock()
	out := make([]Event, 0, len(s.last))
	for _, st := range s.last {
		out = append(out, st.ev)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].MAC < out[j].MAC })
	return out
}

// startWorkers starts the goroutines that answer queued requests: one per
// CPU (at least two), each with a stack already grown for the work, so a
// storm costs no goroutine per packet.
func (s *Server) startWorkers() {
	s.workers.Do(func() {
		n := max(runtime.GOMAXPROCS(0), 2)
		for range n {
			go func() {
				for {
					select {
					case r := <-s.queue:
						s.handle(r.conn, r.peer, r.req, r.binl)
					case <-s.done:
						return
					}
				}
			}()
		}
		go s.reportDrops()
	})
}

// enqueue is server4's per-packet callback (run in a goroutine of its
// own): it queues the request and returns, or drops it when the queue is
// full.
func (s *Server) enqueue(conn net.PacketConn, peer net.Addr, req *dhcpv4.DHCPv4) {
	select {
	case s.queue <- request{conn, peer, req, false}:
	default:
		s.dropped.Add(1)
	}
}

// reportDrops logs, at most every dropReport, how many requests were
// dropped because the server could not keep up.
func (s *Server) reportDrops() {
	t := time.NewTicker(dropReport)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if n := s.dropped.Swap(0); n > 0 {
				s.log.Warn("DHCP requests dropped: more arrived than the server could answer; their clients will retry",
					"dropped", n, "queue", queueLen, "interval", dropReport.String())
			}
		case <-s.done:
			return
		}
	}
}

// dropReport is how often dropped requests are reported.
const dropReport = 10 * time.Second

// handle answers one request; binl says it came in on port 4011, whose
// answers go back to the sender.
func (s *Server) handle(conn net.PacketConn, peer net.Addr, req *dhcpv4.DHCPv4, binl bool) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("DHCP handler panicked; packet dropped", "peer", fmt.Sprint(peer), "panic", fmt.Sprint(r))
		}
	}()
	d := s.decideOn(req, binl)
	if binl && d.resp != nil {
		ua, ok := peer.(*net.UDPAddr)
		if !ok {
			return
		}
		d.dest = ua
	}
	if d.ev.MAC == "" {
		s.log.Debug("ignored packet", "peer", fmt.Sprint(peer), "reason", d.ev.Reason)
		return
	}
	if d.resp != nil {
		if _, err := conn.WriteTo(d.resp.ToBytes(), d.dest); err != nil {
			d.ev.Answered = false
			d.ev.Reason = "send failed: " + err.Error()
			s.log.Warn("cannot send DHCP reply", "mac", d.ev.MAC, "to", d.dest.String(), "err", err)
		}
	}
	s.record(d)
	if d.unknown && s.cfg.Discover != nil && (d.ev.Message == "DISCOVER" || d.ev.Message == "REQUEST") {
		mac := make(net.HardwareAddr, len(req.ClientHWAddr))
		copy(mac, req.ClientHWAddr)
		s.cfg.Discover(mac, d.info)
	}
}

func (s *Server) record(d decision) {
	ev := d.ev
	attrs := []any{"mac", ev.MAC, "msg", ev.Message, "firmware", ev.Firmware}
	if ev.Relay != "" {
		attrs = append(attrs, "relay", ev.Relay)
	}
	if d.info.VendorClass != "" {
		attrs = append(attrs, "vendor_class", d.info.VendorClass)
	}
	if len(d.info.UserClass) > 0 {
		attrs = append(attrs, "user_class", d.info.UserClass)
	}
	// A client we ignore retries every few seconds: say why once, then
	// only at debug level until the reason changes or quietFor passes.
	s.mu.Lock()
	st, seen := s.last[ev.MAC]
	quiet := !ev.Answered && seen && !st.ev.Answered && st.ev.Reason == ev.Reason && ev.Time.Sub(st.logged) < quietFor
	if !quiet {
		st.logged = ev.Time
	}
	if !seen && len(s.last) >= maxStatus {
		// Forget the oldest entry to stay bounded.
		var oldest string
		for k, e := range s.last {
			if oldest == "" || e.ev.Time.Before(s.last[oldest].ev.Time) {
				oldest = k
			}
		}
		delete(s.last, oldest)
	}
	st.ev = ev
	s.last[ev.MAC] = st
	s.mu.Unlock()
	switch {
	case quiet:
		s.log.Debug("ignored again", append(attrs, "reason", ev.Reason)...)
	case ev.Answered:
		attrs = append(attrs, "reply", ev.Reply, "ip", ev.IP)
		if ev.BootFile != "" {
			attrs = append(attrs, "boot_file", ev.BootFile)
		}
		if ev.Reason != "" {
			attrs = append(attrs, "reason", ev.Reason)
		}
		if d.dest != nil {
			attrs = append(attrs, "to", d.dest.String())
		}
		s.log.Info("answered", attrs...)
	case d.unknown:
		s.log.Info("ignored unknown MAC", append(attrs, "reason", ev.Reason)...)
	default:
		s.log.Info("ignored", append(attrs, "reason", ev.Reason)...)
	}
	if s.cfg.Event != nil {
		s.cfg.Event(ev)
	}
}
