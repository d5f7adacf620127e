package meta

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestIndexedSubsetMatchesParse(t *testing.T) {
	b := bigManifest(t)
	full, err := ParseBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	ix, ok := IndexCanonical(b)
	if !ok {
		t.Fatal("IndexCanonical refused a canonical file")
	}
	if ix.Len() != len(full.Entries) {
		t.Fatalf("Len() = %d, want %d", ix.Len(), len(full.Entries))
	}
	var all []string
	for i := range full.Entries {
		all = append(all, full.Entries[i].Path)
	}
	sub, err := ix.Subset(all)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(sub, full) {
		t.Fatal("the subset of every path differs from the whole parse")
	}
	// Each path alone: its own entry, and its hard-link group.
	for i := range full.Entries {
		e := &full.Entries[i]
		sub, err := ix.Subset([]string{e.Path, "no/such/path"})
		if err != nil {
			t.Fatalf("Subset(%q): %v", e.Path, err)
		}
		got := sub.Lookup(e.Path)
		if got == nil || !got.Equal(e) {
			t.Fatalf("Subset(%q) = %v, want the entry %v", e.Path, sub.Entries, e)
		}
		primary := e.Path
		if e.Hardlink != "" {
			primary = e.Hardlink
		}
		want := 1
		for j := range full.Entries {
			if full.Entries[j].Hardlink == primary {
				want = 2 // bigManifest's groups are pairs
			}
		}
		if len(sub.Entries) != want {
			t.Fatalf("Subset(%q) has %d entries, want %d: %v", e.Path, len(sub.Entries), want, sub.Entries)
		}
	}
}

// canonical renders lines (entry lines, without the newline) as a
// canonical .gitmeta.
func canonical(lines ...string) []byte {
	return []byte(Signature + "\n" + FormatLine + "\n" + strings.Join(lines, "\n") + "\n")
}

func TestIndexedHardLinkGroups(t *testing.T) {
	b := canonical(
		".  mode=0755  uid=0  gid=0  type=dir",
		"./a  mode=0644  uid=0  gid=0  type=file",
		"./b  mode=0644  uid=0  gid=0  type=file  hardlink=./a",
		"./c  mode=0644  uid=0  gid=0  type=file",
		"./d  mode=0644  uid=0  gid=0  type=file  hardlink=./a",
		"./e  mode=0644  uid=0  gid=0  type=file  hardlink=./gone",
	)
	ix, ok := IndexCanonical(b)
	if !ok {
		t.Fatal("IndexCanonical refused a canonical file")
	}
	paths := func(m *Manifest) string {
		var ps []string
		for i := range m.Entries {
			ps = append(ps, m.Entries[i].Path)
		}
		return strings.Join(ps, " ")
	}
	for _, tc := range []struct {
		ask  []string
		want string
	}{
		{[]string{"c"}, "c"},
		{[]string{"a"}, "a b d"},
		{[]string{"d"}, "a b d"},
		{[]string{"d", "c", "b"}, "a b c d"},
		{[]string{"."}, "."},
		{nil, ""},
	} {
		m, err := ix.Subset(tc.ask)
		if err != nil {
			t.Fatalf("Subset(%q): %v", tc.ask, err)
		}
		if got := paths(m); got != tc.want {
			t.Errorf("Subset(%q) = %q, want %q", tc.ask, got, tc.want)
		}
	}
	// A secondary naming a path the file does not have is caught when
	// that path (a primary that went) or the secondary is asked for.
	for _, ask := range []string{"gone", "e"} {
		_, err := ix.Subset([]string{ask})
		var pe *ParseError
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), "names no entry") {
			t.Errorf("Subset(%q) = %v, want a hard link that names no entry", ask, err)
		}
	}
}

func TestIndexCanonicalRefuses(t *testing.T) {
	root := ".  mode=0755  uid=0  gid=0  type=dir"
	sp := `./a\040b  mode=0644  uid=0  gid=0  type=file` // "a b"
	zero := "./a0  mode=0644  uid=0  gid=0  type=file"
	for _, tc := range []struct {
		name string
		b    []byte
		ok   bool
	}{
		// "a b" < "a0" decoded, though '\' > '0' as encoded bytes.
		{"escapes sort decoded", canonical(root, sp, zero), true},
		{"out of order decoded", canonical(root, zero, sp), false},
		{"out of order", canonical(root, "./b  mode=0644  uid=0  gid=0  type=file", "./a  mode=0644  uid=0  gid=0  type=file"), false},
		{"duplicate", canonical(root, zero, zero), false},
		{"root not first", canonical(zero, root), false},
		{"blank line", canonical(root, "", zero), false},
		{"comment in the body", canonical(root, "# note", zero), false},
		{"legacy", []byte("a  mode=0644  uid=0  gid=0\n"), false},
		{"no final newline", bytes.TrimSuffix(canonical(root, zero), []byte("\n")), false},
		{"bad hard-link line", canonical(root, "./a  mode=0644  uid=0  gid=0  type=file  hardlink=./x  bogus"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ix, ok := IndexCanonical(tc.b)
			if ok != tc.ok {
				t.Fatalf("IndexCanonical ok = %v, want %v", ok, tc.ok)
			}
			if !ok {
				return
			}
			m, err := ix.Subset([]string{"a b", "a0"})
			if err != nil || len(m.Entries) != 2 || m.Entries[0].Path != "a b" {
				t.Fatalf("Subset = %v, %v; want a b then a0", m, err)
			}
		})
	}
}

// TestIndexedBadLineParsedOnDemand: a line Subset parses that is not
// valid is an error (the caller parses the file whole and names it).
func TestIndexedBadLineParsedOnDemand(t *testing.T) {
	b := canonical(".  mode=0755  uid=0  gid=0  type=dir", "./a  mode=0999  uid=0  gid=0  type=file", "./b  mode=0644  uid=0  gid=0  type=file")
	ix, ok := IndexCanonical(b)
	if !ok {
		t.Fatal("IndexCanonical parses no line but hard links, so it takes this file")
	}
	if _, err := ix.Subset([]string{"b"}); err != nil {
		t.Fatalf("Subset(b) = %v; a bad line it does not visit is the caller's promise", err)
	}
	if _, err := ix.Subset([]string{"a"}); err == nil || !strings.Contains(err.Error(), "bad mode") {
		t.Fatalf("Subset(a) = %v, want the bad mode", err)
	}
}
