package meta

import (
	"bytes"
	"reflect"
	"testing"
)

// FuzzParse checks that Parse never panics on any input, and that for any
// input it accepts, Encode then Parse then Encode is a fixed point.
func FuzzParse(f *testing.F) {
	f.Add([]byte(fmtHeader + ".  mode=0755  uid=0  gid=0  type=dir\n./a\\040b  mode=04755  uid=1  gid=2  type=file  xattr.user.x=AQI=\n"))
	f.Add([]byte("etc  mode=0755  uid=0  gid=0\n"))
	f.Add([]byte("./a  mode=0  uid=0  gid=0  type=file\n./b  mode=0  uid=0  gid=0  type=file  hardlink=./a\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseBytes(data)
		if err != nil {
			return
		}
		if m.Legacy {
			// A legacy file is read for migration only; it is re-recorded,
			// never written back in the new format.
			return
		}
		for i := range m.Entries {
			e := &m.Entries[i]
			if got, want := EncodedLen(e), len(AppendEntry(nil, e)); got != want {
				t.Fatalf("EncodedLen(%q) = %d, AppendEntry wrote %d", e.Path, got, want)
			}
		}
		first, err := m.Bytes()
		if err != nil {
			t.Fatalf("Encode of a parsed manifest failed: %v", err)
		}
		back, err := ParseBytes(first)
		if err != nil {
			t.Fatalf("re-parse failed: %v\n%q", err, first)
		}
		second, err := back.Bytes()
		if err != nil {
			t.Fatalf("second Encode failed: %v", err)
		}
		if !bytes.Equal(first, second) {
			t.Fatalf("Encode/Parse not a fixed point:\n%q\n%q", first, second)
		}
	})
}

// FuzzIndexedSubset: where IndexCanonical takes a file, asking Subset for
// every path its lines name parses every line, so it must agree with the
// whole parse: an error where that fails, and where both succeed the same
// entries. (Subset may refuse more, a CR line end say: the hooks then
// parse the file whole.)
func FuzzIndexedSubset(f *testing.F) {
	f.Add([]byte(fmtHeader + ".  mode=0755  uid=0  gid=0  type=dir\n./a\\040b  mode=04755  uid=1  gid=2  type=file  xattr.user.x=AQI=\n./a0  mode=0644  uid=0  gid=0  type=file  hardlink=./a\\040b\n"))
	f.Add([]byte(fmtHeader + "./a  mode=0644  uid=0  gid=0  type=file\n./b  mode=0644  uid=0  gid=0  type=file  hardlink=./c\n"))
	f.Add([]byte(fmtHeader + "./b  mode=0644  uid=0  gid=0  type=file\n./a  mode=0644  uid=0  gid=0  type=file\n"))
	f.Add([]byte(fmtHeader + "./a\tx  mode=0644  uid=0  gid=0  type=file\n./b  mode=0644  uid=0  gid=0  type=dir\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ix, ok := IndexCanonical(data)
		if !ok {
			return
		}
		var paths []string
		for i := 0; i < ix.Len(); i++ {
			paths = append(paths, fieldPath(pathField(ix.line(i))))
		}
		sub, serr := ix.Subset(paths)
		m, err := Parse(bytes.NewReader(data))
		switch {
		case serr != nil:
		case err != nil:
			t.Fatalf("Subset of every line took a file Parse refuses (%v):\n%q", err, data)
		case len(sub.Entries) != len(m.Entries) || len(m.Entries) > 0 && !reflect.DeepEqual(sub.Entries, m.Entries):
			t.Fatalf("Subset of every line differs from Parse:\n got %+v\nwant %+v", sub.Entries, m.Entries)
		}
	})
}
