package nfsroot

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"sort"

	"github.com/onesis/git-onesis/boot/xdr"
	"github.com/onesis/git-onesis/meta"
)

// The read path. Every NFSv3 call that names a commit export's file handle
// and only reads (GETATTR, LOOKUP, ACCESS, READLINK, READ, READDIR,
// READDIRPLUS, FSSTAT, FSINFO, PATHCONF) is answered here, from the
// commit's index and the blob store, by the server's pool of workers, many
// calls of one connection at once (see pipeline.go). It is written from
// RFC 1813, not from go-nfs: encoding appends to a reused buffer (no
// reflection, no allocation per call), handles are checked with a per-worker
// HMAC, and READ is a pread from a cached descriptor of the blob. The
// caller's AUTH_SYS credential is judged against the object's attributes
// before anything is read, with the same rules (perms, accessMask) the
// interposer applies to go-nfs's replies. Everything else (NULL, MOUNT,
// every call on a /w/ maintenance export, and writes, which go-nfs refuses
// with EROFS on a commit) still goes to go-nfs, one call at a time per
// connection.

const (
	nfsProcFsstat   = 18
	nfsProcFsinfo   = 19
	nfsProcPathconf = 20

	nfs3OK             = 0
	nfs3ErrNoEnt       = 2
	nfs3ErrIO          = 5
	nfs3ErrNotDir      = 20
	nfs3ErrIsDir       = 21
	nfs3ErrInval       = 22
	nfs3ErrNameTooLong = 63
	nfs3ErrStale       = 70
	nfs3ErrTooSmall    = 10005

	acceptSuccess     = 0
	acceptGarbageArgs = 4

	// rtMax is the largest READ answered (and FSINFO's rtmax and rtpref):
	// Linux's own limit, NFS_MAX_FILE_IO_SIZE.
	rtMax = 1 << 20
	// dtPref is FSINFO's dtpref, the READDIR size Linux asks for.
	dtPref = 32 << 10
	// maxDirReply caps a READDIR or READDIRPLUS reply, whatever the client
	// allows.
	maxDirReply = 64 << 10
	// maxName is NFSv3's usual NAME_MAX (PATHCONF).
	maxName = 255
	// readHdr bounds the bytes before a READ's data: record mark, RPC
	// header, status, post_op_attr, count, eof, data length.
	readHdr = 4 + 24 + 4 + 4 + fattr3Len + 4 + 4 + 4
)

// handleSaltBytes is handleSalt, converted once.
var handleSaltBytes = []byte(handleSalt)

// fastProc reports whether an NFSv3 procedure is answered by the read path
// (when its handle is a commit export's).
func fastProc(proc uint32) bool {
	switch proc {
	case nfsProcGetattr, nfsProcLookup, nfsProcAccess, nfsProcReadlink, nfsProcRead,
		nfsProcReaddir, nfsProcReaddirplus, nfsProcFsstat, nfsProcFsinfo, nfsProcPathconf:
		return true
	}
	return false
}

// isFast reports whether a parsed call goes to the read path: NFSv3, a
// read-only procedure, and a handle of a commit export's shape.
func isFast(rec []byte, cl *call) bool {
	if cl.prog != progNFS || cl.vers != 3 || !fastProc(cl.proc) || len(rec)-cl.argOff < 4 {
		return false
	}
	return binary.BigEndian.Uint32(rec[cl.argOff:]) == handleLen
}

// worker is one goroutine of the read path's pool, with its scratch state.
type worker struct {
	s   *Server
	mac hash.Hash
	sum []byte
	id  [8]byte
}

func newWorker(s *Server) *worker {
	return &worker{s: s, mac: hmac.New(sha256.New, s.key), sum: make([]byte, 0, sha256.Size)}
}

// macOf computes a commit handle's MAC into w.sum.
func (w *worker) macOf(commit []byte, id uint64) []byte {
	binary.BigEndian.PutUint64(w.id[:], id)
	w.mac.Reset()
	w.mac.Write(handleSaltBytes)
	w.mac.Write(commit)
	w.mac.Write(w.id[:])
	w.sum = w.mac.Sum(w.sum[:0])
	return w.sum[:macLen]
}

// appendHandle appends the nfs_fh3 of a commit object.
func (w *worker) appendHandle(b []byte, ix *commitIndex, id uint64) []byte {
	b = xdr.AppendU32(b, handleLen)
	b = append(b, ix.commit[:]...)
	b = xdr.AppendU64(b, id)
	return append(b, w.macOf(ix.commit[:], id)...)
}

// resolve checks a commit handle (the client may use its commit; the MAC
// is ours) and finds its object. nil means NFS3ERR_STALE.
func (w *worker) resolve(c *permConn, fh []byte) (*commitIndex, *node) {
	if len(fh) != handleLen {
		return nil, nil
	}
	var commit [20]byte
	copy(commit[:], fh[:20])
	if !c.commitAllowed(commit) {
		w.s.stats.handlesRefused.Add(1)
		return nil, nil
	}
	id := binary.BigEndian.Uint64(fh[20:28])
	if !hmac.Equal(fh[28:], w.macOf(fh[:20], id)) {
		return nil, nil
	}
	e, err := w.s.index(w.s.ctx, ID(commit))
	if err != nil {
		w.s.log.Error("nfs: cannot load the commit of a valid handle", "commit", ID(commit).String(), "err", err)
		return nil, nil
	}
	n := e.ix.byID[id]
	if n == nil {
		return nil, nil
	}
	return e.ix, n
}

// beginReply starts a reply record in b (its record mark is filled in by
// endReply).
func beginReply(b []byte, xid, accept uint32) []byte {
	b = append(b[:0], 0, 0, 0, 0)
	b = xdr.AppendU32(b, xid)
	b = xdr.AppendU32(b, 1) // REPLY
	b = xdr.AppendU32(b, 0) // MSG_ACCEPTED
	b = xdr.AppendU32(b, authNull)
	b = xdr.AppendU32(b, 0) // empty verifier
	return xdr.AppendU32(b, accept)
}

func endReply(b []byte) []byte {
	binary.BigEndian.PutUint32(b, uint32(len(b)-4)|1<<31)
	return b
}

func ftype(t meta.Type) uint32 {
	switch t {
	case meta.TypeDir:
		return nf3Dir
	case meta.TypeBlock:
		return 3
	case meta.TypeChar:
		return 4
	case meta.TypeSymlink:
		return 5
	case meta.TypeSocket:
		return 6
	case meta.TypeFifo:
		return 7
	}
	return 1
}

func attrOf(n *node) fattr {
	return fattr{typ: ftype(n.typ), mode: n.mode & 0o7777, uid: n.uid, gid: n.gid}
}

// appendFattr appends a node's fattr3: the .gitmeta type, full 12 mode
// bits, owner and device numbers; every time is the commit time; fsid 0 (as
// go-nfs, which answers this export's MOUNT).
func appendFattr(b []byte, ix *commitIndex, n *node) []byte {
	b = xdr.AppendU32(b, ftype(n.typ))
	b = xdr.AppendU32(b, n.mode&0o7777)
	b = xdr.AppendU32(b, n.nlink)
	b = xdr.AppendU32(b, n.uid)
	b = xdr.AppendU32(b, n.gid)
	b = xdr.AppendU64(b, uint64(n.size))
	b = xdr.AppendU64(b, uint64(n.size))
	b = xdr.AppendU32(b, n.major)
	b = xdr.AppendU32(b, n.minor)
	b = xdr.AppendU64(b, 0)
	b = xdr.AppendU64(b, n.fileid)
	for range 3 {
		b = xdr.AppendU32(b, ix.mtimeSec)
		b = xdr.AppendU32(b, ix.mtimeNsec)
	}
	return b
}

func appendPostOp(b []byte, ix *commitIndex, n *node) []byte {
	if n == nil {
		return xdr.AppendU32(b, 0)
	}
	return appendFattr(xdr.AppendU32(b, 1), ix, n)
}

// failure appends a failed result: the status, then (for every procedure
// here but GETATTR) the object's post_op_attr.
func failure(b []byte, proc, status uint32, ix *commitIndex, n *node) []byte {
	b = xdr.AppendU32(b, status)
	if proc != nfsProcGetattr {
		b = appendPostOp(b, ix, n)
	}
	return b
}

// answer builds the whole reply record (record mark included) to a read
// path call. The result aliases j.out or j.big.
func (w *worker) answer(j *job) []byte {
	cl := &j.cl
	r := xdr.Reader{B: j.rec, Off: cl.argOff}
	fh := r.Opaque(64)
	b := beginReply(j.out, cl.xid, acceptSuccess)
	if r.Bad {
		return endReply(beginReply(j.out, cl.xid, acceptGarbageArgs))
	}
	ix, n := w.resolve(j.c, fh)
	if n == nil {
		return endReply(failure(b, cl.proc, nfs3ErrStale, nil, nil))
	}
	switch cl.proc {
	case nfsProcGetattr:
		b = xdr.AppendU32(b, nfs3OK)
		b = appendFattr(b, ix, n)
	case nfsProcLookup:
		name := r.Opaque(4096)
		if r.Bad {
			return endReply(beginReply(j.out, cl.xid, acceptGarbageArgs))
		}
		b = w.lookup(b, cl, ix, n, name)
	case nfsProcAccess:
		mask := r.U32()
		if r.Bad {
			return endReply(beginReply(j.out, cl.xid, acceptGarbageArgs))
		}
		a := attrOf(n)
		allowed := accessMask(a, perms(a, &cl.cred))
		wanted := uint32(access3Read | access3Execute)
		if n.typ == meta.TypeDir {
			wanted = access3Read | access3Lookup
		}
		if mask&wanted&^allowed != 0 {
			w.s.stats.denied.Add(1)
		}
		b = xdr.AppendU32(b, nfs3OK)
		b = appendPostOp(b, ix, n)
		// A commit is read-only: never MODIFY, EXTEND or DELETE.
		b = xdr.AppendU32(b, mask&allowed&(access3Read|access3Lookup|access3Execute))
	case nfsProcReadlink:
		switch {
		case n.typ != meta.TypeSymlink:
			b = failure(b, cl.proc, nfs3ErrInval, ix, n)
		case !w.mayRead(cl, n):
			b = failure(b, cl.proc, nfs3ErrAcces, ix, n)
		default:
			b = xdr.AppendU32(b, nfs3OK)
			b = appendPostOp(b, ix, n)
			b = xdr.AppendString(b, n.link)
		}
	case nfsProcRead:
		off, count := r.U64(), r.U32()
		if r.Bad {
			return endReply(beginReply(j.out, cl.xid, acceptGarbageArgs))
		}
		return w.read(j, b, ix, n, off, count)
	case nfsProcReaddir, nfsProcReaddirplus:
		cookie := r.U64()
		r.Skip(8) // the cookie verifier: a commit's directories never change
		count := r.U32()
		dircount := uint32(maxDirReply)
		if cl.proc == nfsProcReaddirplus {
			dircount, count = count, r.U32()
		}
		if r.Bad {
			return endReply(beginReply(j.out, cl.xid, acceptGarbageArgs))
		}
		b = w.readdir(b, cl, ix, n, cookie, dircount, count)
	case nfsProcFsstat:
		b = xdr.AppendU32(b, nfs3OK)
		b = appendPostOp(b, ix, n)
		b = xdr.AppendU64(b, uint64(ix.bytes)) // tbytes
		b = xdr.AppendU64(b, 0)                // fbytes
		b = xdr.AppendU64(b, 0)                // abytes
		b = xdr.AppendU64(b, uint64(ix.nodes)) // tfiles
		b = xdr.AppendU64(b, 0)                // ffiles
		b = xdr.AppendU64(b, 0)                // afiles
		b = xdr.AppendU32(b, 0)                // invarsec
	case nfsProcFsinfo:
		b = xdr.AppendU32(b, nfs3OK)
		b = appendPostOp(b, ix, n)
		for _, v := range [...]uint32{rtMax, rtMax, 4096, rtMax, rtMax, 4096, dtPref} {
			b = xdr.AppendU32(b, v) // rtmax rtpref rtmult wtmax wtpref wtmult dtpref
		}
		b = xdr.AppendU64(b, 1<<63-1) // maxfilesize
		b = xdr.AppendU32(b, 0)       // time_delta: 1 ns
		b = xdr.AppendU32(b, 1)
		b = xdr.AppendU32(b, 0x1|0x2|0x8) // FSF3_LINK | FSF3_SYMLINK | FSF3_HOMOGENEOUS
	case nfsProcPathconf:
		b = xdr.AppendU32(b, nfs3OK)
		b = appendPostOp(b, ix, n)
		b = xdr.AppendU32(b, 32000)   // linkmax
		b = xdr.AppendU32(b, maxName) // name_max
		b = xdr.AppendBool(b, true)   // no_trunc
		b = xdr.AppendBool(b, true)   // chown_restricted
		b = xdr.AppendBool(b, false)  // case_insensitive
		b = xdr.AppendBool(b, true)   // case_preserving
	}
	return endReply(b)
}

// mayRead reports whether the caller may read n; a refusal is counted.
func (w *worker) mayRead(cl *call, n *node) bool {
	if perms(attrOf(n), &cl.cred)&4 != 0 {
		return true
	}
	w.s.stats.denied.Add(1)
	return false
}

func (w *worker) lookup(b []byte, cl *call, ix *commitIndex, dir *node, name []byte) []byte {
	switch {
	case dir.typ != meta.TypeDir:
		return failure(b, cl.proc, nfs3ErrNotDir, ix, dir)
	case perms(attrOf(dir), &cl.cred)&1 == 0:
		w.s.stats.denied.Add(1)
		return failure(b, cl.proc, nfs3ErrAcces, ix, dir)
	case len(name) > maxName:
		return failure(b, cl.proc, nfs3ErrNameTooLong, ix, dir)
	}
	var n *node
	switch string(name) {
	case ".":
		n = dir
	case "..":
		n = dir.parent
		if n == nil {
			n = dir // the export's root
		}
	default:
		n = dir.childBytes(name)
	}
	if n == nil {
		return failure(b, cl.proc, nfs3ErrNoEnt, ix, dir)
	}
	b = xdr.AppendU32(b, nfs3OK)
	b = w.appendHandle(b, ix, n.fileid)
	b = appendPostOp(b, ix, n)
	return appendPostOp(b, ix, dir)
}

// childBytes is child for a name that is still a byte slice.
func (n *node) childBytes(name []byte) *node {
	i := sort.Search(len(n.kids), func(i int) bool { return n.kids[i].name >= string(name) })
	if i < len(n.kids) && n.kids[i].name == string(name) {
		return n.kids[i]
	}
	return nil
}

// read answers READ with a pread of the blob into the reply buffer.
func (w *worker) read(j *job, b []byte, ix *commitIndex, n *node, off uint64, count uint32) []byte {
	switch {
	case n.typ == meta.TypeDir:
		return endReply(failure(b, nfsProcRead, nfs3ErrIsDir, ix, n))
	case n.typ != meta.TypeFile:
		return endReply(failure(b, nfsProcRead, nfs3ErrInval, ix, n))
	case !w.mayRead(&j.cl, n):
		return endReply(failure(b, nfsProcRead, nfs3ErrAcces, ix, n))
	}
	size := uint64(n.size)
	count = min(count, rtMax)
	eof := false
	if off >= size {
		count, eof = 0, true
	} else if size-off <= uint64(count) {
		count, eof = uint32(size-off), true
	}
	need := readHdr + int(count) + 4
	if cap(b) < need {
		b = j.bigBuf(need, b)
	}
	b = xdr.AppendU32(b, nfs3OK)
	b = appendPostOp(b, ix, n)
	b = xdr.AppendU32(b, count)
	b = xdr.AppendBool(b, eof)
	b = xdr.AppendU32(b, count)
	if count > 0 {
		start := len(b)
		b = b[:start+int(count)]
		got, err := w.s.store.readAt(n.blob, b[start:], int64(off))
		if got != int(count) {
			w.s.log.Error("nfs: cannot read a stored blob (shorter than its commit says, or not the object git names and not rebuilt)", "blob", n.blob.String(), "offset", off, "want", count, "got", got, "err", err)
			return endReply(failure(beginReply(b, j.cl.xid, acceptSuccess), nfsProcRead, nfs3ErrIO, ix, n))
		}
		b = append(b, make([]byte, xdr.Pad(int(count)))...)
	}
	return endReply(b)
}

// Sizes of the parts of a READDIR(PLUS) reply, for the client's limits.
const (
	dirHead      = 4 + 4 + fattr3Len + 8 + 4 + 4 // status, post_op_attr, verifier, end of list, eof
	entryFixed   = 4 + 8 + 4 + 8                 // value_follows, fileid, name length, cookie
	entryPlusAdd = 4 + fattr3Len + 4 + 4 + handleLen
)

// readdir answers READDIR and READDIRPLUS. Cookies are positions: "." is
// 1, ".." 2, the i-th entry in name order i+3, so a listing resumes
// exactly where it stopped; the verifier (the commit's first 8 bytes) is
// never checked, since a commit's directories never change.
func (w *worker) readdir(b []byte, cl *call, ix *commitIndex, dir *node, cookie uint64, dircount, count uint32) []byte {
	plus := cl.proc == nfsProcReaddirplus
	switch {
	case dir.typ != meta.TypeDir:
		return failure(b, cl.proc, nfs3ErrNotDir, ix, dir)
	case !w.mayRead(cl, dir):
		return failure(b, cl.proc, nfs3ErrAcces, ix, dir)
	}
	limit := min(int(count), maxDirReply)
	dirLimit := int(dircount)
	start := len(b)
	b = xdr.AppendU32(b, nfs3OK)
	b = appendPostOp(b, ix, dir)
	b = append(b, ix.commit[:8]...)
	total := len(b) - start + 8 // + end of list and eof
	dirBytes := 0
	parent := dir.parent
	if parent == nil {
		parent = dir
	}
	entries := uint64(len(dir.kids)) + 2
	pos := cookie
	for ; pos < entries; pos++ {
		var n *node
		var name string
		switch pos {
		case 0:
			n, name = dir, "."
		case 1:
			n, name = parent, ".."
		default:
			n = dir.kids[pos-2]
			name = n.name
		}
		size := entryFixed + len(name) + xdr.Pad(len(name))
		dsize := 8 + 4 + len(name) + xdr.Pad(len(name)) + 8
		if plus {
			size += entryPlusAdd
		}
		if total+size > limit || (plus && dirBytes+dsize > dirLimit) {
			break
		}
		total += size
		dirBytes += dsize
		b = xdr.AppendU32(b, 1) // value follows
		b = xdr.AppendU64(b, n.fileid)
		b = xdr.AppendString(b, name)
		b = xdr.AppendU64(b, pos+1)
		if plus {
			b = appendPostOp(b, ix, n)
			b = xdr.AppendU32(b, 1) // handle follows
			b = w.appendHandle(b, ix, n.fileid)
		}
	}
	if pos == cookie && pos < entries {
		return failure(b[:start], cl.proc, nfs3ErrTooSmall, ix, dir)
	}
	b = xdr.AppendU32(b, 0) // no more entries
	return xdr.AppendBool(b, pos >= entries)
}
