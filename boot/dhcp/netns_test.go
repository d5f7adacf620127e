package dhcp

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onesis/git-onesis/boot/tftp"
	"github.com/onesis/git-onesis/internal/testkit"
)

// The tests in this file run real clients (busybox udhcpc, kea's perfdhcp,
// a Go relay agent) against the server in two network namespaces they
// create, joined by a veth pair:
//
//	server ns: vs 10.77.9.1/24  <--veth-->  client ns: vc (MAC set per test)
//
// The server runs as a subprocess inside its namespace (this test binary,
// re-executed as TestHelperProcess): a Go socket belongs to the namespace
// of the thread that made it, so the test process itself never setns()es.

const helperEnv = "ONESIS_DHCP_TEST_HELPER"

// helperConfig is what the parent passes to TestHelperProcess.
type helperConfig struct {
	Mode        string // "server" or "relay"
	Iface       string
	ServerIP    string
	HTTPBootURL string
	PXELinux    bool
	Leases      map[string]helperLease // MAC -> lease
	// TFTPContent, when set, also starts a boot/tftp server on ServerIP:69
	// that serves these generated files (name -> content).
	TFTPContent map[string]string
	// TFTPPXELinux adds Debian's pxelinux.0 and ldlinux.c32 to that server.
	TFTPPXELinux bool
	// IPXEBootFile overrides the boot file for iPXE clients (BootFiles).
	IPXEBootFile string
	// EFI32BootFile is the boot file for UEFI IA32 PXE (BootFiles).
	EFI32BootFile string
	// Proxy runs the server as a proxy DHCP server (Config.Proxy).
	Proxy bool
	// TFTPIPXE adds Debian's iPXE binaries (/usr/lib/ipxe) to the TFTP server.
	TFTPIPXE bool
	// relay mode
	RelayIP  string // giaddr, also the local address to send from
	ServerTo string // server address
	MAC      string
	Garbage  bool // send garbage first and report any answer to it
}

type helperLease struct {
	IP, Mask, Router, Hostname, Domain string
	DNS                                []string
}

func needRoot(t *testing.T) {
	t.Helper()
	testkit.NeedRoot(t, "creates network namespaces and binds port 67")
}

type pair struct {
	srv, cli string // namespace names
}

// setupPair creates the two namespaces and the veth between them (the
// client side gets no address: DHCP gives it one).
func setupPair(t *testing.T) *pair {
	t.Helper()
	srv, cli := testkit.VethPair(t, "onesis-dhcp", "10.77.9.1/24", "")
	return &pair{srv: srv, cli: cli}
}

func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	return testkit.Run(t, name, args...)
}

// helper is a running subprocess of this test binary.
type helper struct {
	mu     sync.Mutex
	events []Event
	tftp   []tftp.Event
	lines  []string
}

func startHelper(t *testing.T, ns string, cfg helperConfig) *helper {
	t.Helper()
	b, _ := json.Marshal(cfg)
	h := &helper{}
	testkit.StartHelper(t, ns, "TestHelperProcess", []string{helperEnv + "=" + string(b)}, func(line string) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.lines = append(h.lines, line)
		switch {
		case strings.HasPrefix(line, "TFTP "):
			var ev tftp.Event
			if json.Unmarshal([]byte(line[5:]), &ev) == nil {
				h.tftp = append(h.tftp, ev)
			}
		case strings.HasPrefix(line, "EVENT "):
			var ev Event
			if json.Unmarshal([]byte(line[6:]), &ev) == nil {
				h.events = append(h.events, ev)
			}
		}
	})
	return h
}

// eventsFor returns the recorded events of one MAC.
func (h *helper) eventsFor(mac string) []Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []Event
	for _, e := range h.events {
		if e.MAC == mac {
			out = append(out, e)
		}
	}
	return out
}

// answers returns, for the events of mac that were answered, the
// firmware each was taken for and the answer ("OFFER file"), in order.
func (h *helper) answers(mac string) (fws, replies []string) {
	for _, e := range h.eventsFor(mac) {
		if e.Answered {
			fws = append(fws, e.Firmware)
			replies = append(replies, e.Reply+" "+e.BootFile)
		}
	}
	return fws, replies
}

// tftpEvents returns the TFTP events so far.
func (h *helper) tftpEvents() []tftp.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]tftp.Event(nil), h.tftp...)
}

// waitEvent waits (bounded) until an event of mac satisfies ok.
func (h *helper) waitEvent(mac string, ok func(Event) bool, d time.Duration) (Event, bool) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		for _, e := range h.eventsFor(mac) {
			if ok(e) {
				return e, true
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return Event{}, false
}

// TestHelperProcess is not a test: it is the server (or relay agent) the
// namespace tests start with `ip netns exec`.
func TestHelperProcess(t *testing.T) {
	raw := os.Getenv(helperEnv)
	if raw == "" {
		t.Skip("subprocess of the namespace tests only")
	}
	var cfg helperConfig
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "bad helper config:", err)
		os.Exit(2)
	}
	switch cfg.Mode {
	case "relay":
		os.Exit(relayHelper(cfg))
	default:
		os.Exit(serverHelper(cfg))
	}
}

func serverHelper(hc helperConfig) int {
	leases := map[string]Lease{}
	for mac, l := range hc.Leases {
		hw, err := net.ParseMAC(mac)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		lease := Lease{IP: net.ParseIP(l.IP), Router: net.ParseIP(l.Router), Hostname: l.Hostname, Domain: l.Domain}
		if l.Mask != "" {
			lease.Mask = net.IPMask(net.ParseIP(l.Mask).To4())
		}
		for _, d := range l.DNS {
			lease.DNS = append(lease.DNS, net.ParseIP(d))
		}
		leases[hw.String()] = lease
	}
	var outMu sync.Mutex
	bootFiles := map[Firmware]string{}
	if hc.IPXEBootFile != "" {
		bootFiles[FirmwareIPXE] = hc.IPXEBootFile
	}
	if hc.EFI32BootFile != "" {
		bootFiles[FirmwareEFI32] = hc.EFI32BootFile
	}
	s, err := New(Config{
		BootFiles:   bootFiles,
		Iface:       hc.Iface,
		ServerIP:    net.ParseIP(hc.ServerIP),
		HTTPBootURL: hc.HTTPBootURL,
		PXELinux:    hc.PXELinux,
		Proxy:       hc.Proxy,
		Lookup: func(mac net.HardwareAddr) (Lease, bool) {
			l, ok := leases[mac.String()]
			return l, ok
		},
		Event: func(e Event) {
			b, _ := json.Marshal(e)
			outMu.Lock()
			fmt.Printf("EVENT %s\n", b)
			outMu.Unlock()
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if len(hc.TFTPContent) > 0 {
		var files map[string]string
		if hc.TFTPPXELinux {
			files = tftp.PXELinuxFiles(tftp.DefaultPXELinuxDir, tftp.DefaultSyslinuxBIOSDir)
		}
		if hc.TFTPIPXE {
			files = tftp.DefaultIPXEFiles(tftp.DefaultIPXEDir)
		}
		ts, err := tftp.New(tftp.Config{Addr: hc.ServerIP + ":69", Iface: hc.Iface, Files: files,
			Generate: func(name string, _ net.IP) (io.ReadCloser, int64, bool) {
				c, ok := hc.TFTPContent[name]
				if !ok {
					return nil, 0, false
				}
				return tftp.Bytes([]byte(c))
			},
			Event: func(e tftp.Event) {
				b, _ := json.Marshal(e)
				outMu.Lock()
				fmt.Printf("TFTP %s\n", b)
				outMu.Unlock()
			}})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		go ts.Serve()
		defer ts.Close()
	}
	return testkit.ServeUntilStopped(s.Serve, s.Close)
}

// relayResult is what the relay helper saw come back.
type relayResult struct {
	Type, YourIP, Mask, Router, ServerIP, Gateway, File, Hostname string
	Broadcast                                                     bool
}

// relayHelper plays a DHCP relay agent: it sends a DISCOVER with giaddr
// set from port 67 to the server and prints the reply it gets on port 67.
func relayHelper(hc helperConfig) int {
	mac, err := net.ParseMAC(hc.MAC)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4zero, Port: 67})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer conn.Close()
	buf := make([]byte, 1500)
	if hc.Garbage {
		srv := &net.UDPAddr{IP: net.ParseIP(hc.ServerTo), Port: 67}
		good, _ := newRelayedDiscover(mac, net.ParseIP(hc.RelayIP))
		gb := good.ToBytes()
		for _, g := range [][]byte{[]byte("garbage"), gb[:120], append(append([]byte{}, gb[:236]...), 99, 130, 83, 99, 53, 5, 1), make([]byte, 600)} {
			conn.WriteTo(g, srv)
		}
		conn.SetReadDeadline(time.Now().Add(time.Second))
		if n, _, err := conn.ReadFrom(buf); err == nil {
			fmt.Printf("GARBAGE-ANSWERED %d bytes\n", n)
		}
	}
	req, err := newRelayedDiscover(mac, net.ParseIP(hc.RelayIP))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if _, err := conn.WriteTo(req.ToBytes(), &net.UDPAddr{IP: net.ParseIP(hc.ServerTo), Port: 67}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			fmt.Println("NOREPLY", err)
			return 0
		}
		resp, err := parseReply(buf[:n], req)
		if err != nil {
			continue
		}
		b, _ := json.Marshal(resp)
		fmt.Printf("REPLY %s\n", b)
		return 0
	}
}
