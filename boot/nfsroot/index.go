package nfsroot

import (
	"context"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/onesis/git-onesis/meta"
)

// node is one object of a served commit, with the .gitmeta applied.
type node struct {
	name         string // base name; "" for the root
	path         string // slash separated, relative; "" for the root
	typ          meta.Type
	mode         uint32 // 07777, setuid/setgid/sticky included
	uid, gid     uint32
	major, minor uint32
	nlink        uint32
	fileid       uint64
	size         int64
	blob         ID      // regular files; zero id = empty content
	link         string  // raw symlink target
	kids         []*node // directories: sorted by name
	parent       *node
	primary      string // hard-link group primary path (from .gitmeta), "" if none
}

// commitIndex is the immutable, fully resolved view of one commit.
type commitIndex struct {
	commit ID
	mtime  time.Time
	root   *node
	byID   map[uint64]*node
	nodes  int
	bytes  int64
	// mtimeSec and mtimeNsec are mtime as NFSv3 sends it.
	mtimeSec, mtimeNsec uint32
}

// lookup finds the node for a slash-separated path relative to the export
// root ("" or "." is the root). It never follows symlinks.
func (ix *commitIndex) lookup(p string) *node {
	p = strings.Trim(p, "/")
	if p == "" || p == "." {
		return ix.root
	}
	n := ix.root
	for _, c := range strings.Split(p, "/") {
		if c == "" || c == "." {
			continue
		}
		if n.typ != meta.TypeDir {
			return nil
		}
		n = n.child(c)
		if n == nil {
			return nil
		}
	}
	return n
}

func (n *node) child(name string) *node {
	i := sort.Search(len(n.kids), func(i int) bool { return n.kids[i].name >= name })
	if i < len(n.kids) && n.kids[i].name == name {
		return n.kids[i]
	}
	return nil
}

// Hidden reports whether a path's top-level name is kept out of every
// export, by this server and by the trees `git onesis exports` materialises
// for a kernel NFS server: git's own files (.git, .gitmeta, .gitignore,
// .gitattributes, .gitmodules) and git-onesis configuration (.onesis*).
func Hidden(p string) bool {
	top, _, _ := strings.Cut(p, "/")
	return strings.HasPrefix(top, ".git") || strings.HasPrefix(top, ".onesis")
}

// builder turns a commit into a commitIndex.
type builder struct {
	s     *Server
	ctx   context.Context
	nodes map[string]*node
	blobs map[ID]bool
}

// readTree returns a tree's entries, from the server-wide cache when the
// tree was seen in an earlier commit.
func (s *Server) readTree(h ID) ([]Entry, error) {
	s.treeMu.Lock()
	ents, ok := s.trees[h]
	s.treeMu.Unlock()
	if ok {
		return ents, nil
	}
	ents, err := s.objs.Tree(h)
	if err != nil {
		return nil, fmt.Errorf("reading tree %s: %w", h, err)
	}
	s.treeMu.Lock()
	if len(s.trees) > maxCachedTrees {
		clear(s.trees)
	}
	s.trees[h] = ents
	s.treeMu.Unlock()
	return ents, nil
}

const maxCachedTrees = 1 << 18

// readBlob reads a blob of at most limit bytes into memory.
func (s *Server) readBlob(h ID, limit int64) ([]byte, error) {
	r, size, err := s.objs.Blob(h)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if size > limit {
		return nil, fmt.Errorf("blob %s is %d bytes, more than the %d allowed here", h, size, limit)
	}
	return io.ReadAll(io.LimitReader(r, limit))
}

// buildIndex reads commit h and returns its index, with every blob it needs
// present in the blob store.
func (s *Server) buildIndex(ctx context.Context, h ID) (*commitIndex, error) {
	// One build at a time: a build reads many objects in a row, and the
	// blob store's writers are shared.
	s.buildMu.Lock()
	defer s.buildMu.Unlock()
	start := time.Now()
	c, err := s.objs.Commit(h)
	if err != nil {
		return nil, err
	}
	b := &builder{s: s, ctx: ctx, nodes: map[string]*node{}, blobs: map[ID]bool{}}
	root := &node{typ: meta.TypeDir, mode: 0755}
	b.nodes[""] = root
	if err := b.walk(root, c.Tree); err != nil {
		return nil, fmt.Errorf("commit %s: %w", h.String()[:12], err)
	}
	// The manifest.
	var gitmeta *ID
	if ents, err := s.readTree(c.Tree); err == nil {
		for _, e := range ents {
			if e.Name == ".gitmeta" && e.Mode.IsFile() {
				gitmeta = &e.ID
			}
		}
	}
	if gitmeta != nil {
		raw, err := s.readBlob(*gitmeta, 1<<31)
		if err != nil {
			return nil, fmt.Errorf("commit %s: reading .gitmeta: %w", h.String()[:12], err)
		}
		m, err := meta.ParseBytes(raw)
		if err != nil {
			return nil, fmt.Errorf("commit %s: .gitmeta: %w", h.String()[:12], err)
		}
		b.apply(m)
	} else {
		s.log.Warn("commit has no .gitmeta; serving git's modes with root ownership", "commit", h.String())
	}
	placeholders := b.deny()
	when := c.Time
	ix := &commitIndex{commit: h, mtime: when, mtimeSec: uint32(when.Unix()), mtimeNsec: uint32(when.Nanosecond()),
		root: root, byID: map[uint64]*node{}}
	b.finish(ix)
	if err := b.materialise(ix); err != nil {
		return nil, fmt.Errorf("commit %s: %w", h.String()[:12], err)
	}
	s.log.Info("nfs export ready", "commit", h.String(), "objects", ix.nodes, "bytes", ix.bytes,
		"placeholders", placeholders, "duration", time.Since(start).Round(time.Millisecond))
	return ix, nil
}

func (b *builder) walk(dir *node, tree ID) error {
	if err := b.ctx.Err(); err != nil {
		return err
	}
	ents, err := b.s.readTree(tree)
	if err != nil {
		return err
	}
	for _, e := range ents {
		p := e.Name
		if dir.path != "" {
			p = dir.path + "/" + e.Name
		}
		if dir.path == "" && Hidden(p) {
			continue
		}
		if strings.ContainsAny(e.Name, "/\x00") || e.Name == "." || e.Name == ".." || e.Name == "" {
			return fmt.Errorf("tree %s holds an unsafe name %q", tree, e.Name)
		}
		n := &node{name: e.Name, path: p, parent: dir}
		switch e.Mode {
		case ModeDir:
			n.typ, n.mode = meta.TypeDir, 0755
			if err := b.walk(n, e.ID); err != nil {
				return err
			}
		case ModeRegular:
			n.typ, n.mode, n.blob = meta.TypeFile, 0644, e.ID
		case ModeExecutable:
			n.typ, n.mode, n.blob = meta.TypeFile, 0755, e.ID
		case ModeSymlink:
			target, err := b.s.readBlob(e.ID, 4096)
			if err != nil {
				return fmt.Errorf("symlink %s: %w", p, err)
			}
			n.typ, n.mode, n.link = meta.TypeSymlink, 0777, string(target)
		case ModeSubmodule:
			n.typ, n.mode = meta.TypeDir, 0755
		default:
			b.s.log.Warn("skipping a tree entry of unknown mode", "path", p, "mode", e.Mode.String())
			continue
		}
		dir.kids = append(dir.kids, n)
		b.nodes[p] = n
	}
	return nil
}

// apply lays the manifest over the git tree: owners and modes for what git
// carries, and the objects git cannot carry (empty dirs, devices, fifos,
// sockets) created from the manifest alone.
func (b *builder) apply(m *meta.Manifest) {
	for i := range m.Entries {
		e := &m.Entries[i]
		p := e.Path
		if p == "." {
			p = ""
		} else if Hidden(p) {
			continue
		}
		n := b.nodes[p]
		if n == nil {
			if e.Type.GitCarries() || e.Type == meta.TypeUnknown {
				continue // not in this commit's tree: not committed
			}
			parent := b.ensureDir(meta.Parent(e.Path))
			if parent == nil {
				continue
			}
			n = &node{name: path.Base(p), path: p, parent: parent, typ: e.Type}
			if e.Type == meta.TypeChar || e.Type == meta.TypeBlock {
				n.major, n.minor = e.Major, e.Minor
			}
			parent.kids = append(parent.kids, n)
			b.nodes[p] = n
		} else if e.Type != meta.TypeUnknown && e.Type != n.typ {
			b.s.log.Warn(".gitmeta type differs from git's; git wins", "path", p, "gitmeta", e.Type.String(), "git", n.typ.String())
			if n.typ == meta.TypeSymlink {
				continue
			}
		}
		if n.typ != meta.TypeSymlink {
			n.mode = e.Mode & 07777
		}
		n.uid, n.gid = e.UID, e.GID
		n.primary = e.Hardlink
	}
}

// ensureDir returns the directory node for a manifest path, creating
// missing parents (0755 root) so a manifest that skips a level still works.
func (b *builder) ensureDir(p string) *node {
	if p == "." {
		p = ""
	}
	if n, ok := b.nodes[p]; ok {
		if n.typ != meta.TypeDir {
			return nil
		}
		return n
	}
	parent := b.ensureDir(meta.Parent(p))
	if parent == nil {
		return nil
	}
	n := &node{name: path.Base(p), path: p, parent: parent, typ: meta.TypeDir, mode: 0755}
	parent.kids = append(parent.kids, n)
	b.nodes[p] = n
	return n
}

// deny turns denied paths into empty 0600 root-owned placeholders. A hard
// link group with a denied member is denied as a whole, so a secret cannot
// leak through another name.
func (b *builder) deny() int {
	denied := map[string]bool{} // hard-link primaries whose group is denied
	var mark func(n *node, under bool)
	mark = func(n *node, under bool) {
		hit := under || (n.path != "" && b.s.deny.match(n.path))
		if n.typ == meta.TypeDir {
			for _, k := range n.kids {
				mark(k, hit)
			}
			return
		}
		if hit {
			denied[n.path] = true
			if n.primary != "" {
				denied[n.primary] = true
			}
		}
	}
	mark(b.nodes[""], false)
	count := 0
	for _, n := range b.nodes {
		if n.typ == meta.TypeDir {
			continue
		}
		if denied[n.path] || (n.primary != "" && denied[n.primary]) {
			*n = node{name: n.name, path: n.path, parent: n.parent, typ: meta.TypeFile, mode: 0600}
			count++
		}
	}
	return count
}

// finish sorts directories, assigns file ids in canonical order (so the
// same commit always gets the same ids), links hard-link groups and counts
// links.
func (b *builder) finish(ix *commitIndex) {
	next := uint64(2)
	var visit func(n *node)
	visit = func(n *node) {
		ix.nodes++
		if n.primary == "" {
			n.fileid = next
			next++
		}
		n.nlink = 1
		if n.typ == meta.TypeDir {
			sort.Slice(n.kids, func(i, j int) bool { return n.kids[i].name < n.kids[j].name })
			n.nlink = 2
			for _, k := range n.kids {
				if k.typ == meta.TypeDir {
					n.nlink++
				}
			}
			for _, k := range n.kids {
				visit(k)
			}
		}
		if n.typ == meta.TypeSymlink {
			n.size = int64(len(n.link))
		}
	}
	visit(ix.root)
	// Hard-link groups: secondaries share the primary's file id.
	groups := map[string][]*node{}
	for _, n := range b.nodes {
		if n.primary != "" {
			p := b.nodes[n.primary]
			if p == nil || p.typ != n.typ || p.primary != "" || p.typ == meta.TypeDir || p.typ == meta.TypeSymlink {
				n.primary = "" // the group's primary is not in this commit
				n.fileid = next
				next++
				continue
			}
			groups[n.primary] = append(groups[n.primary], n)
		}
	}
	for pp, members := range groups {
		p := b.nodes[pp]
		p.nlink = uint32(len(members) + 1)
		for _, m := range members {
			m.fileid, m.nlink = p.fileid, p.nlink
		}
	}
	for _, n := range b.nodes {
		if _, dup := ix.byID[n.fileid]; !dup || n.primary == "" {
			ix.byID[n.fileid] = n
		}
	}
}

// materialise puts every blob the index needs into the blob store (each
// blob once, ever) and records file sizes.
func (b *builder) materialise(ix *commitIndex) error {
	var hs []ID
	var files []*node
	for _, n := range b.nodes {
		if n.typ == meta.TypeFile && !n.blob.IsZero() {
			hs = append(hs, n.blob)
			files = append(files, n)
		}
	}
	// Canonical order, so blobs of one directory are read together.
	sort.Slice(files, func(i, j int) bool { return files[i].path < files[j].path })
	hs = hs[:0]
	for _, n := range files {
		hs = append(hs, n.blob)
	}
	b.s.store.loadCommitSizes(ix.commit)
	sizes, err := b.s.store.ensureAll(b.ctx, hs, b.s.objs)
	if err != nil {
		return err
	}
	if err := b.s.store.saveCommitSizes(ix.commit, sizes); err != nil {
		b.s.log.Warn("nfs: cannot record a commit's blob sizes (only a cache)", "commit", ix.commit.String(), "err", err)
	}
	for _, n := range files {
		n.size = sizes[n.blob]
		ix.bytes += n.size
	}
	return nil
}
