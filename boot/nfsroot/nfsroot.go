// Package nfsroot serves git commits as read-only NFSv3 root filesystems,
// with the commit's .gitmeta applied (owners, full modes including setuid,
// setgid and sticky, devices, fifos, empty directories, hard links), on top
// of github.com/willscott/go-nfs. It adds what go-nfs lacks for a root
// filesystem: deterministic signed file handles that survive a restart,
// MOUNT authorization per client address, a deny list of secrets exported
// as empty placeholders, and permission enforcement against AUTH_SYS
// credentials by an RPC-layer interposer in front of go-nfs. See
// docs/nfsroot.md.
package nfsroot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	billy "github.com/go-git/go-billy/v5"
	nfs "github.com/willscott/go-nfs"

	"github.com/onesis/git-onesis/boot/integrity"
)

// Config configures a Server.
type Config struct {
	// Objects is the store of the commits served (boot/gitobjects opens
	// an image repository as one). Required.
	Objects Objects
	// StateDir holds the blob store and the handle key. Required (serve
	// keeps it under its state directory).
	StateDir string
	// Authorize decides who may MOUNT what: it gets the client address and
	// the export path asked for ("/c/<40-hex commit>" or "/w/<node>") and
	// returns the export to serve. A nil Authorize refuses every MOUNT.
	Authorize func(client net.IP, export string) (Export, bool)
	// Deny lists secret globs exported as empty 0600 placeholders; nil
	// means DefaultDeny, an empty non-nil slice denies nothing.
	Deny []string
	// Logger receives structured logs; nil means slog.Default().
	Logger *slog.Logger
	// MaxConnsPerClient caps the TCP connections one client address may
	// hold open (default DefaultMaxConnsPerClient); more are closed as
	// they arrive, so one host cannot take the server's sockets.
	MaxConnsPerClient int
	// MaxInFlight caps the read path calls answered at once, over all
	// connections (default DefaultMaxInFlight): that many workers answer
	// them, so the memory their replies take does not grow with clients.
	MaxInFlight int
	// MaxInFlightPerConn caps the read path calls of one connection queued
	// or answered at once (default DefaultMaxInFlightPerConn); the
	// connection's further calls wait in TCP, so one node cannot take every
	// worker.
	MaxInFlightPerConn int
	// Report is told of every stored blob found not to be what its name
	// says (moved aside and rebuilt from Objects, or not); nil: only logged.
	Report func(integrity.Report)
	// SkipVerify serves stored blobs without verifying them: only for
	// benchmarks measuring what verification costs.
	SkipVerify bool
}

// DefaultMaxConnsPerClient is Config.MaxConnsPerClient's default. A node
// uses one or two connections (MOUNT, then the kernel's NFS client).
const DefaultMaxConnsPerClient = 64

// Export is what a MOUNT resolves to: a commit (read-only, for
// "/c/<commit>") or a directory (for "/w/<node>" maintenance exports).
type Export struct {
	Commit    string
	Dir       string
	ReadWrite bool
}

// Server serves MOUNT and NFSv3 for the exports Config.Authorize grants.
type Server struct {
	cfg      Config
	log      *slog.Logger
	objs     Objects
	stateDir string
	store    *blobStore
	deny     *denyList
	key      []byte
	lock     *os.File // shared lock on <StateDir>/lock (see Prune)

	buildMu sync.Mutex // serialises commit builds (and so tree and commit reads)
	treeMu  sync.Mutex
	trees   map[ID][]Entry

	mu      sync.Mutex
	indexes map[ID]*indexEntry
	useTick uint64
	closed  bool
	ctx     context.Context
	cancel  context.CancelFunc
	jobs    chan *job     // read path calls for the workers
	busy    chan struct{} // one per call being answered (MaxInFlight)
	lns     map[net.Listener]bool
	conns   map[*permConn]bool
	perIP   map[string]int // open connections per client address
	refused time.Time      // when a refused connection was last logged
	work    map[string]*workFS
	stats   counters
}

type indexEntry struct {
	done    chan struct{}
	ix      *commitIndex
	fs      *commitFS
	err     error
	lastUse uint64
}

// maxIndexes bounds the commit indexes kept in memory; an evicted commit
// is rebuilt from Objects (its blobs are already stored) when next used.
const maxIndexes = 16

// New opens the state directory, to serve the commits of cfg.Objects.
func New(cfg Config) (*Server, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	routeGoNFSLog(log)
	if cfg.Objects == nil {
		return nil, errors.New("nfsroot: no image repository given (Config.Objects)")
	}
	if cfg.StateDir == "" {
		return nil, errors.New("nfsroot: no state directory given (Config.StateDir)")
	}
	if cfg.MaxConnsPerClient < 0 {
		return nil, fmt.Errorf("nfsroot: %d connections per client is not a limit (0 = the default, %d)", cfg.MaxConnsPerClient, DefaultMaxConnsPerClient)
	}
	if cfg.MaxConnsPerClient == 0 {
		cfg.MaxConnsPerClient = DefaultMaxConnsPerClient
	}
	if cfg.MaxInFlight < 0 || cfg.MaxInFlightPerConn < 0 {
		return nil, fmt.Errorf("nfsroot: %d calls in flight (%d per connection) is not a limit (0 = the defaults, %d and %d)",
			cfg.MaxInFlight, cfg.MaxInFlightPerConn, DefaultMaxInFlight, DefaultMaxInFlightPerConn)
	}
	if cfg.MaxInFlight == 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.MaxInFlightPerConn == 0 {
		cfg.MaxInFlightPerConn = DefaultMaxInFlightPerConn
	}
	state := cfg.StateDir
	if err := os.MkdirAll(state, 0o700); err != nil {
		return nil, fmt.Errorf("creating the NFS state directory: %w", err)
	}
	deny, err := newDenyList(cfg.Deny)
	if err != nil {
		return nil, err
	}
	// Temporary files left in the store are an interrupted batch's only if
	// no other process (which may be writing its own) has the store open.
	blobs := filepath.Join(state, "blobs")
	lock, err := lockState(state, func() { removeStaleTemp(blobs) })
	if err != nil {
		return nil, err
	}
	check := &blobCheck{objs: cfg.Objects, quarantine: filepath.Join(state, "quarantine"), off: cfg.SkipVerify}
	check.report = cfg.Report
	if check.report == nil {
		check.report = func(rep integrity.Report) {
			log.Error("nfs: a stored blob is not the object git names; it was moved aside", "blob", rep.Name, "problem", rep.Problem,
				"quarantine", rep.Quarantine, "repaired", rep.Repaired, "err", rep.RepairErr)
		}
	}
	store, err := newBlobStore(blobs, check)
	if err != nil {
		lock.Close()
		return nil, err
	}
	key, err := loadKey(state)
	if err != nil {
		lock.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg: cfg, log: log, objs: cfg.Objects, stateDir: state, store: store, deny: deny, key: key, lock: lock,
		trees: map[ID][]Entry{}, indexes: map[ID]*indexEntry{},
		ctx: ctx, cancel: cancel, lns: map[net.Listener]bool{}, conns: map[*permConn]bool{}, perIP: map[string]int{}, work: map[string]*workFS{},
	}
	s.startWorkers()
	return s, nil
}

// Prepare materialises a commit (blob store and index) ahead of its first
// MOUNT. commit is a full hex commit id or any revision Objects resolves.
func (s *Server) Prepare(ctx context.Context, commit string) error {
	h, err := s.resolve(commit)
	if err != nil {
		return err
	}
	_, err = s.index(ctx, h)
	return err
}

func (s *Server) resolve(rev string) (ID, error) {
	if id, ok := ParseID(strings.ToLower(rev)); ok {
		return id, nil
	}
	return s.objs.Resolve(rev)
}

// index returns the commit's index, building it once.
func (s *Server) index(ctx context.Context, h ID) (*indexEntry, error) {
	s.mu.Lock()
	e, ok := s.indexes[h]
	s.useTick++
	if ok {
		e.lastUse = s.useTick
		s.mu.Unlock()
		select {
		case <-e.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if e.err != nil {
			return nil, e.err
		}
		return e, nil
	}
	e = &indexEntry{done: make(chan struct{}), lastUse: s.useTick}
	s.indexes[h] = e
	s.evictLocked()
	s.mu.Unlock()

	ix, err := s.buildIndex(ctx, h)
	if err != nil {
		e.err = err
		s.mu.Lock()
		delete(s.indexes, h) // a later try may succeed
		s.mu.Unlock()
	} else {
		e.ix = ix
		e.fs = &commitFS{ix: ix, store: s.store}
	}
	close(e.done)
	if err != nil {
		return nil, err
	}
	return e, nil
}

func (s *Server) evictLocked() {
	for len(s.indexes) > maxIndexes {
		var old ID
		var oldest uint64 = ^uint64(0)
		for h, e := range s.indexes {
			select {
			case <-e.done:
			default:
				continue // still building
			}
			if e.lastUse < oldest {
				old, oldest = h, e.lastUse
			}
		}
		if oldest == ^uint64(0) {
			return
		}
		delete(s.indexes, old)
	}
}

// Serve answers MOUNT and NFSv3 on l (one TCP listener for both, as
// go-nfs does) until Close. Every connection goes through the permission
// interposer.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errors.New("nfsroot: server closed")
	}
	s.lns[l] = true
	s.mu.Unlock()
	srv := &nfs.Server{Handler: (*handler)(s), Context: s.ctx}
	err := srv.Serve(&permListener{Listener: l, s: s})
	s.mu.Lock()
	closed := s.closed
	delete(s.lns, l)
	s.mu.Unlock()
	if closed {
		return nil
	}
	return err
}

// Close stops every Serve and closes every client connection.
func (s *Server) Close() error {
	s.mu.Lock()
	if !s.closed && s.lock != nil {
		s.lock.Close() // releases the shared lock
	}
	s.closed = true
	lns := s.lns
	conns := s.conns
	s.lns, s.conns, s.perIP = map[net.Listener]bool{}, map[*permConn]bool{}, map[string]int{}
	s.mu.Unlock()
	s.stats.conns.Store(0)
	s.cancel()
	for l := range lns {
		l.Close()
	}
	for c := range conns {
		c.Conn.Close()
	}
	s.store.closeFDs()
	return nil
}

// handler is the go-nfs Handler view of a Server.
type handler Server

var _ nfs.Handler = (*handler)(nil)

func clientIP(c net.Conn) net.IP {
	if c == nil {
		return nil
	}
	switch a := c.RemoteAddr().(type) {
	case *net.TCPAddr:
		return a.IP
	case *net.UDPAddr:
		return a.IP
	}
	host, _, err := net.SplitHostPort(c.RemoteAddr().String())
	if err != nil {
		return nil
	}
	return net.ParseIP(host)
}

// Mount grants an export only when Config.Authorize says so.
func (h *handler) Mount(ctx context.Context, c net.Conn, req nfs.MountRequest) (nfs.MountStatus, billy.Filesystem, []nfs.AuthFlavor) {
	s := (*Server)(h)
	ip := clientIP(c)
	raw := string(req.Dirpath)
	export := path.Clean("/" + raw)
	deny := func(reason string, st nfs.MountStatus) (nfs.MountStatus, billy.Filesystem, []nfs.AuthFlavor) {
		s.stats.mountsRefused.Add(1)
		s.log.Warn("nfs MOUNT refused", "client", ip.String(), "export", raw, "reason", reason)
		return st, nil, nil
	}
	if len(raw) > nfs.MntPathLen || strings.IndexByte(raw, 0) >= 0 {
		return deny("bad export path", nfs.MountStatusErrInval)
	}
	if s.cfg.Authorize == nil {
		return deny("no authorization configured", nfs.MountStatusErrAcces)
	}
	exp, ok := s.cfg.Authorize(ip, export)
	if !ok {
		return deny("client not authorized for this export", nfs.MountStatusErrAcces)
	}
	switch {
	case strings.HasPrefix(export, "/c/"):
		want := strings.ToLower(strings.TrimPrefix(export, "/c/"))
		if len(want) != 40 || strings.ToLower(exp.Commit) != want {
			return deny(fmt.Sprintf("export is pinned to commit %q", exp.Commit), nfs.MountStatusErrAcces)
		}
		id, ok := ParseID(want)
		var e *indexEntry
		var err error
		if !ok {
			err = fmt.Errorf("%q is not a commit id", want)
		} else {
			e, err = s.index(ctx, id)
		}
		if err != nil {
			s.log.Error("nfs MOUNT failed: cannot prepare commit", "client", ip.String(), "export", export, "err", err)
			s.stats.mountsRefused.Add(1)
			return nfs.MountStatusErrNoEnt, nil, nil
		}
		s.log.Info("nfs MOUNT", "client", ip.String(), "export", export)
		s.stats.mountsGranted.Add(1)
		return nfs.MountStatusOk, e.fs, []nfs.AuthFlavor{nfs.AuthFlavorUnix}
	case strings.HasPrefix(export, "/w/"):
		if exp.Dir == "" {
			return deny("authorized export has no directory", nfs.MountStatusErrAcces)
		}
		w, err := s.workExport(strings.TrimPrefix(export, "/w/"), exp)
		if err != nil {
			s.log.Error("nfs MOUNT failed", "client", ip.String(), "export", export, "err", err)
			s.stats.mountsRefused.Add(1)
			return nfs.MountStatusErrNoEnt, nil, nil
		}
		s.log.Info("nfs MOUNT", "client", ip.String(), "export", export, "dir", exp.Dir, "rw", exp.ReadWrite)
		s.stats.mountsGranted.Add(1)
		return nfs.MountStatusOk, w, []nfs.AuthFlavor{nfs.AuthFlavorUnix}
	}
	return deny("unknown export path (want /c/<commit> or /w/<node>)", nfs.MountStatusErrNoEnt)
}

// Change makes commit exports read-only.
func (h *handler) Change(fs billy.Filesystem) billy.Change {
	if w, ok := fs.(*workFS); ok {
		return w.change()
	}
	return nil
}

// FSStat reports the export's size; there is no free space on a commit.
func (h *handler) FSStat(_ context.Context, fs billy.Filesystem, st *nfs.FSStat) error {
	if c, ok := fs.(*commitFS); ok {
		st.TotalSize = uint64(c.ix.bytes)
		st.TotalFiles = uint64(c.ix.nodes)
		st.FreeSize, st.AvailableSize, st.FreeFiles, st.AvailableFiles = 0, 0, 0, 0
	}
	if w, ok := fs.(*workFS); ok {
		return w.fsstat(st)
	}
	return nil
}

// ToHandle gives the deterministic signed handle of a path.
func (h *handler) ToHandle(fs billy.Filesystem, p []string) []byte {
	s := (*Server)(h)
	switch f := fs.(type) {
	case *commitFS:
		n := f.ix.lookup(strings.Join(p, "/"))
		if n == nil {
			return make([]byte, handleLen) // never verifies
		}
		return s.makeHandle(f.ix.commit, n.fileid)
	case *workFS:
		return f.toHandle(p)
	}
	return make([]byte, handleLen)
}

// FromHandle verifies a handle and finds its object. Unknown or forged
// handles are refused (go-nfs answers NFS3ERR_STALE).
func (h *handler) FromHandle(fh []byte) (billy.Filesystem, []string, error) {
	s := (*Server)(h)
	if isWorkHandle(fh) {
		return s.fromWorkHandle(fh)
	}
	c, id, err := s.parseHandle(fh)
	if err != nil {
		return nil, nil, err
	}
	e, err := s.index(s.ctx, c)
	if err != nil {
		s.log.Error("nfs: cannot load the commit of a valid handle", "commit", c.String(), "err", err)
		return nil, nil, err
	}
	n := e.ix.byID[id]
	if n == nil {
		return nil, nil, errBadHandle
	}
	if n.path == "" {
		return e.fs, []string{}, nil
	}
	return e.fs, strings.Split(n.path, "/"), nil
}

// InvalidateHandle is a no-op: handles are computed, not stored.
func (h *handler) InvalidateHandle(billy.Filesystem, []byte) error { return nil }

// HandleLimit is large: handles cost no memory.
func (h *handler) HandleLimit() int { return 1 << 30 }
