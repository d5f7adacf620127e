package nfsroot

import (
	"encoding/hex"
	"io"
	"strings"
	"time"
)

// The server reads the images it serves from content-addressed objects:
// commits, trees and blobs named by the hash of their content. Objects is
// all it needs of the store that holds them; package boot/gitobjects
// implements it over a git repository. This package knows nothing of git.

// ID names an object by its content: a 20-byte SHA-1 (the only object
// format served; file handles, the blob store and its size records are
// laid out for 20 bytes).
type ID [20]byte

// String is the id as 40 lower-case hex digits.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// IsZero reports whether id is all zeros (no object).
func (id ID) IsZero() bool { return id == ID{} }

// ParseID reads a full id written as 40 lower-case hex digits.
func ParseID(s string) (ID, bool) {
	var id ID
	if len(s) != 2*len(id) || strings.Trim(s, "0123456789abcdef") != "" {
		return id, false
	}
	hex.Decode(id[:], []byte(s))
	return id, true
}

// Mode is the kind of a tree entry.
type Mode uint8

// The kinds of tree entries. ModeUnknown is any other (skipped, with a
// warning).
const (
	ModeUnknown    Mode = iota
	ModeDir             // a subtree
	ModeRegular         // a regular file, not executable
	ModeExecutable      // a regular file, executable
	ModeSymlink         // a symlink: its blob holds the raw target
	ModeSubmodule       // a commit of another repository (served as an empty directory)
)

// IsFile reports whether an entry of mode m is a blob read as file
// content (regular, executable or symlink target).
func (m Mode) IsFile() bool { return m == ModeRegular || m == ModeExecutable || m == ModeSymlink }

// String names the mode for logs.
func (m Mode) String() string {
	switch m {
	case ModeDir:
		return "dir"
	case ModeRegular:
		return "regular"
	case ModeExecutable:
		return "executable"
	case ModeSymlink:
		return "symlink"
	case ModeSubmodule:
		return "submodule"
	}
	return "unknown"
}

// Entry is one entry of a tree.
type Entry struct {
	Name string
	Mode Mode
	ID   ID
}

// Commit is what the server needs of a commit.
type Commit struct {
	Tree ID        // the root tree
	Time time.Time // the committer time: every served file's mtime
}

// Objects is a read-only store of content-addressed objects. The server
// calls it from several goroutines: tree and commit reads from one commit
// build at a time, blob reads from that build and, to rebuild a damaged
// stored blob, from any read path goroutine; an implementation must be
// safe for that. Errors of Resolve and Commit name the store, so an admin
// knows where the commit was looked for.
type Objects interface {
	// Resolve turns a revision (a branch, a tag, an abbreviated id; full
	// 40-digit ids never reach it) into a commit id.
	Resolve(rev string) (ID, error)
	// Commit reads a commit.
	Commit(id ID) (Commit, error)
	// Tree reads a tree's entries, in the store's order.
	Tree(id ID) ([]Entry, error)
	// Blob opens a blob: its size and a reader of its content, streamed
	// (a large blob is never held whole in memory by the caller). The
	// caller closes the reader.
	Blob(id ID) (io.ReadCloser, int64, error)
}
