package meta

import (
	"reflect"
	"testing"
)

func cmpManifest(es ...Entry) *Manifest {
	m := &Manifest{Entries: es}
	m.Sort()
	return m
}

func TestCompare(t *testing.T) {
	root := Entry{Path: ".", Type: TypeDir, Mode: 0o755}
	file := func(p string, mode uint32) Entry { return Entry{Path: p, Type: TypeFile, Mode: mode} }
	old := cmpManifest(root, file("a", 0o644), file("b", 0o644), file("c", 0o644), file("e", 0o600))
	new := cmpManifest(root, file("a", 0o644), file("b", 0o4755), file("d", 0o644), file("e", 0o600))
	got := Compare(old, new)
	want := []struct {
		path string
		kind ChangeKind
	}{{"b", Modified}, {"c", Removed}, {"d", Added}}
	if len(got) != len(want) {
		t.Fatalf("got %d changes, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		c := got[i]
		if c.Path != w.path || c.Kind != w.kind {
			t.Errorf("change %d = %s %s, want %s %s", i, c.Kind, c.Path, w.kind, w.path)
		}
		if (c.Old == nil) != (c.Kind == Added) || (c.New == nil) != (c.Kind == Removed) {
			t.Errorf("change %d: Old/New set wrongly for %s", i, c.Kind)
		}
	}
	if len(Compare(old, old)) != 0 {
		t.Error("a manifest differs from itself")
	}
	if got := Compare(nil, old); len(got) != 5 || got[0].Kind != Added {
		t.Errorf("Compare(nil, old) = %+v", got)
	}
	if got := Compare(old, &Manifest{}); len(got) != 5 || got[4].Kind != Removed {
		t.Errorf("Compare(old, empty) = %+v", got)
	}
}

func TestCompareLegacy(t *testing.T) {
	old := cmpManifest(Entry{Path: "a", Mode: 0o644}, Entry{Path: "b", Mode: 0o644}, Entry{Path: "c", Mode: 0o644, UID: 3})
	old.Legacy = true
	new := cmpManifest(
		Entry{Path: ".", Type: TypeDir, Mode: 0o755},
		Entry{Path: "a", Type: TypeFile, Mode: 0o644, Xattrs: []Xattr{{"user.x", []byte("1")}}},
		Entry{Path: "b", Type: TypeSymlink, Mode: 0o600, Link: "x"},
		Entry{Path: "c", Type: TypeDir, Mode: 0o644, UID: 4, Empty: true},
	)
	got := Compare(old, new)
	if len(got) != 3 || got[0].Path != "." || got[1].Path != "b" || got[2].Path != "c" {
		t.Fatalf("got %+v, want . added, b and c modified", got)
	}
	if f := got[1].Fields(); !reflect.DeepEqual(f, []string{"mode"}) {
		t.Errorf("b fields = %v, want [mode]", f)
	}
	if f := got[2].Fields(); !reflect.DeepEqual(f, []string{"uid"}) {
		t.Errorf("c fields = %v, want [uid]", f)
	}
}

func TestChangeFields(t *testing.T) {
	base := Entry{Path: "p", Type: TypeFile, Mode: 0o644, Xattrs: []Xattr{{"user.a", []byte("1")}, {"user.b", []byte("2")}}}
	tests := []struct {
		name string
		edit func(e *Entry)
		want []string
	}{
		{"none", func(e *Entry) {}, nil},
		{"type", func(e *Entry) { e.Type = TypeFifo }, []string{"type"}},
		{"mode", func(e *Entry) { e.Mode = 0o4644 }, []string{"mode"}},
		{"owner", func(e *Entry) { e.UID, e.GID = 1, 2 }, []string{"uid", "gid"}},
		{"device", func(e *Entry) { e.Type, e.Major, e.Minor = TypeChar, 1, 3 }, []string{"type", "device"}},
		{"link", func(e *Entry) { e.Type, e.Link = TypeSymlink, "x" }, []string{"type", "link"}},
		{"hardlink", func(e *Entry) { e.Hardlink = "o" }, []string{"hardlink"}},
		{"empty", func(e *Entry) { e.Type, e.Empty = TypeDir, true }, []string{"type", "empty"}},
		{"xattr changed", func(e *Entry) { e.Xattrs[0].Value = []byte("9") }, []string{"xattr.user.a"}},
		{"xattr removed", func(e *Entry) { e.Xattrs = e.Xattrs[1:] }, []string{"xattr.user.a"}},
		{"xattr added", func(e *Entry) {
			e.Xattrs = append(e.Xattrs, Xattr{"user.c", nil})
		}, []string{"xattr.user.c"}},
		{"xattrs all gone", func(e *Entry) { e.Xattrs = nil }, []string{"xattr.user.a", "xattr.user.b"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := base.Clone()
			tc.edit(&n)
			o := base.Clone()
			c := Change{Path: "p", Kind: Modified, Old: &o, New: &n}
			if got := c.Fields(); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Fields() = %v, want %v", got, tc.want)
			}
			changes := Compare(cmpManifest(o), cmpManifest(n))
			if (len(changes) == 0) != (tc.want == nil) {
				t.Errorf("Compare found %d changes", len(changes))
			}
		})
	}
	if f := (Change{Kind: Added, New: &base}).Fields(); f != nil {
		t.Errorf("Added change has fields %v", f)
	}
}
