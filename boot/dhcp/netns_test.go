package dhcp

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/onesis/git-onesis/boot/tftp"
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
	if os.Getuid() != 0 {
		t.Skip("needs root: creates network namespaces and binds port 67 (runs in CI as root)")
	}
	for _, tool := range []string{"ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (iproute2): %v", tool, err)
		}
	}
}

var nsCounter atomic.Int32

type pair struct {
	srv, cli string // namespace names
}

// setupPair creates the two namespaces and the veth between them.
func setupPair(t *testing.T) *pair {
	t.Helper()
	n := nsCounter.Add(1)
	p := &pair{
		srv: fmt.Sprintf("onesis-dhcp-%d-%d-s", os.Getpid(), n),
		cli: fmt.Sprintf("onesis-dhcp-%d-%d-c", os.Getpid(), n),
	}
	for _, ns := range []string{p.srv, p.cli} {
		mustRun(t, "ip", "netns", "add", ns)
		ns := ns
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		mustRun(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	mustRun(t, "ip", "-n", p.srv, "link", "add", "vs", "type", "veth", "peer", "name", "vc", "netns", p.cli)
	mustRun(t, "ip", "-n", p.srv, "addr", "add", "10.77.9.1/24", "dev", "vs")
	mustRun(t, "ip", "-n", p.srv, "link", "set", "vs", "up")
	mustRun(t, "ip", "-n", p.cli, "link", "set", "vc", "up")
	return p
}

func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// helper is a running subprocess of this test binary.
type helper struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	events []Event
	tftp   []tftp.Event
	lines  []string
	ready  chan struct{}
	done   chan struct{}
}

func startHelper(t *testing.T, ns string, cfg helperConfig) *helper {
	t.Helper()
	b, _ := json.Marshal(cfg)
	cmd := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run=^TestHelperProcess$", "-test.timeout=5m")
	cmd.Env = append(os.Environ(), helperEnv+"="+string(b))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe() // closed when we exit: the helper then stops
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &helper{cmd: cmd, ready: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(h.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			h.mu.Lock()
			h.lines = append(h.lines, line)
			switch {
			case line == "READY":
				close(h.ready)
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
			h.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-h.done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
		}
		cmd.Wait()
		if t.Failed() {
			t.Logf("helper stderr:\n%s", stderr.String())
		}
	})
	select {
	case <-h.ready:
	case <-h.done:
		cmd.Wait()
		t.Fatalf("helper exited before it was ready: %s\n%s", strings.Join(h.lines, "\n"), stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("helper not ready after 30s: %s", stderr.String())
	}
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
	var bootFiles map[Firmware]string
	if hc.IPXEBootFile != "" {
		bootFiles = map[Firmware]string{FirmwareIPXE: hc.IPXEBootFile}
	}
	s, err := New(Config{
		BootFiles:   bootFiles,
		Iface:       hc.Iface,
		ServerIP:    net.ParseIP(hc.ServerIP),
		HTTPBootURL: hc.HTTPBootURL,
		PXELinux:    hc.PXELinux,
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
		ts, err := tftp.New(tftp.Config{Addr: hc.ServerIP + ":69", Iface: hc.Iface, Files: files,
			Generate: func(name string, _ net.IP) ([]byte, bool) {
				c, ok := hc.TFTPContent[name]
				return []byte(c), ok
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
	fmt.Println("READY")
	errc := make(chan error, 1)
	go func() { errc <- s.Serve() }()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	stdinEOF := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(stdinEOF) }()
	select {
	case <-sig:
	case <-stdinEOF:
	case err := <-errc:
		fmt.Fprintln(os.Stderr, "Serve:", err)
		return 1
	}
	s.Close()
	if err := <-errc; err != nil {
		fmt.Fprintln(os.Stderr, "Serve after Close:", err)
		return 1
	}
	return 0
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
