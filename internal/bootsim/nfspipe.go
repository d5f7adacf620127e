package bootsim

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/onesis/git-onesis/boot/xdr"
)

// PipelineOptions shape ReadRootPipelined's load. The zero value is a
// kernel-like client: 64 RPC slots, 16 processes, 128 KiB READs (Linux's
// default readahead window), 4 READs in flight per file, READDIRPLUS.
type PipelineOptions struct {
	UID, GID uint32
	// MountPort is the MOUNT service's port (0: the NFS port, as serve
	// has it).
	MountPort int
	// InFlight is the RPC slot table: calls outstanding on the connection.
	InFlight int
	// Procs is how many directories and files are worked on at once, as
	// by that many processes.
	Procs int
	// ReadSize is the size of each READ (capped by the server's rtmax).
	ReadSize int
	// ReadAhead is how many READs of one file are in flight at once.
	ReadAhead int
	// NoRdirplus lists directories with READDIR and LOOKUPs every name
	// (mount -o nordirplus), instead of taking handles from READDIRPLUS.
	NoRdirplus bool
}

func (o *PipelineOptions) defaults() {
	if o.InFlight <= 0 {
		o.InFlight = 64
	}
	if o.Procs <= 0 {
		o.Procs = 16
	}
	if o.ReadSize <= 0 {
		o.ReadSize = 128 << 10
	}
	if o.ReadAhead <= 0 {
		o.ReadAhead = 4
	}
}

// NFSv3 procedures and statuses this client uses (RFC 1813).
const (
	progNFS3      = 100003
	progMount3    = 100005
	procGetattr   = 1
	procLookup    = 3
	procAccess    = 4
	procReadlink  = 5
	procRead      = 6
	procReaddir   = 16
	procReaddirp  = 17
	procFsinfo    = 19
	mountProcMnt  = 1
	accessAll     = 0x3f
	fattr3Size    = 84
	maxHandleSize = 64
)

// attr is the part of a fattr3 this client keeps.
type attr struct {
	typ    uint32
	size   uint64
	fileid uint64
}

// dentry is a cached name: its handle and attributes.
type dentry struct {
	fh []byte
	a  attr
}

// dkey names a dentry: directory and name.
type dkey struct {
	dir  uint64
	name string
}

// pipeClient is one simulated node's NFS mount.
type pipeClient struct {
	rpc    *rpcClient
	opt    PipelineOptions
	rsize  int
	dtsize int
	dmu    sync.Mutex
	dcache map[dkey]dentry // the dentry cache

	accessed map[uint64]bool // fileids whose ACCESS is cached
	lookups  atomic.Int64
}

func readAttr(r *xdr.Reader) attr {
	start := r.Off
	a := attr{typ: r.U32()}
	r.Skip(16) // mode, nlink, uid, gid
	a.size = r.U64()
	r.Skip(8 + 8 + 8) // used, rdev, fsid
	a.fileid = r.U64()
	r.Off = start
	r.Skip(fattr3Size)
	return a
}

// postOp reads a post_op_attr.
func postOp(r *xdr.Reader) (attr, bool) {
	if !r.Bool() {
		return attr{}, false
	}
	return readAttr(r), !r.Bad
}

type nfsError struct {
	proc, status uint32
}

func (e *nfsError) Error() string {
	return fmt.Sprintf("NFS procedure %d failed: status %d", e.proc, e.status)
}

// status reads an NFS status; a failure becomes an *nfsError.
func status(r *xdr.Reader, proc uint32) error {
	st := r.U32()
	if r.Bad {
		return fmt.Errorf("NFS procedure %d: short reply", proc)
	}
	if st != 0 {
		return &nfsError{proc, st}
	}
	return nil
}

func fhArgs(fh []byte) []byte { return xdr.AppendOpaque(nil, fh) }

// nfs3 makes an NFSv3 call and returns a reader of its results after a
// successful status.
func (pc *pipeClient) nfs3(ctx context.Context, proc uint32, args []byte) (*xdr.Reader, error) {
	res, err := pc.rpc.call(ctx, progNFS3, 3, proc, args)
	if err != nil {
		return nil, err
	}
	r := &xdr.Reader{B: res}
	if err := status(r, proc); err != nil {
		return nil, err
	}
	return r, nil
}

// mount asks the MOUNT service for export's root handle, on a connection
// of its own (as mount.nfs does before the NFS connection).
func mount(ctx context.Context, host string, port int, export string, uid, gid uint32) ([]byte, error) {
	conn, err := dialPrivileged(ctx, host, port)
	if err != nil {
		return nil, err
	}
	c := newRPCClient(conn, uid, gid, 1)
	defer c.Close()
	res, err := c.call(ctx, progMount3, 3, mountProcMnt, xdr.AppendString(nil, export))
	if err != nil {
		return nil, fmt.Errorf("MOUNT %s: %w", export, err)
	}
	r := xdr.Reader{B: res}
	if st := r.U32(); r.Bad || st != 0 {
		return nil, fmt.Errorf("MOUNT %s: refused (status %d)", export, st)
	}
	fh := r.Opaque(maxHandleSize)
	if r.Bad {
		return nil, fmt.Errorf("MOUNT %s: malformed reply", export)
	}
	return append([]byte(nil), fh...), nil
}

// ReadRootPipelined reads a whole root as a Linux NFS client would for a
// node whose processes read it all at once: it MOUNTs export from
// host:port, then on one NFS connection, with up to opt.InFlight calls in
// flight, lists every directory (READDIRPLUS, whose handles fill a dentry
// cache; a name not in it costs one LOOKUP), opens every regular file by
// path as open(2) does with close-to-open consistency (the dentry cache,
// a GETATTR, an ACCESS the first time a file is seen) and reads it with
// opt.ReadAhead READs of opt.ReadSize in flight, and reads every
// symlink's target; opt.Procs directories and files at once. file, if
// set, gets each regular file's path (relative, slash separated) and
// content, one call at a time; an error from it ends the read. ctx bounds
// the whole read.
func ReadRootPipelined(ctx context.Context, host string, port int, export string, opt PipelineOptions, file func(p string, data []byte) error) (*RootStats, error) {
	start := time.Now()
	opt.defaults()
	mport := opt.MountPort
	if mport == 0 {
		mport = port
	}
	root, err := mount(ctx, host, mport, export, opt.UID, opt.GID)
	if err != nil {
		return nil, err
	}
	conn, err := dialPrivileged(ctx, host, port)
	if err != nil {
		return nil, err
	}
	pc := &pipeClient{rpc: newRPCClient(conn, opt.UID, opt.GID, opt.InFlight), opt: opt,
		dcache: map[dkey]dentry{}, accessed: map[uint64]bool{}}
	defer pc.rpc.Close()
	stop := context.AfterFunc(ctx, func() { pc.rpc.fail(ctx.Err()) })
	defer stop()
	rootAttr, err := pc.fsinfo(ctx, root)
	if err != nil {
		return nil, err
	}
	w := &walker{pc: pc, file: file, st: &RootStats{}}
	w.cond = sync.NewCond(&w.mu)
	w.push(task{path: "/", d: dentry{fh: root, a: rootAttr}})
	var wg sync.WaitGroup
	for range opt.Procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run(ctx)
		}()
	}
	wg.Wait()
	w.st.Duration = time.Since(start)
	w.st.Calls = pc.rpc.calls
	w.st.Lookups = pc.lookups.Load()
	if ctx.Err() != nil {
		return w.st, fmt.Errorf("reading %s: %w", export, ctx.Err())
	}
	return w.st, w.err
}

// fsinfo asks for the server's preferred sizes (as the kernel does at
// mount) and returns the root's attributes.
func (pc *pipeClient) fsinfo(ctx context.Context, root []byte) (attr, error) {
	r, err := pc.nfs3(ctx, procFsinfo, fhArgs(root))
	if err != nil {
		return attr{}, fmt.Errorf("FSINFO: %w", err)
	}
	a, ok := postOp(r)
	rtmax, rtpref := r.U32(), r.U32()
	r.Skip(4 * 4) // rtmult, wtmax, wtpref, wtmult
	dtpref := r.U32()
	if r.Bad || !ok {
		return attr{}, errors.New("FSINFO: malformed reply or no root attributes")
	}
	pc.rsize = min(pc.opt.ReadSize, int(max(rtpref, 4096)), int(max(rtmax, 4096)))
	pc.dtsize = min(max(int(dtpref), 4096), 64<<10)
	return a, nil
}

// task is a directory, file or symlink to read.
type task struct {
	path string
	d    dentry
}

// walker hands tasks to the simulated processes.
type walker struct {
	pc      *pipeClient
	file    func(string, []byte) error
	mu      sync.Mutex
	cond    *sync.Cond
	queue   []task
	busy    int
	err     error
	st      *RootStats
	fileMu  sync.Mutex
	scratch sync.Pool
}

func (w *walker) push(t task) {
	w.mu.Lock()
	w.queue = append(w.queue, t)
	w.cond.Signal()
	w.mu.Unlock()
}

func (w *walker) run(ctx context.Context) {
	for {
		w.mu.Lock()
		for len(w.queue) == 0 && w.busy > 0 && w.err == nil {
			w.cond.Wait()
		}
		if len(w.queue) == 0 || w.err != nil {
			w.cond.Broadcast()
			w.mu.Unlock()
			return
		}
		t := w.queue[len(w.queue)-1]
		w.queue = w.queue[:len(w.queue)-1]
		w.busy++
		w.mu.Unlock()
		err := w.do(ctx, t)
		w.mu.Lock()
		w.busy--
		if err != nil && w.err == nil {
			w.err = err
		}
		w.cond.Broadcast()
		w.mu.Unlock()
	}
}

func (w *walker) do(ctx context.Context, t task) error {
	switch t.d.a.typ {
	case nf3Dir:
		return w.dir(ctx, t)
	case nf3Reg:
		return w.readFile(ctx, t)
	case nf3Lnk:
		return w.readlink(ctx, t)
	}
	w.mu.Lock()
	w.st.Other++
	w.mu.Unlock()
	return nil
}

func (w *walker) count(f func(st *RootStats)) {
	w.mu.Lock()
	f(w.st)
	w.mu.Unlock()
}

// dir lists a directory and queues what is in it.
func (w *walker) dir(ctx context.Context, t task) error {
	pc := w.pc
	proc := uint32(procReaddirp)
	if pc.opt.NoRdirplus {
		proc = procReaddir
	}
	var cookie uint64
	verf := make([]byte, 8)
	for {
		args := fhArgs(t.d.fh)
		args = xdr.AppendU64(args, cookie)
		args = append(args, verf...)
		if proc == procReaddirp {
			args = xdr.AppendU32(args, uint32(pc.dtsize/8)) // dircount, as Linux asks
		}
		args = xdr.AppendU32(args, uint32(pc.dtsize))
		r, err := pc.nfs3(ctx, proc, args)
		if err != nil {
			return fmt.Errorf("READDIR %s: %w", t.path, err)
		}
		postOp(r)
		copy(verf, r.B[min(r.Off, len(r.B)):])
		r.Skip(8)
		n := 0
		for r.Bool() {
			n++
			r.U64() // fileid
			name := string(r.Opaque(maxName3))
			cookie = r.U64()
			var d dentry
			haveAttr, haveFH := false, false
			if proc == procReaddirp {
				d.a, haveAttr = postOp(r)
				if r.Bool() {
					d.fh = append([]byte(nil), r.Opaque(maxHandleSize)...)
					haveFH = true
				}
			}
			if r.Bad {
				return fmt.Errorf("READDIR %s: malformed reply", t.path)
			}
			if name == "." || name == ".." {
				continue
			}
			p := path.Join(t.path, name)
			if !haveAttr || !haveFH {
				// No handle from the listing: the kernel LOOKUPs the name.
				var err error
				if d, err = pc.lookup(ctx, t.d, name); err != nil {
					return fmt.Errorf("LOOKUP %s: %w", p, err)
				}
			} else {
				pc.remember(t.d.a.fileid, name, d)
			}
			w.push(task{path: p, d: d})
		}
		eof := r.Bool()
		if r.Bad {
			return fmt.Errorf("READDIR %s: malformed reply", t.path)
		}
		if eof {
			break
		}
		if n == 0 {
			return fmt.Errorf("READDIR %s: no entries and no end of directory", t.path)
		}
	}
	w.count(func(st *RootStats) { st.Dirs++ })
	return nil
}

const maxName3 = 255

func (pc *pipeClient) remember(dir uint64, name string, d dentry) {
	pc.dmu.Lock()
	pc.dcache[dkey{dir, name}] = d
	pc.dmu.Unlock()
}

// lookup resolves one name in a directory through the dentry cache.
func (pc *pipeClient) lookup(ctx context.Context, dir dentry, name string) (dentry, error) {
	key := dkey{dir.a.fileid, name}
	pc.dmu.Lock()
	d, ok := pc.dcache[key]
	pc.dmu.Unlock()
	if ok {
		return d, nil
	}
	pc.lookups.Add(1)
	r, err := pc.nfs3(ctx, procLookup, xdr.AppendString(fhArgs(dir.fh), name))
	if err != nil {
		return d, err
	}
	d.fh = append([]byte(nil), r.Opaque(maxHandleSize)...)
	a, ok := postOp(r)
	if r.Bad || !ok {
		// No attributes with the handle: ask for them.
		if a, err = pc.getattr(ctx, d.fh); err != nil {
			return d, err
		}
	}
	d.a = a
	pc.dmu.Lock()
	pc.dcache[key] = d
	pc.dmu.Unlock()
	return d, nil
}

func (pc *pipeClient) getattr(ctx context.Context, fh []byte) (attr, error) {
	r, err := pc.nfs3(ctx, procGetattr, fhArgs(fh))
	if err != nil {
		return attr{}, err
	}
	a := readAttr(r)
	if r.Bad {
		return attr{}, errors.New("GETATTR: malformed reply")
	}
	return a, nil
}

// open does what open(2) of a path costs a kernel client with a warm
// dentry cache: a GETATTR (close-to-open consistency) and, the first time
// this file is seen, an ACCESS.
func (pc *pipeClient) open(ctx context.Context, t task) (attr, error) {
	a, err := pc.getattr(ctx, t.d.fh)
	if err != nil {
		return a, fmt.Errorf("GETATTR %s: %w", t.path, err)
	}
	pc.dmu.Lock()
	seen := pc.accessed[a.fileid]
	pc.accessed[a.fileid] = true
	pc.dmu.Unlock()
	if !seen {
		r, err := pc.nfs3(ctx, procAccess, xdr.AppendU32(fhArgs(t.d.fh), accessAll))
		if err != nil {
			return a, fmt.Errorf("ACCESS %s: %w", t.path, err)
		}
		postOp(r)
		if granted := r.U32(); r.Bad || granted&1 == 0 {
			return a, fmt.Errorf("ACCESS %s: read not granted", t.path)
		}
	}
	return a, nil
}

// readFile opens a file and reads it with ReadAhead READs in flight.
func (w *walker) readFile(ctx context.Context, t task) error {
	pc := w.pc
	a, err := pc.open(ctx, t)
	if err != nil {
		return err
	}
	size := int64(a.size)
	var data []byte
	if w.file != nil {
		data = make([]byte, size)
	}
	type inflight struct {
		call *rpcCall
		off  int64
		n    int
		buf  *[]byte
	}
	var q []inflight
	var next int64
	var got int64
	send := func() error {
		n := int(min(int64(pc.rsize), size-next))
		bp, _ := w.scratch.Get().(*[]byte)
		if bp == nil || cap(*bp) < pc.rsize+512 {
			b := make([]byte, 0, pc.rsize+512)
			bp = &b
		}
		buf := *bp
		args := xdr.AppendU64(fhArgs(t.d.fh), uint64(next))
		args = xdr.AppendU32(args, uint32(n))
		call, err := pc.rpc.start(ctx, progNFS3, 3, procRead, args, buf)
		if err != nil {
			return err
		}
		q = append(q, inflight{call, next, n, bp})
		next += int64(n)
		return nil
	}
	for next < size && len(q) < pc.opt.ReadAhead {
		if err := send(); err != nil {
			return err
		}
	}
	for len(q) > 0 {
		c := q[0]
		q = q[1:]
		res, err := c.call.wait(ctx)
		if err != nil {
			return fmt.Errorf("READ %s at %d: %w", t.path, c.off, err)
		}
		r := xdr.Reader{B: res}
		if err := status(&r, procRead); err != nil {
			return fmt.Errorf("READ %s at %d: %w", t.path, c.off, err)
		}
		postOp(&r)
		count := r.U32()
		eof := r.Bool()
		p := r.Opaque(pc.rsize)
		if r.Bad || int(count) != len(p) {
			return fmt.Errorf("READ %s at %d: malformed reply", t.path, c.off)
		}
		if len(p) != c.n {
			return fmt.Errorf("READ %s at %d: %d bytes, want %d (eof %v)", t.path, c.off, len(p), c.n, eof)
		}
		if data != nil {
			copy(data[c.off:], p)
		}
		got += int64(len(p))
		w.scratch.Put(c.buf)
		if next < size {
			if err := send(); err != nil {
				return err
			}
		}
	}
	if got != size {
		return fmt.Errorf("READ %s: %d bytes, want %d", t.path, got, size)
	}
	w.count(func(st *RootStats) { st.Files++; st.Bytes += got })
	if w.file != nil {
		w.fileMu.Lock()
		defer w.fileMu.Unlock()
		return w.file(strings.TrimPrefix(t.path, "/"), data)
	}
	return nil
}

func (w *walker) readlink(ctx context.Context, t task) error {
	r, err := w.pc.nfs3(ctx, procReadlink, fhArgs(t.d.fh))
	if err != nil {
		return fmt.Errorf("READLINK %s: %w", t.path, err)
	}
	postOp(r)
	if r.Opaque(4096); r.Bad {
		return fmt.Errorf("READLINK %s: malformed reply", t.path)
	}
	w.count(func(st *RootStats) { st.Symlinks++ })
	return nil
}
