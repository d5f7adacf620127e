package nfsroot

import (
	"encoding/binary"
	"errors"
)

// This file holds the small, allocation-light ONC RPC (RFC 5531) and NFSv3
// (RFC 1813) parsing the permission interposer needs. Everything here is a
// pure function over bytes, so it is table-tested and fuzzed.

const (
	progNFS   = 100003
	progMount = 100005

	authNull = 0
	authUnix = 1

	nfsProcGetattr     = 1
	nfsProcSetattr     = 2
	nfsProcLookup      = 3
	nfsProcAccess      = 4
	nfsProcCreate      = 8
	nfsProcMkdir       = 9
	nfsProcReadlink    = 5
	nfsProcRead        = 6
	nfsProcReaddir     = 16
	nfsProcReaddirplus = 17

	nfs3ErrAcces = 13

	access3Read    = 0x01
	access3Lookup  = 0x02
	access3Modify  = 0x04
	access3Extend  = 0x08
	access3Delete  = 0x10
	access3Execute = 0x20

	fattr3Len = 84

	// maxRecord bounds one RPC record (a 1 MiB WRITE plus headers fits).
	maxRecord = 4<<20 + 64<<10
	maxAuth   = 400 // RFC 5531: opaque_auth body is at most 400 bytes
	maxGids   = 16  // RFC 5531 AUTH_SYS
	nobody    = 65534
)

var errGarbage = errors.New("malformed RPC message")

// xdrReader walks an XDR byte slice; the first failure sticks.
type xdrReader struct {
	b   []byte
	off int
	bad bool
}

func (r *xdrReader) u32() uint32 {
	if r.bad || len(r.b)-r.off < 4 {
		r.bad = true
		return 0
	}
	v := binary.BigEndian.Uint32(r.b[r.off:])
	r.off += 4
	return v
}

// opaque returns a variable-length opaque of at most max bytes (padding
// skipped).
func (r *xdrReader) opaque(max int) []byte {
	n := r.u32()
	if r.bad || int64(n) > int64(max) {
		r.bad = true
		return nil
	}
	padded := (int(n) + 3) &^ 3
	if len(r.b)-r.off < padded {
		r.bad = true
		return nil
	}
	v := r.b[r.off : r.off+int(n)]
	r.off += padded
	return v
}

func (r *xdrReader) skip(n int) {
	if r.bad || len(r.b)-r.off < n {
		r.bad = true
		return
	}
	r.off += n
}

// cred is the caller identity of one call.
type cred struct {
	uid  uint32
	gid  uint32
	gids []uint32
}

func (c cred) inGroup(g uint32) bool {
	if c.gid == g {
		return true
	}
	for _, x := range c.gids {
		if x == g {
			return true
		}
	}
	return false
}

// call is what the interposer remembers of a CALL until its REPLY.
type call struct {
	xid  uint32
	prog uint32
	vers uint32
	proc uint32
	cred cred
	// argOff is the offset of the procedure arguments in the record.
	argOff int
	// SETATTR with a mode: the handle and the full mode asked for.
	setattrFH   []byte
	setattrMode uint32
	// CREATE/MKDIR with setuid, setgid or sticky in the mode asked for.
	createMode uint32
}

// parseCall reads an RPC CALL record body (without the record mark). A
// caller without AUTH_SYS credentials is treated as nobody.
func parseCall(rec []byte) (call, error) {
	r := &xdrReader{b: rec}
	var c call
	c.xid = r.u32()
	if mtype := r.u32(); r.bad || mtype != 0 {
		return c, errGarbage
	}
	if rpcvers := r.u32(); r.bad || rpcvers != 2 {
		return c, errGarbage
	}
	c.prog, c.vers, c.proc = r.u32(), r.u32(), r.u32()
	flavor := r.u32()
	body := r.opaque(maxAuth)
	r.u32() // verifier flavor
	r.opaque(maxAuth)
	if r.bad {
		return c, errGarbage
	}
	c.argOff = r.off
	c.cred = cred{uid: nobody, gid: nobody}
	if flavor == authUnix {
		cr, err := parseAuthUnix(body)
		if err != nil {
			return c, err
		}
		c.cred = cr
	}
	return c, nil
}

// parseAuthUnix reads an AUTH_SYS credential body.
func parseAuthUnix(b []byte) (cred, error) {
	r := &xdrReader{b: b}
	r.u32()       // stamp
	r.opaque(255) // machine name
	var c cred
	c.uid, c.gid = r.u32(), r.u32()
	n := r.u32()
	if r.bad || n > maxGids {
		return cred{}, errGarbage
	}
	c.gids = make([]uint32, n)
	for i := range c.gids {
		c.gids[i] = r.u32()
	}
	if r.bad {
		return cred{}, errGarbage
	}
	return c, nil
}

// fattr is the part of an NFSv3 fattr3 permission checks need.
type fattr struct {
	typ  uint32
	mode uint32
	uid  uint32
	gid  uint32
}

const nf3Dir = 2

func readFattr(r *xdrReader) (fattr, bool) {
	if follows := r.u32(); r.bad || follows == 0 {
		return fattr{}, false
	}
	start := r.off
	a := fattr{typ: r.u32(), mode: r.u32()}
	r.u32() // nlink
	a.uid, a.gid = r.u32(), r.u32()
	r.off = start
	r.skip(fattr3Len)
	return a, !r.bad
}

// perms returns the rwx bits (4, 2, 1) the caller has on an object: owner
// bits for its owner, group bits for a member of its group, other bits
// otherwise, as the kernel checks them. Root has everything, except that
// execute needs some execute bit on a non-directory.
func perms(a fattr, c cred) uint32 {
	m := a.mode & 0o777
	if c.uid == 0 {
		p := uint32(7)
		if a.typ != nf3Dir && m&0o111 == 0 {
			p &^= 1
		}
		return p
	}
	switch {
	case c.uid == a.uid:
		return (m >> 6) & 7
	case c.inGroup(a.gid):
		return (m >> 3) & 7
	}
	return m & 7
}

// accessMask maps rwx bits to the ACCESS3 bits they allow.
func accessMask(a fattr, p uint32) uint32 {
	var m uint32
	if p&4 != 0 {
		m |= access3Read
	}
	if p&2 != 0 {
		m |= access3Modify | access3Extend | access3Delete
	}
	if p&1 != 0 {
		if a.typ == nf3Dir {
			m |= access3Lookup
		} else {
			m |= access3Execute
		}
	}
	return m
}

// replyResults returns the offset of the procedure results in an accepted,
// successful REPLY record, or -1 for any other reply.
func replyResults(rec []byte) (xid uint32, off int) {
	r := &xdrReader{b: rec}
	xid = r.u32()
	if mtype := r.u32(); r.bad || mtype != 1 {
		return xid, -1
	}
	if stat := r.u32(); r.bad || stat != 0 { // MSG_ACCEPTED
		return xid, -1
	}
	r.u32() // verifier flavor
	r.opaque(maxAuth)
	if astat := r.u32(); r.bad || astat != 0 { // SUCCESS
		return xid, -1
	}
	return xid, r.off
}

// filterReply enforces the caller's permissions on an NFSv3 reply. It
// returns the record to send (rec itself, edited in place, or a new error
// reply) and whether the caller was refused something.
func filterReply(rec []byte, c call) ([]byte, bool) {
	if c.prog != progNFS || c.vers != 3 {
		return rec, false
	}
	_, off := replyResults(rec)
	if off < 0 {
		return rec, false
	}
	r := &xdrReader{b: rec, off: off}
	if status := r.u32(); r.bad || status != 0 {
		return rec, false
	}
	switch c.proc {
	case nfsProcAccess:
		attrOff := r.off
		a, ok := readFattr(r)
		if !ok {
			r = &xdrReader{b: rec, off: attrOff}
			if follows := r.u32(); r.bad || follows != 0 {
				return rec, false // malformed: go-nfs never writes this
			}
		}
		maskOff := r.off
		granted := r.u32()
		if r.bad {
			return rec, false
		}
		var allowed uint32
		if ok {
			allowed = accessMask(a, perms(a, c.cred))
		}
		if granted&^allowed == 0 {
			return rec, false
		}
		binary.BigEndian.PutUint32(rec[maskOff:], granted&allowed)
		return rec, true
	case nfsProcRead, nfsProcReadlink, nfsProcReaddir, nfsProcReaddirplus:
		attrOff := r.off
		a, ok := readFattr(r)
		if !ok {
			return rec, false // no attributes: nothing to judge by
		}
		if perms(a, c.cred)&4 != 0 {
			return rec, false
		}
		return errorReply(rec, off, rec[attrOff:r.off]), true
	case nfsProcLookup:
		r.opaque(64) // the object's handle
		r.skipFattr()
		dirOff := r.off
		d, ok := readFattr(r)
		if !ok {
			return rec, false
		}
		if perms(d, c.cred)&1 != 0 {
			return rec, false
		}
		return errorReply(rec, off, rec[dirOff:r.off]), true
	}
	return rec, false
}

func (r *xdrReader) skipFattr() {
	if follows := r.u32(); !r.bad && follows != 0 {
		r.skip(fattr3Len)
	}
}

// errorReply builds a reply with the same RPC header as rec, status
// NFS3ERR_ACCES and the given post_op_attr (the resfail arm of READ,
// READLINK, READDIR, READDIRPLUS and LOOKUP is exactly one post_op_attr).
func errorReply(rec []byte, resOff int, postOp []byte) []byte {
	out := make([]byte, 0, resOff+4+len(postOp))
	out = append(out, rec[:resOff]...)
	out = binary.BigEndian.AppendUint32(out, nfs3ErrAcces)
	return append(out, postOp...)
}

// firstHandle returns the file handle that starts the arguments of every
// NFSv3 procedure but NULL, and its offset, or -1.
func firstHandle(rec []byte, c call) ([]byte, int) {
	if c.prog != progNFS || c.proc == 0 {
		return nil, -1
	}
	r := &xdrReader{b: rec, off: c.argOff}
	start := r.off + 4
	h := r.opaque(64)
	if r.bad {
		return nil, -1
	}
	return h, start
}

// parseSetattrMode fills c.setattrFH and c.setattrMode when rec is an
// NFSv3 SETATTR that sets the mode, and c.setattrMode (with a nil handle:
// the new object's comes in the reply) for a CREATE or MKDIR that sets
// special mode bits.
func parseSetattrMode(rec []byte, c *call) {
	if c.prog != progNFS || c.vers != 3 {
		return
	}
	r := &xdrReader{b: rec, off: c.argOff}
	fh := r.opaque(64)
	switch c.proc {
	case nfsProcSetattr:
	case nfsProcMkdir, nfsProcCreate:
		r.opaque(255) // the new name
		if c.proc == nfsProcCreate {
			if how := r.u32(); r.bad || how > 1 { // UNCHECKED or GUARDED carry a sattr3
				return
			}
		}
		if set := r.u32(); r.bad || set != 1 {
			return
		}
		if mode := r.u32(); !r.bad && mode&0o7000 != 0 {
			c.createMode = mode & 0o7777
		}
		return
	default:
		return
	}
	if set := r.u32(); r.bad || set != 1 {
		return
	}
	mode := r.u32()
	if r.bad {
		return
	}
	c.setattrFH = append([]byte(nil), fh...)
	c.setattrMode = mode & 0o7777
}

// patchSetattrMode sets the low 12 mode bits of the post-operation
// attributes in a successful SETATTR reply.
func patchSetattrMode(rec []byte, mode uint32) {
	_, off := replyResults(rec)
	if off < 0 {
		return
	}
	r := &xdrReader{b: rec, off: off}
	if status := r.u32(); r.bad || status != 0 {
		return
	}
	if pre := r.u32(); !r.bad && pre != 0 {
		r.skip(24) // wcc_attr: size, mtime, ctime
	}
	if post := r.u32(); r.bad || post == 0 {
		return
	}
	r.u32() // type
	modeOff := r.off
	old := r.u32()
	if r.bad {
		return
	}
	binary.BigEndian.PutUint32(rec[modeOff:], old&^0o7777|mode)
}

// setattrOK reports whether rec is a successful NFSv3 reply (status 0).
func setattrOK(rec []byte) bool {
	_, off := replyResults(rec)
	if off < 0 {
		return false
	}
	r := &xdrReader{b: rec, off: off}
	return r.u32() == 0 && !r.bad
}

// versionMismatch returns a PROG_MISMATCH (3..3) reply for a well-formed
// NFS or MOUNT call of a version other than 3, and nil otherwise.
func versionMismatch(rec []byte) []byte {
	c, err := parseCall(rec)
	if err != nil || (c.prog != progNFS && c.prog != progMount) || c.vers == 3 {
		return nil
	}
	out := binary.BigEndian.AppendUint32(nil, c.xid)
	for _, v := range []uint32{1, 0, 0, 0, 2, 3, 3} { // REPLY, ACCEPTED, AUTH_NULL verf, PROG_MISMATCH 3..3
		out = binary.BigEndian.AppendUint32(out, v)
	}
	return out
}

// createdHandle returns the new object's handle from a successful CREATE
// or MKDIR reply and the offset of its post-op mode field (-1 if absent).
func createdHandle(rec []byte) ([]byte, int) {
	_, off := replyResults(rec)
	if off < 0 {
		return nil, -1
	}
	r := &xdrReader{b: rec, off: off}
	if status := r.u32(); r.bad || status != 0 {
		return nil, -1
	}
	if follows := r.u32(); r.bad || follows == 0 {
		return nil, -1
	}
	fh := r.opaque(64)
	if follows := r.u32(); r.bad || follows == 0 {
		return fh, -1
	}
	r.u32() // type
	modeOff := r.off
	r.u32()
	if r.bad {
		return fh, -1
	}
	return fh, modeOff
}
