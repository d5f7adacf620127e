package nfsroot

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"
)

// xdrw builds XDR test messages.
type xdrw struct{ b []byte }

func (w *xdrw) u32(v ...uint32) *xdrw {
	for _, x := range v {
		w.b = binary.BigEndian.AppendUint32(w.b, x)
	}
	return w
}

func (w *xdrw) opaque(p []byte) *xdrw {
	w.u32(uint32(len(p)))
	w.b = append(w.b, p...)
	for len(w.b)%4 != 0 {
		w.b = append(w.b, 0)
	}
	return w
}

func authUnixBody(uid, gid uint32, gids ...uint32) []byte {
	w := (&xdrw{}).u32(12345).opaque([]byte("node1")).u32(uid, gid, uint32(len(gids))).u32(gids...)
	return w.b
}

func callRec(xid, prog, vers, proc, flavor uint32, cred []byte, args ...uint32) []byte {
	w := (&xdrw{}).u32(xid, 0, 2, prog, vers, proc, flavor).opaque(cred).u32(0).opaque(nil).u32(args...)
	return w.b
}

// attr returns a post_op_attr with attributes.
func attr(typ, mode, uid, gid uint32) []byte {
	w := (&xdrw{}).u32(1, typ, mode, 1, uid, gid)
	w.b = append(w.b, make([]byte, fattr3Len-20)...)
	return w.b
}

func replyHead(xid uint32) *xdrw { return (&xdrw{}).u32(xid, 1, 0, 0, 0, 0) }

func TestParseCall(t *testing.T) {
	tests := []struct {
		name    string
		rec     []byte
		wantErr bool
		want    call
	}{
		{"auth unix", callRec(7, progNFS, 3, nfsProcRead, authUnix, authUnixBody(1000, 100, 4, 24)), false,
			call{xid: 7, prog: progNFS, vers: 3, proc: nfsProcRead, cred: newCred(1000, 100, 4, 24)}},
		{"auth null is nobody", callRec(8, progMount, 3, 1, authNull, nil), false,
			call{xid: 8, prog: progMount, vers: 3, proc: 1, cred: cred{uid: nobody, gid: nobody}}},
		{"root", callRec(9, progNFS, 3, nfsProcAccess, authUnix, authUnixBody(0, 0)), false,
			call{xid: 9, prog: progNFS, vers: 3, proc: nfsProcAccess, cred: newCred(0, 0)}},
		{"reply, not call", (&xdrw{}).u32(1, 1, 2, progNFS, 3, 1, 0, 0, 0, 0).b, true, call{}},
		{"rpc version 3", (&xdrw{}).u32(1, 0, 3, progNFS, 3, 1, 0, 0, 0, 0).b, true, call{}},
		{"truncated header", (&xdrw{}).u32(1, 0, 2, progNFS).b, true, call{}},
		{"credential too long", (&xdrw{}).u32(1, 0, 2, progNFS, 3, 1, 1, 401).b, true, call{}},
		{"credential body missing", (&xdrw{}).u32(1, 0, 2, progNFS, 3, 1, 1, 40).b, true, call{}},
		{"17 groups", callRec(1, progNFS, 3, 1, authUnix, authUnixBody(1, 1, make([]uint32, 17)...)), true, call{}},
		{"machine name too long", callRec(1, progNFS, 3, 1, authUnix, (&xdrw{}).u32(0).opaque(make([]byte, 256)).u32(1, 1, 0).b), true, call{}},
		{"empty", nil, true, call{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseCall(tc.rec)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if got.xid != tc.want.xid || got.prog != tc.want.prog || got.proc != tc.want.proc || got.cred.uid != tc.want.cred.uid ||
				got.cred.gid != tc.want.cred.gid || got.cred.ngids != tc.want.cred.ngids || got.cred.gidv != tc.want.cred.gidv {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			if got.argOff != len(tc.rec) {
				t.Errorf("argOff = %d, want %d (no arguments in these records)", got.argOff, len(tc.rec))
			}
		})
	}
}

func TestPerms(t *testing.T) {
	tests := []struct {
		a    fattr
		c    cred
		want uint32
	}{
		{fattr{1, 0o600, 0, 0}, cred{uid: 1000, gid: 1000}, 0},
		{fattr{1, 0o600, 1000, 0}, cred{uid: 1000, gid: 1000}, 6},
		{fattr{1, 0o640, 1234, 5678}, newCred(1000, 1, 5678), 4},
		{fattr{1, 0o044, 1000, 0}, cred{uid: 1000}, 0}, // owner bits win even when other is wider
		{fattr{1, 0o644, 0, 0}, cred{uid: 1000}, 4},
		{fattr{1, 0o600, 0, 0}, cred{uid: 0}, 6},          // root: no execute without an x bit
		{fattr{1, 0o100, 5, 5}, cred{uid: 0}, 7},          // root: any x bit allows execute
		{fattr{nf3Dir, 0o700, 0, 0}, cred{uid: 0}, 7},     // root searches any dir
		{fattr{nf3Dir, 0o711, 0, 0}, cred{uid: 9}, 1},     // search only
		{fattr{1, 0o4755 | 1<<31, 0, 0}, cred{uid: 9}, 5}, // Go type bits and 07000 ignored
	}
	for _, tc := range tests {
		if got := perms(tc.a, &tc.c); got != tc.want {
			t.Errorf("perms(%+v, %+v) = %o, want %o", tc.a, tc.c, got, tc.want)
		}
	}
}

func TestFilterReply(t *testing.T) {
	user := cred{uid: 1000, gid: 1000}
	root := cred{uid: 0, gid: 0}
	nfsCall := func(proc uint32, c cred) call { return call{xid: 5, prog: progNFS, vers: 3, proc: proc, cred: c} }
	fh := bytes.Repeat([]byte{7}, handleLen)

	accessReply := func(a []byte, mask uint32) []byte {
		w := replyHead(5).u32(0)
		w.b = append(w.b, a...)
		return w.u32(mask).b
	}
	readReply := func(a []byte) []byte {
		w := replyHead(5).u32(0)
		w.b = append(w.b, a...)
		return w.u32(3, 1).opaque([]byte("abc")).b
	}
	lookupReply := func(obj, dir []byte) []byte {
		w := replyHead(5).u32(0).opaque(fh)
		w.b = append(w.b, obj...)
		w.b = append(w.b, dir...)
		return w.b
	}
	acces := func(a []byte) []byte {
		w := replyHead(5).u32(nfs3ErrAcces)
		w.b = append(w.b, a...)
		return w.b
	}
	secret := attr(1, 0o600, 0, 0)
	public := attr(1, 0o644, 0, 0)
	closedDir := attr(nf3Dir, 0o700, 0, 0)
	openDir := attr(nf3Dir, 0o755, 0, 0)
	noAttr := (&xdrw{}).u32(0).b

	tests := []struct {
		name    string
		rec     []byte
		c       call
		want    []byte
		refused bool
	}{
		{"access secret as user", accessReply(secret, 0x3f), nfsCall(nfsProcAccess, user), accessReply(secret, 0), true},
		{"access secret as root", accessReply(secret, 0x01), nfsCall(nfsProcAccess, root), accessReply(secret, 0x01), false},
		{"execute secret as root", accessReply(secret, 0x21), nfsCall(nfsProcAccess, root), accessReply(secret, 0x01), true},
		{"access public as user", accessReply(public, 0x21), nfsCall(nfsProcAccess, user), accessReply(public, 0x01), true},
		{"access without attrs as user", accessReply(noAttr, 0x01), nfsCall(nfsProcAccess, user), accessReply(noAttr, 0), true},
		{"read secret as user", readReply(secret), nfsCall(nfsProcRead, user), acces(secret), true},
		{"read secret as root", readReply(secret), nfsCall(nfsProcRead, root), readReply(secret), false},
		{"read public as user", readReply(public), nfsCall(nfsProcRead, user), readReply(public), false},
		{"readdir closed dir as user", readReply(closedDir), nfsCall(nfsProcReaddir, user), acces(closedDir), true},
		{"readdirplus open dir as user", readReply(openDir), nfsCall(nfsProcReaddirplus, user), readReply(openDir), false},
		{"lookup in closed dir as user", lookupReply(public, closedDir), nfsCall(nfsProcLookup, user), acces(closedDir), true},
		{"lookup in open dir as user", lookupReply(secret, openDir), nfsCall(nfsProcLookup, user), lookupReply(secret, openDir), false},
		{"lookup without obj attrs", lookupReply(noAttr, closedDir), nfsCall(nfsProcLookup, user), acces(closedDir), true},
		{"getattr untouched", readReply(secret), nfsCall(nfsProcGetattr, user), readReply(secret), false},
		{"mount program untouched", readReply(secret), call{xid: 5, prog: progMount, vers: 3, proc: nfsProcRead, cred: user}, readReply(secret), false},
		{"nfs v4 untouched", readReply(secret), call{xid: 5, prog: progNFS, vers: 4, proc: nfsProcRead, cred: user}, readReply(secret), false},
		{"error status untouched", acces(secret), nfsCall(nfsProcRead, user), acces(secret), false},
		{"denied rpc untouched", (&xdrw{}).u32(5, 1, 1, 1).b, nfsCall(nfsProcRead, user), (&xdrw{}).u32(5, 1, 1, 1).b, false},
		{"truncated access untouched", accessReply(secret, 1)[:40], nfsCall(nfsProcAccess, user), accessReply(secret, 1)[:40], false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, refused := filterReply(bytes.Clone(tc.rec), tc.c)
			if !bytes.Equal(got, tc.want) || refused != tc.refused {
				t.Errorf("got %x refused=%v\nwant %x refused=%v", got, refused, tc.want, tc.refused)
			}
		})
	}
}

func TestSplitRecord(t *testing.T) {
	rec := callRec(1, progNFS, 3, 0, authNull, nil)
	framed := append(binary.BigEndian.AppendUint32(nil, uint32(len(rec))|1<<31), rec...)
	tests := []struct {
		name    string
		in      []byte
		wantRec bool
		wantErr bool
	}{
		{"whole", framed, true, false},
		{"partial mark", framed[:3], false, false},
		{"partial body", framed[:10], false, false},
		{"not last fragment", append(binary.BigEndian.AppendUint32(nil, uint32(len(rec))), rec...), false, true},
		{"too short", append(binary.BigEndian.AppendUint32(nil, 8|1<<31), make([]byte, 8)...), false, true},
		{"too long", binary.BigEndian.AppendUint32(nil, (maxRecord+1)|1<<31), false, true},
	}
	for _, tc := range tests {
		got, _, err := splitRecord(tc.in)
		if (got != nil) != tc.wantRec || (err != nil) != tc.wantErr {
			t.Errorf("%s: rec=%v err=%v; want rec %v err %v", tc.name, got != nil, err, tc.wantRec, tc.wantErr)
		}
	}
}

// TestGarbageClosesConnection sends non-RPC bytes to a live server: no
// reply comes back and the connection is closed.
func TestGarbageClosesConnection(t *testing.T) {
	fx := newFixture(t)
	ts := startServer(t, Config{Objects: openGit(t, fx.repo), StateDir: t.TempDir(), Authorize: allowCommits(fx.commit)}, "127.0.0.1:0")
	inputs := [][]byte{
		[]byte("GET / HTTP/1.0\r\n\r\n"),
		append(binary.BigEndian.AppendUint32(nil, 40|1<<31), bytes.Repeat([]byte{0xff}, 40)...),
		binary.BigEndian.AppendUint32(nil, 0x7fffffff),
	}
	for i, in := range inputs {
		c, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write(in)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := io.ReadAll(c)
		if len(n) != 0 {
			t.Errorf("input %d: got a %d-byte reply to garbage", i, len(n))
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Errorf("input %d: connection left open after garbage", i)
		}
		c.Close()
	}
	// The server still works afterwards, and forgot the garbage connections.
	if _, err := mountAs(t, ts.port, "/c/"+fx.commit, 0, 0); err != nil {
		t.Errorf("MOUNT after garbage: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for ts.srv.Stats().Connections != 1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := ts.srv.Stats().Connections; n != 1 {
		t.Errorf("%d connections open; want only the one mounted client", n)
	}
}

// FuzzInterposer feeds arbitrary bytes through the record splitter, call
// parser and reply filter: nothing may panic.
func FuzzInterposer(f *testing.F) {
	rec := callRec(1, progNFS, 3, nfsProcRead, authUnix, authUnixBody(1000, 1000, 5))
	f.Add(append(binary.BigEndian.AppendUint32(nil, uint32(len(rec))|1<<31), rec...))
	w := replyHead(1).u32(0)
	w.b = append(w.b, attr(1, 0o600, 0, 0)...)
	f.Add(w.u32(0x3f).b)
	f.Add([]byte{0x80, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		for rest := b; ; {
			r, next, err := splitRecord(rest)
			if err != nil || r == nil {
				break
			}
			rest = next
			parseCall(r)
		}
		if c, err := parseCall(b); err == nil {
			firstHandle(b, c)
		}
		for _, proc := range []uint32{nfsProcAccess, nfsProcRead, nfsProcLookup, nfsProcReaddir, nfsProcReaddirplus, nfsProcReadlink} {
			out, _ := filterReply(bytes.Clone(b), call{prog: progNFS, vers: 3, proc: proc, cred: cred{uid: 1000}})
			if len(out) > len(b)+8 {
				t.Fatalf("reply grew from %d to %d bytes", len(b), len(out))
			}
		}
	})
}

func TestVersionMismatch(t *testing.T) {
	mismatch := func(xid uint32) []byte { return (&xdrw{}).u32(xid, 1, 0, 0, 0, 2, 3, 3).b }
	tests := []struct {
		name string
		rec  []byte
		want []byte
	}{
		{"nfs v4 null", callRec(1, progNFS, 4, 0, authNull, nil), mismatch(1)},
		{"nfs v2 getattr", callRec(2, progNFS, 2, 1, authUnix, authUnixBody(0, 0)), mismatch(2)},
		{"mount v1", callRec(3, progMount, 1, 1, authNull, nil), mismatch(3)},
		{"nfs v3", callRec(4, progNFS, 3, 0, authNull, nil), nil},
		{"mount v3", callRec(5, progMount, 3, 1, authNull, nil), nil},
		{"nfs_acl", callRec(6, 100227, 3, 0, authNull, nil), nil},
		{"garbage", []byte("x"), nil},
	}
	for _, tc := range tests {
		if got := versionMismatch(tc.rec); !bytes.Equal(got, tc.want) {
			t.Errorf("%s: got %x want %x", tc.name, got, tc.want)
		}
	}
}

// TestNFSv4Refused: an NFSv4 call on a live connection gets PROG_MISMATCH
// 3..3 from the interposer (go-nfs would misparse it), and the same
// connection keeps working for v3.
func TestNFSv4Refused(t *testing.T) {
	fx := newFixture(t)
	ts := startServer(t, Config{Objects: openGit(t, fx.repo), StateDir: t.TempDir(), Authorize: allowCommits(fx.commit)}, "127.0.0.1:0")
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	roundTrip := func(rec []byte) []byte {
		c.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(rec))|1<<31), rec...))
		var hdr [4]byte
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			t.Fatal(err)
		}
		body := make([]byte, binary.BigEndian.Uint32(hdr[:])&^(1<<31))
		if _, err := io.ReadFull(c, body); err != nil {
			t.Fatal(err)
		}
		return body
	}
	if got, want := roundTrip(callRec(7, progNFS, 4, 0, authNull, nil)), (&xdrw{}).u32(7, 1, 0, 0, 0, 2, 3, 3).b; !bytes.Equal(got, want) {
		t.Errorf("NFSv4 NULL: got %x want %x", got, want)
	}
	if got, want := roundTrip(callRec(8, progNFS, 3, 0, authNull, nil)), (&xdrw{}).u32(8, 1, 0, 0, 0, 0).b; !bytes.Equal(got, want) {
		t.Errorf("NFSv3 NULL: got %x want %x", got, want)
	}
}

// FuzzPermConn pushes arbitrary client bytes through a whole interposed
// connection: no panic, and the reader always ends (garbage closes it).
func FuzzPermConn(f *testing.F) {
	rec := callRec(1, progNFS, 3, nfsProcGetattr, authUnix, authUnixBody(1000, 1000))
	rec = append(rec, (&xdrw{}).opaque(bytes.Repeat([]byte{1}, handleLen)).b...)
	f.Add(append(binary.BigEndian.AppendUint32(nil, uint32(len(rec))|1<<31), rec...))
	v4 := callRec(2, progNFS, 4, 0, authNull, nil)
	f.Add(append(binary.BigEndian.AppendUint32(nil, uint32(len(v4))|1<<31), v4...))
	f.Add([]byte("\x80\x00\x00\x18garbage garbage garbage!"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, in []byte) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		s := &Server{log: slog.New(slog.DiscardHandler), stateDir: dir, conns: map[*permConn]bool{}, work: map[string]*workFS{}, key: make([]byte, keyLen),
			ctx: ctx, cfg: Config{MaxInFlight: 2, MaxInFlightPerConn: 2}}
		s.startWorkers()
		client, server := net.Pipe()
		pc := newPermConn(server, s)
		go func() {
			client.Write(in)
			client.Close()
		}()
		go io.Copy(io.Discard, client) // injected replies
		buf := make([]byte, 4096)
		for i := 0; i < 10000; i++ {
			if _, err := pc.Read(buf); err != nil {
				return
			}
		}
		t.Fatal("the interposed reader did not end")
	})
}

func TestParseSetattrMode(t *testing.T) {
	fh := bytes.Repeat([]byte{9}, workHandleLen)
	args := func(proc uint32, tail ...uint32) []byte {
		rec := callRec(1, progNFS, 3, proc, authUnix, authUnixBody(0, 0))
		w := &xdrw{b: rec}
		w.opaque(fh)
		if proc != nfsProcSetattr {
			w.opaque([]byte("newname"))
		}
		return w.u32(tail...).b
	}
	tests := []struct {
		name              string
		rec               []byte
		proc              uint32
		wantFH            bool
		wantMode, wantNew uint32
	}{
		{"setattr 04755", args(nfsProcSetattr, 1, 0o4755), nfsProcSetattr, true, 0o4755, 0},
		{"setattr 0644", args(nfsProcSetattr, 1, 0o644), nfsProcSetattr, true, 0o644, 0},
		{"setattr without mode", args(nfsProcSetattr, 0, 1, 5), nfsProcSetattr, false, 0, 0},
		{"mkdir 01777", args(nfsProcMkdir, 1, 0o1777), nfsProcMkdir, false, 0, 0o1777},
		{"mkdir 0755", args(nfsProcMkdir, 1, 0o755), nfsProcMkdir, false, 0, 0},
		{"create unchecked 04711", args(nfsProcCreate, 0, 1, 0o4711), nfsProcCreate, false, 0, 0o4711},
		{"create guarded 02755", args(nfsProcCreate, 1, 1, 0o2755), nfsProcCreate, false, 0, 0o2755},
		{"create exclusive", args(nfsProcCreate, 2, 0o4755, 0o4755), nfsProcCreate, false, 0, 0},
		{"truncated", args(nfsProcSetattr, 1), nfsProcSetattr, false, 0, 0},
	}
	for _, tc := range tests {
		c, err := parseCall(tc.rec)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		parseSetattrMode(tc.rec, &c)
		if (c.setattrFH != nil) != tc.wantFH || c.setattrMode != tc.wantMode || c.createMode != tc.wantNew {
			t.Errorf("%s: fh=%v mode=%#o create=%#o; want fh=%v mode=%#o create=%#o", tc.name,
				c.setattrFH != nil, c.setattrMode, c.createMode, tc.wantFH, tc.wantMode, tc.wantNew)
		}
	}
}

func TestCreatedHandleAndPatch(t *testing.T) {
	fh := bytes.Repeat([]byte{9}, workHandleLen)
	w := replyHead(1).u32(0, 1).opaque(fh)
	w.b = append(w.b, attr(nf3Dir, 0o755|1<<31, 0, 0)...)
	rec := w.u32(0, 0).b // wcc_data of the parent: nothing
	got, off := createdHandle(rec)
	if !bytes.Equal(got, fh) || off < 0 || binary.BigEndian.Uint32(rec[off:]) != 0o755|1<<31 {
		t.Fatalf("createdHandle = %x, %d", got, off)
	}
	if h, _ := createdHandle(replyHead(1).u32(17).b); h != nil {
		t.Errorf("a failed CREATE yielded a handle")
	}
	// SETATTR reply: wcc_data with pre and post attributes.
	w = replyHead(2).u32(0, 1)
	w.b = append(w.b, make([]byte, 24)...)
	w.b = append(w.b, attr(1, 0o755, 0, 0)...)
	rec = w.b
	patchSetattrMode(rec, 0o4755)
	if m := binary.BigEndian.Uint32(rec[len(rec)-fattr3Len+4:]); m != 0o4755 {
		t.Errorf("patched SETATTR mode = %#o, want 04755", m)
	}
}
