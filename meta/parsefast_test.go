package meta

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"unsafe"
)

// bigManifest builds a canonical manifest large enough for the parallel
// parser, with every kind of keyword.
func bigManifest(t *testing.T) []byte {
	t.Helper()
	m := &Manifest{Entries: []Entry{{Path: ".", Type: TypeDir, Mode: 0o755}}}
	for d := 0; d < 200; d++ {
		dir := fmt.Sprintf("d%03d", d)
		m.Entries = append(m.Entries, Entry{Path: dir, Type: TypeDir, Mode: 0o755, UID: uint32(d)})
		for f := 0; f < 50; f++ {
			e := Entry{Path: fmt.Sprintf("%s/f %02d\n\xe9", dir, f), Type: TypeFile, Mode: 0o4755, GID: 5}
			switch f % 5 {
			case 1:
				e.Type, e.Major, e.Minor = TypeChar, 1, uint32(f)
			case 2:
				e.Type, e.Link, e.Mode = TypeSymlink, "/etc/passwd", 0o777
			case 3:
				e.Xattrs = []Xattr{{Name: "security.capability", Value: []byte{1, 0, 0, 2}}, {Name: "user.a=b", Value: []byte("v")}}
			case 4:
				e.Hardlink = fmt.Sprintf("%s/f %02d\n\xe9", dir, f-4)
			}
			m.Entries = append(m.Entries, e)
		}
	}
	m.Sort()
	b, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < parallelMin {
		t.Fatalf("test manifest is only %d bytes; the parallel path needs %d", len(b), parallelMin)
	}
	return b
}

func TestParseParallelMatchesSequential(t *testing.T) {
	b := bigManifest(t)
	par, ok := parseParallel(b, true)
	if !ok {
		t.Fatal("parseParallel refused a canonical file")
	}
	seq, err := Parse(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(par, seq) {
		t.Fatal("parallel and sequential parses differ")
	}
	// ParseOwned's strings are views of its buffer: the same manifest,
	// with no string its own copy.
	own := append([]byte(nil), b...)
	m, err := ParseOwned(own)
	if err != nil || !reflect.DeepEqual(m, seq) {
		t.Fatalf("ParseOwned differs from Parse (%v)", err)
	}
	lo, hi := uintptr(unsafe.Pointer(&own[0])), uintptr(unsafe.Pointer(&own[len(own)-1]))
	for _, e := range m.Entries {
		if p := uintptr(unsafe.Pointer(unsafe.StringData(e.Path))); e.Path != "." && (p < lo || p > hi) && !strings.Contains(e.Path, "\n") {
			t.Fatalf("ParseOwned copied the path %q", e.Path)
		}
	}
}

// TestParseParallelFallsBack: anything irregular goes through the
// sequential parser, so errors keep their exact line numbers.
func TestParseParallelFallsBack(t *testing.T) {
	b := bigManifest(t)
	lines := strings.SplitAfter(string(b), "\n")
	const at = 7000 // 1-based line number
	tests := []struct {
		name    string
		edit    func(l []string)
		wantErr string
		sorted  bool
	}{
		{"bad mode", func(l []string) { l[at-1] = strings.Replace(l[at-1], "mode=", "mode=9", 1) }, fmt.Sprintf(".gitmeta line %d: ", at), false},
		{"conflict marker", func(l []string) { l[at-1] = "<<<<<<< ours\n" }, fmt.Sprintf(".gitmeta line %d: unresolved", at), false},
		{"duplicate", func(l []string) { l[at] = l[at-1] }, "is listed twice", false},
		{"unsorted", func(l []string) { l[at-1], l[at] = l[at], l[at-1] }, "", true},
		{"comment in body", func(l []string) { l[at-1] = "# note\n" }, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := append([]string(nil), lines...)
			tc.edit(l)
			in := []byte(strings.Join(l, ""))
			if _, ok := parseParallel(in, true); ok {
				t.Fatalf("parseParallel accepted an irregular file")
			}
			m, err := ParseBytes(in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseBytes error = %v; want %q", err, tc.wantErr)
				}
				if tc.name == "conflict marker" && !errors.Is(err, ErrConflict) {
					t.Errorf("conflict not reported as ErrConflict")
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseBytes: %v", err)
			}
			if tc.sorted {
				for i := 1; i < len(m.Entries); i++ {
					if !Less(m.Entries[i-1].Path, m.Entries[i].Path) {
						t.Fatalf("entries not sorted at %d", i)
					}
				}
			}
		})
	}
}

func BenchmarkParseBytes(b *testing.B) {
	t := &testing.T{}
	data := bigManifest(t)
	b.SetBytes(int64(len(data)))
	for i := 0; i < b.N; i++ {
		if _, err := ParseBytes(data); err != nil {
			b.Fatal(err)
		}
	}
}

// TestParseBytesLineLimit: the parallel parser keeps the 1 MiB line limit
// of the sequential one (it once took a 200 MiB line), and the error names
// the line.
func TestParseBytesLineLimit(t *testing.T) {
	var b strings.Builder
	b.WriteString(Signature + "\n")
	for i := 0; i < 20000; i++ {
		fmt.Fprintf(&b, "./f%06d  mode=0644  uid=0  gid=0  type=file\n", i)
	}
	b.WriteString("./g  mode=0644  uid=0  gid=0  type=file  xattr.user.big=" + strings.Repeat("QUFB", (maxLine+4)/4) + "\n")
	src := []byte(b.String())
	if len(src) < parallelMin {
		t.Fatalf("the file is %d bytes, below the parallel parser's %d", len(src), parallelMin)
	}
	_, err := ParseBytes(src)
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Line != 20002 || !strings.Contains(err.Error(), "longer than") {
		t.Errorf("a %d-byte line: %v; want a line-length error at line 20002", maxLine+4, err)
	}
}

// TestParseBytesMemory: what parsing allocates per entry, beyond the file,
// stays small (it was 448 bytes per entry, the entry's whole line copied
// and split, every path split again to be checked).
func TestParseBytesMemory(t *testing.T) {
	var b strings.Builder
	b.WriteString(Signature + "\n")
	const n = 200000
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "./usr/share/doc/pkg%04d/file%06d  mode=0644  uid=0  gid=0  type=file\n", i/1000, i)
	}
	src := []byte(b.String())
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	m, err := ParseBytes(src)
	runtime.ReadMemStats(&after)
	if err != nil || len(m.Entries) != n {
		t.Fatalf("%v", err)
	}
	per := (after.TotalAlloc - before.TotalAlloc) / n
	t.Logf("%d B allocated per entry (the Entry struct is %d B)", per, unsafe.Sizeof(Entry{}))
	if per > 200 {
		t.Errorf("%d B allocated per entry; want the entry and its path (under 200 B)", per)
	}
}

// TestDiffLines changes, removes and adds entries of a large manifest and
// checks DiffLines against a comparison of the two parsed manifests.
func TestDiffLines(t *testing.T) {
	oldB := bigManifest(t)
	old, err := ParseBytes(oldB)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		change func(m *Manifest)
	}{
		{"identical", func(m *Manifest) {}},
		{"modes", func(m *Manifest) {
			for i := 3; i < len(m.Entries); i += 97 {
				m.Entries[i].Mode ^= 0o020
			}
		}},
		{"removed and added", func(m *Manifest) {
			m.Entries = append(m.Entries[:10], m.Entries[40:]...)
			m.Entries = append(m.Entries, Entry{Path: "d050/new", Type: TypeFifo, Mode: 0o600}, Entry{Path: "zzz", Type: TypeDir, Mode: 0o700})
			m.Sort()
		}},
		{"first and last", func(m *Manifest) {
			m.Entries[0].Mode = 0o700
			m.Entries[len(m.Entries)-1].UID = 9
		}},
		{"all but the root gone", func(m *Manifest) { m.Entries = m.Entries[:1] }},
		{"hard link moved", func(m *Manifest) {
			for i := range m.Entries {
				if m.Entries[i].Hardlink != "" {
					m.Entries[i].Hardlink = ""
					break
				}
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nm := &Manifest{Entries: append([]Entry(nil), old.Entries...)}
			tc.change(nm)
			newB, err := nm.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			d, ok := DiffLines(oldB, newB)
			if !ok {
				t.Fatal("DiffLines refused two canonical files")
			}
			var wantOld []Entry
			for _, o := range old.Entries {
				if e := nm.Lookup(o.Path); e == nil || !e.Equal(&o) {
					wantOld = append(wantOld, o)
				}
			}
			var wantChanged []string
			for _, e := range nm.Entries {
				if o := old.Lookup(e.Path); o == nil || !o.Equal(&e) {
					wantChanged = append(wantChanged, e.Path)
				}
			}
			if !reflect.DeepEqual(d.Old.Entries, wantOld) {
				t.Errorf("Old: %d entries, want %d", len(d.Old.Entries), len(wantOld))
			}
			if !reflect.DeepEqual(d.Changed, wantChanged) {
				t.Errorf("Changed: %q, want %q", d.Changed, wantChanged)
			}
		})
	}
	// Not canonical: the caller parses in full.
	body := oldB[bytes.Index(oldB, []byte("\n./")):]
	for name, b := range map[string][]byte{
		"other header":     append([]byte(Signature+"\n# another comment"), body...),
		"no signature":     body[1:],
		"CR line end":      bytes.Replace(oldB, []byte("\n./d000 "), []byte("\r\n./d000 "), 1),
		"unsorted":         bytes.Replace(oldB, []byte("./d001 "), []byte("./d0019 "), 1),
		"no final newline": oldB[:len(oldB)-1],
	} {
		if _, ok := DiffLines(oldB, b); ok {
			t.Errorf("%s: DiffLines accepted it", name)
		}
	}
}
