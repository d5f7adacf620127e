package git

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// addAllMinPaths is the fewest untracked paths for which AddAll splits the
// work: below it, the git processes it starts cost more than they save.
// Tests lower it.
var addAllMinPaths = 4096

// addAllChunks is how many chunks each worker gets on average: many
// small chunks, handed out as workers come free, keep both CPUs busy to
// the end however unevenly the bytes to hash fall in the sorted list.
const addAllChunks = 8

// AddAll stages what 'git add -A' stages, for a repository that has no
// index yet (git onesis init): with workers > 1, on that many CPUs at once.
// git add hashes and compresses every file on one CPU, and a new image is
// hundreds of thousands of files.
//
// The files are those 'git ls-files -z --others --exclude-standard' lists
// (git's own ignore rules). That sorted list is cut into consecutive
// chunks, each staged into its own temporary index by 'git update-index
// --add -z --stdin' (git's hashing, filters and attributes, exactly as git
// add applies them), workers at a time; the chunk indexes hold consecutive
// ranges of one sorted list, so their entries, joined in order, are the
// index git add would write, less its caches (git rebuilds the cache tree
// when it commits). The index is written under index.lock, atomically.
//
// Wherever that might differ from git add -A, git add -A runs instead:
// an index already exists, a nested repository or submodule is among the
// untracked paths, the configuration asks for an index other than a plain
// version 2 (index.version, feature.manyFiles, core.splitIndex,
// core.fsmonitor, GIT_INDEX_VERSION), or any chunk fails (git add then
// reports the failure in its own words; the objects the chunks wrote are
// reused). It reports how many git processes staged the tree (1: git add).
func (r *Repo) AddAll(workers int) (int, error) {
	if workers > 1 && r.addAllSplittable() {
		paths, err := r.runToFile("ls-files", "-z", "--others", "--exclude-standard")
		if err != nil {
			return 0, fmt.Errorf("listing the files to stage: %w", err)
		}
		if list := splitZ(paths); len(list) >= addAllMinPaths && !anyDir(list) {
			if err := r.addChunks(list, workers); err == nil {
				return workers, nil
			}
		}
	}
	if _, err := r.WithEnv(MallocKeepEnv()).Run("add", "-A"); err != nil {
		return 1, err
	}
	return 1, nil
}

// mallocKeep raises glibc's heap trim threshold to 256 MiB.
const mallocKeep = "glibc.malloc.trim_threshold=268435456"

// MallocKeepEnv is the GLIBC_TUNABLES setting for a git process that
// writes many objects: glibc otherwise hands the top of its heap back to
// the kernel after every file's compression buffers are freed and faults
// it in again for the next file. On this project's 2-core VM (page-table
// isolation makes every fault dear) git add -A of a 6,600-file tree took
// 60k page faults and 4.3 s, and 2.4k faults and 3.1 s with it. The
// heap's peak (a few MiB for git add) stays mapped until git exits.
// Tunables the environment already sets are kept; a trim threshold it
// sets wins.
func MallocKeepEnv() string {
	v := os.Getenv("GLIBC_TUNABLES")
	switch {
	case v == "":
		v = mallocKeep
	case !strings.Contains(v, "glibc.malloc.trim_threshold="):
		v += ":" + mallocKeep
	}
	return "GLIBC_TUNABLES=" + v
}

// addAllSplittable reports whether the repository's configuration and
// state let AddAll write the index itself.
func (r *Repo) addAllSplittable() bool {
	if _, err := os.Lstat(r.IndexFile()); !errors.Is(err, os.ErrNotExist) {
		return false
	}
	if v := os.Getenv("GIT_INDEX_VERSION"); v != "" && v != "2" {
		return false
	}
	if v, ok, err := r.Config("index.version"); err != nil || ok && v != "2" {
		return false
	}
	for _, key := range []string{"feature.manyFiles", "core.splitIndex"} {
		if on, err := r.ConfigBool(key, false); err != nil || on {
			return false
		}
	}
	if v, ok, err := r.Config("core.fsmonitor"); err != nil || ok && v != "" && v != "false" {
		return false
	}
	return true
}

// anyDir reports whether ls-files listed a directory: an untracked nested
// repository, which git add records as a gitlink (and warns about).
func anyDir(paths []string) bool {
	for _, p := range paths {
		if strings.HasSuffix(p, "/") {
			return true
		}
	}
	return false
}

// addChunks stages paths (sorted, as ls-files lists them) chunk by chunk
// into temporary indexes, then joins them into the index.
func (r *Repo) addChunks(paths []string, workers int) error {
	tmp, err := os.MkdirTemp(r.GitDir, "onesis-add-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	n := min(workers*addAllChunks, len(paths))
	parts := make([]string, n)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		firstEr error
	)
	next := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range next {
				mu.Lock()
				failed := firstEr != nil
				mu.Unlock()
				if failed {
					continue
				}
				lo, hi := k*len(paths)/n, (k+1)*len(paths)/n
				parts[k] = filepath.Join(tmp, fmt.Sprintf("part-%04d", k))
				_, err := r.WithIndex(parts[k]).WithEnv(MallocKeepEnv()).RunInput(nulJoin(paths[lo:hi]),
					"-c", "index.version=2", "-c", "core.splitIndex=false",
					// A chunk's index is a temporary file: no hook
					// (post-index-change) is to see it.
					"-c", "core.hooksPath=/dev/null",
					"update-index", "--add", "-z", "--stdin")
				if err != nil {
					mu.Lock()
					if firstEr == nil {
						firstEr = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for k := range n {
		next <- k
	}
	close(next)
	wg.Wait()
	if firstEr != nil {
		return firstEr
	}
	return r.joinIndexes(parts)
}

// joinIndexes writes the index from the entries of parts, version 2
// indexes whose paths follow on from one part to the next, in order.
func (r *Repo) joinIndexes(parts []string) error {
	hl := r.HashLen()
	var bodies [][]byte
	total := 0
	var last []byte
	for _, p := range parts {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rd, err := newIndexReader(b, hl)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if rd.ver != 2 {
			return fmt.Errorf("%s: index version %d, not 2", p, rd.ver)
		}
		for {
			e, ok := rd.next()
			if !ok {
				break
			}
			if e.stage != 0 || e.ext != 0 {
				return fmt.Errorf("%s: entry %q is not a plain stage-0 entry", p, e.path)
			}
			if last != nil && bytes.Compare(last, e.path) >= 0 {
				return fmt.Errorf("%s: %q does not sort after %q", p, e.path, last)
			}
			last = append(last[:0], e.path...)
		}
		if err := rd.done(); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		// Version 2 entries lie end to end from the header to the first
		// extension.
		bodies = append(bodies, b[12:rd.off])
		total += rd.n
	}
	if total > maxIndexEntries {
		return fmt.Errorf("%d entries are more than an index holds", total)
	}
	var h hash.Hash = sha1.New()
	if hl == 32 {
		h = sha256.New()
	}
	path := r.IndexFile()
	lock := path + ".lock"
	f, err := lockIndex(lock, 0o644)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		// Another git command wrote an index meanwhile: not ours to
		// replace.
		f.Close()
		os.Remove(lock)
		return errors.New("an index appeared while the tree was being staged")
	}
	write := func(b []byte) error {
		h.Write(b)
		_, err := f.Write(b)
		return err
	}
	var hdr [12]byte
	copy(hdr[:], "DIRC")
	binary.BigEndian.PutUint32(hdr[4:], 2)
	binary.BigEndian.PutUint32(hdr[8:], uint32(total))
	err = write(hdr[:])
	for _, b := range bodies {
		if err == nil {
			err = write(b)
		}
	}
	if err == nil {
		_, err = f.Write(h.Sum(nil))
	}
	if err == nil {
		// The mode git gave the chunks' indexes (core.sharedRepository,
		// which git onesis init sets to keep the repository private).
		var fi os.FileInfo
		if fi, err = os.Stat(parts[0]); err == nil {
			err = f.Chmod(fi.Mode().Perm())
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(lock, path)
	}
	if err != nil {
		os.Remove(lock)
		return fmt.Errorf("writing the index: %w", err)
	}
	return nil
}
