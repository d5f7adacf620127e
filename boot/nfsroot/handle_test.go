package nfsroot

import (
	"fmt"
	"testing"
)

// TestHandleBytesFixed: a commit file handle is commit || fileid ||
// HMAC-SHA256(key, "onesis-nfs-c1" || commit || fileid)[:16], byte for
// byte as before the server read through Objects, so nodes mounted
// across an upgrade keep their handles. The want value was computed
// outside Go (Python's hmac module) from the formula in handle.go.
func TestHandleBytesFixed(t *testing.T) {
	key := make([]byte, keyLen)
	for i := range key {
		key[i] = byte(i)
	}
	s := &Server{key: key}
	commit := mustID(t, "0123456789abcdef0123456789abcdef01234567")
	const want = "0123456789abcdef0123456789abcdef01234567000000000000002a18b0b5a592c43773853cce7c67710cf0"
	fh := s.makeHandle(commit, 42)
	if got := fmt.Sprintf("%x", fh); got != want {
		t.Fatalf("handle %s, want %s", got, want)
	}
	c, id, err := s.parseHandle(fh)
	if err != nil || c != commit || id != 42 {
		t.Fatalf("parseHandle = %s, %d, %v", c, id, err)
	}
	w := newWorker(s)
	ix := &commitIndex{commit: commit}
	if got := fmt.Sprintf("%x", w.appendHandle(nil, ix, 42)[4:]); got != want {
		t.Fatalf("read path handle %s, want %s", got, want)
	}
}
