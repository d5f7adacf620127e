// Package tftp is git-onesis's read-only TFTP server for the network boot
// loaders (iPXE, optionally PXELINUX). It serves a virtual namespace only:
// each client name maps to one host file, chosen by the server, and nothing
// else is reachable. A client path is never joined onto a directory, so
// "../../etc/shadow" or an image path cannot escape, and every refusal gets
// the same generic error ("file not found"): no server path or Go error text
// ever reaches a client. Beyond Config.MaxTransfers transfers at once, a
// request is refused with "server busy".
//
// It is built on pin/tftp v3 in its multi-port mode (one socket per
// transfer), with blksize and tsize negotiation.
package tftp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	ptftp "github.com/pin/tftp/v3"

	"github.com/onesis/git-onesis/internal/udpbuf"
)

// Config configures a Server.
type Config struct {
	// Addr is the UDP address to listen on, "ip:port". "" = the first IPv4
	// address of Iface, port 69. Bind a unicast address: per-transfer
	// sockets are bound to the address a request arrived on.
	Addr string
	// Iface, when set, pins the listening socket to the interface
	// (SO_BINDTODEVICE), and supplies the address when Addr is "".
	Iface string
	// Files is the whole namespace: client name -> host path. Names are
	// relative ("undionly.kpxe", "pxelinux.cfg/default"); a client may
	// prefix them with "/".
	Files map[string]string
	// Generate, when set, is asked for names that are not in Files (e.g. a
	// per-node pxelinux.cfg/01-<mac>): the content and its size, or false
	// for not found. The name is already cleaned. The server reads the
	// content as the transfer goes (nothing need be held in memory) and
	// closes it when the transfer ends. Bytes wraps a small generated file.
	Generate func(name string, client net.IP) (io.ReadCloser, int64, bool)
	// Event, when set, receives every transfer's outcome. Called from the
	// transfer's goroutine: do not block.
	Event func(Event)
	// Logger gets structured logs; nil = slog.Default().
	Logger *slog.Logger
	// Timeout per retransmission (default 5s) and Retries (default 5).
	Timeout time.Duration
	Retries int
	// MaxTransfers caps the transfers running at once (default
	// DefaultMaxTransfers). A request beyond it is refused at once with
	// "server busy" (firmware retries), so a flood of read requests cannot
	// take every socket and file descriptor of the process.
	MaxTransfers int
}

// DefaultMaxTransfers is Config.MaxTransfers's default: more than a
// 500-node storm's nodes fetching at once over TFTP.
const DefaultMaxTransfers = 1024

// Event is the outcome of one read request.
type Event struct {
	Time     time.Time     `json:"time"`
	Client   string        `json:"client"`           // client IP
	Name     string        `json:"name"`             // cleaned name (or the raw name, quoted, when refused)
	Status   string        `json:"status"`           // "sent", "refused" or "failed"
	Reason   string        `json:"reason,omitempty"` // server-side only, never sent to the client
	Bytes    int64         `json:"bytes"`
	Duration time.Duration `json:"duration_ns"`
}

// The only errors a client ever sees.
var (
	errNotFound = errors.New("file not found")
	errReadOnly = errors.New("access violation")
	errRead     = errors.New("read error")
	errBusy     = errors.New("server busy, try again later")
)

// Server is a TFTP server bound to one address.
type Server struct {
	cfg   Config
	log   *slog.Logger
	files map[string]string
	conn  net.PacketConn
	srv   *ptftp.Server

	active atomic.Int64 // transfers running

	mu     sync.Mutex
	closed bool
}

// New validates cfg (every mapped file must be a readable regular file) and
// opens the socket, so a wrong interface, address or a busy port fails
// here, naming it.
func New(cfg Config) (*Server, error) {
	s := &Server{cfg: cfg, log: cfg.Logger, files: map[string]string{}}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("service", "tftp")
	if cfg.MaxTransfers < 0 {
		return nil, fmt.Errorf("tftp: at most %d transfers at once is not a limit (use 0 for the default, %d)", cfg.MaxTransfers, DefaultMaxTransfers)
	}
	if s.cfg.MaxTransfers == 0 {
		s.cfg.MaxTransfers = DefaultMaxTransfers
	}
	for name, host := range cfg.Files {
		clean, ok := cleanName(name)
		if !ok || clean != name && "/"+clean != name {
			return nil, fmt.Errorf("tftp: %q is not a valid TFTP name (use a relative name such as %q)", name, clean)
		}
		fi, err := os.Stat(host)
		if err != nil {
			return nil, fmt.Errorf("tftp: file for %q: %w", clean, err)
		}
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("tftp: file for %q (%s) is not a regular file", clean, host)
		}
		s.files[clean] = host
	}
	addr := cfg.Addr
	if addr == "" {
		if cfg.Iface == "" {
			return nil, errors.New("tftp: no listen address or interface given")
		}
		ip, err := firstIPv4(cfg.Iface)
		if err != nil {
			return nil, err
		}
		addr = net.JoinHostPort(ip.String(), "69")
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("tftp: listen address %q: %w", addr, err)
	}
	if cfg.Iface != "" {
		if _, err := net.InterfaceByName(cfg.Iface); err != nil {
			return nil, fmt.Errorf("tftp: interface %q: %w", cfg.Iface, err)
		}
	}
	lc := net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
		if cfg.Iface == "" {
			return nil
		}
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptString(int(fd), syscall.SOL_SOCKET, syscall.SO_BINDTODEVICE, cfg.Iface)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	conn, err := lc.ListenPacket(context.Background(), "udp4", addr)
	if err != nil {
		return nil, fmt.Errorf("tftp: cannot listen on UDP %s (another TFTP server running? need root for port 69?): %w", addr, err)
	}
	s.conn = conn
	if sc, ok := conn.(syscall.Conn); ok {
		udpbuf.Grow(sc) // a storm's read requests arrive in one burst
	}
	s.srv = ptftp.NewServer(s.read, s.write)
	if cfg.Timeout > 0 {
		s.srv.SetTimeout(cfg.Timeout)
	}
	if cfg.Retries > 0 {
		s.srv.SetRetries(cfg.Retries)
	}
	s.srv.SetHook(hook{s})
	return s, nil
}

func firstIPv4(iface string) (net.IP, error) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, fmt.Errorf("tftp: interface %q: %w", iface, err)
	}
	as, err := ifi.Addrs()
	if err != nil {
		return nil, fmt.Errorf("tftp: interface %q: %w", iface, err)
	}
	for _, a := range as {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
			return n.IP.To4(), nil
		}
	}
	return nil, fmt.Errorf("tftp: interface %q has no IPv4 address", iface)
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.conn.LocalAddr() }

// Names lists the namespace (Files only), sorted.
func (s *Server) Names() []string {
	out := make([]string, 0, len(s.files))
	for n := range s.files {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Serve answers requests until Close; it returns nil after Close.
func (s *Server) Serve() error {
	s.log.Info("TFTP server listening", "addr", s.conn.LocalAddr().String(), "iface", s.cfg.Iface, "files", s.Names())
	err := s.srv.Serve(s.conn)
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed || err == nil {
		return nil
	}
	return fmt.Errorf("tftp: serving on %s: %w", s.conn.LocalAddr(), err)
}

// Close stops accepting requests and waits for running transfers to end
// (each ends at the latest after its retransmission timeouts).
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.srv.Shutdown()
	// pin/tftp only closes the socket if Serve had started.
	s.conn.Close()
	return nil
}

// read is pin/tftp's read handler. Every error it returns is sent to the
// client verbatim, so only the generic errors above may be returned.
func (s *Server) read(raw string, rf io.ReaderFrom) error {
	start := time.Now()
	ev := Event{Time: start}
	var client net.IP
	if ot, ok := rf.(ptftp.OutgoingTransfer); ok {
		ra := ot.RemoteAddr()
		client = ra.IP
		ev.Client = ra.IP.String()
	}
	name, ok := cleanName(raw)
	if !ok {
		ev.Name, ev.Status, ev.Reason = strconv.Quote(raw), "refused", "invalid name"
		s.emit(ev)
		return errNotFound
	}
	ev.Name = name
	if s.active.Add(1) > int64(s.cfg.MaxTransfers) {
		s.active.Add(-1)
		ev.Status, ev.Reason = "refused", fmt.Sprintf("busy: %d transfers already running (the limit)", s.cfg.MaxTransfers)
		s.emit(ev)
		return errBusy
	}
	defer s.active.Add(-1)
	var r io.Reader
	var size int64
	if host, ok := s.files[name]; ok {
		f, err := os.Open(host)
		if err != nil {
			ev.Status, ev.Reason = "failed", err.Error()
			s.emit(ev)
			return errNotFound
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil || !fi.Mode().IsRegular() {
			ev.Status, ev.Reason = "failed", fmt.Sprintf("%s is not a regular file", host)
			if err != nil {
				ev.Reason = err.Error()
			}
			s.emit(ev)
			return errNotFound
		}
		r, size = f, fi.Size()
	} else if s.cfg.Generate != nil {
		rc, n, ok := s.cfg.Generate(name, client)
		if !ok {
			ev.Status, ev.Reason = "refused", "not in the TFTP namespace"
			s.emit(ev)
			return errNotFound
		}
		defer rc.Close()
		r, size = rc, n
	} else {
		ev.Status, ev.Reason = "refused", "not in the TFTP namespace"
		s.emit(ev)
		return errNotFound
	}
	if ot, ok := rf.(ptftp.OutgoingTransfer); ok {
		ot.SetSize(size) // tsize (RFC 2349), when the client asked for it
	}
	// pin/tftp reads one block at a time: buffer, so a 12 MB kernel is
	// 190 reads of 64 KiB instead of 8,500 of 1408 bytes.
	gr := &genericReader{r: bufio.NewReaderSize(r, 64<<10)}
	n, err := rf.ReadFrom(gr)
	ev.Bytes, ev.Duration = n, time.Since(start)
	if err != nil {
		ev.Status, ev.Reason = "failed", err.Error()
		if gr.err != nil {
			ev.Reason = gr.err.Error()
		}
		s.emit(ev)
		// pin/tftp already sent the client an error for this transfer;
		// what we return is dropped.
		return errRead
	}
	ev.Status = "sent"
	s.emit(ev)
	return nil
}

// write refuses every write request.
func (s *Server) write(raw string, wt io.WriterTo) error {
	ev := Event{Time: time.Now(), Name: strconv.Quote(raw), Status: "refused", Reason: "write request (server is read-only)"}
	if it, ok := wt.(ptftp.IncomingTransfer); ok {
		ra := it.RemoteAddr()
		ev.Client = ra.IP.String()
	}
	s.emit(ev)
	return errReadOnly
}

func (s *Server) emit(ev Event) {
	attrs := []any{"client", ev.Client, "name", ev.Name, "status", ev.Status}
	if ev.Status == "sent" {
		attrs = append(attrs, "bytes", ev.Bytes, "duration", ev.Duration.Round(time.Millisecond).String())
		s.log.Info("transfer", attrs...)
	} else {
		attrs = append(attrs, "reason", ev.Reason)
		if ev.Bytes > 0 {
			attrs = append(attrs, "bytes", ev.Bytes)
		}
		s.log.Warn("transfer", attrs...)
	}
	if s.cfg.Event != nil {
		s.cfg.Event(ev)
	}
}

// genericReader hides the host's read errors (which name the file) from
// pin/tftp, which would send them to the client; the real error is kept
// for our log.
type genericReader struct {
	r   io.Reader
	err error
}

func (g *genericReader) Read(p []byte) (int, error) {
	n, err := g.r.Read(p)
	if err != nil && err != io.EOF {
		g.err = err
		return n, errRead
	}
	return n, err
}

// hook logs failures that happen outside a transfer handler (malformed
// requests); transfers themselves are reported by read.
type hook struct{ s *Server }

func (h hook) OnSuccess(ptftp.TransferStats) {}

func (h hook) OnFailure(st ptftp.TransferStats, err error) {
	if st.Filename == "" && err != nil {
		h.s.log.Debug("bad request", "client", st.RemoteAddr.String(), "err", err.Error())
	}
}
