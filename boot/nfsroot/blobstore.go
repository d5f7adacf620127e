package nfsroot

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"

	"github.com/google/renameio/v2"

	"github.com/onesis/git-onesis/boot/integrity"
)

// blobStore is a content-addressed store of blobs (as Objects gives them) under
// <StateDir>/blobs/xx/yyyy...: every blob is written once and shared by
// every commit that contains it. Serving a new commit therefore costs disk
// and time in proportion to the blobs it adds.
//
// Writes are atomic: a blob is written to a temporary file in
// <StateDir>/blobs/tmp, fsynced, and renamed into place only once the
// whole batch is written, so a blob's final name always holds its complete
// content, even after a crash. Several writers work at once so file
// creation and fsync latencies overlap.
type blobStore struct {
	dir   string
	mu    sync.Mutex
	sizes map[ID]int64 // blobs known to be present

	fdMu   sync.Mutex
	fds    map[ID]*openBlob // descriptors kept open for READ
	fdRing []ID             // fds' keys in the order they were opened
	fdNext int              // the ring's oldest slot

	check *blobCheck // verification before serving (verify.go)
}

// openBlob is a blob's descriptor kept open for the read path (a plain
// descriptor: pread needs no poller and no os.File).
type openBlob struct {
	fd   int
	refs int                // reads using it now
	id   integrity.Identity // the file as it was verified
}

// maxOpenBlobs bounds the descriptors the read path keeps open: enough
// for 20 nodes each reading 16 files at once without reopening them,
// and at most a quarter of the process's descriptor limit.
var maxOpenBlobs = func() int {
	n := 2048
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur/4 < uint64(n) {
		n = max(int(lim.Cur/4), 16)
	}
	return n
}()

// removeStaleTemp removes the temporary files of interrupted batches,
// incomplete by definition. Call it only while no other process has the
// store open.
func removeStaleTemp(dir string) {
	if old, err := filepath.Glob(filepath.Join(dir, "tmp", "blob-*")); err == nil {
		for _, p := range old {
			os.Remove(p)
		}
	}
}

// newBlobStore opens the store in dir; check verifies what it serves.
func newBlobStore(dir string, check *blobCheck) (*blobStore, error) {
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o700); err != nil {
		return nil, fmt.Errorf("creating the NFS blob store %s: %w", dir, err)
	}
	for i := 0; i < 256; i++ {
		if err := os.MkdirAll(filepath.Join(dir, fmt.Sprintf("%02x", i)), 0o700); err != nil {
			return nil, fmt.Errorf("creating the NFS blob store %s: %w", dir, err)
		}
	}
	if check.memo == nil {
		check.memo = integrity.NewMemo[ID]()
	}
	return &blobStore{dir: dir, sizes: map[ID]int64{}, fds: map[ID]*openBlob{}, check: check}, nil
}

func (s *blobStore) path(h ID) string {
	x := h.String()
	return filepath.Join(s.dir, x[:2], x[2:])
}

func (s *blobStore) known(h ID) (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	size, ok := s.sizes[h]
	return size, ok
}

// ensureAll makes sure every blob in hs is stored and returns their sizes.
// Blobs are read from objs in order by this goroutine and written by a few
// writers, which overlap the file-creation latency.
func (s *blobStore) ensureAll(ctx context.Context, hs []ID, objs Objects) (map[ID]int64, error) {
	sizes := make(map[ID]int64, len(hs))
	type job struct {
		h    ID
		data []byte
	}
	type done struct {
		h   ID
		tmp string
		err error
	}
	jobs := make(chan job, 16)
	results := make(chan done, 16)
	var wg sync.WaitGroup
	for i := 0; i < blobWriters; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				tmp, err := s.writeTemp(j.data)
				results <- done{h: j.h, tmp: tmp, err: err}
			}
		}()
	}
	var written []done
	var firstErr error
	collected := make(chan struct{})
	go func() {
		for r := range results {
			if r.err != nil && firstErr == nil {
				firstErr = fmt.Errorf("storing blob %s: %w", r.h, r.err)
			}
			written = append(written, r)
		}
		close(collected)
	}()
	var readErr error
	for _, h := range hs {
		if _, seen := sizes[h]; seen {
			continue
		}
		if size, ok := s.known(h); ok {
			sizes[h] = size
			continue
		}
		if fi, err := os.Lstat(s.path(h)); err == nil && fi.Mode().IsRegular() {
			sizes[h] = fi.Size()
			continue
		}
		if readErr = ctx.Err(); readErr != nil {
			break
		}
		r, size, err := objs.Blob(h)
		if err != nil {
			readErr = fmt.Errorf("reading blob %s: %w", h, err)
			break
		}
		sizes[h] = size
		if size > bigBlob {
			// Large blobs are streamed here, never held in memory.
			tmp, err := s.streamTemp(r, size)
			r.Close()
			results <- done{h: h, tmp: tmp, err: err}
			continue
		}
		data, err := readBlob(h, r, size)
		r.Close()
		if err != nil {
			readErr = err
			break
		}
		jobs <- job{h: h, data: data}
	}
	close(jobs)
	wg.Wait()
	close(results)
	<-collected
	defer func() {
		for _, w := range written {
			if w.tmp != "" {
				os.Remove(w.tmp) // no-op once renamed
			}
		}
	}()
	if readErr != nil {
		return nil, readErr
	}
	if firstErr != nil {
		return nil, firstErr
	}
	if len(written) > 0 {
		for _, w := range written {
			if err := os.Rename(w.tmp, s.path(w.h)); err != nil {
				return nil, fmt.Errorf("storing blob %s: %w", w.h, err)
			}
		}
	}
	s.mu.Lock()
	for h, size := range sizes {
		s.sizes[h] = size
	}
	s.mu.Unlock()
	return sizes, nil
}

const blobWriters = 4

// bigBlob is the size above which a blob is streamed to disk instead of
// being handed to a writer in memory.
var bigBlob int64 = 4 << 20

// readBlob reads a (small) blob h of size bytes from r into memory.
func readBlob(h ID, r io.Reader, size int64) ([]byte, error) {
	buf := bytes.NewBuffer(make([]byte, 0, size))
	n, err := io.Copy(buf, r)
	if err != nil {
		return nil, fmt.Errorf("reading blob %s: %w", h, err)
	}
	if n != size {
		return nil, fmt.Errorf("blob %s inflated to %d bytes, expected %d", h, n, size)
	}
	return buf.Bytes(), nil
}

// streamTemp writes a large blob of size bytes from r straight into a
// temporary file.
func (s *blobStore) streamTemp(r io.Reader, size int64) (string, error) {
	f, err := os.CreateTemp(filepath.Join(s.dir, "tmp"), "blob-")
	if err != nil {
		return "", err
	}
	n, err := io.Copy(f, r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n != size {
		err = fmt.Errorf("inflated to %d bytes, expected %d", n, size)
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

func (s *blobStore) writeTemp(data []byte) (string, error) {
	f, err := os.CreateTemp(filepath.Join(s.dir, "tmp"), "blob-")
	if err != nil {
		return "", err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// open opens a stored blob for reading, verified (go-nfs's read path).
func (s *blobStore) open(h ID) (*os.File, error) {
	fd, _, err := s.openVerified(h)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), s.path(h)), nil
}

// readAt reads a stored blob at off (pread), through a descriptor kept
// open for the next READ of the same blob: a file read in rsize pieces
// costs one open. The descriptor was verified when it was opened, and an
// fstat after each pread makes sure the file is still the one verified
// (a write in place moves its ctime): otherwise it is verified (and
// repaired) again and the read redone, so a changed byte is never
// served. It returns the bytes read; fewer than len(p) only at the blob's
// end or on an error.
func (s *blobStore) readAt(h ID, p []byte, off int64) (int, error) {
	for try := 0; ; try++ {
		ob, err := s.acquire(h)
		if err != nil {
			return 0, err
		}
		n, err := pread(ob.fd, p, off)
		stale := false
		if !s.check.off {
			id, _, ferr := integrity.Fstat(ob.fd)
			stale = ferr != nil || id != ob.id
		}
		s.release(h, ob, stale)
		if !stale {
			return n, err
		}
		if try > 0 {
			return 0, fmt.Errorf("blob %s changed while it was read: %w", h, syscall.EIO)
		}
	}
}

// acquire returns h's cached descriptor, opening and verifying it first
// when there is none, with a reference the caller gives back to release.
func (s *blobStore) acquire(h ID) (*openBlob, error) {
	s.fdMu.Lock()
	ob := s.fds[h]
	if ob == nil {
		s.fdMu.Unlock()
		fd, id, err := s.openVerified(h)
		if err != nil {
			return nil, err
		}
		s.fdMu.Lock()
		if ob = s.fds[h]; ob == nil || ob.id != id {
			if ob != nil {
				s.dropLocked(h, ob)
			}
			s.evictFDsLocked(h)
			ob = &openBlob{fd: fd, id: id}
			s.fds[h] = ob
		} else {
			defer syscall.Close(fd) // another read opened it meanwhile
		}
	}
	ob.refs++
	s.fdMu.Unlock()
	return ob, nil
}

// release gives back a reference from acquire; stale forgets the
// descriptor (the file is no longer the one verified).
func (s *blobStore) release(h ID, ob *openBlob, stale bool) {
	s.fdMu.Lock()
	defer s.fdMu.Unlock()
	ob.refs--
	if stale && s.fds[h] == ob {
		delete(s.fds, h)
	}
	if ob.refs == 0 && s.fds[h] != ob {
		syscall.Close(ob.fd) // evicted while in use
	}
}

// pread fills p from fd at off, up to the end of the file (io.EOF).
func pread(fd int, p []byte, off int64) (int, error) {
	return integrity.FDReader(fd).ReadAt(p, off)
}

// evictFDsLocked makes room for one more descriptor and records h as the
// newest: the oldest opened is forgotten (closed, unless a read still uses
// it, which then does). A file is read in one burst of READs, so first
// opened, first done is close enough to least recently used, at O(1).
func (s *blobStore) evictFDsLocked(h ID) {
	if len(s.fdRing) < maxOpenBlobs {
		s.fdRing = append(s.fdRing, h)
		return
	}
	old := s.fdRing[s.fdNext]
	s.fdRing[s.fdNext] = h
	s.fdNext = (s.fdNext + 1) % maxOpenBlobs
	if ob := s.fds[old]; ob != nil {
		delete(s.fds, old)
		if ob.refs == 0 {
			syscall.Close(ob.fd)
		}
	}
}

// closeFDs closes every cached descriptor not in use (after a prune, so
// deleted blobs free their space; or at Close).
func (s *blobStore) closeFDs() {
	s.fdMu.Lock()
	defer s.fdMu.Unlock()
	for h, ob := range s.fds {
		delete(s.fds, h)
		if ob.refs == 0 {
			syscall.Close(ob.fd)
		}
	}
	s.fdRing, s.fdNext = s.fdRing[:0], 0
}

// A commit's size list (<StateDir>/commits/<sha>: 20-byte blob id and
// 8-byte size per blob, written atomically once all its blobs are stored)
// lets a restarted server rebuild that commit's index without a stat per
// blob. It is only a cache: a missing or short file means "look".
const sizeRecord = 20 + 8

func (s *blobStore) commitFile(commit ID) string {
	return filepath.Join(filepath.Dir(s.dir), "commits", commit.String())
}

// loadCommitSizes primes the size cache from a commit's size list.
func (s *blobStore) loadCommitSizes(commit ID) {
	sizes, ok := s.readCommitSizes(commit)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for h, size := range sizes {
		s.sizes[h] = size
	}
}

// readCommitSizes reads commit's size record: every blob the store holds
// for it. false when there is none (or it is damaged).
func (s *blobStore) readCommitSizes(commit ID) (map[ID]int64, bool) {
	b, err := os.ReadFile(s.commitFile(commit))
	if err != nil || len(b)%sizeRecord != 0 {
		return nil, false
	}
	sizes := make(map[ID]int64, len(b)/sizeRecord)
	for i := 0; i < len(b); i += sizeRecord {
		var h ID
		copy(h[:], b[i:i+20])
		sizes[h] = int64(binary.BigEndian.Uint64(b[i+20:]))
	}
	return sizes, true
}

// saveCommitSizes records a commit's size list once its blobs are stored.
func (s *blobStore) saveCommitSizes(commit ID, sizes map[ID]int64) error {
	p := s.commitFile(commit)
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	hs := make([]ID, 0, len(sizes))
	for h := range sizes {
		hs = append(hs, h)
	}
	sort.Slice(hs, func(i, j int) bool { return bytes.Compare(hs[i][:], hs[j][:]) < 0 })
	b := make([]byte, 0, len(hs)*sizeRecord)
	for _, h := range hs {
		b = append(b, h[:]...)
		b = binary.BigEndian.AppendUint64(b, uint64(sizes[h]))
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	return renameio.WriteFile(p, b, 0o600)
}
