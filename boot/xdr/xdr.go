// Package xdr reads and writes the XDR encoding (RFC 4506) of ONC RPC
// messages, for the RPC services git-onesis speaks or inspects (portmap,
// the NFS root's permission interposer and its read path, the simulated
// NFS clients). The Reader never panics on short or hostile input and
// makes the first failure stick, so a parser can read a whole structure
// and check Bad once. The Append functions encode by appending to a byte
// slice, so a caller that reuses its buffer encodes without allocating
// and without reflection.
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

// AppendU32 appends an unsigned 32-bit integer.
func AppendU32(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }

// AppendU64 appends an unsigned 64-bit integer (XDR unsigned hyper).
func AppendU64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }

// AppendBool appends an XDR boolean.
func AppendBool(b []byte, v bool) []byte {
	if v {
		return AppendU32(b, 1)
	}
	return AppendU32(b, 0)
}

// AppendOpaque appends a variable-length opaque: its length, the bytes and
// zero padding to a multiple of four.
func AppendOpaque(b []byte, p []byte) []byte {
	b = AppendU32(b, uint32(len(p)))
	b = append(b, p...)
	return append(b, make([]byte, Pad(len(p)))...)
}

// AppendString appends a string as a variable-length opaque.
func AppendString(b []byte, s string) []byte {
	b = AppendU32(b, uint32(len(s)))
	b = append(b, s...)
	return append(b, make([]byte, Pad(len(s)))...)
}

// Pad is the number of zero bytes that follow n bytes of opaque data.
func Pad(n int) int { return (4 - n&3) & 3 }

// U64 reads an unsigned 64-bit integer (XDR unsigned hyper).
func (r *Reader) U64() uint64 {
	if r.Bad || len(r.B)-r.Off < 8 {
		r.Bad = true
		return 0
	}
	v := binary.BigEndian.Uint64(r.B[r.Off:])
	r.Off += 8
	return v
}

// Bool reads an XDR boolean; any value other than 0 and 1 is Bad.
func (r *Reader) Bool() bool {
	v := r.U32()
	if v > 1 {
		r.Bad = true
		return false
	}
	return v == 1
}
