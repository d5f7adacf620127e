package faults

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// netemAvailable says whether this kernel has the netem qdisc (some VM
// kernels, like the one this was written on, are built without it).
func netemAvailable(t *testing.T) bool {
	ns := fmt.Sprintf("onesis-fprobe-%d", os.Getpid())
	if err := exec.Command("ip", "netns", "add", ns).Run(); err != nil {
		t.Fatalf("ip netns add: %v", err)
	}
	defer exec.Command("ip", "netns", "del", ns).Run()
	return exec.Command("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms").Run() == nil
}

// impairLink puts a user-space relay between serve and the bridge, for
// kernels without netem: serve's interface is the tap srv0 (10.77.0.1),
// the relay copies its frames to the veth up0, whose peer up1 is a port of
// br0, and back, dropping loss percent of the frames each way and holding
// the server's frames for delay. It runs as a subprocess in the server
// namespace until the test ends.
func (l *lab) impairLink(loss int, delay time.Duration) {
	t := l.t
	run(t, "", "ip", "-n", l.srvNS, "addr", "del", srvIP+"/24", "dev", "br0")
	run(t, "", "ip", "-n", l.srvNS, "tuntap", "add", "dev", "srv0", "mode", "tap")
	run(t, "", "ip", "-n", l.srvNS, "link", "add", "up0", "type", "veth", "peer", "name", "up1")
	run(t, "", "ip", "-n", l.srvNS, "link", "set", "up1", "master", "br0")
	for _, d := range []string{"srv0", "up0", "up1"} {
		run(t, "", "ip", "-n", l.srvNS, "link", "set", d, "up")
	}
	run(t, "", "ip", "-n", l.srvNS, "addr", "add", srvIP+"/24", "dev", "srv0")
	l.iface = "srv0"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", l.srvNS, os.Args[0], "-test.run=^TestHelperImpair$", "-test.timeout=10m")
	cmd.Env = append(os.Environ(), fmt.Sprintf("ONESIS_FAULTS_IMPAIR=%d %d", loss, delay/time.Millisecond))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill() // ip netns exec execs the helper: this is its PID
		select {
		case <-done:
		case <-time.After(10 * time.Second):
		}
		cancel()
	})
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// TestHelperImpair is the relay of impairLink.
func TestHelperImpair(t *testing.T) {
	env := os.Getenv("ONESIS_FAULTS_IMPAIR")
	if env == "" {
		t.Skip("helper process for the fault tests")
	}
	var loss, delayMS int
	fmt.Sscan(env, &loss, &delayMS)
	delay := time.Duration(delayMS) * time.Millisecond

	tap, err := unix.Open("/dev/net/tun", unix.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	var req [unix.IFNAMSIZ + 64]byte
	copy(req[:], "srv0")
	binary.NativeEndian.PutUint16(req[unix.IFNAMSIZ:], unix.IFF_TAP|unix.IFF_NO_PI)
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(tap), unix.TUNSETIFF, uintptr(unsafe.Pointer(&req[0]))); e != 0 {
		t.Fatalf("TUNSETIFF srv0: %v", e)
	}
	ifc, err := net.InterfaceByName("up0")
	if err != nil {
		t.Fatal(err)
	}
	pkt, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(pkt, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifc.Index}); err != nil {
		t.Fatal(err)
	}
	drop := func() bool { return rand.IntN(100) < loss }

	// Server -> clients: dropped, then delayed in order.
	type frame struct {
		due time.Time
		b   []byte
	}
	q := make(chan frame, 4096)
	go func() {
		for f := range q {
			time.Sleep(time.Until(f.due))
			unix.Write(pkt, f.b)
		}
	}()
	go func() {
		buf := make([]byte, 65536)
		for {
			n, err := unix.Read(tap, buf)
			if err != nil {
				t.Errorf("reading srv0: %v", err)
				return
			}
			if drop() {
				continue
			}
			select {
			case q <- frame{time.Now().Add(delay), append([]byte(nil), buf[:n]...)}:
			default: // queue full: a drop, as a full netem queue would
			}
		}
	}()
	// Clients -> server: dropped.
	var once sync.Once
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := unix.Recvfrom(pkt, buf, 0)
			if err != nil {
				once.Do(func() { t.Errorf("reading up0: %v", err) })
				return
			}
			if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
				continue
			}
			if drop() {
				continue
			}
			fixChecksum(buf[:n])
			unix.Write(tap, buf[:n])
		}
	}()
	time.Sleep(9 * time.Minute) // the test kills it long before
}

// fixChecksum fills in the TCP or UDP checksum of an Ethernet frame with
// an IPv4 packet. Frames a veth hands to a packet socket may carry only
// the partial checksum its offload left for the hardware, and the tap
// would hand them to the server's stack as they are.
func fixChecksum(f []byte) {
	if len(f) < 14+20 || binary.BigEndian.Uint16(f[12:]) != 0x0800 {
		return
	}
	ip := f[14:]
	ihl := int(ip[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(ip[2:]))
	if ihl < 20 || total < ihl || total > len(ip) || binary.BigEndian.Uint16(ip[6:])&0x3fff != 0 {
		return // not a whole, unfragmented packet
	}
	l4 := ip[ihl:total]
	var off int
	switch ip[9] {
	case 6:
		off = 16
	case 17:
		off = 6
	default:
		return
	}
	if len(l4) < off+2 {
		return
	}
	l4[off], l4[off+1] = 0, 0
	var sum uint32
	add := func(b []byte) {
		for len(b) >= 2 {
			sum += uint32(binary.BigEndian.Uint16(b))
			b = b[2:]
		}
		if len(b) == 1 {
			sum += uint32(b[0]) << 8
		}
	}
	add(ip[12:20]) // source and destination
	sum += uint32(ip[9]) + uint32(len(l4))
	add(l4)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	c := ^uint16(sum)
	if c == 0 && ip[9] == 17 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(l4[off:], c)
}

func TestFixChecksum(t *testing.T) {
	// An Ethernet frame with IPv4 10.77.0.101 -> 10.77.0.1, UDP 1000 -> 69,
	// payload "abc", checksum field garbage (as a partial offload leaves it).
	frame := []byte{
		0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 2, 0x08, 0x00,
		0x45, 0, 0, 31, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 77, 0, 101, 10, 77, 0, 1,
		0x03, 0xe8, 0x00, 0x45, 0, 11, 0xde, 0xad, 'a', 'b', 'c',
	}
	tests := []struct {
		name string
		f    []byte
		want uint16 // expected checksum field after; 0 = unchanged
	}{
		{"udp", append([]byte(nil), frame...), 0},
		{"not ipv4", append(append([]byte(nil), frame[:12]...), append([]byte{0x86, 0xdd}, frame[14:]...)...), 0xdead},
		{"truncated", append([]byte(nil), frame[:30]...), 0},
	}
	for _, tt := range tests {
		fixChecksum(tt.f)
		if tt.name == "udp" {
			// Verify: the one's-complement sum over pseudo header and
			// segment, checksum included, is 0xffff.
			ip := tt.f[14:]
			var sum uint32
			for i := 12; i < 20; i += 2 {
				sum += uint32(binary.BigEndian.Uint16(ip[i:]))
			}
			l4 := ip[20:31]
			sum += 17 + uint32(len(l4))
			for i := 0; i+1 < len(l4); i += 2 {
				sum += uint32(binary.BigEndian.Uint16(l4[i:]))
			}
			sum += uint32(l4[len(l4)-1]) << 8
			for sum>>16 != 0 {
				sum = sum&0xffff + sum>>16
			}
			if sum != 0xffff {
				t.Errorf("%s: checksum %#04x does not verify (sum %#x)", tt.name, binary.BigEndian.Uint16(l4[6:]), sum)
			}
			continue
		}
		if tt.want != 0 && binary.BigEndian.Uint16(tt.f[14+20+6:]) != tt.want {
			t.Errorf("%s: the frame was changed", tt.name)
		}
	}
}
