package tftp

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	ptftp "github.com/pin/tftp/v3"
)

func TestCleanName(t *testing.T) {
	tests := []struct {
		raw, want string
		ok        bool
	}{
		{"undionly.kpxe", "undionly.kpxe", true},
		{"/undionly.kpxe", "undionly.kpxe", true},
		{"//undionly.kpxe", "undionly.kpxe", true},
		{"pxelinux.cfg/01-52-54-00-12-34-56", "pxelinux.cfg/01-52-54-00-12-34-56", true},
		{"pxelinux.cfg//default", "pxelinux.cfg/default", true},
		{"./undionly.kpxe", "undionly.kpxe", true},
		{"../../etc/shadow", "", false},
		{"pxelinux.cfg/../../x", "", false},
		{"a/..", "", false},
		{"/etc/passwd", "etc/passwd", true}, // cleaned, then not in any namespace
		{"", "", false},
		{"/", "", false},
		{".", "", false},
		{"a\x00b", "", false},
		{"a\nb", "", false},
		{`..\..\windows`, "", false},
		{strings.Repeat("a", 256), "", false},
	}
	for _, tc := range tests {
		got, ok := cleanName(tc.raw)
		if got != tc.want || ok != tc.ok {
			t.Errorf("cleanName(%q) = %q, %v; want %q, %v", tc.raw, got, ok, tc.want, tc.ok)
		}
	}
}

func TestDefaultFiles(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"undionly.kpxe", "snponly.efi", "ipxe.pxe"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "ipxe.efi"), 0o755); err != nil { // not a regular file
		t.Fatal(err)
	}
	got := DefaultIPXEFiles(dir)
	want := map[string]string{"undionly.kpxe": filepath.Join(dir, "undionly.kpxe"), "snponly.efi": filepath.Join(dir, "snponly.efi")}
	if len(got) != len(want) || got["undionly.kpxe"] != want["undionly.kpxe"] || got["snponly.efi"] != want["snponly.efi"] {
		t.Errorf("DefaultIPXEFiles = %v, want %v", got, want)
	}
	if m := DefaultIPXEFiles(filepath.Join(dir, "nope")); len(m) != 0 {
		t.Errorf("missing dir gave %v", m)
	}
	px := PXELinuxFiles(dir, dir)
	if len(px) != 0 {
		t.Errorf("PXELinuxFiles on a dir without them = %v", px)
	}
	if _, err := os.Stat("/usr/lib/PXELINUX/pxelinux.0"); err == nil {
		px = PXELinuxFiles(DefaultPXELinuxDir, DefaultSyslinuxBIOSDir)
		if px["pxelinux.0"] == "" || px["ldlinux.c32"] == "" {
			t.Errorf("PXELinuxFiles with Debian's packages installed = %v", px)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "f")
	os.WriteFile(f, []byte("x"), 0o644)
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"missing file", Config{Addr: "127.0.0.1:0", Files: map[string]string{"undionly.kpxe": filepath.Join(dir, "gone")}}, `file for "undionly.kpxe"`},
		{"dir as file", Config{Addr: "127.0.0.1:0", Files: map[string]string{"x": dir}}, "not a regular file"},
		{"bad name", Config{Addr: "127.0.0.1:0", Files: map[string]string{"../x": f}}, "not a valid TFTP name"},
		{"no address", Config{Files: map[string]string{"x": f}}, "no listen address"},
		{"missing interface", Config{Iface: "onesis-nope0"}, `"onesis-nope0"`},
		{"bad address", Config{Addr: "127.0.0.1"}, `"127.0.0.1"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(tc.cfg)
			if err == nil {
				s.Close()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
	// A busy port is named.
	s, err := New(Config{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = New(Config{Addr: s.Addr().String()})
	if err == nil || !strings.Contains(err.Error(), s.Addr().String()) {
		t.Errorf("second server on a busy port: %v", err)
	}
}

// TestLoopback runs the server on 127.0.0.1 (no root needed) against
// pin/tftp's own client: content, tsize, blksize, refusals and events.
func TestLoopback(t *testing.T) {
	dir := t.TempDir()
	payload := make([]byte, 100_000)
	rand.Read(payload)
	boot := filepath.Join(dir, "undionly.kpxe")
	if err := os.WriteFile(boot, payload, 0o644); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var events []Event
	s, err := New(Config{
		Addr:  "127.0.0.1:0",
		Files: map[string]string{"undionly.kpxe": boot},
		Generate: func(name string, _ net.IP) (io.ReadCloser, int64, bool) {
			if name == "pxelinux.cfg/default" {
				return Bytes([]byte("DEFAULT linux\n"))
			}
			return nil, 0, false
		},
		Event:   func(e Event) { mu.Lock(); events = append(events, e); mu.Unlock() },
		Timeout: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	t.Cleanup(func() {
		s.Close()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve after Close: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Serve did not return after Close")
		}
	})

	get := func(name string, blksize int, tsize bool) ([]byte, int64, error) {
		c, err := ptftp.NewClient(s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetTimeout(time.Second)
		c.SetRetries(2)
		if blksize > 0 {
			c.SetBlockSize(blksize)
		}
		c.RequestTSize(tsize)
		wt, err := c.Receive(name, "octet")
		if err != nil {
			return nil, 0, err
		}
		var size int64 = -1
		if it, ok := wt.(ptftp.IncomingTransfer); ok {
			if n, ok := it.Size(); ok {
				size = n
			}
		}
		var buf bytes.Buffer
		_, err = wt.WriteTo(&buf)
		return buf.Bytes(), size, err
	}

	for _, tc := range []struct {
		name    string
		blksize int
		tsize   bool
	}{{"undionly.kpxe", 0, false}, {"/undionly.kpxe", 1408, true}, {"undionly.kpxe", 8192, true}} {
		got, size, err := get(tc.name, tc.blksize, tc.tsize)
		if err != nil {
			t.Fatalf("get %s: %v", tc.name, err)
		}
		if !bytes.Equal(got, payload) {
			t.Errorf("get %s (blksize %d): %d bytes differ from the %d-byte file", tc.name, tc.blksize, len(got), len(payload))
		}
		if tc.tsize && size != int64(len(payload)) {
			t.Errorf("tsize = %d, want %d", size, len(payload))
		}
	}
	if got, _, err := get("pxelinux.cfg/default", 0, true); err != nil || string(got) != "DEFAULT linux\n" {
		t.Errorf("generated file: %q, %v", got, err)
	}
	for _, name := range []string{"../../etc/shadow", "/etc/passwd", "pxelinux.cfg/../../x", boot, "pxelinux.cfg/01-00-00-00-00-00-00", "nothing"} {
		_, _, err := get(name, 0, true)
		if err == nil {
			t.Errorf("get %q succeeded", name)
			continue
		}
		if !strings.Contains(err.Error(), "file not found") || strings.Contains(err.Error(), dir) || strings.Contains(err.Error(), "/etc/") && !strings.Contains(name, "/etc/") {
			t.Errorf("get %q: error %q is not the generic one or leaks a path", name, err)
		}
	}
	// Writes are refused.
	c, _ := ptftp.NewClient(s.Addr().String())
	c.SetTimeout(time.Second)
	c.SetRetries(1)
	if rf, err := c.Send("upload", "octet"); err == nil {
		if _, err := rf.ReadFrom(strings.NewReader("data")); err == nil {
			t.Errorf("write request succeeded")
		}
	}
	time.Sleep(100 * time.Millisecond) // let the handlers' events land (ordering only)
	mu.Lock()
	defer mu.Unlock()
	var sent, refused int
	for _, e := range events {
		switch e.Status {
		case "sent":
			sent++
			if e.Client != "127.0.0.1" || e.Bytes <= 0 {
				t.Errorf("sent event %+v", e)
			}
		case "refused":
			refused++
		}
	}
	if sent != 4 || refused != 7 {
		t.Errorf("events: %d sent, %d refused; want 4 and 7: %+v", sent, refused, events)
	}
}

// TestReadErrorIsGeneric checks that an I/O error on the host file never
// reaches the client with its text.
func TestReadErrorIsGeneric(t *testing.T) {
	gr := &genericReader{r: io.MultiReader(strings.NewReader("abc"), errReader{})}
	b, err := io.ReadAll(gr)
	if string(b) != "abc" || err != errRead {
		t.Errorf("got %q, %v", b, err)
	}
	if gr.err == nil || !strings.Contains(gr.err.Error(), "/secret/path") {
		t.Errorf("real error not kept for the log: %v", gr.err)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) {
	return 0, &os.PathError{Op: "read", Path: "/secret/path", Err: os.ErrInvalid}
}

func TestCloseBeforeServe(t *testing.T) {
	s, err := New(Config{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	addr := s.Addr().String()
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
	// The port is free again.
	s2, err := New(Config{Addr: addr})
	if err != nil {
		t.Fatalf("port not released by Close: %v", err)
	}
	s2.Close()
}

// gateReader blocks its first Read until gate is closed.
type gateReader struct {
	gate chan struct{}
	r    io.Reader
}

func (g *gateReader) Read(p []byte) (int, error) {
	<-g.gate
	return g.r.Read(p)
}

// TestMaxTransfers: beyond the limit a request is refused at once with
// "server busy" (and a "refused" event), and a slot freed by a finished
// transfer is taken again.
func TestMaxTransfers(t *testing.T) {
	if _, err := New(Config{Addr: "127.0.0.1:0", MaxTransfers: -1}); err == nil || !strings.Contains(err.Error(), "not a limit") {
		t.Errorf("MaxTransfers -1: %v", err)
	}
	gate := make(chan struct{})
	var mu sync.Mutex
	var events []Event
	s, err := New(Config{
		Addr:         "127.0.0.1:0",
		MaxTransfers: 1,
		Timeout:      time.Second,
		Generate: func(name string, _ net.IP) (io.ReadCloser, int64, bool) {
			switch name {
			case "slow":
				return io.NopCloser(&gateReader{gate: gate, r: strings.NewReader("slow content")}), 12, true
			case "small":
				return Bytes([]byte("small"))
			}
			return nil, 0, false
		},
		Event: func(e Event) { mu.Lock(); events = append(events, e); mu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	t.Cleanup(func() { s.Close() })
	get := func(name string) (string, error) {
		c, err := ptftp.NewClient(s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetTimeout(3 * time.Second)
		c.SetRetries(2)
		wt, err := c.Receive(name, "octet")
		if err != nil {
			return "", err
		}
		var b bytes.Buffer
		_, err = wt.WriteTo(&b)
		return b.String(), err
	}
	slow := make(chan error, 1)
	go func() {
		got, err := get("slow")
		if err == nil && got != "slow content" {
			err = io.ErrUnexpectedEOF
		}
		slow <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for s.active.Load() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the slow transfer never started")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := get("small"); err == nil || !strings.Contains(err.Error(), "server busy") {
		t.Errorf("a second transfer beyond the limit of 1: %v; want the server-busy error", err)
	}
	close(gate)
	if err := <-slow; err != nil {
		t.Fatalf("the slow transfer: %v", err)
	}
	for s.active.Load() != 0 {
		time.Sleep(5 * time.Millisecond)
	}
	if got, err := get("small"); err != nil || got != "small" {
		t.Errorf("after the slot freed: %q, %v", got, err)
	}
	mu.Lock()
	defer mu.Unlock()
	busy := 0
	for _, e := range events {
		if e.Status == "refused" && strings.HasPrefix(e.Reason, "busy:") && e.Name == "small" {
			busy++
		}
	}
	if busy != 1 {
		t.Errorf("%d busy refusals among the events %+v, want 1", busy, events)
	}
}

// serveQuick serves undionly.kpxe (size zero bytes) on loopback, giving up
// on a silent client after 100 ms and one retry.
func serveQuick(t *testing.T, size int) *Server {
	t.Helper()
	boot := filepath.Join(t.TempDir(), "undionly.kpxe")
	if err := os.WriteFile(boot, make([]byte, size), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Addr: "127.0.0.1:0", Files: map[string]string{"undionly.kpxe": boot}, Timeout: 100 * time.Millisecond, Retries: 1})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	t.Cleanup(func() { s.Close(); <-done })
	return s
}

// TestErrorTextIsGeneric: a request for a file that is not served gets
// our generic "file not found", naming no path. (A client that stops
// acknowledging is still sent pin/tftp's own text, "read udp ...: i/o
// timeout", by the per-transfer socket pin/tftp owns; see the package doc.)
func TestErrorTextIsGeneric(t *testing.T) {
	s := serveQuick(t, 10_000)
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.WriteTo([]byte("\x00\x01../../etc/nothere\x00octet\x00"), s.Addr()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := c.ReadFrom(buf)
	if err != nil {
		t.Fatalf("no ERROR packet: %v", err)
	}
	if binary.BigEndian.Uint16(buf) != 5 {
		t.Fatalf("answered %q; want an ERROR packet", buf[:n])
	}
	if msg := string(bytes.TrimRight(buf[4:n], "\x00")); msg != errNotFound.Error() {
		t.Errorf("missing file: the client was told %q; want %q", msg, errNotFound)
	}
}
