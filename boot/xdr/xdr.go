// Package xdr reads the XDR encoding (RFC 4506) of ONC RPC messages, for
// the RPC services git-onesis speaks or inspects (portmap, and the NFS
// permission interposer). It only reads, never panics on short or hostile
// input, and makes the first failure stick, so a parser can read a whole
// structure and check Bad once.
package xdr

import "encoding/binary"

// Reader walks an XDR byte slice from Off.
type Reader struct {
	B   []byte
	Off int
	// Bad is set by the first read past the end or over a limit; every
	// read after it returns zero values.
	Bad bool
}

// U32 reads an unsigned 32-bit integer.
func (r *Reader) U32() uint32 {
	if r.Bad || len(r.B)-r.Off < 4 {
		r.Bad = true
		return 0
	}
	v := binary.BigEndian.Uint32(r.B[r.Off:])
	r.Off += 4
	return v
}

// Opaque reads a variable-length opaque of at most max bytes, skipping its
// padding. The result aliases B.
func (r *Reader) Opaque(max int) []byte {
	n := r.U32()
	if r.Bad || int64(n) > int64(max) {
		r.Bad = true
		return nil
	}
	padded := (int(n) + 3) &^ 3
	if len(r.B)-r.Off < padded {
		r.Bad = true
		return nil
	}
	v := r.B[r.Off : r.Off+int(n)]
	r.Off += padded
	return v
}

// Skip moves past n bytes.
func (r *Reader) Skip(n int) {
	if r.Bad || n < 0 || len(r.B)-r.Off < n {
		r.Bad = true
		return
	}
	r.Off += n
}

// MaxAuth bounds an opaque_auth body (RFC 5531).
const MaxAuth = 400

// Auth skips an opaque_auth (flavor and body) and returns its flavor and
// body.
func (r *Reader) Auth() (flavor uint32, body []byte) {
	flavor = r.U32()
	body = r.Opaque(MaxAuth)
	return flavor, body
}
