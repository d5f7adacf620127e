package portmap

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"
)

func u32s(v ...uint32) []byte {
	var b []byte
	for _, x := range v {
		b = binary.BigEndian.AppendUint32(b, x)
	}
	return b
}

// call builds an RPC call with an AUTH_NULL credential and verifier.
func call(xid, prog, vers, proc uint32, args ...uint32) []byte {
	return append(u32s(xid, 0, 2, prog, vers, proc, 0, 0, 0, 0), u32s(args...)...)
}

func accepted(xid uint32, rest ...uint32) []byte {
	return append(u32s(xid, 1, 0, 0, 0), u32s(rest...)...)
}

func TestReply(t *testing.T) {
	table := Table(2049, 2049, 111, 111)
	authUnix := append(u32s(9, 0, 2, ProgPortmap, 2, procGetport, 1, 20), make([]byte, 20)...)
	authUnix = append(authUnix, u32s(0, 0, ProgMount, 3, ProtoTCP, 0)...)
	tests := []struct {
		name string
		in   []byte
		want []byte
	}{
		{"null", call(1, ProgPortmap, 2, procNull), accepted(1, 0)},
		{"getport nfs v3 tcp", call(2, ProgPortmap, 2, procGetport, ProgNFS, 3, ProtoTCP, 0), accepted(2, 0, 2049)},
		{"getport mount v3 tcp", call(3, ProgPortmap, 2, procGetport, ProgMount, 3, ProtoTCP, 0), accepted(3, 0, 2049)},
		{"getport mount v3 udp", call(4, ProgPortmap, 2, procGetport, ProgMount, 3, ProtoUDP, 0), accepted(4, 0, 0)},
		{"getport nfs v4", call(5, ProgPortmap, 2, procGetport, ProgNFS, 4, ProtoTCP, 0), accepted(5, 0, 0)},
		{"getport nlm", call(6, ProgPortmap, 2, procGetport, 100021, 4, ProtoTCP, 0), accepted(6, 0, 0)},
		{"getport with auth_unix", authUnix, accepted(9, 0, 2049)},
		{"getport short args", call(7, ProgPortmap, 2, procGetport, ProgNFS), accepted(7, 4)},
		{"dump", call(8, ProgPortmap, 2, procDump), accepted(8, 0,
			1, ProgPortmap, 2, ProtoTCP, 111, 1, ProgPortmap, 2, ProtoUDP, 111,
			1, ProgNFS, 3, ProtoTCP, 2049, 1, ProgMount, 3, ProtoTCP, 2049, 0)},
		{"set refused", call(10, ProgPortmap, 2, 1, ProgNFS, 3, ProtoTCP, 999), accepted(10, 3)},
		{"rpcbind v3", call(11, ProgPortmap, 3, procNull), accepted(11, 2, 2, 2)},
		{"other program", call(12, ProgNFS, 3, procNull), accepted(12, 1)},
		{"garbage: a reply", accepted(13, 0), nil},
		{"garbage: rpc v1", u32s(14, 0, 1, ProgPortmap, 2, 0, 0, 0, 0, 0), nil},
		{"garbage: truncated", call(15, ProgPortmap, 2, procNull)[:30], nil},
		{"garbage: huge credential", u32s(16, 0, 2, ProgPortmap, 2, 0, 1, 0xffffffff), nil},
		{"garbage: empty", nil, nil},
		{"garbage: text", []byte("hello portmapper, are you there?"), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Reply(tc.in, table); !bytes.Equal(got, tc.want) {
				t.Errorf("got  %x\nwant %x", got, tc.want)
			}
		})
	}
}

func FuzzReply(f *testing.F) {
	f.Add(call(1, ProgPortmap, 2, procGetport, ProgNFS, 3, ProtoTCP, 0))
	f.Add(call(1, ProgPortmap, 2, procDump))
	f.Add([]byte{})
	table := Table(2049, 2049, 111, 111)
	f.Fuzz(func(t *testing.T, b []byte) {
		out := Reply(b, table)
		if out != nil && (len(out) < 24 || !bytes.Equal(out[:4], b[:4])) {
			t.Fatalf("reply %x does not echo the xid of %x", out, b)
		}
	})
}

// startServe runs Serve on loopback sockets and stops it at cleanup.
func startServe(t *testing.T) (udpAddr, tcpAddr string) {
	t.Helper()
	u, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, u, l, 2049, 20048, nil) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve returned %v after cancel", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("Serve did not return after cancel")
		}
	})
	return u.LocalAddr().String(), l.Addr().String()
}

func getportUDP(t *testing.T, addr string, msg []byte) []byte {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write(msg)
	c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	buf := make([]byte, 1500)
	n, err := c.Read(buf)
	if err != nil {
		return nil
	}
	return buf[:n]
}

func TestServeUDPAndTCP(t *testing.T) {
	udpAddr, tcpAddr := startServe(t)
	// UDP: an answer for a query, silence for garbage.
	if got := getportUDP(t, udpAddr, call(1, ProgPortmap, 2, procGetport, ProgMount, 3, ProtoTCP, 0)); !bytes.Equal(got, accepted(1, 0, 20048)) {
		t.Errorf("UDP GETPORT mount: %x", got)
	}
	if got := getportUDP(t, udpAddr, []byte("garbage")); got != nil {
		t.Errorf("UDP garbage got a reply: %x", got)
	}
	// TCP: two queries on one connection, then garbage closes it.
	c, err := net.Dial("tcp", tcpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	for i, q := range []struct {
		msg  []byte
		want []byte
	}{
		{call(2, ProgPortmap, 2, procGetport, ProgNFS, 3, ProtoTCP, 0), accepted(2, 0, 2049)},
		{call(3, ProgPortmap, 2, procNull), accepted(3, 0)},
	} {
		c.Write(append(u32s(uint32(len(q.msg))|1<<31), q.msg...))
		var hdr [4]byte
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			t.Fatalf("query %d: %v", i, err)
		}
		body := make([]byte, binary.BigEndian.Uint32(hdr[:])&^(1<<31))
		if _, err := io.ReadFull(c, body); err != nil {
			t.Fatalf("query %d: %v", i, err)
		}
		if !bytes.Equal(body, q.want) {
			t.Errorf("query %d: got %x want %x", i, body, q.want)
		}
	}
	c.Write(append(u32s(8|1<<31), []byte("garbage!")...))
	if rest, err := io.ReadAll(c); len(rest) != 0 || err != nil {
		t.Errorf("after garbage: %x, %v; want the connection closed without a reply", rest, err)
	}
}
