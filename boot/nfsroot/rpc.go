package nfsroot

import (
	"encoding/binary"
	"errors"

	"github.com/onesis/git-onesis/boot/xdr"
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
	maxAuth   = xdr.MaxAuth // RFC 5531: opaque_auth body is at most 400 bytes
	maxGids   = 16          // RFC 5531 AUTH_SYS
	nobody    = 65534
)

var errGarbage = errors.New("malformed RPC message")

// cred is the caller identity of one call. The supplementary groups are
// held in place, so parsing a call allocates nothing.
type cred struct {
	uid   uint32
	gid   uint32
	ngids int
	gidv  [maxGids]uint32
}

// newCred is a cred with the given supplementary groups (at most maxGids).
func newCred(uid, gid uint32, gids ...uint32) cred {
	c := cred{uid: uid, gid: gid}
	c.ngids = copy(c.gidv[:], gids)
	return c
}

func (c *cred) gids() []uint32 { return c.gidv[:c.ngids] }

func (c *cred) inGroup(g uint32) bool {
	if c.gid == g {
		return true
	}
	for _, x := range c.gids() {
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
	r := &xdr.Reader{B: rec}
	var c call
	c.xid = r.U32()
	if mtype := r.U32(); r.Bad || mtype != 0 {
		return c, errGarbage
	}
	if rpcvers := r.U32(); r.Bad || rpcvers != 2 {
		return c, errGarbage
	}
	c.prog, c.vers, c.proc = r.U32(), r.U32(), r.U32()
	flavor := r.U32()
	body := r.Opaque(maxAuth)
	r.U32() // verifier flavor
	r.Opaque(maxAuth)
	if r.Bad {
		return c, errGarbage
	}
	c.argOff = r.Off
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
	r := &xdr.Reader{B: b}
	r.U32()       // stamp
	r.Opaque(255) // machine name
	var c cred
	c.uid, c.gid = r.U32(), r.U32()
	n := r.U32()
	if r.Bad || n > maxGids {
		return cred{}, errGarbage
	}
	c.ngids = int(n)
	for i := range c.ngids {
		c.gidv[i] = r.U32()
	}
	if r.Bad {
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

func readFattr(r *xdr.Reader) (fattr, bool) {
	if follows := r.U32(); r.Bad || follows == 0 {
		return fattr{}, false
	}
	start := r.Off
	a := fattr{typ: r.U32(), mode: r.U32()}
	r.U32() // nlink
	a.uid, a.gid = r.U32(), r.U32()
	r.Off = start
	r.Skip(fattr3Len)
	return a, !r.Bad
}

// perms returns the rwx bits (4, 2, 1) the caller has on an object: owner
// bits for its owner, group bits for a member of its group, other bits
// otherwise, as the kernel checks them. Root has everything, except that
// execute needs some execute bit on a non-directory.
func perms(a fattr, c *cred) uint32 {
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
	r := &xdr.Reader{B: rec}
	xid = r.U32()
	if mtype := r.U32(); r.Bad || mtype != 1 {
		return xid, -1
	}
	if stat := r.U32(); r.Bad || stat != 0 { // MSG_ACCEPTED
		return xid, -1
	}
	r.U32() // verifier flavor
	r.Opaque(maxAuth)
	if astat := r.U32(); r.Bad || astat != 0 { // SUCCESS
		return xid, -1
	}
	return xid, r.Off
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
	r := &xdr.Reader{B: rec, Off: off}
	if status := r.U32(); r.Bad || status != 0 {
		return rec, false
	}
	switch c.proc {
	case nfsProcAccess:
		attrOff := r.Off
		a, ok := readFattr(r)
		if !ok {
			r = &xdr.Reader{B: rec, Off: attrOff}
			if follows := r.U32(); r.Bad || follows != 0 {
				return rec, false // malformed: go-nfs never writes this
			}
		}
		maskOff := r.Off
		granted := r.U32()
		if r.Bad {
			return rec, false
		}
		var allowed uint32
		if ok {
			allowed = accessMask(a, perms(a, &c.cred))
		}
		if granted&^allowed == 0 {
			return rec, false
		}
		binary.BigEndian.PutUint32(rec[maskOff:], granted&allowed)
		return rec, true
	case nfsProcRead, nfsProcReadlink, nfsProcReaddir, nfsProcReaddirplus:
		attrOff := r.Off
		a, ok := readFattr(r)
		if !ok {
			return rec, false // no attributes: nothing to judge by
		}
		if perms(a, &c.cred)&4 != 0 {
			return rec, false
		}
		return errorReply(rec, off, rec[attrOff:r.Off]), true
	case nfsProcLookup:
		r.Opaque(64) // the object's handle
		skipFattr(r)
		dirOff := r.Off
		d, ok := readFattr(r)
		if !ok {
			return rec, false
		}
		if perms(d, &c.cred)&1 != 0 {
			return rec, false
		}
		return errorReply(rec, off, rec[dirOff:r.Off]), true
	}
	return rec, false
}

func skipFattr(r *xdr.Reader) {
	if follows := r.U32(); !r.Bad && follows != 0 {
		r.Skip(fattr3Len)
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
	r := &xdr.Reader{B: rec, Off: c.argOff}
	start := r.Off + 4
	h := r.Opaque(64)
	if r.Bad {
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
	r := &xdr.Reader{B: rec, Off: c.argOff}
	fh := r.Opaque(64)
	switch c.proc {
	case nfsProcSetattr:
	case nfsProcMkdir, nfsProcCreate:
		r.Opaque(255) // the new name
		if c.proc == nfsProcCreate {
			if how := r.U32(); r.Bad || how > 1 { // UNCHECKED or GUARDED carry a sattr3
				return
			}
		}
		if set := r.U32(); r.Bad || set != 1 {
			return
		}
		if mode := r.U32(); !r.Bad && mode&0o7000 != 0 {
			c.createMode = mode & 0o7777
		}
		return
	default:
		return
	}
	if set := r.U32(); r.Bad || set != 1 {
		return
	}
	mode := r.U32()
	if r.Bad {
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
	r := &xdr.Reader{B: rec, Off: off}
	if status := r.U32(); r.Bad || status != 0 {
		return
	}
	if pre := r.U32(); !r.Bad && pre != 0 {
		r.Skip(24) // wcc_attr: size, mtime, ctime
	}
	if post := r.U32(); r.Bad || post == 0 {
		return
	}
	r.U32() // type
	modeOff := r.Off
	old := r.U32()
	if r.Bad {
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
	r := &xdr.Reader{B: rec, Off: off}
	return r.U32() == 0 && !r.Bad
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
	r := &xdr.Reader{B: rec, Off: off}
	if status := r.U32(); r.Bad || status != 0 {
		return nil, -1
	}
	if follows := r.U32(); r.Bad || follows == 0 {
		return nil, -1
	}
	fh := r.Opaque(64)
	if follows := r.U32(); r.Bad || follows == 0 {
		return fh, -1
	}
	r.U32() // type
	modeOff := r.Off
	r.U32()
	if r.Bad {
		return fh, -1
	}
	return fh, modeOff
}
