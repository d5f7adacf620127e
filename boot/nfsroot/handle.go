package nfsroot

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/renameio/v2"
)

// Every handle length is a multiple of 4: go-nfs reads opaques without
// their XDR padding, so a 33-byte handle would shift the arguments after it.
//
// A commit file handle is commit(20) || fileid(8, big endian) ||
// HMAC-SHA256(key, "onesis-nfs-c1" || commit || fileid)[:16]: 44 bytes,
// deterministic for a given key, commit and path, and unforgeable without
// the key. The key lives in <StateDir>/handle.key, so handles survive a
// server restart.
const (
	handleLen  = 20 + 8 + macLen
	macLen     = 16
	keyLen     = 32
	keyFile    = "handle.key"
	handleSalt = "onesis-nfs-c1"
)

var errBadHandle = errors.New("file handle was not issued by this server")

// loadKey reads the handle key, creating it (0600, atomically) on first use.
func loadKey(stateDir string) ([]byte, error) {
	p := filepath.Join(stateDir, keyFile)
	b, err := os.ReadFile(p)
	if err == nil {
		if len(b) != keyLen {
			return nil, fmt.Errorf("NFS handle key %s is %d bytes, expected %d; delete it to make a new one (mounted nodes will see stale handles)", p, len(b), keyLen)
		}
		return b, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("reading the NFS handle key: %w", err)
	}
	b = make([]byte, keyLen)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	if err := renameio.WriteFile(p, b, 0o600, renameio.WithStaticPermissions(0o600)); err != nil {
		return nil, fmt.Errorf("writing the NFS handle key: %w", err)
	}
	return b, nil
}

func (s *Server) mac(commit ID, fileid uint64) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(handleSalt))
	m.Write(commit[:])
	var id [8]byte
	binary.BigEndian.PutUint64(id[:], fileid)
	m.Write(id[:])
	return m.Sum(nil)[:macLen]
}

func (s *Server) makeHandle(commit ID, fileid uint64) []byte {
	h := make([]byte, 0, handleLen)
	h = append(h, commit[:]...)
	h = binary.BigEndian.AppendUint64(h, fileid)
	return append(h, s.mac(commit, fileid)...)
}

// parseHandle checks a commit handle's MAC and returns its parts.
func (s *Server) parseHandle(fh []byte) (ID, uint64, error) {
	var c ID
	if len(fh) != handleLen {
		return c, 0, errBadHandle
	}
	copy(c[:], fh[:20])
	id := binary.BigEndian.Uint64(fh[20:28])
	if !hmac.Equal(fh[28:], s.mac(c, id)) {
		return c, 0, errBadHandle
	}
	return c, id, nil
}
