// Package portmap is a minimal portmapper (ONC RPC program 100000, PMAP
// version 2, RFC 1833) for the NFS root: it answers NULL, GETPORT and DUMP
// over UDP and TCP, mapping NFSv3 and MOUNTv3 over TCP to the ports
// git-onesis serves them on, and everything else to 0. Stock initramfs NFS
// boot (klibc nfsmount) cannot mount without it. It registers nothing and
// accepts no SET/UNSET. Malformed packets get no reply.
package portmap

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/onesis/git-onesis/boot/xdr"
)

// RPC program numbers and protocol values.
const (
	ProgPortmap = 100000
	ProgNFS     = 100003
	ProgMount   = 100005
	ProtoTCP    = 6
	ProtoUDP    = 17

	procNull    = 0
	procGetport = 3
	procDump    = 4

	maxTCPRecord = 4096
	idleTimeout  = 30 * time.Second
	maxTCPConns  = 64
)

// Mapping is one (program, version, protocol) -> port registration.
type Mapping struct {
	Prog, Vers, Prot, Port uint32
}

// Table is the fixed set of answers: NFS v3 and MOUNT v3 over TCP, plus
// the portmapper itself on the ports it listens on.
func Table(nfsPort, mountPort, tcpPort, udpPort int) []Mapping {
	var m []Mapping
	if tcpPort > 0 {
		m = append(m, Mapping{ProgPortmap, 2, ProtoTCP, uint32(tcpPort)})
	}
	if udpPort > 0 {
		m = append(m, Mapping{ProgPortmap, 2, ProtoUDP, uint32(udpPort)})
	}
	if nfsPort > 0 {
		m = append(m, Mapping{ProgNFS, 3, ProtoTCP, uint32(nfsPort)})
	}
	if mountPort > 0 {
		m = append(m, Mapping{ProgMount, 3, ProtoTCP, uint32(mountPort)})
	}
	return m
}

// Reply answers one RPC call message (without TCP record marking) from
// the table. It returns nil when the message is not a well-formed RPC v2
// call: garbage gets no reply.
func Reply(msg []byte, table []Mapping) []byte {
	r := &xdr.Reader{B: msg}
	xid := r.U32()
	mtype := r.U32()
	rpcvers := r.U32()
	prog, vers, proc := r.U32(), r.U32(), r.U32()
	r.Auth() // credential
	r.Auth() // verifier
	if r.Bad || mtype != 0 || rpcvers != 2 {
		return nil
	}
	out := binary.BigEndian.AppendUint32(nil, xid)
	out = binary.BigEndian.AppendUint32(out, 1) // REPLY
	out = binary.BigEndian.AppendUint32(out, 0) // MSG_ACCEPTED
	out = binary.BigEndian.AppendUint32(out, 0) // verifier AUTH_NULL
	out = binary.BigEndian.AppendUint32(out, 0) //   of length 0
	put := func(v ...uint32) {
		for _, x := range v {
			out = binary.BigEndian.AppendUint32(out, x)
		}
	}
	switch {
	case prog != ProgPortmap:
		put(1) // PROG_UNAVAIL
	case vers != 2:
		put(2, 2, 2) // PROG_MISMATCH, low 2, high 2
	case proc == procNull:
		put(0)
	case proc == procGetport:
		p, v, prot := r.U32(), r.U32(), r.U32()
		r.U32() // port: ignored
		if r.Bad {
			put(4) // GARBAGE_ARGS
			break
		}
		port := uint32(0)
		for _, m := range table {
			if m.Prog == p && m.Vers == v && m.Prot == prot {
				port = m.Port
				break
			}
		}
		put(0, port)
	case proc == procDump:
		put(0)
		for _, m := range table {
			put(1, m.Prog, m.Vers, m.Prot, m.Port)
		}
		put(0)
	default:
		put(3) // PROC_UNAVAIL
	}
	return out
}

// Serve answers portmap queries on udp and tcp (either may be nil) until
// ctx is done, then closes them and returns nil. nfsPort and mountPort are
// what GETPORT answers for NFSv3 and MOUNTv3 over TCP.
func Serve(ctx context.Context, udp net.PacketConn, tcp net.Listener, nfsPort, mountPort int, log *slog.Logger) error {
	if udp == nil && tcp == nil {
		return errors.New("portmap: no socket to serve on")
	}
	if log == nil {
		log = slog.Default()
	}
	tcpPort, udpPort := 0, 0
	if tcp != nil {
		if a, ok := tcp.Addr().(*net.TCPAddr); ok {
			tcpPort = a.Port
		}
	}
	if udp != nil {
		if a, ok := udp.LocalAddr().(*net.UDPAddr); ok {
			udpPort = a.Port
		}
	}
	table := Table(nfsPort, mountPort, tcpPort, udpPort)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 2)
	if udp != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errc <- serveUDP(ctx, udp, table, log)
		}()
	}
	if tcp != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errc <- serveTCP(ctx, tcp, table, log)
		}()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	cancel()
	if udp != nil {
		udp.Close()
	}
	if tcp != nil {
		tcp.Close()
	}
	wg.Wait()
	if ctx.Err() != nil && errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

func serveUDP(ctx context.Context, c net.PacketConn, table []Mapping, log *slog.Logger) error {
	buf := make([]byte, 9000)
	for {
		n, peer, err := c.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("portmap: reading UDP: %w", err)
		}
		if out := Reply(buf[:n], table); out != nil {
			logQuery(log, "udp", peer, buf[:n], out)
			c.WriteTo(out, peer)
		}
	}
}

func serveTCP(ctx context.Context, l net.Listener, table []Mapping, log *slog.Logger) error {
	sem := make(chan struct{}, maxTCPConns)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return fmt.Errorf("portmap: accepting TCP: %w", err)
		}
		select {
		case sem <- struct{}{}:
		default:
			c.Close() // too many clients at once
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			serveConn(ctx, c, table, log)
		}()
	}
}

// serveConn answers record-marked calls on one TCP connection until the
// client closes it, idles, or sends garbage.
func serveConn(ctx context.Context, c net.Conn, table []Mapping, log *slog.Logger) {
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	var hdr [4]byte
	for {
		c.SetDeadline(time.Now().Add(idleTimeout))
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return
		}
		mark := binary.BigEndian.Uint32(hdr[:])
		n := mark &^ (1 << 31)
		if mark&(1<<31) == 0 || n > maxTCPRecord {
			return // fragmented or oversized: not a portmap query
		}
		msg := make([]byte, n)
		if _, err := io.ReadFull(c, msg); err != nil {
			return
		}
		out := Reply(msg, table)
		if out == nil {
			return
		}
		logQuery(log, "tcp", c.RemoteAddr(), msg, out)
		frame := binary.BigEndian.AppendUint32(nil, uint32(len(out))|1<<31)
		if _, err := c.Write(append(frame, out...)); err != nil {
			return
		}
	}
}

func logQuery(log *slog.Logger, proto string, peer net.Addr, msg, out []byte) {
	if !log.Enabled(context.Background(), slog.LevelDebug) || len(msg) < 24 {
		return
	}
	r := &xdr.Reader{B: msg, Off: 20}
	proc := r.U32()
	if proc != procGetport {
		log.Debug("portmap query", "proto", proto, "client", peer.String(), "proc", proc)
		return
	}
	r.Auth()
	r.Auth()
	p, v, prot := r.U32(), r.U32(), r.U32()
	port := uint32(0)
	if len(out) >= 4 {
		port = binary.BigEndian.Uint32(out[len(out)-4:])
	}
	log.Debug("portmap GETPORT", "proto", proto, "client", peer.String(), "prog", p, "vers", v, "prot", prot, "port", port)
}
