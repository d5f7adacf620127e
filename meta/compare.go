package meta

import (
	"bytes"
	"fmt"
)

// ChangeKind says how a path differs between two manifests.
type ChangeKind int

// The kinds of change Compare reports.
const (
	Added ChangeKind = iota + 1
	Removed
	Modified
)

// String returns "added", "removed" or "modified".
func (k ChangeKind) String() string {
	switch k {
	case Added:
		return "added"
	case Removed:
		return "removed"
	case Modified:
		return "modified"
	}
	return fmt.Sprintf("ChangeKind(%d)", int(k))
}

// Change is one path whose metadata differs between two manifests. Old is
// nil for Added and New is nil for Removed. Both point into the manifests
// passed to Compare.
type Change struct {
	Path     string
	Kind     ChangeKind
	Old, New *Entry
}

// Compare lists the differences between two sorted manifests, in canonical
// path order, with one linear merge walk.
//
// An entry from a legacy (setgitperms) manifest has no type, device, link
// or xattr data; when old holds such an entry (Type TypeUnknown), only mode,
// uid and gid are compared, so upgrading the format is not itself reported
// as a change to every path.
func Compare(old, new *Manifest) []Change {
	var out []Change
	var oe, ne []Entry
	if old != nil {
		oe = old.Entries
	}
	if new != nil {
		ne = new.Entries
	}
	i, j := 0, 0
	for i < len(oe) || j < len(ne) {
		switch {
		case j >= len(ne) || (i < len(oe) && Less(oe[i].Path, ne[j].Path)):
			out = append(out, Change{Path: oe[i].Path, Kind: Removed, Old: &oe[i]})
			i++
		case i >= len(oe) || Less(ne[j].Path, oe[i].Path):
			out = append(out, Change{Path: ne[j].Path, Kind: Added, New: &ne[j]})
			j++
		default:
			if !sameMeta(&oe[i], &ne[j]) {
				out = append(out, Change{Path: oe[i].Path, Kind: Modified, Old: &oe[i], New: &ne[j]})
			}
			i++
			j++
		}
	}
	return out
}

// sameMeta is Equal, relaxed for legacy old entries.
func sameMeta(o, n *Entry) bool {
	if o.Type == TypeUnknown {
		return o.Mode == n.Mode && o.UID == n.UID && o.GID == n.GID
	}
	return o.Equal(n)
}

// Fields names the fields that differ in a Modified change: "type", "mode",
// "uid", "gid", "device", "link", "hardlink", "empty", and "xattr.<name>"
// for each attribute added, removed or changed (in name order). For a legacy
// old entry only "mode", "uid" and "gid" are considered. Added and Removed
// changes have no fields.
func (c Change) Fields() []string {
	if c.Old == nil || c.New == nil {
		return nil
	}
	o, n := c.Old, c.New
	var f []string
	legacy := o.Type == TypeUnknown
	if !legacy && o.Type != n.Type {
		f = append(f, "type")
	}
	if o.Mode != n.Mode {
		f = append(f, "mode")
	}
	if o.UID != n.UID {
		f = append(f, "uid")
	}
	if o.GID != n.GID {
		f = append(f, "gid")
	}
	if legacy {
		return f
	}
	if o.Major != n.Major || o.Minor != n.Minor {
		f = append(f, "device")
	}
	if o.Link != n.Link {
		f = append(f, "link")
	}
	if o.Hardlink != n.Hardlink {
		f = append(f, "hardlink")
	}
	if o.Empty != n.Empty {
		f = append(f, "empty")
	}
	for _, name := range xattrDiff(o.Xattrs, n.Xattrs) {
		f = append(f, "xattr."+name)
	}
	return f
}

// xattrDiff returns the names of attributes present on only one side or
// with different values, in name order. Both lists must be sorted.
func xattrDiff(a, b []Xattr) []string {
	var out []string
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j >= len(b) || (i < len(a) && a[i].Name < b[j].Name):
			out = append(out, a[i].Name)
			i++
		case i >= len(a) || b[j].Name < a[i].Name:
			out = append(out, b[j].Name)
			j++
		default:
			if !bytes.Equal(a[i].Value, b[j].Value) {
				out = append(out, a[i].Name)
			}
			i++
			j++
		}
	}
	return out
}
