package bootsim

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"syscall"

	"github.com/onesis/git-onesis/boot/xdr"
)

// rpcClient is an ONC RPC (RFC 5531) client over one TCP connection that
// keeps many calls in flight, as the Linux kernel's sunrpc does for an NFS
// mount: calls are written whole as they come, a reader goroutine matches
// each reply to its call by XID, in whatever order replies arrive. At most
// cap(slots) calls are outstanding (the kernel's RPC slot table).
type rpcClient struct {
	conn  net.Conn
	cred  []byte // opaque_auth of every call: AUTH_SYS
	slots chan struct{}

	wmu sync.Mutex

	mu      sync.Mutex
	xid     uint32
	waiting map[uint32]*rpcCall
	err     error // why the connection ended
	calls   int64
}

// rpcCall is one outstanding call.
type rpcCall struct {
	done  chan struct{}
	reply []byte // the whole reply record, in buf's storage when it fits
	buf   []byte
	err   error
}

var errRPCClosed = errors.New("RPC connection closed")

// dialPrivileged connects from a port below 1024, as the kernel's NFS
// client does (servers may insist on it for AUTH_SYS).
func dialPrivileged(ctx context.Context, host string, port int) (net.Conn, error) {
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	var last error
	for try := 0; try < 64; try++ {
		d := net.Dialer{LocalAddr: &net.TCPAddr{Port: 600 + rand.IntN(424)}}
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			return c, nil
		}
		last = err
		if !errors.Is(err, syscall.EADDRINUSE) && !errors.Is(err, syscall.EADDRNOTAVAIL) {
			break
		}
	}
	return nil, fmt.Errorf("connecting to %s from a privileged port: %w", addr, last)
}

// authSys encodes an AUTH_SYS credential and an AUTH_NULL verifier.
func authSys(uid, gid uint32) []byte {
	var body []byte
	body = xdr.AppendU32(body, 0) // stamp
	body = xdr.AppendString(body, "bootsim")
	body = xdr.AppendU32(body, uid)
	body = xdr.AppendU32(body, gid)
	body = xdr.AppendU32(body, 0) // no supplementary groups
	b := xdr.AppendU32(nil, 1)    // AUTH_SYS
	b = xdr.AppendOpaque(b, body)
	b = xdr.AppendU32(b, 0) // verifier: AUTH_NULL
	return xdr.AppendU32(b, 0)
}

func newRPCClient(conn net.Conn, uid, gid uint32, inFlight int) *rpcClient {
	c := &rpcClient{conn: conn, cred: authSys(uid, gid), slots: make(chan struct{}, inFlight),
		waiting: map[uint32]*rpcCall{}, xid: rand.Uint32()}
	go c.readReplies()
	return c
}

func (c *rpcClient) Close() error { return c.conn.Close() }

// start sends a call; its reply is read into buf when buf is large enough.
// args is encoded by the caller.
func (c *rpcClient) start(ctx context.Context, prog, vers, proc uint32, args []byte, buf []byte) (*rpcCall, error) {
	select {
	case c.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	call := &rpcCall{done: make(chan struct{}), buf: buf}
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		<-c.slots
		return nil, err
	}
	c.xid++
	xid := c.xid
	c.waiting[xid] = call
	c.calls++
	c.mu.Unlock()
	rec := make([]byte, 4, 4+40+len(c.cred)+len(args))
	rec = xdr.AppendU32(rec, xid)
	rec = xdr.AppendU32(rec, 0) // CALL
	rec = xdr.AppendU32(rec, 2) // RPC version 2
	rec = xdr.AppendU32(rec, prog)
	rec = xdr.AppendU32(rec, vers)
	rec = xdr.AppendU32(rec, proc)
	rec = append(rec, c.cred...)
	rec = append(rec, args...)
	binary.BigEndian.PutUint32(rec, uint32(len(rec)-4)|1<<31)
	c.wmu.Lock()
	_, err := c.conn.Write(rec)
	c.wmu.Unlock()
	if err != nil {
		c.fail(fmt.Errorf("sending an RPC call: %w", err))
	}
	return call, nil
}

// wait returns the call's results (after the accepted, successful reply
// header).
func (call *rpcCall) wait(ctx context.Context) ([]byte, error) {
	select {
	case <-call.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if call.err != nil {
		return nil, call.err
	}
	r := xdr.Reader{B: call.reply, Off: 4} // past the XID
	if mtype := r.U32(); mtype != 1 {
		return nil, errors.New("RPC reply of the wrong message type")
	}
	if stat := r.U32(); r.Bad || stat != 0 {
		return nil, fmt.Errorf("RPC call denied (reply_stat %d)", stat)
	}
	r.Auth()
	if acc := r.U32(); r.Bad || acc != 0 {
		return nil, fmt.Errorf("RPC call not accepted (accept_stat %d)", acc)
	}
	return call.reply[r.Off:], nil
}

// call sends one call and waits for its results.
func (c *rpcClient) call(ctx context.Context, prog, vers, proc uint32, args []byte) ([]byte, error) {
	call, err := c.start(ctx, prog, vers, proc, args, nil)
	if err != nil {
		return nil, err
	}
	return call.wait(ctx)
}

// fail ends every outstanding call with err.
func (c *rpcClient) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.err = err
	}
	for xid, call := range c.waiting {
		delete(c.waiting, xid)
		call.err = c.err
		close(call.done)
		<-c.slots
	}
	c.conn.Close()
}

func (c *rpcClient) readReplies() {
	br := bufio.NewReaderSize(c.conn, 256<<10)
	var hdr [4]byte
	for {
		var rec []byte
		var call *rpcCall
		for last := false; !last; {
			if _, err := io.ReadFull(br, hdr[:]); err != nil {
				c.fail(fmt.Errorf("reading RPC replies: %w", errOr(err, errRPCClosed)))
				return
			}
			mark := binary.BigEndian.Uint32(hdr[:])
			last = mark&(1<<31) != 0
			n := int(mark &^ (1 << 31))
			if len(rec)+n > 16<<20 {
				c.fail(errors.New("an RPC reply over 16 MiB"))
				return
			}
			if rec == nil && n >= 4 {
				// Find the call first, to read into its buffer.
				b, err := br.Peek(4)
				if err != nil {
					c.fail(fmt.Errorf("reading RPC replies: %w", err))
					return
				}
				c.mu.Lock()
				call = c.waiting[binary.BigEndian.Uint32(b)]
				c.mu.Unlock()
				if call != nil && cap(call.buf) >= n {
					rec = call.buf[:0]
				}
			}
			start := len(rec)
			rec = append(rec, make([]byte, n)...)
			if _, err := io.ReadFull(br, rec[start:]); err != nil {
				c.fail(fmt.Errorf("reading RPC replies: %w", err))
				return
			}
		}
		if len(rec) < 4 {
			c.fail(errors.New("an RPC reply without an XID"))
			return
		}
		c.mu.Lock()
		xid := binary.BigEndian.Uint32(rec)
		call = c.waiting[xid]
		delete(c.waiting, xid)
		c.mu.Unlock()
		if call == nil {
			continue // a reply to nothing we asked: ignore, as the kernel does
		}
		call.reply = rec
		close(call.done)
		<-c.slots
	}
}

func errOr(err, eof error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return eof
	}
	return err
}
