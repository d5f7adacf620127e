package nfsroot

import (
	"errors"
	"net"
	"testing"
	"time"
)

// TestConnsPerClient: connections beyond a client's limit are closed as
// they arrive and counted; a closed one frees its slot.
func TestConnsPerClient(t *testing.T) {
	fx := newFixture(t)
	if _, err := New(Config{Objects: openGit(t, fx.repo), StateDir: t.TempDir(), MaxConnsPerClient: -1}); err == nil {
		t.Error("MaxConnsPerClient -1: no error")
	}
	ts := startServer(t, Config{Objects: openGit(t, fx.repo), StateDir: t.TempDir(), MaxConnsPerClient: 2}, "127.0.0.1:0")
	dial := func() net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// closed reports whether the server closed c (EOF) rather than
	// keeping it open (no data, a read timeout).
	closed := func(c net.Conn) bool {
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		_, err := c.Read(make([]byte, 1))
		var ne net.Error
		return !(errors.As(err, &ne) && ne.Timeout())
	}
	waitConns := func(n int64) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for ts.srv.Stats().Connections != n {
			if time.Now().After(deadline) {
				t.Fatalf("%d connections open, want %d", ts.srv.Stats().Connections, n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	a, b := dial(), dial()
	waitConns(2)
	if c := dial(); !closed(c) {
		t.Error("a third connection from the same client was kept open (limit 2)")
	}
	if closed(a) || closed(b) {
		t.Error("a connection within the limit was closed")
	}
	if got := ts.srv.Stats().ConnsRefused; got != 1 {
		t.Errorf("ConnsRefused = %d, want 1", got)
	}
	a.Close()
	waitConns(1)
	if c := dial(); closed(c) {
		t.Error("a connection was refused after a slot was freed")
	}
}
