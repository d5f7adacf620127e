package meta

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func mgFile(p string, mode uint32, uid uint32) Entry {
	return Entry{Path: p, Type: TypeFile, Mode: mode, UID: uid}
}

func mgRoot() Entry { return Entry{Path: ".", Type: TypeDir, Mode: 0o755} }

func mgEncode(t *testing.T, base, ours, theirs *Manifest) (string, int) {
	t.Helper()
	var b bytes.Buffer
	n, err := EncodeMerge(&b, base, ours, theirs, "ours", "theirs")
	if err != nil {
		t.Fatal(err)
	}
	return b.String(), n
}

func mgPaths(m *Manifest) []string {
	var ps []string
	for _, e := range m.Entries {
		ps = append(ps, e.Path)
	}
	return ps
}

func TestMerge3(t *testing.T) {
	base := cmpManifest(mgRoot(), mgFile("a", 0o644, 0), mgFile("b", 0o644, 0), mgFile("c", 0o644, 0), mgFile("d", 0o644, 0))
	tests := []struct {
		name         string
		ours, theirs *Manifest
		want         *Manifest
		conflicts    []string
	}{
		{"adjacent edits",
			cmpManifest(mgRoot(), mgFile("a", 0o600, 0), mgFile("b", 0o644, 0), mgFile("c", 0o644, 0), mgFile("d", 0o644, 0)),
			cmpManifest(mgRoot(), mgFile("a", 0o644, 0), mgFile("b", 0o644, 7), mgFile("c", 0o644, 0), mgFile("d", 0o644, 0)),
			cmpManifest(mgRoot(), mgFile("a", 0o600, 0), mgFile("b", 0o644, 7), mgFile("c", 0o644, 0), mgFile("d", 0o644, 0)),
			nil},
		{"same change both sides",
			cmpManifest(mgRoot(), mgFile("a", 0o600, 0), mgFile("b", 0o644, 0), mgFile("c", 0o644, 0), mgFile("d", 0o644, 0)),
			cmpManifest(mgRoot(), mgFile("a", 0o600, 0), mgFile("b", 0o644, 0), mgFile("c", 0o644, 0), mgFile("d", 0o644, 0)),
			cmpManifest(mgRoot(), mgFile("a", 0o600, 0), mgFile("b", 0o644, 0), mgFile("c", 0o644, 0), mgFile("d", 0o644, 0)),
			nil},
		{"deletes and adds",
			cmpManifest(mgRoot(), mgFile("b", 0o644, 0), mgFile("c", 0o644, 0), mgFile("d", 0o644, 0), mgFile("e", 0o644, 0)),
			cmpManifest(mgRoot(), mgFile("a", 0o644, 0), mgFile("b", 0o644, 0), mgFile("d", 0o644, 0), mgFile("e", 0o644, 0), mgFile("f", 0o644, 0)),
			cmpManifest(mgRoot(), mgFile("b", 0o644, 0), mgFile("d", 0o644, 0), mgFile("e", 0o644, 0), mgFile("f", 0o644, 0)),
			nil},
		{"same path different edits",
			cmpManifest(mgRoot(), mgFile("a", 0o600, 0), mgFile("b", 0o644, 0), mgFile("c", 0o644, 0), mgFile("d", 0o644, 0)),
			cmpManifest(mgRoot(), mgFile("a", 0o640, 0), mgFile("b", 0o644, 0), mgFile("c", 0o644, 0), mgFile("d", 0o644, 0)),
			cmpManifest(mgRoot(), mgFile("a", 0o600, 0), mgFile("b", 0o644, 0), mgFile("c", 0o644, 0), mgFile("d", 0o644, 0)),
			[]string{"a"}},
		{"modify/delete",
			cmpManifest(mgRoot(), mgFile("a", 0o644, 0), mgFile("b", 0o600, 0), mgFile("c", 0o644, 0), mgFile("d", 0o644, 0)),
			cmpManifest(mgRoot(), mgFile("a", 0o644, 0), mgFile("c", 0o644, 0), mgFile("d", 0o644, 0)),
			cmpManifest(mgRoot(), mgFile("a", 0o644, 0), mgFile("b", 0o600, 0), mgFile("c", 0o644, 0), mgFile("d", 0o644, 0)),
			[]string{"b"}},
		{"add/add different",
			cmpManifest(mgRoot(), mgFile("a", 0o644, 0), mgFile("b", 0o644, 0), mgFile("c", 0o644, 0), mgFile("d", 0o644, 0), mgFile("n", 0o644, 0)),
			cmpManifest(mgRoot(), mgFile("a", 0o644, 0), mgFile("b", 0o644, 0), mgFile("c", 0o644, 0), mgFile("d", 0o644, 0), mgFile("n", 0o755, 0)),
			cmpManifest(mgRoot(), mgFile("a", 0o644, 0), mgFile("b", 0o644, 0), mgFile("c", 0o644, 0), mgFile("d", 0o644, 0), mgFile("n", 0o644, 0)),
			[]string{"n"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, conflicts := Merge3(base, tc.ours, tc.theirs)
			if !reflect.DeepEqual(conflicts, tc.conflicts) {
				t.Errorf("conflicts = %q, want %q", conflicts, tc.conflicts)
			}
			if ch := Compare(tc.want, got); len(ch) != 0 || !reflect.DeepEqual(mgPaths(got), mgPaths(tc.want)) {
				t.Errorf("merged %q differs from want %q: %+v", mgPaths(got), mgPaths(tc.want), ch)
			}
			text, n := mgEncode(t, base, tc.ours, tc.theirs)
			if n != len(tc.conflicts) {
				t.Errorf("EncodeMerge reported %d conflicts, want %d", n, len(tc.conflicts))
			}
			back, err := ParseBytes([]byte(text))
			if len(tc.conflicts) == 0 {
				if err != nil {
					t.Fatalf("clean merge does not parse: %v\n%s", err, text)
				}
				if len(Compare(got, back)) != 0 || len(back.Entries) != len(got.Entries) {
					t.Errorf("EncodeMerge text differs from Merge3 result:\n%s", text)
				}
				want, _ := got.Bytes()
				if text != string(want) {
					t.Errorf("clean EncodeMerge output is not canonical:\n%s", text)
				}
			} else if !errors.Is(err, ErrConflict) {
				t.Errorf("conflicted output parsed with err=%v, want ErrConflict", err)
			}
		})
	}
}

func TestEncodeMergeMarkers(t *testing.T) {
	base := cmpManifest(mgRoot(), mgFile("a", 0o644, 0), mgFile("b", 0o644, 0), mgFile("c", 0o644, 0))
	ours := cmpManifest(mgRoot(), mgFile("a", 0o600, 0), mgFile("c", 0o644, 0))
	theirs := cmpManifest(mgRoot(), mgFile("a", 0o640, 0), mgFile("b", 0o755, 0), mgFile("c", 0o644, 0))
	text, n := mgEncode(t, base, ours, theirs)
	want := fmtHeader +
		".  mode=0755  uid=0  gid=0  type=dir\n" +
		"<<<<<<< ours\n" +
		"./a  mode=0600  uid=0  gid=0  type=file\n" +
		"=======\n" +
		"./a  mode=0640  uid=0  gid=0  type=file\n" +
		">>>>>>> theirs\n" +
		"<<<<<<< ours\n" +
		"=======\n" +
		"./b  mode=0755  uid=0  gid=0  type=file\n" +
		">>>>>>> theirs\n" +
		"./c  mode=0644  uid=0  gid=0  type=file\n"
	if n != 2 || text != want {
		t.Errorf("got %d conflicts and\n%s\nwant 2 and\n%s", n, text, want)
	}
}

func TestMerge3Legacy(t *testing.T) {
	base := cmpManifest(Entry{Path: "a", Mode: 0o644}, Entry{Path: "b", Mode: 0o644}, Entry{Path: "c", Mode: 0o644})
	base.Legacy = true
	typed := func(p string, mode, uid uint32, xs ...Xattr) Entry {
		return Entry{Path: p, Type: TypeFile, Mode: mode, UID: uid, Xattrs: xs}
	}
	note := Xattr{Name: "user.n", Value: []byte("1")}

	t.Run("new sides", func(t *testing.T) {
		ours := cmpManifest(mgRoot(), typed("a", 0o600, 0), typed("b", 0o644, 0), typed("c", 0o644, 0, note))
		theirs := cmpManifest(mgRoot(), typed("a", 0o644, 0), typed("b", 0o644, 9), typed("c", 0o644, 0))
		got, conflicts := Merge3(base, ours, theirs)
		want := cmpManifest(mgRoot(), typed("a", 0o600, 0), typed("b", 0o644, 9), typed("c", 0o644, 0, note))
		// c: both sides kept mode and owner but disagree on the xattr; the
		// legacy base cannot say who changed it.
		if !reflect.DeepEqual(conflicts, []string{"c"}) {
			t.Errorf("conflicts = %q, want [c]", conflicts)
		}
		if ch := Compare(want, got); len(ch) != 0 {
			t.Errorf("merged differs: %+v", ch)
		}
	})
	t.Run("legacy change wins over typed", func(t *testing.T) {
		ours := cmpManifest(Entry{Path: "a", Mode: 0o600}, Entry{Path: "b", Mode: 0o644}, Entry{Path: "c", Mode: 0o644})
		ours.Legacy = true
		theirs := cmpManifest(mgRoot(), typed("a", 0o644, 0, note), typed("b", 0o644, 0), typed("c", 0o644, 0))
		got, conflicts := Merge3(base, ours, theirs)
		if len(conflicts) != 0 {
			t.Fatalf("conflicts = %q", conflicts)
		}
		want := cmpManifest(mgRoot(), typed("a", 0o600, 0, note), typed("b", 0o644, 0), typed("c", 0o644, 0))
		if ch := Compare(want, got); len(ch) != 0 || got.Legacy {
			t.Errorf("merged differs (Legacy=%v): %+v", got.Legacy, ch)
		}
		text, n := mgEncode(t, base, ours, theirs)
		if _, err := ParseBytes([]byte(text)); err != nil || n != 0 {
			t.Errorf("EncodeMerge: %d conflicts, parse err %v\n%s", n, err, text)
		}
	})
	t.Run("untyped addition", func(t *testing.T) {
		ours := cmpManifest(Entry{Path: "a", Mode: 0o644}, Entry{Path: "b", Mode: 0o644}, Entry{Path: "c", Mode: 0o644}, Entry{Path: "z", Mode: 0o644})
		ours.Legacy = true
		theirs := cmpManifest(mgRoot(), typed("a", 0o644, 0), typed("b", 0o644, 0), typed("c", 0o644, 0))
		if _, conflicts := Merge3(base, ours, theirs); !reflect.DeepEqual(conflicts, []string{"z"}) {
			t.Errorf("conflicts = %q, want [z]", conflicts)
		}
	})
	t.Run("all legacy", func(t *testing.T) {
		ours := cmpManifest(Entry{Path: "a", Mode: 0o600}, Entry{Path: "b", Mode: 0o644}, Entry{Path: "c", Mode: 0o644})
		theirs := cmpManifest(Entry{Path: "a", Mode: 0o644}, Entry{Path: "b", Mode: 0o644, GID: 5}, Entry{Path: "c", Mode: 0o644}, Entry{Path: "d d", Mode: 0o4755})
		ours.Legacy, theirs.Legacy = true, true
		text, n := mgEncode(t, base, ours, theirs)
		want := "a  mode=0600  uid=0  gid=0\nb  mode=0644  uid=0  gid=5\nc  mode=0644  uid=0  gid=0\nd d  mode=4755  uid=0  gid=0\n"
		if n != 0 || text != want {
			t.Fatalf("got %d conflicts and\n%s\nwant\n%s", n, text, want)
		}
		back, err := ParseBytes([]byte(text))
		if err != nil || !back.Legacy || len(back.Entries) != 4 {
			t.Fatalf("legacy merge result does not read back as legacy: %v", err)
		}
	})
}

func TestMerge3Hardlinks(t *testing.T) {
	base := cmpManifest(mgRoot(), mgFile("a", 0o644, 0), mgFile("b", 0o644, 0))
	linked := mgFile("b", 0o644, 0)
	linked.Hardlink = "a"
	ours := cmpManifest(mgRoot(), mgFile("a", 0o644, 0), linked)
	theirs := cmpManifest(mgRoot(), mgFile("b", 0o644, 0))
	_, conflicts := Merge3(base, ours, theirs)
	if !reflect.DeepEqual(conflicts, []string{"b"}) {
		t.Fatalf("conflicts = %q, want [b] (its link target was removed)", conflicts)
	}
	text, _ := mgEncode(t, base, ours, theirs)
	if !strings.Contains(text, "<<<<<<< ours\n./b  mode=0644  uid=0  gid=0  type=file  hardlink=./a\n=======\n./b  mode=0644  uid=0  gid=0  type=file\n>>>>>>> theirs\n") {
		t.Errorf("markers missing:\n%s", text)
	}
}

func TestMerge3Nil(t *testing.T) {
	ours := cmpManifest(mgRoot(), mgFile("a", 0o644, 0))
	got, conflicts := Merge3(nil, ours, nil)
	// Without a base, an empty side changed nothing; ours added everything.
	if len(conflicts) != 0 || len(got.Entries) != 2 {
		t.Errorf("Merge3(nil, x, nil) = %+v, %q", got, conflicts)
	}
	got, conflicts = Merge3(nil, ours, ours)
	if len(conflicts) != 0 || len(got.Entries) != 2 {
		t.Errorf("Merge3(nil, x, x) = %+v, %q", got, conflicts)
	}
}
