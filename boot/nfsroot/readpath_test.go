package nfsroot

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/onesis/git-onesis/boot/xdr"
)

// readPathFixture is a server over the fixture commit and a connection
// record to answer read path calls for, without a socket.
type readPathFixture struct {
	srv *Server
	w   *worker
	pc  *permConn
	ix  *commitIndex
	fx  *fixture
}

func newReadPathFixture(t testing.TB) *readPathFixture {
	fx := newFixture(t)
	srv, err := New(Config{Objects: openGit(t, fx.repo), StateDir: t.TempDir(), Authorize: allowCommits(fx.commit), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	e, err := srv.index(context.Background(), mustID(t, fx.commit))
	if err != nil {
		t.Fatal(err)
	}
	pc := &permConn{s: srv, ip: net.IPv4(127, 0, 0, 1), calls: map[uint32]call{}, commits: map[[20]byte]bool{}}
	return &readPathFixture{srv: srv, w: newWorker(srv), pc: pc, ix: e.ix, fx: fx}
}

func (f *readPathFixture) fh(t testing.TB, p string) []byte {
	n := f.ix.lookup(p)
	if n == nil {
		t.Fatalf("%s is not in the fixture", p)
	}
	return f.srv.makeHandle(f.ix.commit, n.fileid)
}

// job makes a read path job of an NFSv3 call by uid with the given
// arguments.
func (f *readPathFixture) job(t testing.TB, proc, uid uint32, args []byte) *job {
	rec := append(callRec(77, progNFS, 3, proc, authUnix, authUnixBody(uid, uid)), args...)
	j := &job{c: f.pc, rec: rec, out: make([]byte, 0, 4096)}
	var err error
	if j.cl, err = parseCall(rec); err != nil {
		t.Fatal(err)
	}
	if !isFast(rec, &j.cl) {
		t.Fatalf("procedure %d is not a read path call", proc)
	}
	return j
}

// answer returns the accept status and the results of a reply record.
func answerOf(t testing.TB, out []byte) (uint32, *xdr.Reader) {
	t.Helper()
	if got := int(binary.BigEndian.Uint32(out) &^ (1 << 31)); got != len(out)-4 || out[0]&0x80 == 0 {
		t.Fatalf("record mark says %d bytes, record has %d", got, len(out)-4)
	}
	r := &xdr.Reader{B: out, Off: 4}
	if xid := r.U32(); xid != 77 {
		t.Fatalf("reply xid %d, want 77", xid)
	}
	r.Skip(12) // REPLY, MSG_ACCEPTED, verifier flavor
	r.Opaque(400)
	return r.U32(), r
}

func fhArg(fh []byte) []byte { return xdr.AppendOpaque(nil, fh) }

func TestReadPath(t *testing.T) {
	f := newReadPathFixture(t)
	root := f.fh(t, "")
	forged := bytes.Clone(root)
	forged[len(forged)-1] ^= 1
	u64 := func(b []byte, v uint64) []byte { return xdr.AppendU64(b, v) }
	u32 := func(b []byte, v uint32) []byte { return xdr.AppendU32(b, v) }
	tests := []struct {
		name   string
		proc   uint32
		uid    uint32
		args   []byte
		accept uint32
		status uint32
		check  func(t *testing.T, r *xdr.Reader)
	}{
		{"getattr root", nfsProcGetattr, 0, fhArg(root), 0, nfs3OK, func(t *testing.T, r *xdr.Reader) {
			if typ, mode := r.U32(), r.U32(); typ != nf3Dir || mode != 0o755 {
				t.Errorf("type %d mode %o", typ, mode)
			}
		}},
		{"getattr setuid file: 12 mode bits, no Go type bits", nfsProcGetattr, 0, fhArg(f.fh(t, "bin/suid")), 0, nfs3OK, func(t *testing.T, r *xdr.Reader) {
			if typ, mode := r.U32(), r.U32(); typ != 1 || mode != 0o4755 {
				t.Errorf("type %d mode %o", typ, mode)
			}
		}},
		{"getattr char device", nfsProcGetattr, 0, fhArg(f.fh(t, "dev/null")), 0, nfs3OK, func(t *testing.T, r *xdr.Reader) {
			typ, mode := r.U32(), r.U32()
			r.Skip(12 + 16)
			if major, minor := r.U32(), r.U32(); typ != 4 || mode != 0o666 || major != 1 || minor != 3 {
				t.Errorf("type %d mode %o device %d,%d", typ, mode, major, minor)
			}
		}},
		{"forged handle", nfsProcGetattr, 0, fhArg(forged), 0, nfs3ErrStale, nil},
		{"truncated arguments", nfsProcRead, 0, fhArg(root)[:20], acceptGarbageArgs, 0, nil},
		{"lookup", nfsProcLookup, 0, xdr.AppendString(fhArg(f.fh(t, "usr")), "bin"), 0, nfs3OK, func(t *testing.T, r *xdr.Reader) {
			if fh := r.Opaque(64); !bytes.Equal(fh, f.fh(t, "usr/bin")) {
				t.Errorf("handle %x, want usr/bin's", fh)
			}
		}},
		{"lookup .. at the root is the root", nfsProcLookup, 0, xdr.AppendString(fhArg(root), ".."), 0, nfs3OK, func(t *testing.T, r *xdr.Reader) {
			if fh := r.Opaque(64); !bytes.Equal(fh, root) {
				t.Error("not the root's handle")
			}
		}},
		{"lookup hidden .git", nfsProcLookup, 0, xdr.AppendString(fhArg(root), ".gitmeta"), 0, nfs3ErrNoEnt, nil},
		{"lookup in a file", nfsProcLookup, 0, xdr.AppendString(fhArg(f.fh(t, "etc/passwd")), "x"), 0, nfs3ErrNotDir, nil},
		{"lookup a long name", nfsProcLookup, 0, xdr.AppendString(fhArg(root), string(bytes.Repeat([]byte("x"), 300))), 0, nfs3ErrNameTooLong, nil},
		{"lookup in a 0700 dir as uid 1000", nfsProcLookup, 1000, xdr.AppendString(fhArg(f.fh(t, "root")), "notes"), 0, nfs3ErrAcces, nil},
		{"access: root reads a 0600 file, cannot execute or write it", nfsProcAccess, 0, u32(fhArg(f.fh(t, "secret600")), 0x3f), 0, nfs3OK, func(t *testing.T, r *xdr.Reader) {
			skipFattr(r)
			if got := r.U32(); got != access3Read {
				t.Errorf("granted %#x, want READ only", got)
			}
		}},
		{"access: uid 1000 on a 0600 file", nfsProcAccess, 1000, u32(fhArg(f.fh(t, "secret600")), 0x3f), 0, nfs3OK, func(t *testing.T, r *xdr.Reader) {
			skipFattr(r)
			if got := r.U32(); got != 0 {
				t.Errorf("granted %#x, want nothing", got)
			}
		}},
		{"access: a directory", nfsProcAccess, 1000, u32(fhArg(f.fh(t, "usr")), 0x3f), 0, nfs3OK, func(t *testing.T, r *xdr.Reader) {
			skipFattr(r)
			if got := r.U32(); got != access3Read|access3Lookup {
				t.Errorf("granted %#x, want READ|LOOKUP", got)
			}
		}},
		{"readlink: the raw target", nfsProcReadlink, 1000, fhArg(f.fh(t, "hello.link")), 0, nfs3OK, func(t *testing.T, r *xdr.Reader) {
			skipFattr(r)
			if got := string(r.Opaque(4096)); got != "/usr/bin/hello" {
				t.Errorf("target %q", got)
			}
		}},
		{"readlink of a file", nfsProcReadlink, 0, fhArg(f.fh(t, "etc/passwd")), 0, nfs3ErrInval, nil},
		{"read", nfsProcRead, 1000, u32(u64(fhArg(f.fh(t, "big.bin")), 1000), 5000), 0, nfs3OK, func(t *testing.T, r *xdr.Reader) {
			skipFattr(r)
			count, eof, data := r.U32(), r.U32(), r.Opaque(1<<20)
			if count != 5000 || eof != 0 || !bytes.Equal(data, f.fx.big[1000:6000]) {
				t.Errorf("count %d eof %d, data equal %v", count, eof, bytes.Equal(data, f.fx.big[1000:6000]))
			}
		}},
		{"read the end: eof", nfsProcRead, 0, u32(u64(fhArg(f.fh(t, "big.bin")), uint64(len(f.fx.big)-10)), 1<<20), 0, nfs3OK, func(t *testing.T, r *xdr.Reader) {
			skipFattr(r)
			if count, eof, data := r.U32(), r.U32(), r.Opaque(1<<20); count != 10 || eof != 1 || !bytes.Equal(data, f.fx.big[len(f.fx.big)-10:]) {
				t.Errorf("count %d eof %d", count, eof)
			}
		}},
		{"read past the end", nfsProcRead, 0, u32(u64(fhArg(f.fh(t, "etc/passwd")), 1<<40), 10), 0, nfs3OK, func(t *testing.T, r *xdr.Reader) {
			skipFattr(r)
			if count, eof := r.U32(), r.U32(); count != 0 || eof != 1 {
				t.Errorf("count %d eof %d", count, eof)
			}
		}},
		{"read a 0600 file as uid 1000", nfsProcRead, 1000, u32(u64(fhArg(f.fh(t, "secret600")), 0), 10), 0, nfs3ErrAcces, nil},
		{"read a directory", nfsProcRead, 0, u32(u64(fhArg(root), 0), 10), 0, nfs3ErrIsDir, nil},
		{"read a placeholder: empty", nfsProcRead, 0, u32(u64(fhArg(f.fh(t, "etc/shadow")), 0), 10), 0, nfs3OK, func(t *testing.T, r *xdr.Reader) {
			skipFattr(r)
			if count, eof := r.U32(), r.U32(); count != 0 || eof != 1 {
				t.Errorf("count %d eof %d", count, eof)
			}
		}},
		{"readdir of a file", nfsProcReaddir, 0, u32(append(u64(fhArg(f.fh(t, "etc/passwd")), 0), make([]byte, 8)...), 4096), 0, nfs3ErrNotDir, nil},
		{"readdir too small for one entry", nfsProcReaddir, 0, u32(append(u64(fhArg(root), 0), make([]byte, 8)...), 40), 0, nfs3ErrTooSmall, nil},
		{"readdir of a 0700 dir as uid 1000", nfsProcReaddirplus, 1000, u32(u32(append(u64(fhArg(f.fh(t, "root")), 0), make([]byte, 8)...), 4096), 4096), 0, nfs3ErrAcces, nil},
		{"fsinfo", nfsProcFsinfo, 0, fhArg(root), 0, nfs3OK, func(t *testing.T, r *xdr.Reader) {
			skipFattr(r)
			if rtmax, rtpref := r.U32(), r.U32(); rtmax != rtMax || rtpref != rtMax {
				t.Errorf("rtmax %d rtpref %d", rtmax, rtpref)
			}
		}},
		{"fsstat", nfsProcFsstat, 0, fhArg(root), 0, nfs3OK, func(t *testing.T, r *xdr.Reader) {
			skipFattr(r)
			if tbytes := r.U64(); tbytes != uint64(f.ix.bytes) {
				t.Errorf("tbytes %d, want %d", tbytes, f.ix.bytes)
			}
		}},
		{"pathconf", nfsProcPathconf, 0, fhArg(root), 0, nfs3OK, func(t *testing.T, r *xdr.Reader) {
			skipFattr(r)
			if r.U32(); r.U32() != maxName {
				t.Error("name_max")
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := f.w.answer(f.job(t, tc.proc, tc.uid, tc.args))
			accept, r := answerOf(t, out)
			if accept != tc.accept {
				t.Fatalf("accept_stat %d, want %d", accept, tc.accept)
			}
			if accept != 0 {
				if r.Off != len(out) {
					t.Errorf("%d bytes after a refused call", len(out)-r.Off)
				}
				return
			}
			if st := r.U32(); st != tc.status {
				t.Fatalf("status %d, want %d", st, tc.status)
			}
			if tc.check != nil {
				tc.check(t, r)
			}
			if r.Bad {
				t.Error("reply too short")
			}
		})
	}
}

// TestReaddirCookies lists directories a few entries at a time, with both
// procedures: every name comes once, in order, ".", ".." first, and a
// READDIRPLUS entry's handle is the one LOOKUP gives.
func TestReaddirCookies(t *testing.T) {
	f := newReadPathFixture(t)
	for _, proc := range []uint32{nfsProcReaddir, nfsProcReaddirplus} {
		for _, dir := range []string{"", "usr/bin", "var/empty"} {
			var names []string
			var cookie uint64
			for calls := 0; ; calls++ {
				if calls > 100 {
					t.Fatal("listing does not end")
				}
				args := append(xdr.AppendU64(fhArg(f.fh(t, dir)), cookie), make([]byte, 8)...)
				if proc == nfsProcReaddirplus {
					args = xdr.AppendU32(args, 1000)
				}
				args = xdr.AppendU32(args, 600) // a few entries per call
				accept, r := answerOf(t, f.w.answer(f.job(t, proc, 0, args)))
				if st := r.U32(); accept != 0 || st != nfs3OK {
					t.Fatalf("%s: accept %d status %d", dir, accept, st)
				}
				skipFattr(r)
				r.Skip(8)
				for r.Bool() {
					r.U64()
					name := string(r.Opaque(255))
					cookie = r.U64()
					names = append(names, name)
					if proc == nfsProcReaddirplus {
						skipFattr(r)
						if r.Bool() {
							fh := r.Opaque(64)
							if name != "." && name != ".." && !bytes.Equal(fh, f.fh(t, pathJoin(dir, name))) {
								t.Errorf("%s/%s: READDIRPLUS handle differs from LOOKUP's", dir, name)
							}
						}
					}
				}
				if r.Bool() {
					break
				}
				if r.Bad {
					t.Fatal("short reply")
				}
			}
			want := []string{".", ".."}
			for _, k := range f.ix.lookup(dir).kids {
				want = append(want, k.name)
			}
			if !equalStrings(names, want) {
				t.Errorf("proc %d %q: listed %q, want %q", proc, dir, names, want)
			}
		}
	}
}

func pathJoin(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestReadPathAllocs: the calls a booting node makes most allocate nothing
// once the server is warm (pooled buffers, cached blob descriptors, no
// reflection).
func TestReadPathAllocs(t *testing.T) {
	f := newReadPathFixture(t)
	root := f.fh(t, "")
	big := f.fh(t, "big.bin")
	calls := []struct {
		name string
		proc uint32
		args []byte
	}{
		{"GETATTR", nfsProcGetattr, fhArg(big)},
		{"LOOKUP", nfsProcLookup, xdr.AppendString(fhArg(f.fh(t, "usr")), "bin")},
		{"ACCESS", nfsProcAccess, xdr.AppendU32(fhArg(big), 0x3f)},
		{"READ 32 KiB", nfsProcRead, xdr.AppendU32(xdr.AppendU64(fhArg(big), 4096), 32<<10)},
		{"READ 128 KiB", nfsProcRead, xdr.AppendU32(xdr.AppendU64(fhArg(big), 0), 128<<10)},
		{"READDIRPLUS", nfsProcReaddirplus, xdr.AppendU32(xdr.AppendU32(append(xdr.AppendU64(fhArg(root), 0), make([]byte, 8)...), 4096), 32<<10)},
	}
	for _, c := range calls {
		j := f.job(t, c.proc, 1000, c.args)
		run := func() {
			// accept_stat and status, after the mark and a 24-byte header
			if out := f.w.answer(j); binary.BigEndian.Uint64(out[24:]) != 0 {
				t.Fatalf("%s failed", c.name)
			}
			if j.big != nil {
				bigPools[j.big.class].Put(j.big)
				j.big = nil
			}
		}
		if n := testing.AllocsPerRun(200, run); n > 0.05 {
			t.Errorf("%s: %.2f allocations per call, want none", c.name, n)
		}
	}
}

// TestManyCallsInFlight writes 200 READ and GETATTR calls on one
// connection before reading any reply, as a kernel client's readahead does:
// every call gets exactly one whole reply, matched by XID, with the right
// bytes, whatever the order; a go-nfs call (NULL) among them is answered
// too.
func TestManyCallsInFlight(t *testing.T) {
	fx := newFixture(t)
	for _, perConn := range []int{1, 4, 0} {
		ts := startServer(t, Config{Objects: openGit(t, fx.repo), StateDir: t.TempDir(), Authorize: allowCommits(fx.commit),
			MaxInFlight: 3, MaxInFlightPerConn: perConn}, "127.0.0.1:0")
		ix, err := ts.srv.index(context.Background(), mustID(t, fx.commit))
		if err != nil {
			t.Fatal(err)
		}
		big := ts.srv.makeHandle(ix.ix.commit, ix.ix.lookup("big.bin").fileid)
		c, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(60 * time.Second))
		const calls = 200
		want := map[uint32][]byte{}
		var stream []byte
		for i := uint32(0); i < calls; i++ {
			xid := 1000 + i
			var rec []byte
			switch {
			case i == 77:
				rec = callRec(xid, progNFS, 3, 0, authNull, nil) // NULL: go-nfs
				want[xid] = nil
			case i%5 == 0:
				rec = append(callRec(xid, progNFS, 3, nfsProcGetattr, authUnix, authUnixBody(0, 0)), fhArg(big)...)
				want[xid] = nil
			default:
				off := uint64(i) * 1000
				rec = append(callRec(xid, progNFS, 3, nfsProcRead, authUnix, authUnixBody(0, 0)), xdr.AppendU32(xdr.AppendU64(fhArg(big), off), 7000)...)
				want[xid] = fx.big[off : off+7000]
			}
			stream = binary.BigEndian.AppendUint32(stream, uint32(len(rec))|1<<31)
			stream = append(stream, rec...)
		}
		go c.Write(stream)
		br := bufio.NewReader(c)
		inOrder := true
		for i := 0; i < calls; i++ {
			var hdr [4]byte
			if _, err := io.ReadFull(br, hdr[:]); err != nil {
				t.Fatalf("per-connection limit %d: reply %d: %v", perConn, i, err)
			}
			rec := make([]byte, binary.BigEndian.Uint32(hdr[:])&^(1<<31))
			if _, err := io.ReadFull(br, rec); err != nil {
				t.Fatal(err)
			}
			xid := binary.BigEndian.Uint32(rec)
			data, ok := want[xid]
			if !ok {
				t.Fatalf("reply to xid %d: not asked, or answered twice", xid)
			}
			delete(want, xid)
			inOrder = inOrder && xid == 1000+uint32(i)
			r := &xdr.Reader{B: rec, Off: 4}
			if r.U32() != 1 || r.U32() != 0 || r.U32() != 0 || r.U32() != 0 || r.U32() != 0 {
				t.Fatalf("xid %d: not an accepted, successful reply", xid)
			}
			if data != nil {
				if st := r.U32(); st != nfs3OK {
					t.Fatalf("xid %d: status %d", xid, st)
				}
				skipFattr(r)
				r.U32()
				r.U32()
				if got := r.Opaque(1 << 20); !bytes.Equal(got, data) {
					t.Fatalf("xid %d: wrong data", xid)
				}
			}
		}
		c.Close()
		t.Logf("per-connection limit %d: %d replies, in call order: %v", perConn, calls, inOrder)
		ts.stop()
	}
}

// TestUnreadRepliesDropClient: a client that sends calls and never reads
// the replies is disconnected once a write has waited writeTimeout, and the
// workers it held answer others again; with large READ replies (written
// one by one) and with a flood of small GETATTR replies (written in
// batches).
func TestUnreadRepliesDropClient(t *testing.T) {
	old := writeTimeout
	writeTimeout = 300 * time.Millisecond
	defer func() { writeTimeout = old }()
	fx := newFixture(t)
	for _, tc := range []struct {
		name  string
		calls int
		args  func(fh []byte) (uint32, []byte)
	}{
		{"256 KiB READs", 400, func(fh []byte) (uint32, []byte) {
			return nfsProcRead, xdr.AppendU32(xdr.AppendU64(fhArg(fh), 0), 256<<10)
		}},
		{"GETATTRs", 60000, func(fh []byte) (uint32, []byte) { return nfsProcGetattr, fhArg(fh) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, Config{Objects: openGit(t, fx.repo), StateDir: t.TempDir(), Authorize: allowCommits(fx.commit), MaxInFlight: 2,
				Logger: slog.New(slog.DiscardHandler)}, "127.0.0.1:0")
			e, err := ts.srv.index(context.Background(), mustID(t, fx.commit))
			if err != nil {
				t.Fatal(err)
			}
			big := ts.srv.makeHandle(e.ix.commit, e.ix.lookup("big.bin").fileid)
			c, err := net.Dial("tcp", ts.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.(*net.TCPConn).SetReadBuffer(4096)
			var stream []byte
			for i := 0; i < tc.calls; i++ { // far more replies than the socket buffers hold
				proc, args := tc.args(big)
				rec := append(callRec(uint32(i), progNFS, 3, proc, authUnix, authUnixBody(0, 0)), args...)
				stream = binary.BigEndian.AppendUint32(stream, uint32(len(rec))|1<<31)
				stream = append(stream, rec...)
			}
			go c.Write(stream)
			// Either the server's reply writes block and time out, and the
			// client is dropped; or TCP stalls both ways first (the
			// client's send blocked, the server waiting for the rest of a
			// call, with every reply it made already in its socket
			// buffer), and the connection stays, holding no worker. Which
			// one happens depends on the kernel's buffer sizes and timing.
			deadline := time.Now().Add(5 * time.Second)
			for ts.srv.Stats().Connections != 0 && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			if n := ts.srv.Stats().Connections; n != 0 {
				t.Logf("the client that reads nothing is still connected (%d), stalled with no reply pending", n)
			}
			// Either way the workers are free: another client is served
			// (with MaxInFlight 2, workers blocked on the stuck client
			// would leave it waiting until the test's timeout).
			tg := mustMount(t, ts.port, "/c/"+fx.commit, 0, 0)
			if got, err := readAll(t, tg, "etc/passwd"); err != nil || len(got) == 0 {
				t.Errorf("after the stuck client: %q, %v", got, err)
			}
		})
	}
}
