package meta

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

const fmtHeader = Signature + "\n" + FormatLine + "\n"

func fmtEncode(t *testing.T, m *Manifest) string {
	t.Helper()
	b, err := m.Bytes()
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	return string(b)
}

func TestFormatRoundTripTypes(t *testing.T) {
	tests := []struct {
		name string
		e    Entry
		line string
	}{
		{"root", Entry{Path: ".", Type: TypeDir, Mode: 0o755}, ".  mode=0755  uid=0  gid=0  type=dir"},
		{"file", Entry{Path: "etc/shadow", Type: TypeFile, Mode: 0o640, GID: 42}, "./etc/shadow  mode=0640  uid=0  gid=42  type=file"},
		{"mode0", Entry{Path: "f", Type: TypeFile}, "./f  mode=0  uid=0  gid=0  type=file"},
		{"setuid", Entry{Path: "su", Type: TypeFile, Mode: 0o4755}, "./su  mode=04755  uid=0  gid=0  type=file"},
		{"empty dir", Entry{Path: "var/empty", Type: TypeDir, Mode: 0o711, UID: 7, GID: 8, Empty: true}, "./var/empty  mode=0711  uid=7  gid=8  type=dir  empty=1"},
		{"symlink", Entry{Path: "lib", Type: TypeSymlink, Mode: 0o777, Link: "usr/lib"}, "./lib  mode=0777  uid=0  gid=0  type=link  link=usr/lib"},
		{"symlink odd", Entry{Path: "l", Type: TypeSymlink, Mode: 0o777, Link: "../a b\\c#"}, `./l  mode=0777  uid=0  gid=0  type=link  link=../a\040b\134c\043`},
		{"char", Entry{Path: "dev/null", Type: TypeChar, Mode: 0o666, Major: 1, Minor: 3}, "./dev/null  mode=0666  uid=0  gid=0  type=char  device=native,1,3"},
		{"block", Entry{Path: "dev/sda", Type: TypeBlock, Mode: 0o660, GID: 6, Major: 8}, "./dev/sda  mode=0660  uid=0  gid=6  type=block  device=native,8,0"},
		{"fifo", Entry{Path: "run/f", Type: TypeFifo, Mode: 0o600}, "./run/f  mode=0600  uid=0  gid=0  type=fifo"},
		{"socket", Entry{Path: "run/s", Type: TypeSocket, Mode: 0o755}, "./run/s  mode=0755  uid=0  gid=0  type=socket"},
		{"xattrs", Entry{Path: "x", Type: TypeFile, Mode: 0o644, Xattrs: []Xattr{{"a=b#c*d", []byte("v")}, {"user.z", []byte{0, 255}}}},
			`./x  mode=0644  uid=0  gid=0  type=file  xattr.a\075b\043c\052d=dg==  xattr.user.z=AP8=`},
		{"big ids", Entry{Path: "n", Type: TypeFile, Mode: 0o7777, UID: 4294967295, GID: 65534}, "./n  mode=07777  uid=4294967295  gid=65534  type=file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(AppendEntry(nil, &tc.e)); got != tc.line {
				t.Fatalf("line\n got %s\nwant %s", got, tc.line)
			}
			m := &Manifest{Entries: []Entry{tc.e}}
			if tc.e.Path != "." {
				m.Entries = []Entry{{Path: ".", Type: TypeDir, Mode: 0o755}, tc.e}
			}
			text := fmtEncode(t, m)
			back, err := ParseBytes([]byte(text))
			if err != nil {
				t.Fatalf("Parse: %v\n%s", err, text)
			}
			if got := back.Lookup(tc.e.Path); got == nil || !got.Equal(&tc.e) {
				t.Fatalf("round trip: got %+v, want %+v", got, tc.e)
			}
		})
	}
}

func TestFormatHardlinkRoundTrip(t *testing.T) {
	m := &Manifest{Entries: []Entry{
		{Path: ".", Type: TypeDir, Mode: 0o755},
		{Path: "a", Type: TypeFile, Mode: 0o644},
		{Path: "b", Type: TypeFile, Mode: 0o644, Hardlink: "a"},
	}}
	text := fmtEncode(t, m)
	if !strings.Contains(text, "./b  mode=0644  uid=0  gid=0  type=file  hardlink=./a\n") {
		t.Fatalf("hardlink line missing:\n%s", text)
	}
	back, err := ParseBytes([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if back.Lookup("b").Hardlink != "a" {
		t.Fatal("hardlink lost")
	}
}

func TestFormatEscapePath(t *testing.T) {
	tests := []struct {
		path, want string
	}{
		{".", "."},
		{"a b", `./a\040b`},
		{"a\nb", `./a\012b`},
		{"a\tb", `./a\011b`},
		{`a\b`, `./a\134b`},
		{"caf\xc3\xa9", `./caf\303\251`},
		{"\xff", `./\377`},
		{"-rf", "./-rf"},
		{"x  mode=0755", `./x\040\040mode=0755`},
		{"#c", `./\043c`},
		{"*", `./\052`},
		{"?[", `./\077\133`},
		{"a=b", "./a=b"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			if got := EscapePath(tc.path); got != tc.want {
				t.Fatalf("EscapePath(%q) = %s, want %s", tc.path, got, tc.want)
			}
			typ := TypeFile
			if tc.path == "." {
				typ = TypeDir
			}
			line := string(AppendEntry(nil, &Entry{Path: tc.path, Type: typ}))
			m, err := ParseBytes([]byte(fmtHeader + line + "\n"))
			if err != nil {
				t.Fatalf("Parse(%q): %v", line, err)
			}
			if m.Entries[0].Path != tc.path {
				t.Fatalf("path came back as %q, want %q", m.Entries[0].Path, tc.path)
			}
		})
	}
}

func TestFormatMode(t *testing.T) {
	for m, want := range map[uint32]string{0: "0", 0o755: "0755", 0o4755: "04755", 0o644: "0644", 0o1777: "01777", 0o7: "07"} {
		if got := FormatMode(m); got != want {
			t.Errorf("FormatMode(%o) = %q, want %q", m, got, want)
		}
	}
}

func TestFormatUnvisCompat(t *testing.T) {
	tests := []struct{ in, want string }{
		{`a\sb`, "a b"},
		{`a\040b`, "a b"},
		{`\\`, `\`},
		{`\t\n`, "\t\n"},
		{`\M-a`, "\xe1"},
		{`\^A`, "\x01"},
	}
	for _, tc := range tests {
		if got, err := Unvis(tc.in); err != nil || got != tc.want {
			t.Errorf("Unvis(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{`a\`, `\9`, `\q`, `\777`} {
		if _, err := Unvis(bad); err == nil {
			t.Errorf("Unvis(%q) succeeded", bad)
		}
	}
}

func TestFormatLegacy(t *testing.T) {
	text := "etc  mode=0755  uid=0  gid=0\netc/shadow  mode=0000  uid=0  gid=42\nusr/bin/su  mode=4755  uid=0  gid=0\n"
	m, err := ParseBytes([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if !m.Legacy || len(m.Entries) != 3 {
		t.Fatalf("got Legacy=%v with %d entries", m.Legacy, len(m.Entries))
	}
	want := []Entry{
		{Path: "etc", Mode: 0o755},
		{Path: "etc/shadow", Mode: 0, GID: 42},
		{Path: "usr/bin/su", Mode: 0o4755},
	}
	for i := range want {
		if !m.Entries[i].Equal(&want[i]) {
			t.Errorf("entry %d = %+v, want %+v", i, m.Entries[i], want[i])
		}
	}
	_, err = ParseBytes([]byte("etc  mode=0755  uid=0  gid=0\n\"etc/caf\\303\\251\"  mode=0644  uid=0  gid=0\n"))
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Line != 2 || !strings.Contains(err.Error(), "C-quoted") {
		t.Fatalf("C-quoted path: err = %v, want a line 2 C-quoted error", err)
	}
}

func TestFormatParseErrors(t *testing.T) {
	tests := []struct {
		name string
		body string // after the header; the bad line is the last one
		want string
	}{
		{"no prefix", "etc  mode=0755  uid=0  gid=0  type=dir", `must start with "./"`},
		{"set", "/set type=file", "self-contained"},
		{"no value", "./a  mode", "has no value"},
		{"bad mode", "./a  mode=0999  uid=0  gid=0  type=file", "bad mode"},
		{"mode too big", "./a  mode=017777  uid=0  gid=0  type=file", "bad mode"},
		{"bad uid", "./a  mode=0  uid=-1  gid=0  type=file", "bad uid"},
		{"bad gid", "./a  mode=0  uid=0  gid=x  type=file", "bad gid"},
		{"bad type", "./a  mode=0  uid=0  gid=0  type=door", "unknown type"},
		{"bad device", "./a  mode=0  uid=0  gid=0  type=char  device=1,3", "bad device"},
		{"bad device nums", "./a  mode=0  uid=0  gid=0  type=char  device=native,x,3", "bad device numbers"},
		{"device on file", "./a  mode=0  uid=0  gid=0  type=file  device=native,1,3", "device= goes with"},
		{"no device", "./a  mode=0  uid=0  gid=0  type=block", "device= goes with"},
		{"link on file", "./a  mode=0  uid=0  gid=0  type=file  link=x", "link= goes with"},
		{"no link", "./a  mode=0  uid=0  gid=0  type=link", "link= goes with"},
		{"bad hardlink", "./a  mode=0  uid=0  gid=0  type=file  hardlink=b", "must start with"},
		{"hardlink dotdot", "./a  mode=0  uid=0  gid=0  type=file  hardlink=./../b", "unsafe path"},
		{"empty file", "./a  mode=0  uid=0  gid=0  type=file  empty=1", "only for directories"},
		{"empty=2", "./a  mode=0  uid=0  gid=0  type=dir  empty=2", "want empty=1"},
		{"xattr b64", "./a  mode=0  uid=0  gid=0  type=file  xattr.user.a=!!", "not base64"},
		{"xattr dup", "./a  mode=0  uid=0  gid=0  type=file  xattr.user.a=  xattr.user.a=", "given twice"},
		{"xattr noname", "./a  mode=0  uid=0  gid=0  type=file  xattr.=", "bad xattr name"},
		{"unknown kw", "./a  mode=0  uid=0  gid=0  type=file  colour=red", "unknown keyword"},
		{"missing mode", "./a  uid=0  gid=0  type=file", "all required"},
		{"missing type", "./a  mode=0  uid=0  gid=0", "type= is required"},
		{"root not dir", ".  mode=0  uid=0  gid=0  type=file", "must be type=dir"},
		{"dotdot", "./a/../b  mode=0  uid=0  gid=0  type=file", "unsafe path"},
		{"bad escape", `./a\q  mode=0  uid=0  gid=0  type=file`, "unknown escape"},
		{"duplicate", "./a  mode=0  uid=0  gid=0  type=file\n./a  mode=0  uid=0  gid=0  type=file", "listed twice"},
		{"dangling hardlink", "./a  mode=0  uid=0  gid=0  type=file  hardlink=./z", "names no entry"},
		{"hardlink to dir", "./a  mode=0  uid=0  gid=0  type=dir\n./b  mode=0  uid=0  gid=0  type=file  hardlink=./a", "names a dir"},
		{"hardlink type", "./a  mode=0  uid=0  gid=0  type=fifo\n./b  mode=0  uid=0  gid=0  type=file  hardlink=./a", "hard link of type"},
		{"hardlink later", "./a  mode=0  uid=0  gid=0  type=file  hardlink=./b\n./b  mode=0  uid=0  gid=0  type=file", "earlier path"},
		{"hardlink chain", "./a  mode=0  uid=0  gid=0  type=file\n./b  mode=0  uid=0  gid=0  type=file  hardlink=./a\n./c  mode=0  uid=0  gid=0  type=file  hardlink=./b", "secondary"},
		{"too new", "# git-onesis .gitmeta v2 (future)", "newer git-onesis"},
		{"marker ours", "<<<<<<< HEAD", "merge conflict"},
		{"marker sep", "=======", "merge conflict"},
		{"marker theirs", ">>>>>>> branch", "merge conflict"},
		{"marker base", "||||||| base", "merge conflict"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			text := fmtHeader + ".  mode=0755  uid=0  gid=0  type=dir\n" + tc.body + "\n"
			_, err := ParseBytes([]byte(text))
			if err == nil {
				t.Fatalf("Parse succeeded on %q", tc.body)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *ParseError", err)
			}
			wantLine := strings.Count(text, "\n")
			if strings.HasPrefix(tc.name, "hardlink later") || strings.HasPrefix(tc.name, "dangling") || tc.name == "hardlink chain" {
				wantLine = 0 // the line of the linking entry; checked below
			}
			if wantLine != 0 && pe.Line != wantLine {
				t.Errorf("error names line %d, want %d: %v", pe.Line, wantLine, err)
			}
			if pe.Line == 0 || !strings.Contains(err.Error(), ".gitmeta line ") {
				t.Errorf("error does not name a line: %v", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
			if strings.HasPrefix(tc.name, "marker") && !errors.Is(err, ErrConflict) {
				t.Errorf("conflict marker error %v is not ErrConflict", err)
			}
		})
	}
}

func TestFormatDeterminism(t *testing.T) {
	m := &Manifest{Entries: []Entry{
		{Path: ".", Type: TypeDir, Mode: 0o755},
		{Path: "a b", Type: TypeFile, Mode: 0o644, Xattrs: []Xattr{{"user.a", []byte("1")}, {"user.b", nil}}},
		{Path: "a-b", Type: TypeFile, Mode: 0o644, Hardlink: "a b"},
		{Path: "a/b", Type: TypeSymlink, Mode: 0o777, Link: "\x01\xff"},
		{Path: "dev/x", Type: TypeChar, Mode: 0o600, Major: 4, Minor: 64},
		{Path: "e", Type: TypeDir, Mode: 0o700, Empty: true},
	}}
	m.Sort()
	first := fmtEncode(t, m)
	back, err := ParseBytes([]byte(first))
	if err != nil {
		t.Fatal(err)
	}
	if second := fmtEncode(t, back); second != first {
		t.Fatalf("not a fixed point:\n%s\n---\n%s", first, second)
	}
	// Unsorted input is sorted by Parse and still encodes identically.
	lines := strings.Split(strings.TrimSuffix(first, "\n"), "\n")
	rev := append([]string{}, lines[:2]...)
	for i := len(lines) - 1; i >= 2; i-- {
		rev = append(rev, lines[i])
	}
	back, err = ParseBytes([]byte(strings.Join(rev, "\n") + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := fmtEncode(t, back); got != first {
		t.Fatalf("reversed input encodes differently:\n%s", got)
	}
	// Encode refuses unsorted entries.
	bad := &Manifest{Entries: []Entry{{Path: "b", Type: TypeFile}, {Path: "a", Type: TypeFile}}}
	if err := bad.Encode(&bytes.Buffer{}); err == nil {
		t.Fatal("Encode accepted unsorted entries")
	}
}

func TestFormatTolerated(t *testing.T) {
	text := fmtHeader + "\n   \n# a comment\n.  mode=0755  uid=0  gid=0  type=dir  size=4096  nlink=2  time=1.0\r\n./a  mode=0644 uid=0\tgid=0 type=file\n"
	m, err := ParseBytes([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Entries) != 2 || m.Legacy {
		t.Fatalf("got %+v", m)
	}
}

// TestBytesParallel: the parallel encoder writes exactly what Encode
// writes, and still refuses entries out of order, wherever they are.
func TestBytesParallel(t *testing.T) {
	m := &Manifest{Entries: []Entry{{Path: ".", Type: TypeDir, Mode: 0o755}}}
	for i := range 70000 {
		e := Entry{Path: fmt.Sprintf("d%03d/f%05d", i/1000, i), Type: TypeFile, Mode: 0o644, UID: uint32(i % 7)}
		if i%5000 == 0 {
			e.Xattrs = []Xattr{{Name: "user.n", Value: []byte{byte(i)}}}
		}
		m.Entries = append(m.Entries, e)
	}
	var want bytes.Buffer
	if err := m.Encode(&want); err != nil {
		t.Fatal(err)
	}
	got, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("Bytes (%d bytes) differs from Encode (%d bytes)", len(got), want.Len())
	}
	for _, at := range []int{2, 35000, 69999} {
		bad := &Manifest{Entries: slices.Clone(m.Entries)}
		bad.Entries[at], bad.Entries[at+1] = bad.Entries[at+1], bad.Entries[at]
		if _, err := bad.Bytes(); err == nil || !strings.Contains(err.Error(), "out of order") {
			t.Errorf("entries swapped at %d: Bytes error = %v, want out of order", at, err)
		}
	}
}

// TestEncodedLen: EncodedLen counts exactly what AppendEntry writes, for
// every field and every byte appendVis escapes (Bytes places each slice
// of entries by it).
func TestEncodedLen(t *testing.T) {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	tests := []Entry{
		{Path: ".", Type: TypeDir, Mode: 0o755},
		{Path: "etc/shadow", Type: TypeFile, Mode: 0, GID: 42},
		{Path: "usr/bin/su", Type: TypeFile, Mode: 0o4755, UID: 4294967295, GID: 1000000},
		{Path: "dev/sda", Type: TypeBlock, Mode: 0o660, Major: 8, Minor: 0},
		{Path: "dev/null", Type: TypeChar, Mode: 0o666, Major: 1, Minor: 3},
		{Path: "dev/big", Type: TypeChar, Mode: 0o600, Major: 4095, Minor: 1048575},
		{Path: "etc/link", Type: TypeSymlink, Mode: 0o777, Link: "../a b/#*?[\\=\x7f\xff"},
		{Path: "usr/lib/hard", Type: TypeFile, Mode: 0o644, Hardlink: "usr/lib/with space\tand\nnewline"},
		{Path: "var/empty", Type: TypeDir, Mode: 0o711, Empty: true},
		{Path: "odd/" + string(all[1:]), Type: TypeFile, Mode: 0o644},
		{Path: "legacy", Mode: 0o644},
		{Path: "xattrs", Type: TypeFile, Mode: 0o644, Xattrs: []Xattr{
			{Name: "security.capability", Value: []byte{1, 0, 0, 2}},
			{Name: "user.a=b c", Value: nil},
			{Name: "user.all", Value: all},
			{Name: "user.x", Value: []byte("12")},
		}},
	}
	for _, e := range tests {
		if got, want := EncodedLen(&e), len(AppendEntry(nil, &e)); got != want {
			t.Errorf("EncodedLen(%q) = %d, AppendEntry wrote %d: %q", e.Path, got, want, AppendEntry(nil, &e))
		}
	}
}
