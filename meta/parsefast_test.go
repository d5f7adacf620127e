package meta

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
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
