package nfsroot

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	billy "github.com/go-git/go-billy/v5"
	"github.com/google/renameio/v2"
	nfs "github.com/willscott/go-nfs"
)

// A maintenance export ("/w/<node>") serves a directory on the server (a
// linked worktree of an update branch) to one node, read-write when the
// export says so, so an admin can run the package manager on the node and
// commit on the server. Symlinks keep their raw targets, and every path
// stays inside the directory (rootFS: an os.Root); git's files at the top
// are hidden; the deny list does not apply (the node sees the real files).
//
// Its handles are 'W' 0 0 0 || export id(8) || inode(8) || HMAC[:16] (36
// bytes: go-nfs reads opaques without their XDR padding, so every handle
// length must be a multiple of 4).
// The export id -> directory table is persisted in <StateDir>/work/, and
// inode -> path is found again by one walk of the directory after a
// restart, so handles stay valid across restarts while the file exists.
const (
	workHandleLen = 4 + 8 + 8 + macLen
	workSalt      = "onesis-nfs-w1"
)

type workFS struct {
	billy.Filesystem
	s    *Server
	name string
	dir  string
	rw   bool
	id   [8]byte
	root *os.Root

	mu    sync.Mutex
	byIno map[uint64]string
}

type workRecord struct {
	Name      string `json:"name"`
	Dir       string `json:"dir"`
	ReadWrite bool   `json:"rw"`
}

func workID(name, dir string) [8]byte {
	sum := sha256.Sum256([]byte(name + "\x00" + dir))
	var id [8]byte
	copy(id[:], sum[:8])
	return id
}

// workExport opens (or reuses) the maintenance export for a node.
func (s *Server) workExport(name string, exp Export) (*workFS, error) {
	if name == "" || strings.ContainsAny(name, "/\x00") {
		return nil, fmt.Errorf("bad node name %q in a /w/ export", name)
	}
	dir, err := filepath.Abs(exp.Dir)
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("maintenance export %s: %s is not a directory", name, dir)
	}
	rec := workRecord{Name: name, Dir: dir, ReadWrite: exp.ReadWrite}
	id := workID(name, dir)
	b, _ := json.Marshal(rec)
	p := filepath.Join(s.stateDir, "work", hex.EncodeToString(id[:]))
	if old, err := os.ReadFile(p); err != nil || string(old) != string(b) {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return nil, err
		}
		if err := renameio.WriteFile(p, b, 0o600); err != nil {
			return nil, fmt.Errorf("recording maintenance export %s: %w", name, err)
		}
	}
	return s.openWork(rec)
}

func (s *Server) openWork(rec workRecord) (*workFS, error) {
	id := workID(rec.Name, rec.Dir)
	key := hex.EncodeToString(id[:])
	s.mu.Lock()
	defer s.mu.Unlock()
	if w, ok := s.work[key]; ok && w.rw == rec.ReadWrite {
		return w, nil
	}
	root, err := os.OpenRoot(rec.Dir)
	if err != nil {
		return nil, fmt.Errorf("maintenance export %s: %w", rec.Name, err)
	}
	w := &workFS{
		Filesystem: &rootFS{root: root, dir: rec.Dir},
		s:          s, name: rec.Name, dir: rec.Dir, rw: rec.ReadWrite, id: id, root: root,
		byIno: map[uint64]string{},
	}
	s.work[key] = w
	return w, nil
}

// workByID finds a maintenance export by handle id, from memory or from
// the persisted table (after a restart).
func (s *Server) workByID(id []byte) (*workFS, error) {
	key := hex.EncodeToString(id)
	s.mu.Lock()
	w, ok := s.work[key]
	s.mu.Unlock()
	if ok {
		return w, nil
	}
	b, err := os.ReadFile(filepath.Join(s.stateDir, "work", key))
	if err != nil {
		return nil, errBadHandle
	}
	var rec workRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, errBadHandle
	}
	return s.openWork(rec)
}

func isWorkHandle(fh []byte) bool {
	return len(fh) == workHandleLen && fh[0] == 'W' && fh[1] == 0 && fh[2] == 0 && fh[3] == 0
}

func (s *Server) workMAC(id []byte, ino uint64) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(workSalt))
	m.Write(id)
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], ino)
	m.Write(b[:])
	return m.Sum(nil)[:macLen]
}

func (w *workFS) toHandle(p []string) []byte {
	rel := strings.Join(p, "/")
	fi, err := w.Filesystem.Lstat(rel)
	if err != nil {
		return make([]byte, workHandleLen)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return make([]byte, workHandleLen)
	}
	w.mu.Lock()
	w.byIno[st.Ino] = rel
	w.mu.Unlock()
	h := []byte{'W', 0, 0, 0}
	h = append(h, w.id[:]...)
	h = binary.BigEndian.AppendUint64(h, st.Ino)
	return append(h, w.s.workMAC(w.id[:], st.Ino)...)
}

func (s *Server) fromWorkHandle(fh []byte) (billy.Filesystem, []string, error) {
	id, ino := fh[4:12], binary.BigEndian.Uint64(fh[12:20])
	if !hmac.Equal(fh[20:], s.workMAC(id, ino)) {
		return nil, nil, errBadHandle
	}
	w, err := s.workByID(id)
	if err != nil {
		return nil, nil, err
	}
	rel, ok := w.pathOf(ino)
	if !ok {
		return nil, nil, errBadHandle
	}
	if rel == "" {
		return w, []string{}, nil
	}
	return w, strings.Split(rel, "/"), nil
}

// pathOf finds the path of an inode: the remembered one if it still
// matches, else one walk of the directory (after a restart, or a rename).
func (w *workFS) pathOf(ino uint64) (string, bool) {
	w.mu.Lock()
	rel, ok := w.byIno[ino]
	w.mu.Unlock()
	if ok && w.inoOf(rel) == ino {
		return rel, true
	}
	found := ""
	hit := false
	seen := map[uint64]string{}
	start := time.Now()
	filepath.WalkDir(w.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		r, _ := filepath.Rel(w.dir, p)
		r = filepath.ToSlash(r)
		if r == "." {
			r = ""
		}
		if hiddenWork(r) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			seen[st.Ino] = r
			if st.Ino == ino {
				found, hit = r, true
			}
		}
		return nil
	})
	w.mu.Lock()
	for k, v := range seen {
		w.byIno[k] = v
	}
	w.mu.Unlock()
	w.s.log.Info("nfs: rescanned a maintenance export for file handles", "node", w.name, "dir", w.dir, "objects", len(seen), "duration", time.Since(start).Round(time.Millisecond))
	return found, hit
}

func (w *workFS) inoOf(rel string) uint64 {
	fi, err := w.Filesystem.Lstat(rel)
	if err != nil {
		return 0
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}

// hiddenWork hides git's own files at the top of a worktree.
func hiddenWork(rel string) bool { return rel != "" && Hidden(rel) }

func (w *workFS) notExist(op, name string) error {
	return &os.PathError{Op: op, Path: name, Err: os.ErrNotExist}
}

// Capabilities: read-only exports say so, so go-nfs strips write bits.
func (w *workFS) Capabilities() billy.Capability {
	if w.rw {
		return billy.DefaultCapabilities
	}
	return billy.ReadCapability | billy.SeekCapability
}

func (w *workFS) Lstat(name string) (os.FileInfo, error) {
	if hiddenWork(strings.Trim(name, "/")) {
		return nil, w.notExist("lstat", name)
	}
	fi, err := w.Filesystem.Lstat(name)
	if err != nil {
		return nil, err
	}
	return rawMode{fi}, nil
}

// Stat does not follow symlinks either.
func (w *workFS) Stat(name string) (os.FileInfo, error) { return w.Lstat(name) }

func (w *workFS) ReadDir(name string) ([]os.FileInfo, error) {
	list, err := w.Filesystem.ReadDir(name)
	if err != nil {
		return nil, err
	}
	top := strings.Trim(name, "/") == "" || strings.Trim(name, "/") == "."
	out := list[:0]
	for _, fi := range list {
		if top && Hidden(fi.Name()) {
			continue
		}
		out = append(out, rawMode{fi})
	}
	return out, nil
}

func (w *workFS) Open(name string) (billy.File, error) {
	if hiddenWork(strings.Trim(name, "/")) {
		return nil, w.notExist("open", name)
	}
	return w.Filesystem.Open(name)
}

func (w *workFS) OpenFile(name string, flag int, perm os.FileMode) (billy.File, error) {
	if hiddenWork(strings.Trim(name, "/")) {
		return nil, w.notExist("open", name)
	}
	if !w.rw && flag&(os.O_WRONLY|os.O_RDWR|os.O_CREATE|os.O_TRUNC|os.O_APPEND) != 0 {
		return nil, &os.PathError{Op: "open", Path: name, Err: billy.ErrReadOnly}
	}
	return w.Filesystem.OpenFile(name, flag, perm)
}

func (w *workFS) writable(op, name string) error {
	if !w.rw {
		return &os.PathError{Op: op, Path: name, Err: billy.ErrReadOnly}
	}
	if hiddenWork(strings.Trim(name, "/")) {
		return &os.PathError{Op: op, Path: name, Err: os.ErrPermission}
	}
	return nil
}

func (w *workFS) Create(name string) (billy.File, error) {
	if err := w.writable("create", name); err != nil {
		return nil, err
	}
	return w.Filesystem.Create(name)
}

func (w *workFS) Remove(name string) error {
	if err := w.writable("remove", name); err != nil {
		return err
	}
	return w.Filesystem.Remove(name)
}

func (w *workFS) Rename(from, to string) error {
	if err := w.writable("rename", from); err != nil {
		return err
	}
	if err := w.writable("rename", to); err != nil {
		return err
	}
	return w.Filesystem.Rename(from, to)
}

func (w *workFS) MkdirAll(name string, perm os.FileMode) error {
	if err := w.writable("mkdir", name); err != nil {
		return err
	}
	return w.Filesystem.MkdirAll(name, perm)
}

func (w *workFS) Symlink(target, link string) error {
	if err := w.writable("symlink", link); err != nil {
		return err
	}
	return w.Filesystem.Symlink(target, link)
}

func (w *workFS) TempFile(dir, prefix string) (billy.File, error) {
	if err := w.writable("tempfile", dir); err != nil {
		return nil, err
	}
	return w.Filesystem.TempFile(dir, prefix)
}

func (w *workFS) change() billy.Change {
	if !w.rw {
		return nil
	}
	return workChange{w}
}

func (w *workFS) fsstat(st *nfs.FSStat) error {
	var s syscall.Statfs_t
	if err := syscall.Statfs(w.dir, &s); err != nil {
		return err
	}
	st.TotalSize = s.Blocks * uint64(s.Bsize)
	st.FreeSize = s.Bfree * uint64(s.Bsize)
	st.AvailableSize = s.Bavail * uint64(s.Bsize)
	st.TotalFiles, st.FreeFiles, st.AvailableFiles = s.Files, s.Ffree, s.Ffree
	return nil
}

// workChange applies SETATTR through an os.Root, so no path leaves the
// directory and no symlink is followed out of it.
type workChange struct{ w *workFS }

func rootRel(name string) string {
	name = strings.Trim(filepath.ToSlash(name), "/")
	if name == "" {
		return "."
	}
	return name
}

func (c workChange) Chmod(name string, mode os.FileMode) error {
	if err := c.w.writable("chmod", name); err != nil {
		return err
	}
	return c.w.root.Chmod(rootRel(name), mode)
}

func (c workChange) Lchown(name string, uid, gid int) error {
	if err := c.w.writable("chown", name); err != nil {
		return err
	}
	return c.w.root.Lchown(rootRel(name), uid, gid)
}

func (c workChange) Chown(name string, uid, gid int) error {
	if err := c.w.writable("chown", name); err != nil {
		return err
	}
	return c.w.root.Chown(rootRel(name), uid, gid)
}

func (c workChange) Chtimes(name string, atime, mtime time.Time) error {
	if err := c.w.writable("chtimes", name); err != nil {
		return err
	}
	return c.w.root.Chtimes(rootRel(name), atime, mtime)
}

// rawMode puts the POSIX setuid/setgid/sticky bits into the low 12 bits
// of Mode(), which go-nfs copies verbatim into fattr3.
type rawMode struct{ os.FileInfo }

func (r rawMode) Mode() os.FileMode {
	m := r.FileInfo.Mode() &^ (os.ModeSetuid | os.ModeSetgid | os.ModeSticky)
	if st, ok := r.FileInfo.Sys().(*syscall.Stat_t); ok {
		m |= os.FileMode(st.Mode & 0o7000)
	}
	return m
}

// workChmod applies a full 12-bit mode to the object of a maintenance
// handle (go-nfs keeps only the 0777 bits of a SETATTR).
func (s *Server) workChmod(fh []byte, mode uint32) error {
	fsys, p, err := s.fromWorkHandle(fh)
	if err != nil {
		return err
	}
	w := fsys.(*workFS)
	if !w.rw {
		return billy.ErrReadOnly
	}
	rel := strings.Join(p, "/")
	fi, err := w.Filesystem.Lstat(rel)
	if err != nil || fi.Mode()&os.ModeSymlink != 0 {
		return err // never chmod through a symlink
	}
	m := os.FileMode(mode & 0o777)
	if mode&0o4000 != 0 {
		m |= os.ModeSetuid
	}
	if mode&0o2000 != 0 {
		m |= os.ModeSetgid
	}
	if mode&0o1000 != 0 {
		m |= os.ModeSticky
	}
	return w.root.Chmod(rootRel(rel), m)
}
