package serve

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/ipv6"
)

// TestRAResponder runs the responder in a network namespace the test
// creates (veth pair va <-> vb, nothing else) and checks, with a raw-socket
// client on the other end, that a router solicitation is answered by an
// advertisement with router lifetime 0 and the M and O flags clear, which
// is what ends iPXE's IPv6 autoconfiguration. Both ends run as
// subprocesses under `ip netns exec`, so no socket of this test process
// lives in the namespace.
func TestRAResponder(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root: creates a network namespace and raw ICMPv6 sockets (CI runs as root)")
	}
	ns := fmt.Sprintf("onesis-ra-%d", os.Getpid())
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	run("ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	run("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
	run("ip", "-n", ns, "link", "add", "va", "type", "veth", "peer", "name", "vb")
	run("ip", "-n", ns, "link", "set", "va", "up")
	run("ip", "-n", ns, "link", "set", "vb", "up")
	run("ip", "-n", ns, "link", "set", "lo", "up")

	srv := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run=^TestRAHelper$")
	srv.Env = append(os.Environ(), "ONESIS_RA_HELPER=serve:va")
	var srvOut strings.Builder
	srv.Stdout, srv.Stderr = &srvOut, &srvOut
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })

	cli := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run=^TestRAHelper$", "-test.v")
	cli.Env = append(os.Environ(), "ONESIS_RA_HELPER=client:vb")
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cli.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cli.Process.Kill()
		<-done
	}
	t.Logf("client: %s", out)
	if err != nil || !strings.Contains(string(out), "RA-OK lifetime=0 flags=0") {
		t.Errorf("client: %v\n%s\nserver:\n%s", err, out, srvOut.String())
	}
}

// TestRAHelper is the subprocess side of TestRAResponder.
func TestRAHelper(t *testing.T) {
	mode, iface, ok := strings.Cut(os.Getenv("ONESIS_RA_HELPER"), ":")
	if !ok {
		t.Skip("helper process for TestRAResponder")
	}
	if mode == "serve" {
		r, err := newRAResponder(iface, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})))
		if err != nil {
			t.Fatal(err)
		}
		time.AfterFunc(60*time.Second, func() { r.Close() }) // bounded even if never killed
		r.Serve()
		return
	}
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.ListenPacket("ip6:ipv6-icmp", "::")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pc := ipv6.NewPacketConn(c)
	var f ipv6.ICMPFilter
	f.SetAll(true)
	f.Accept(ipv6.ICMPTypeRouterAdvertisement)
	pc.SetICMPFilter(&f)
	pc.JoinGroup(ifi, &net.IPAddr{IP: net.ParseIP("ff02::1")})
	pc.SetMulticastInterface(ifi)
	pc.SetMulticastHopLimit(255)
	rs := []byte{133, 0, 0, 0, 0, 0, 0, 0}
	buf := make([]byte, 1500)
	for attempt := 0; attempt < 20; attempt++ {
		if _, err := pc.WriteTo(rs, nil, &net.IPAddr{IP: allRouters, Zone: iface}); err != nil {
			t.Logf("sending RS: %v", err) // the link-local address may not be ready yet
		}
		c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		n, cm, src, err := pc.ReadFrom(buf)
		if err != nil {
			continue
		}
		if n >= 16 && buf[0] == 134 {
			lifetime := binary.BigEndian.Uint16(buf[6:8])
			fmt.Printf("RA-OK lifetime=%d flags=%d hoplimit=%d from %v cm=%v\n", lifetime, buf[5], buf[4], src, cm)
			return
		}
	}
	t.Fatal("no router advertisement within 10 s")
}
