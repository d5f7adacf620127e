package tftp

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// FuzzTFTPName checks the name sanitiser: whatever a client sends, an
// accepted name is relative, clean, has no ".." element, no control bytes,
// and cleaning it again changes nothing.
func FuzzTFTPName(f *testing.F) {
	for _, s := range []string{"undionly.kpxe", "/snponly.efi", "../../etc/shadow", "pxelinux.cfg/../../x",
		"/etc/passwd", "a//b/./c", "..", "\x00", `..\..\x`, "pxelinux.cfg/01-52-54-00-12-34-56"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		name, ok := cleanName(raw)
		if !ok {
			if name != "" {
				t.Fatalf("refused %q but returned %q", raw, name)
			}
			return
		}
		if name == "" || strings.HasPrefix(name, "/") || path.Clean(name) != name {
			t.Fatalf("cleanName(%q) = %q: not a clean relative name", raw, name)
		}
		for _, el := range strings.Split(name, "/") {
			if el == ".." || el == "." || el == "" {
				t.Fatalf("cleanName(%q) = %q has element %q", raw, name, el)
			}
		}
		for i := 0; i < len(name); i++ {
			if name[i] < 0x20 || name[i] == 0x7f || name[i] == '\\' {
				t.Fatalf("cleanName(%q) = %q has byte %#x", raw, name, name[i])
			}
		}
		if again, ok := cleanName(name); !ok || again != name {
			t.Fatalf("cleanName not idempotent: %q -> %q -> %q, %v", raw, name, again, ok)
		}
	})
}

// FuzzTFTPRequest sends arbitrary datagrams to a server on 127.0.0.1 (no
// root needed). Nothing may crash it; a datagram that is not a read or
// write request (opcode 1 or 2) gets no reply; any error a client gets
// names no path.
//
// Each input is sent from a fresh socket, and that socket stays open (so
// the kernel cannot hand its port to a later input) until every transfer
// the input could have started is over: the server gives up on a silent
// client after Timeout x (Retries+1) = 400 ms, and a socket is kept for
// 10 s. Otherwise a DATA packet retransmitted by an earlier input's
// transfer could reach a later input's socket on a reused port and read as
// a reply to a non-request (seen in CI). A transfer that answered is also
// aborted at once with an ERROR to its port, as a client would.
func FuzzTFTPRequest(f *testing.F) {
	dir := f.TempDir()
	file := filepath.Join(dir, "undionly.kpxe")
	if err := os.WriteFile(file, bytes.Repeat([]byte("x"), 1500), 0o644); err != nil {
		f.Fatal(err)
	}
	s, err := New(Config{Addr: "127.0.0.1:0", Files: map[string]string{"undionly.kpxe": file},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Timeout: 200 * time.Millisecond, Retries: 1})
	if err != nil {
		f.Fatal(err)
	}
	go s.Serve()
	f.Cleanup(func() { s.Close() })
	srv := s.Addr()
	held := &heldSockets{hold: 10 * time.Second}
	f.Cleanup(held.closeAll)

	rq := func(op byte, parts ...string) []byte {
		b := []byte{0, op}
		for _, p := range parts {
			b = append(append(b, p...), 0)
		}
		return b
	}
	f.Add(rq(1, "undionly.kpxe", "octet"))
	f.Add(rq(1, "undionly.kpxe", "octet", "tsize", "0", "blksize", "1468"))
	f.Add(rq(1, "../../etc/shadow", "octet"))
	f.Add(rq(1, "undionly.kpxe", "netascii", "blksize", "abc"))
	f.Add(rq(2, "x", "octet"))
	f.Add(rq(1, "undionly.kpxe"))
	f.Add([]byte{0, 4, 0, 1}) // a stray ACK
	f.Add([]byte{0, 5, 0, 1, 'x', 0})
	f.Add([]byte("garbage"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatalf("a client socket: %v", err)
		}
		defer held.add(c)
		if _, err := c.WriteTo(b, srv); err != nil {
			return // e.g. too large for a datagram
		}
		isRQ := len(b) >= 2 && b[0] == 0 && (b[1] == 1 || b[1] == 2)
		c.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
		buf := make([]byte, 70000)
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return
		}
		// End the transfer now rather than after the server's timeouts.
		c.WriteTo([]byte{0, 5, 0, 0, 'a', 'b', 'o', 'r', 't', 0}, from)
		if !isRQ {
			t.Fatalf("reply (%d bytes) to a datagram that is not a request: %x", n, b)
		}
		if n >= 4 && buf[0] == 0 && buf[1] == 5 {
			msg := string(bytes.TrimRight(buf[4:n], "\x00"))
			if strings.Contains(msg, "/") || strings.Contains(msg, dir) {
				t.Fatalf("error text %q names a path", msg)
			}
		}
	})
}

// heldSockets closes sockets only once they are older than hold, so their
// ports are not reused while a server may still send to them.
type heldSockets struct {
	hold time.Duration
	mu   sync.Mutex
	q    []heldSocket
}

type heldSocket struct {
	c     *net.UDPConn
	since time.Time
}

func (h *heldSockets) add(c *net.UDPConn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now()
	h.q = append(h.q, heldSocket{c, now})
	i := 0
	for ; i < len(h.q) && now.Sub(h.q[i].since) > h.hold; i++ {
		h.q[i].c.Close()
	}
	h.q = append(h.q[:0], h.q[i:]...)
}

func (h *heldSockets) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range h.q {
		s.c.Close()
	}
	h.q = nil
}
