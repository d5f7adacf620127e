// Package meta owns the .gitmeta model: the Entry and Manifest types, the
// on-disk format (a canonical flat mtree v2.0 subset), scanning a tree into a
// manifest, comparing manifests, and applying a manifest to a tree safely.
//
// meta imports nothing git-related. Callers that need a manifest at a
// revision read the blob through internal/git and hand the bytes to Parse.
package meta

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Type is the kind of filesystem object an Entry describes.
type Type uint8

// The object types a manifest can hold. TypeUnknown appears only in entries
// read from a legacy setgitperms file, which records no type.
const (
	TypeUnknown Type = iota
	TypeFile
	TypeDir
	TypeSymlink
	TypeChar
	TypeBlock
	TypeFifo
	TypeSocket
)

var typeNames = [...]string{
	TypeUnknown: "unknown",
	TypeFile:    "file",
	TypeDir:     "dir",
	TypeSymlink: "link",
	TypeChar:    "char",
	TypeBlock:   "block",
	TypeFifo:    "fifo",
	TypeSocket:  "socket",
}

// String returns the mtree keyword value for t ("file", "dir", "link", ...).
func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// ParseType maps an mtree type keyword value to a Type.
func ParseType(s string) (Type, bool) {
	for i, n := range typeNames {
		if i != int(TypeUnknown) && n == s {
			return Type(i), true
		}
	}
	return TypeUnknown, false
}

// GitCarries reports whether git itself stores objects of this type (regular
// files and symlinks). Everything else exists in a checkout only because
// apply creates it from the manifest.
func (t Type) GitCarries() bool { return t == TypeFile || t == TypeSymlink }

// Xattr is one extended attribute. Name is the full attribute name
// ("security.capability"); Value holds the raw bytes.
type Xattr struct {
	Name  string
	Value []byte
}

// Entry is the recorded metadata of one path in an image.
type Entry struct {
	// Path is relative to the top of the tree, slash separated, with no
	// leading "./"; the top-level directory itself is ".". It holds raw bytes
	// and may contain anything but NUL.
	Path string
	Type Type
	// Mode holds the 12 permission bits (07777), setuid, setgid and sticky
	// included.
	Mode     uint32
	UID, GID uint32
	// Major and Minor are set for char and block devices.
	Major, Minor uint32
	// Link is the symlink target, verbatim, for TypeSymlink.
	Link string
	// Hardlink names the first path (in manifest order) of the hard-link
	// group this entry belongs to; empty when the entry is not a secondary
	// member of a group.
	Hardlink string
	// Empty marks a directory that holds no file or symlink, so git cannot
	// carry it and apply must create it.
	Empty bool
	// Xattrs are sorted by name.
	Xattrs []Xattr
}

// IsRoot reports whether e describes the top-level directory.
func (e *Entry) IsRoot() bool { return e.Path == "." }

// Xattr returns the value of the named attribute.
func (e *Entry) Xattr(name string) ([]byte, bool) {
	for _, x := range e.Xattrs {
		if x.Name == name {
			return x.Value, true
		}
	}
	return nil, false
}

// SortXattrs puts e.Xattrs in canonical (name) order.
func (e *Entry) SortXattrs() {
	sort.Slice(e.Xattrs, func(i, j int) bool { return e.Xattrs[i].Name < e.Xattrs[j].Name })
}

// Equal reports whether two entries record the same metadata.
func (e *Entry) Equal(o *Entry) bool {
	if e.Path != o.Path || e.Type != o.Type || e.Mode != o.Mode || e.UID != o.UID || e.GID != o.GID ||
		e.Major != o.Major || e.Minor != o.Minor || e.Link != o.Link || e.Hardlink != o.Hardlink ||
		e.Empty != o.Empty || len(e.Xattrs) != len(o.Xattrs) {
		return false
	}
	for i := range e.Xattrs {
		if e.Xattrs[i].Name != o.Xattrs[i].Name || !bytes.Equal(e.Xattrs[i].Value, o.Xattrs[i].Value) {
			return false
		}
	}
	return true
}

// Clone returns a deep copy of e.
func (e *Entry) Clone() Entry {
	c := *e
	if e.Xattrs != nil {
		c.Xattrs = make([]Xattr, len(e.Xattrs))
		for i, x := range e.Xattrs {
			c.Xattrs[i] = Xattr{Name: x.Name, Value: append([]byte(nil), x.Value...)}
		}
	}
	return c
}

// ErrBadPath is wrapped by every path validation failure.
var ErrBadPath = errors.New("unsafe path")

// ValidPath checks that p is a clean relative path inside the tree: not
// empty, not absolute, no NUL, no "." or ".." components, no empty
// components. The root itself is ".".
func ValidPath(p string) error {
	if p == "." {
		return nil
	}
	switch {
	case p == "":
		return fmt.Errorf("%w: empty path", ErrBadPath)
	case strings.IndexByte(p, 0) >= 0:
		return fmt.Errorf("%w: %q contains a NUL byte", ErrBadPath, p)
	case p[0] == '/':
		return fmt.Errorf("%w: %q is absolute", ErrBadPath, p)
	}
	for c := range strings.SplitSeq(p, "/") { // no slice per path: called per entry
		switch c {
		case "":
			return fmt.Errorf("%w: %q has an empty component", ErrBadPath, p)
		case ".", "..":
			return fmt.Errorf("%w: %q has a %q component", ErrBadPath, p, c)
		}
	}
	return nil
}

// Parent returns the parent path of p ("." for top-level names).
func Parent(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return "."
}

// Manifest is a sorted list of entries, one per path.
type Manifest struct {
	Entries []Entry
	// Legacy is true when the manifest was read from a setgitperms-format
	// file. Such entries have TypeUnknown and no device, link or xattr data.
	Legacy bool
}

// Less is the canonical entry order: bytewise by path, with "." first.
func Less(a, b string) bool {
	if a == "." || b == "." {
		return a == "." && b != "."
	}
	return a < b
}

// Sort puts the entries in canonical order.
func (m *Manifest) Sort() {
	sort.Slice(m.Entries, func(i, j int) bool { return Less(m.Entries[i].Path, m.Entries[j].Path) })
}

// Lookup finds the entry for path p by binary search. The manifest must be
// sorted.
func (m *Manifest) Lookup(p string) *Entry {
	i := sort.Search(len(m.Entries), func(i int) bool { return !Less(m.Entries[i].Path, p) })
	if i < len(m.Entries) && m.Entries[i].Path == p {
		return &m.Entries[i]
	}
	return nil
}

// Index returns a map from path to entry pointer, for callers doing many
// random lookups.
func (m *Manifest) Index() map[string]*Entry {
	idx := make(map[string]*Entry, len(m.Entries))
	for i := range m.Entries {
		idx[m.Entries[i].Path] = &m.Entries[i]
	}
	return idx
}

// StripExtensions returns a copy of m without the keywords strict BSD
// mtree readers reject: xattrs, hardlink= and empty=.
func StripExtensions(m *Manifest) *Manifest {
	out := &Manifest{Entries: make([]Entry, len(m.Entries)), Legacy: m.Legacy}
	for i := range m.Entries {
		e := m.Entries[i]
		e.Xattrs, e.Hardlink, e.Empty = nil, "", false
		out.Entries[i] = e
	}
	return out
}
