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
	par, ok := parseParallel(b)
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
			if _, ok := parseParallel(in); ok {
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
