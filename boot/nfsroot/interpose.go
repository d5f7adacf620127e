package nfsroot

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// The permission interposer sits between the TCP connection and go-nfs,
// which checks no permissions at all. It reads the RPC record stream in
// both directions:
//
//   - on each CALL it remembers xid -> (program, procedure, AUTH_SYS
//     uid/gid/gids), and checks that the file handle the call names belongs
//     to a commit the client address may mount (a handle is useless on
//     another node's connection: its MAC is broken, so go-nfs answers
//     NFS3ERR_STALE);
//   - on each REPLY it ANDs an ACCESS result with what the reply's own
//     attributes allow that caller, and turns READ, READLINK, READDIR,
//     READDIRPLUS and LOOKUP replies on objects the caller may not read (or
//     directories it may not search) into NFS3ERR_ACCES.
//
// A malformed stream closes the connection; nothing is answered.

// maxPending bounds the calls awaiting a reply on one connection.
const maxPending = 4096

type permListener struct {
	net.Listener
	s *Server
}

func (l *permListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		pc := newPermConn(c, l.s)
		key := pc.ip.String()
		l.s.mu.Lock()
		if l.s.closed {
			l.s.mu.Unlock()
			c.Close()
			return nil, net.ErrClosed
		}
		if l.s.perIP[key] >= l.s.cfg.MaxConnsPerClient {
			logIt := time.Since(l.s.refused) > time.Minute
			if logIt {
				l.s.refused = time.Now()
			}
			l.s.mu.Unlock()
			c.Close()
			l.s.stats.refusedConns.Add(1)
			if logIt {
				l.s.log.Warn("nfs: refusing connections from a client over its limit (logged once a minute)",
					"client", key, "limit", l.s.cfg.MaxConnsPerClient)
			}
			continue
		}
		l.s.conns[pc] = true
		l.s.perIP[key]++
		l.s.mu.Unlock()
		l.s.stats.conns.Add(1)
		return pc, nil
	}
}

// permConn is one interposed client connection. Its reader goroutine
// (readLoop, pipeline.go) owns the socket's read side.
type permConn struct {
	net.Conn
	s  *Server
	ip net.IP

	hdr   [4]byte       // the reader's record mark
	w     *worker       // the reader's, for calls it answers itself
	slots chan struct{} // one per read path call in flight
	done  chan struct{} // closed by Close
	once  sync.Once

	pmu     sync.Mutex
	pcond   *sync.Cond
	pending []byte // whole, checked records for go-nfs to read
	rerr    error  // why the reader stopped: go-nfs gets it after pending

	mu      sync.Mutex
	calls   map[uint32]call
	commits map[[20]byte]bool // commit (or 'W'||work id) -> client may use it

	wmu  sync.Mutex // held while a whole record is written
	wbuf []byte     // bytes go-nfs wrote, not yet a whole record

	bmu          sync.Mutex // small read path replies waiting to be written together
	batch, spare []byte
	flushing     bool
}

// inject sends a reply of our own, between whole records.
func (c *permConn) inject(reply []byte) error {
	frame := binary.BigEndian.AppendUint32(nil, uint32(len(reply))|1<<31)
	frame = append(frame, reply...)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeLocked(frame)
}

// writeTimeout drops a client that leaves its replies unread this long
// (a worker blocked on it would otherwise be lost to every other node).
var writeTimeout = time.Minute

// writeLocked writes whole records; c.wmu is held.
func (c *permConn) writeLocked(b []byte) error {
	c.Conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := c.Conn.Write(b)
	return err
}

// newPermConn interposes on c and starts its reader.
func newPermConn(c net.Conn, s *Server) *permConn {
	pc := &permConn{Conn: c, s: s, ip: clientIP(c), calls: map[uint32]call{}, commits: map[[20]byte]bool{},
		slots: make(chan struct{}, s.cfg.MaxInFlightPerConn), done: make(chan struct{})}
	pc.pcond = sync.NewCond(&pc.pmu)
	go pc.readLoop()
	return pc
}

var errStream = errors.New("nfs: malformed RPC stream from client")

// splitRecord takes one record off the front of b (single-fragment records
// only, as go-nfs accepts). It returns nil when b holds no whole record yet.
func splitRecord(b []byte) (rec, rest []byte, err error) {
	if len(b) < 4 {
		return nil, b, nil
	}
	n, err := recordLen(binary.BigEndian.Uint32(b))
	if err != nil {
		return nil, nil, err
	}
	if len(b) < 4+n {
		return nil, b, nil
	}
	return b[4 : 4+n], b[4+n:], nil
}

// checkCall remembers a call for go-nfs until its reply, and breaks the
// MAC of a handle the client may not use.
func (c *permConn) checkCall(rec []byte, cl call) error {
	parseSetattrMode(rec, &cl)
	if fh, off := firstHandle(rec, cl); off >= 0 && !c.handleAllowed(fh) {
		// Break the MAC: go-nfs then answers NFS3ERR_STALE.
		c.s.stats.handlesRefused.Add(1)
		for i := off + len(fh) - macLen; i < off+len(fh); i++ {
			rec[i] ^= 0xff
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.calls) >= maxPending {
		return errStream
	}
	c.calls[cl.xid] = cl
	return nil
}

// handleAllowed asks Config.Authorize, once per connection and export,
// whether this client may use a handle of that export. Handles of no known
// shape are left to go-nfs, which refuses them.
func (c *permConn) handleAllowed(fh []byte) bool {
	switch {
	case len(fh) == handleLen:
		var commit [20]byte
		copy(commit[:], fh[:20])
		return c.commitAllowed(commit)
	case isWorkHandle(fh):
		var id [20]byte
		id[0] = 'W'
		copy(id[1:], fh[4:12])
		return c.workAllowed(id)
	}
	return true
}

// workAllowed checks a maintenance export (keyed 'W' || id in the cache).
func (c *permConn) workAllowed(key [20]byte) bool {
	c.mu.Lock()
	ok, known := c.commits[key]
	c.mu.Unlock()
	if known {
		return ok
	}
	w, err := c.s.workByID(key[1:9])
	if err != nil {
		return true // unknown export: FromHandle refuses it
	}
	ok = false
	if c.s.cfg.Authorize != nil {
		exp, granted := c.s.cfg.Authorize(c.ip, "/w/"+w.name)
		if granted && exp.Dir != "" {
			dir, _ := filepath.Abs(exp.Dir)
			ok = dir == w.dir && exp.ReadWrite == w.rw
		}
	}
	if !ok {
		c.s.log.Warn("nfs: refusing a file handle of a maintenance export this client may not mount", "client", c.ip.String(), "node", w.name)
	}
	c.mu.Lock()
	c.commits[key] = ok
	c.mu.Unlock()
	return ok
}

// commitAllowed asks Config.Authorize, once per connection and commit,
// whether this client may use a handle of that commit.
func (c *permConn) commitAllowed(commit [20]byte) bool {
	c.mu.Lock()
	ok, known := c.commits[commit]
	c.mu.Unlock()
	if known {
		return ok
	}
	want := hex.EncodeToString(commit[:])
	ok = false
	if c.s.cfg.Authorize != nil {
		exp, granted := c.s.cfg.Authorize(c.ip, "/c/"+want)
		ok = granted && strings.EqualFold(exp.Commit, want)
	}
	if !ok {
		c.s.log.Warn("nfs: refusing a file handle of a commit this client may not mount", "client", c.ip.String(), "commit", want)
	}
	c.mu.Lock()
	c.commits[commit] = ok
	c.mu.Unlock()
	return ok
}

// Write forwards go-nfs's replies record by record, filtered.
func (c *permConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wbuf = append(c.wbuf, p...)
	for len(c.wbuf) >= 4 {
		mark := binary.BigEndian.Uint32(c.wbuf)
		n := int(mark &^ (1 << 31))
		if len(c.wbuf) < 4+n {
			break
		}
		rec := c.wbuf[4 : 4+n]
		out := c.filter(rec)
		hdr := binary.BigEndian.AppendUint32(nil, uint32(len(out))|(mark&(1<<31)))
		c.Conn.SetWriteDeadline(time.Now().Add(writeTimeout))
		bufs := net.Buffers{hdr, out}
		_, err := bufs.WriteTo(c.Conn)
		c.wbuf = c.wbuf[4+n:]
		if err != nil {
			return 0, err
		}
	}
	if len(c.wbuf) == 0 {
		c.wbuf = nil
	}
	return len(p), nil
}

func (c *permConn) filter(rec []byte) []byte {
	if len(rec) < 4 {
		return rec
	}
	xid := binary.BigEndian.Uint32(rec)
	c.mu.Lock()
	cl, ok := c.calls[xid]
	delete(c.calls, xid)
	c.mu.Unlock()
	if !ok {
		return rec
	}
	if cl.setattrFH != nil && isWorkHandle(cl.setattrFH) && setattrOK(rec) {
		// go-nfs applies only mode&0777 (and skips chmod when those bits are
		// unchanged): apply the setuid/setgid/sticky bits the client asked for.
		if err := c.s.workChmod(cl.setattrFH, cl.setattrMode); err != nil {
			c.s.log.Warn("nfs: cannot apply the full mode of a SETATTR", "client", c.ip.String(), "err", err)
		} else {
			patchSetattrMode(rec, cl.setattrMode)
		}
	}
	if cl.createMode != 0 {
		// go-nfs creates with mode&0777: add the special bits asked for.
		if fh, modeOff := createdHandle(rec); isWorkHandle(fh) {
			if err := c.s.workChmod(fh, cl.createMode); err != nil {
				c.s.log.Warn("nfs: cannot apply the full mode of a CREATE/MKDIR", "client", c.ip.String(), "err", err)
			} else if modeOff >= 0 {
				old := binary.BigEndian.Uint32(rec[modeOff:])
				binary.BigEndian.PutUint32(rec[modeOff:], old&^0o7777|cl.createMode)
			}
		}
	}
	out, refused := filterReply(rec, cl)
	if refused {
		c.s.stats.denied.Add(1)
		c.s.log.Debug("nfs: permission denied", "client", c.ip.String(), "uid", cl.cred.uid, "proc", cl.proc)
	}
	return out
}

// Close closes the connection and forgets it.
func (c *permConn) Close() error {
	c.once.Do(func() { close(c.done) })
	c.pmu.Lock()
	if c.rerr == nil {
		c.rerr = errClosed
	}
	c.pcond.Broadcast()
	c.pmu.Unlock()
	c.s.mu.Lock()
	if c.s.conns[c] {
		delete(c.s.conns, c)
		c.s.stats.conns.Add(-1)
		key := c.ip.String()
		if c.s.perIP[key]--; c.s.perIP[key] <= 0 {
			delete(c.s.perIP, key)
		}
	}
	c.s.mu.Unlock()
	return c.Conn.Close()
}
