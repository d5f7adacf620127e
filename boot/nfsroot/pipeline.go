package nfsroot

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"sync"
)

// Many calls in flight per connection. A Linux client puts a whole mount on
// one TCP connection and keeps many calls outstanding (readahead, parallel
// lookups from many processes); go-nfs answers one at a time per
// connection. So each interposed connection has its own reader goroutine
// that splits the record stream, and the calls the read path answers
// (readpath.go) go to a pool of workers shared by all connections:
//
//   - at most Config.MaxInFlightPerConn calls of one connection are queued
//     or being answered at once; the reader waits (and TCP pushes back on
//     the client) until one is answered, so one node cannot fill the queue;
//   - at most Config.MaxInFlight calls are answered at once, by that many
//     workers (or by a connection's reader, for a call that comes alone),
//     whatever the number of connections: the server's memory for replies
//     is bounded by it, not by the number of clients;
//   - each reply is written whole, as one record, under the connection's
//     write lock, in whatever order the calls finish: RPC matches replies to
//     calls by XID, and the Linux client takes them in any order;
//   - every other call (NULL, MOUNT, /w/ exports, writes) is checked as
//     before and queued, whole, for go-nfs, which reads them through
//     permConn.Read and answers them one at a time.

// DefaultMaxInFlight is Config.MaxInFlight's default.
const DefaultMaxInFlight = 64

// DefaultMaxInFlightPerConn is Config.MaxInFlightPerConn's default.
const DefaultMaxInFlightPerConn = 16

// maxQueued bounds the bytes of calls waiting for go-nfs on one connection.
const maxQueued = 2 * maxRecord

// job is one read path call: its record, the parsed call, and the buffer
// its reply is built in.
type job struct {
	c   *permConn
	rec []byte
	cl  call
	out []byte
	big *bigBuf // a large READ's reply buffer, from bigPools
}

// keepOut is the largest reply buffer a pooled job keeps; larger READ
// replies use bigPools.
const keepOut = maxDirReply + 4096

var jobPool = sync.Pool{New: func() any { return &job{out: make([]byte, 0, 4096)} }}

func getJob(c *permConn) *job {
	j := jobPool.Get().(*job)
	j.c = c
	return j
}

func (j *job) release() {
	if j.big != nil {
		bigPools[j.big.class].Put(j.big)
		j.big = nil
	}
	if cap(j.out) > keepOut {
		j.out = make([]byte, 0, 4096)
	}
	if cap(j.rec) > 64<<10 {
		j.rec = nil
	}
	j.c = nil
	jobPool.Put(j)
}

// bigBuf is a pooled READ reply buffer of one size class.
type bigBuf struct {
	b     []byte
	class int
}

// bigClasses are the sizes of pooled READ buffers, up to rtMax and its
// header.
var bigClasses = [...]int{128 << 10, 256 << 10, 512 << 10, rtMax + 4096}

var bigPools [len(bigClasses)]sync.Pool

// bigBuf returns a buffer of at least need bytes holding a copy of b.
func (j *job) bigBuf(need int, b []byte) []byte {
	class := 0
	for class < len(bigClasses)-1 && bigClasses[class] < need {
		class++
	}
	bb, _ := bigPools[class].Get().(*bigBuf)
	if bb == nil {
		bb = &bigBuf{b: make([]byte, 0, bigClasses[class]), class: class}
	}
	j.big = bb
	return append(bb.b[:0], b...)
}

// startWorkers starts the read path's pool; the workers end with s.ctx.
func (s *Server) startWorkers() {
	s.jobs = make(chan *job, s.cfg.MaxInFlight)
	s.busy = make(chan struct{}, s.cfg.MaxInFlight)
	for range s.cfg.MaxInFlight {
		w := newWorker(s)
		go func() {
			for {
				select {
				case j := <-s.jobs:
					s.busy <- struct{}{}
					c := j.c
					w.reply(j)
					<-s.busy
					<-c.slots
				case <-s.ctx.Done():
					return
				}
			}
		}()
	}
}

// smallReply is the largest reply that is copied into the connection's
// batch (see send) rather than written on its own; maxBatch bounds the
// batch.
const (
	smallReply = 4 << 10
	maxBatch   = 64 << 10
)

// reply answers one call, sends its reply and releases the job.
func (w *worker) reply(j *job) {
	c := j.c
	out := w.answer(j)
	if len(out) <= smallReply {
		c.send(out)
	} else {
		c.wmu.Lock()
		err := c.writeLocked(out)
		c.wmu.Unlock()
		if err != nil {
			c.Close()
		}
	}
	j.release()
}

// send writes a small reply, batched with the others that finish while a
// write is under way: the first worker with a reply writes, and keeps
// writing what the others appended meanwhile, so a burst of GETATTR and
// ACCESS replies costs a few writes instead of one each.
func (c *permConn) send(out []byte) {
	c.bmu.Lock()
	if c.flushing && len(c.batch) >= maxBatch {
		// The client reads slowly: wait for the socket like a large
		// reply, holding this call's place, so the batch cannot grow.
		c.bmu.Unlock()
		c.wmu.Lock()
		err := c.writeLocked(out)
		c.wmu.Unlock()
		if err != nil {
			c.Close()
		}
		return
	}
	c.batch = append(c.batch, out...)
	if c.flushing {
		c.bmu.Unlock()
		return
	}
	c.flushing = true
	var err error
	for len(c.batch) > 0 && err == nil {
		buf := c.batch
		c.batch = c.spare[:0]
		c.bmu.Unlock()
		c.wmu.Lock()
		err = c.writeLocked(buf)
		c.wmu.Unlock()
		c.bmu.Lock()
		c.spare = buf[:0]
	}
	c.batch = c.batch[:0]
	c.flushing = false
	c.bmu.Unlock()
	if err != nil {
		c.Close()
	}
}

// answerInline answers a call on the reader's own goroutine when it is the
// only one the connection has (nothing in flight, nothing more buffered:
// a client waiting for each reply, or a lone lookup) and a worker's place
// is free: a call one client waits for costs no hand-off. Calls that come
// together still go to the workers, so the reader keeps reading.
func (c *permConn) answerInline(j *job, buffered int) bool {
	if buffered > 0 || len(c.slots) > 0 {
		return false
	}
	select {
	case c.s.busy <- struct{}{}:
	default:
		return false
	}
	if c.w == nil {
		c.w = newWorker(c.s)
	}
	c.w.reply(j)
	<-c.s.busy
	return true
}

// recordLen checks a record mark: one fragment (go-nfs takes no others),
// a length an RPC call can have.
func recordLen(mark uint32) (int, error) {
	if mark&(1<<31) == 0 {
		return 0, errStream
	}
	n := int(mark &^ (1 << 31))
	if n < 24 || n > maxRecord {
		return 0, errStream
	}
	return n, nil
}

// readLoop reads the client's calls until the connection ends. Read path
// calls go to the workers, everything else to go-nfs (permConn.Read).
func (c *permConn) readLoop() {
	err := c.readCalls()
	switch {
	case errors.Is(err, errStream) || errors.Is(err, errGarbage):
		c.s.log.Warn("nfs: closing a connection that sent garbage", "client", c.ip.String(), "err", err)
		c.Close()
	case errors.Is(err, io.EOF):
		// Let the calls in flight be answered before go-nfs sees the end.
	drain:
		for range cap(c.slots) {
			select {
			case c.slots <- struct{}{}:
			case <-c.done:
				break drain
			case <-c.s.ctx.Done():
				break drain
			}
		}
	}
	c.pmu.Lock()
	if c.rerr == nil {
		c.rerr = err
	}
	c.pcond.Broadcast()
	c.pmu.Unlock()
	if !errors.Is(err, io.EOF) {
		c.Close() // go-nfs closes only on a clean EOF
	}
}

func (c *permConn) readCalls() error {
	br := bufio.NewReaderSize(c.Conn, 64<<10)
	for {
		if _, err := io.ReadFull(br, c.hdr[:]); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return io.EOF
			}
			return err
		}
		n, err := recordLen(binary.BigEndian.Uint32(c.hdr[:]))
		if err != nil {
			return err
		}
		j := getJob(c)
		if cap(j.rec) < n {
			j.rec = make([]byte, n, max(n, 512))
		}
		j.rec = j.rec[:n]
		if _, err := io.ReadFull(br, j.rec); err != nil {
			j.release()
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return io.EOF
			}
			return err
		}
		if reply := versionMismatch(j.rec); reply != nil {
			// go-nfs ignores the version; answer NFSv2/v4 and MOUNT v1/v2
			// ourselves, so clients fall back to v3 instead of misparsing.
			j.release()
			if err := c.inject(reply); err != nil {
				return err
			}
			continue
		}
		j.cl, err = parseCall(j.rec)
		if err != nil {
			j.release()
			return err
		}
		if isFast(j.rec, &j.cl) {
			if c.answerInline(j, br.Buffered()) {
				continue
			}
			select {
			case c.slots <- struct{}{}:
			case <-c.done:
				j.release()
				return errClosed
			}
			select {
			case c.s.jobs <- j:
			case <-c.s.ctx.Done():
				j.release()
				return errClosed
			}
			continue
		}
		err = c.queueCall(j.rec, j.cl)
		j.release()
		if err != nil {
			return err
		}
	}
}

var errClosed = errors.New("nfs: connection closed")

// queueCall checks a call for go-nfs and queues it, whole, for Read.
func (c *permConn) queueCall(rec []byte, cl call) error {
	if err := c.checkCall(rec, cl); err != nil {
		return err
	}
	c.pmu.Lock()
	defer c.pmu.Unlock()
	for len(c.pending) > maxQueued && c.rerr == nil {
		c.pcond.Wait()
	}
	if c.rerr != nil {
		return errClosed
	}
	c.pending = binary.BigEndian.AppendUint32(c.pending, uint32(len(rec))|1<<31)
	c.pending = append(c.pending, rec...)
	c.pcond.Broadcast()
	return nil
}

// Read hands go-nfs whole, checked records only, as the reader queued them.
func (c *permConn) Read(p []byte) (int, error) {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	for len(c.pending) == 0 && c.rerr == nil {
		c.pcond.Wait()
	}
	if len(c.pending) == 0 {
		return 0, c.rerr
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	if len(c.pending) == 0 {
		c.pending = nil
	}
	c.pcond.Broadcast()
	return n, nil
}
