package nfsroot

import (
	"bytes"
	"crypto/sha1"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	nfsc "github.com/willscott/go-nfs-client/nfs"
)

// memObjects is an in-memory Objects: a mock, on purpose. The point of
// TestServesWithoutGit is that this package needs no git at all, so the
// store here is a map. Blobs are named as a content-addressed store must
// name them for the server's integrity checks (the SHA-1 of "blob <size>\0"
// and the content); trees and commits get ids of their own.
type memObjects struct {
	mu      sync.Mutex
	blobs   map[ID][]byte
	trees   map[ID][]Entry
	commits map[ID]Commit
	refs    map[string]ID
	reads   map[ID]int // Blob calls per id
}

type memFile struct {
	mode Mode
	body string
}

func blobID(b []byte) ID {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(b))
	h.Write(b)
	return ID(h.Sum(nil))
}

// newMemObjects stores one commit of files (path -> kind and content;
// directories are implied) under ref, and returns the commit id.
func newMemObjects(ref string, when time.Time, files map[string]memFile) (*memObjects, ID) {
	m := &memObjects{blobs: map[ID][]byte{}, trees: map[ID][]Entry{}, commits: map[ID]Commit{}, refs: map[string]ID{}, reads: map[ID]int{}}
	var tree func(dir string) ID
	tree = func(dir string) ID {
		kids := map[string]Entry{}
		for p, f := range files {
			rel, ok := strings.CutPrefix(p, dir)
			if !ok {
				continue
			}
			name, _, sub := strings.Cut(rel, "/")
			switch {
			case sub:
				kids[name] = Entry{Name: name, Mode: ModeDir, ID: tree(dir + name + "/")}
			case f.mode == ModeSubmodule:
				kids[name] = Entry{Name: name, Mode: ModeSubmodule, ID: ID{0xaa}}
			default:
				id := blobID([]byte(f.body))
				m.blobs[id] = []byte(f.body)
				kids[name] = Entry{Name: name, Mode: f.mode, ID: id}
			}
		}
		var ents []Entry
		h := sha1.New()
		fmt.Fprintf(h, "tree %s\x00", dir)
		for _, e := range kids {
			ents = append(ents, e)
		}
		sort.Slice(ents, func(i, j int) bool { return ents[i].Name < ents[j].Name })
		for _, e := range ents {
			fmt.Fprintf(h, "%d %s %x\n", e.Mode, e.Name, e.ID)
		}
		id := ID(h.Sum(nil))
		m.trees[id] = ents
		return id
	}
	root := tree("")
	c := ID(sha1.Sum([]byte("commit " + root.String())))
	m.commits[c] = Commit{Tree: root, Time: when}
	m.refs[ref] = c
	return m, c
}

func (m *memObjects) Resolve(rev string) (ID, error) {
	if id, ok := m.refs[rev]; ok {
		return id, nil
	}
	return ID{}, fmt.Errorf("no revision %q in memory", rev)
}

func (m *memObjects) Commit(id ID) (Commit, error) {
	if c, ok := m.commits[id]; ok {
		return c, nil
	}
	return Commit{}, fmt.Errorf("no commit %s in memory", id)
}

func (m *memObjects) Tree(id ID) ([]Entry, error) {
	if t, ok := m.trees[id]; ok {
		return t, nil
	}
	return nil, fmt.Errorf("no tree %s in memory", id)
}

func (m *memObjects) Blob(id ID) (io.ReadCloser, int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reads[id]++
	b, ok := m.blobs[id]
	if !ok {
		return nil, 0, fmt.Errorf("no blob %s in memory", id)
	}
	return io.NopCloser(bytes.NewReader(b)), int64(len(b)), nil
}

func (m *memObjects) blobReads(id ID) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.reads[id]
}

// TestServesWithoutGit serves a commit from memObjects, with no git
// repository anywhere: the package stands alone on its Objects interface.
// Over NFS the client sees the tree with its .gitmeta applied (owners,
// setuid, a fifo, an empty directory), every kind of tree entry (a
// submodule as an empty directory, a symlink's raw target, an executable,
// a file streamed above bigBlob), .gitmeta hidden, a branch name resolved
// through Objects, and a damaged stored blob rebuilt from Objects before a
// byte of it is served.
func TestServesWithoutGit(t *testing.T) {
	big := bytes.Repeat([]byte("not in git "), 1<<19) // 5.5 MiB: streamed
	when := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	objs, commit := newMemObjects("main", when, map[string]memFile{
		".gitmeta": {ModeRegular, `#mtree v2.0
.  mode=0755  uid=0  gid=0  type=dir
./bin  mode=0755  uid=0  gid=0  type=dir
./bin/suid  mode=04755  uid=0  gid=0  type=file
./big.bin  mode=0644  uid=0  gid=0  type=file
./dev  mode=0755  uid=0  gid=0  type=dir
./dev/initctl  mode=0600  uid=0  gid=0  type=fifo
./etc  mode=0755  uid=0  gid=0  type=dir
./etc/motd  mode=0640  uid=1234  gid=5678  type=file
./tmp  mode=01777  uid=0  gid=0  type=dir  empty=1
`},
		"bin/suid":  {ModeExecutable, "#!/bin/sh\n"},
		"big.bin":   {ModeRegular, string(big)},
		"etc/motd":  {ModeRegular, "served from memory\n"},
		"etc/link":  {ModeSymlink, "../bin/suid"},
		"dev/.keep": {ModeRegular, ""},
		"vendor":    {ModeSubmodule, ""},
	})
	state := t.TempDir()
	var reps reports
	ts := startServer(t, Config{Objects: objs, StateDir: state, Authorize: allowCommits(commit.String()), Report: reps.add}, "127.0.0.1:0")
	if err := ts.srv.Prepare(t.Context(), "main"); err != nil {
		t.Fatalf("Prepare(main): %v", err)
	}
	if err := ts.srv.Prepare(t.Context(), "no-such-branch"); err == nil || !strings.Contains(err.Error(), "in memory") {
		t.Errorf("Prepare of a missing branch: %v, want Objects' error", err)
	}
	tg := mustMount(t, ts.port, "/c/"+commit.String(), 0, 0)

	got := listing(t, tg, "/")
	if want := "big.bin bin dev etc tmp vendor"; got != want {
		t.Errorf("top-level listing %q, want %q", got, want)
	}
	for _, tc := range []struct {
		path     string
		typ      uint32
		mode     uint32
		uid, gid uint32
		size     int64
	}{
		{"bin/suid", nfsc.NF3Reg, 04755, 0, 0, 10},
		{"etc/motd", nfsc.NF3Reg, 0640, 1234, 5678, 19},
		{"etc/link", nfsc.NF3Lnk, 0777, 0, 0, int64(len("../bin/suid"))},
		{"dev/initctl", nfsc.NF3FIFO, 0600, 0, 0, 0},
		{"tmp", nfsc.NF3Dir, 01777, 0, 0, 0},
		{"vendor", nfsc.NF3Dir, 0755, 0, 0, 0},
		{"big.bin", nfsc.NF3Reg, 0644, 0, 0, int64(len(big))},
	} {
		fi, _, err := tg.Lookup(tc.path)
		if err != nil {
			t.Errorf("lookup %s: %v", tc.path, err)
			continue
		}
		a := fi.(*nfsc.Fattr)
		if a.Type != tc.typ || a.FileMode&07777 != tc.mode || a.UID != tc.uid || a.GID != tc.gid || int64(a.Filesize) != tc.size || !a.ModTime().Equal(when) {
			t.Errorf("%s: type=%d mode=%#o uid=%d gid=%d size=%d mtime=%v; want %d %#o %d %d %d %v",
				tc.path, a.Type, a.FileMode&07777, a.UID, a.GID, a.Filesize, a.ModTime(), tc.typ, tc.mode, tc.uid, tc.gid, tc.size, when)
		}
	}
	if _, _, err := tg.Lookup(".gitmeta"); err == nil {
		t.Errorf(".gitmeta is served; it must be hidden")
	}
	f, err := tg.Open("etc/link")
	if err != nil {
		t.Fatal(err)
	}
	if target, err := f.Readlink(); err != nil || target != "../bin/suid" {
		t.Errorf("readlink etc/link = %q, %v", target, err)
	}
	if got, err := readAll(t, tg, "big.bin"); err != nil || !bytes.Equal(got, big) {
		t.Errorf("big.bin: %d bytes, %v; want the %d stored", len(got), err, len(big))
	}

	// A damaged stored blob is moved aside and rebuilt from Objects.
	motd := blobID([]byte("served from memory\n"))
	before := objs.blobReads(motd)
	p := filepath.Join(state, "blobs", motd.String()[:2], motd.String()[2:])
	if err := os.WriteFile(p, []byte("served from MEMORY\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := readAll(t, tg, "etc/motd"); err != nil || string(got) != "served from memory\n" {
		t.Errorf("etc/motd after damage = %q, %v", got, err)
	}
	if rs := reps.all(); len(rs) != 1 || rs[0].Name != motd.String() || !rs[0].Repaired {
		t.Errorf("reports = %+v, want one repaired %s", rs, motd)
	}
	if objs.blobReads(motd) <= before {
		t.Errorf("the blob was not read again from Objects to rebuild it")
	}
}
