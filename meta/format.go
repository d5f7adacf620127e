package meta

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/onesis/git-onesis/internal/hugemem"
)

// Signature is the first line of every .gitmeta git-onesis writes. It makes
// the file a valid mtree v2.0 spec.
const Signature = "#mtree v2.0"

// FormatLine is the second line; its version number is checked on read.
const FormatLine = "# git-onesis .gitmeta v1 (numeric ids; sorted by path; one self-contained line per object; see docs/gitmeta.md)"

const formatPrefix = "# git-onesis .gitmeta v"

// FormatVersion is the .gitmeta format version this build reads and writes.
const FormatVersion = 1

// maxLine bounds one line of a .gitmeta, so a hostile file cannot make a
// reader allocate without limit. 64 KiB xattr values in base64 fit easily.
const maxLine = 1 << 20

// ErrConflict is returned by Parse when the file still holds merge conflict
// markers.
var ErrConflict = errors.New("unresolved merge conflict markers")

// ParseError describes a line of a .gitmeta that could not be read.
type ParseError struct {
	Line int // 1-based
	Msg  string
	Err  error
}

func (e *ParseError) Error() string {
	return fmt.Sprintf(".gitmeta line %d: %s", e.Line, e.Msg)
}

func (e *ParseError) Unwrap() error { return e.Err }

// Encode writes m in the canonical form. Entries must be sorted; Encode
// returns an error rather than write a file that would not read back.
func (m *Manifest) Encode(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 256<<10)
	bw.WriteString(Signature)
	bw.WriteByte('\n')
	bw.WriteString(FormatLine)
	bw.WriteByte('\n')
	var line []byte
	for i := range m.Entries {
		e := &m.Entries[i]
		if i > 0 && !Less(m.Entries[i-1].Path, e.Path) {
			return fmt.Errorf("encoding .gitmeta: entries out of order at %q", e.Path)
		}
		line = AppendEntry(line[:0], e)
		line = append(line, '\n')
		if _, err := bw.Write(line); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// Bytes returns the encoded manifest (what Encode writes). Large manifests
// are encoded in parallel, one slice of entries per CPU, each straight
// into its place in the result: every slice's length is counted first
// (EncodedLen), so no part is encoded into memory of its own and copied.
// On a large image the result is tens of megabytes, and a process that
// writes it once touches that memory fresh, a page fault for each page.
func (m *Manifest) Bytes() ([]byte, error) {
	const minChunk = 16 << 10
	n := len(m.Entries)
	parts := min(runtime.NumCPU(), n/minChunk)
	if parts < 2 {
		var b bytes.Buffer
		b.Grow(n * 96)
		if err := m.Encode(&b); err != nil {
			return nil, err
		}
		return b.Bytes(), nil
	}
	for i := 1; i < n; i++ {
		if !Less(m.Entries[i-1].Path, m.Entries[i].Path) {
			return nil, fmt.Errorf("encoding .gitmeta: entries out of order at %q", m.Entries[i].Path)
		}
	}
	bounds := make([]int, parts+1)
	for k := range bounds {
		bounds[k] = k * n / parts
	}
	sizes := make([]int, parts)
	var wg sync.WaitGroup
	for k := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			size := 0
			for i := bounds[k]; i < bounds[k+1]; i++ {
				size += EncodedLen(&m.Entries[i]) + 1
			}
			sizes[k] = size
		}()
	}
	wg.Wait()
	head := len(Signature) + len(FormatLine) + 2
	offs := make([]int, parts+1)
	offs[0] = head
	for k, size := range sizes {
		offs[k+1] = offs[k] + size
	}
	out := hugemem.Slice[byte](offs[parts])
	copy(out, Signature)
	out[len(Signature)] = '\n'
	copy(out[len(Signature)+1:], FormatLine)
	out[head-1] = '\n'
	exact := make([]bool, parts)
	for k := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Capped at the slice's own end: a length miscounted would
			// make append move it elsewhere, which the check below sees,
			// rather than write over the next slice.
			b := out[offs[k]:offs[k]:offs[k+1]]
			for i := bounds[k]; i < bounds[k+1]; i++ {
				b = AppendEntry(b, &m.Entries[i])
				b = append(b, '\n')
			}
			exact[k] = len(b) == offs[k+1]-offs[k] && (len(b) == 0 || &b[0] == &out[offs[k]])
		}()
	}
	wg.Wait()
	for k := range parts {
		if !exact[k] {
			// EncodedLen disagrees with AppendEntry: a bug, and the
			// slower path still gives the right bytes.
			var b bytes.Buffer
			if err := m.Encode(&b); err != nil {
				return nil, err
			}
			return b.Bytes(), nil
		}
	}
	return out, nil
}

// EncodedLen is len(AppendEntry(nil, e)), counted without encoding.
func EncodedLen(e *Entry) int {
	n := pathFieldLen(e.Path)
	n += len("  mode=") + modeLen(e.Mode)
	n += len("  uid=") + decLen(uint64(e.UID))
	n += len("  gid=") + decLen(uint64(e.GID))
	if e.Type != TypeUnknown {
		n += len("  type=") + len(e.Type.String())
	}
	if e.Type == TypeChar || e.Type == TypeBlock {
		n += len("  device=native,") + decLen(uint64(e.Major)) + 1 + decLen(uint64(e.Minor))
	}
	if e.Type == TypeSymlink {
		n += len("  link=") + visLen(e.Link, false)
	}
	if e.Hardlink != "" {
		n += len("  hardlink=") + pathFieldLen(e.Hardlink)
	}
	if e.Empty {
		n += len("  empty=1")
	}
	for _, x := range e.Xattrs {
		n += len("  xattr.") + visLen(x.Name, true) + 1 + base64.StdEncoding.EncodedLen(len(x.Value))
	}
	return n
}

func pathFieldLen(p string) int {
	if p == "." {
		return 1
	}
	return 2 + visLen(p, false)
}

// visLen is len(appendVis(nil, s, name)).
func visLen(s string, name bool) int {
	escape := &visPath
	if name {
		escape = &visName
	}
	n := len(s)
	for i := 0; i < len(s); i++ {
		if escape[s[i]] {
			n += 3
		}
	}
	return n
}

func modeLen(m uint32) int {
	n := 1
	for ; m != 0; m >>= 3 {
		n++
	}
	return n
}

func decLen(v uint64) int {
	n := 1
	for ; v >= 10; v /= 10 {
		n++
	}
	return n
}

// AppendEntry appends the canonical line for e, without a newline.
func AppendEntry(b []byte, e *Entry) []byte {
	b = appendPathField(b, e.Path)
	b = append(b, "  mode="...)
	b = appendMode(b, e.Mode)
	b = append(b, "  uid="...)
	b = strconv.AppendUint(b, uint64(e.UID), 10)
	b = append(b, "  gid="...)
	b = strconv.AppendUint(b, uint64(e.GID), 10)
	if e.Type != TypeUnknown {
		b = append(b, "  type="...)
		b = append(b, e.Type.String()...)
	}
	if e.Type == TypeChar || e.Type == TypeBlock {
		b = append(b, "  device=native,"...)
		b = strconv.AppendUint(b, uint64(e.Major), 10)
		b = append(b, ',')
		b = strconv.AppendUint(b, uint64(e.Minor), 10)
	}
	if e.Type == TypeSymlink {
		b = append(b, "  link="...)
		b = appendVis(b, e.Link, false)
	}
	if e.Hardlink != "" {
		b = append(b, "  hardlink="...)
		b = appendPathField(b, e.Hardlink)
	}
	if e.Empty {
		b = append(b, "  empty=1"...)
	}
	for _, x := range e.Xattrs {
		b = append(b, "  xattr."...)
		b = appendVis(b, x.Name, true)
		b = append(b, '=')
		b = base64.StdEncoding.AppendEncode(b, x.Value)
	}
	return b
}

// FormatMode renders a mode the way the file stores it: Go's %#o, so 0755,
// 04755, and 0 for 0000. go-mtree compares modes as strings and needs this.
func FormatMode(m uint32) string { return string(appendMode(nil, m)) }

func appendMode(b []byte, m uint32) []byte {
	if m == 0 {
		return append(b, '0')
	}
	b = append(b, '0')
	return strconv.AppendUint(b, uint64(m), 8)
}

func appendPathField(b []byte, p string) []byte {
	if p == "." {
		return append(b, '.')
	}
	b = append(b, "./"...)
	return appendVis(b, p, false)
}

// EscapePath renders a path the way the first field of a line stores it.
func EscapePath(p string) string { return string(appendPathField(nil, p)) }

// appendVis escapes s with vis-style octal escapes: every byte outside the
// printable range 0x21-0x7E, plus backslash and the glob characters # * ? [,
// becomes \ooo. With name set, '=' is escaped too (xattr names sit left of
// an '=').
func appendVis(b []byte, s string, name bool) []byte {
	escape := &visPath
	if name {
		escape = &visName
	}
	// Runs of bytes that stand for themselves (nearly every path is one)
	// are appended whole.
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !escape[c] {
			continue
		}
		b = append(b, s[start:i]...)
		b = append(b, '\\', '0'+(c>>6), '0'+((c>>3)&7), '0'+(c&7))
		start = i + 1
	}
	return append(b, s[start:]...)
}

// visPath and visName say which bytes appendVis escapes: every byte
// outside 0x21-0x7E, backslash and the glob characters # * ? [, and in
// xattr names '=' too.
var visPath, visName = func() (p, n [256]bool) {
	for c := range 256 {
		p[c] = c < 0x21 || c > 0x7e || c == '\\' || c == '#' || c == '*' || c == '?' || c == '['
		n[c] = p[c] || c == '='
	}
	return p, n
}()

// Unvis decodes a vis-escaped string: \ooo octal escapes, and for
// interoperability with NetBSD mtree also \\, \s, \t, \n, \r, \a, \b, \f, \v,
// \0, \M-c, \M^c and \^c.
func Unvis(s string) (string, error) {
	if strings.IndexByte(s, '\\') < 0 {
		return s, nil
	}
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		if i >= len(s) {
			return "", errors.New("escape at end of string")
		}
		c = s[i]
		switch {
		case c >= '0' && c <= '7':
			if i+2 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) {
				v := int(c-'0')<<6 | int(s[i+1]-'0')<<3 | int(s[i+2]-'0')
				if v > 0xff {
					return "", fmt.Errorf("octal escape \\%s out of range", s[i:i+3])
				}
				out = append(out, byte(v))
				i += 2
			} else if c == '0' {
				out = append(out, 0)
			} else {
				return "", fmt.Errorf("bad octal escape near %q", s[i-1:])
			}
		case c == '\\':
			out = append(out, '\\')
		case c == 's':
			out = append(out, ' ')
		case c == 't':
			out = append(out, '\t')
		case c == 'n':
			out = append(out, '\n')
		case c == 'r':
			out = append(out, '\r')
		case c == 'a':
			out = append(out, '\a')
		case c == 'b':
			out = append(out, '\b')
		case c == 'f':
			out = append(out, '\f')
		case c == 'v':
			out = append(out, '\v')
		case c == 'M' && i+2 < len(s) && s[i+1] == '-':
			out = append(out, s[i+2]|0x80)
			i += 2
		case c == 'M' && i+2 < len(s) && s[i+1] == '^':
			out = append(out, ctrl(s[i+2])|0x80)
			i += 2
		case c == '^' && i+1 < len(s):
			out = append(out, ctrl(s[i+1]))
			i++
		default:
			return "", fmt.Errorf("unknown escape \\%c", c)
		}
	}
	return string(out), nil
}

func ctrl(c byte) byte {
	if c == '?' {
		return 0x7f
	}
	return c & 0x1f
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

// legacyLine is setgitperms.perl's own read regex.
var legacyLine = regexp.MustCompile(`^(.*)  mode=(\S+)\s+uid=(\d+)\s+gid=(\d+)`)

// ignoredKeywords are standard mtree keywords a flat spec may carry that a
// .gitmeta does not use; they are accepted and dropped.
var ignoredKeywords = map[string]bool{
	"size": true, "time": true, "nlink": true, "uname": true, "gname": true, "cksum": true,
	"md5": true, "md5digest": true, "sha1": true, "sha1digest": true, "sha256": true,
	"sha256digest": true, "sha384": true, "sha384digest": true, "sha512": true, "sha512digest": true,
	"rmd160": true, "rmd160digest": true, "ripemd160digest": true, "flags": true, "optional": true,
	"nochange": true, "tar_time": true, "inode": true,
}

// Parse reads a .gitmeta: the git-onesis format, or a legacy setgitperms
// file (detected by its missing signature), which is returned with Legacy
// set. Entries come back sorted. Errors name the line.
func Parse(r io.Reader) (*Manifest, error) {
	br := bufio.NewReaderSize(r, 256<<10)
	m := &Manifest{}
	seen := make(map[string]int)
	lineNo := 0
	format := 0 // 0 = not yet known, 1 = mtree, -1 = legacy
	sorted := true
	for {
		raw, err := readLine(br)
		if err == io.EOF && raw == "" {
			break
		}
		lineNo++
		if err != nil && err != io.EOF {
			return nil, &ParseError{Line: lineNo, Msg: err.Error(), Err: err}
		}
		line := strings.TrimRight(raw, "\r")
		if strings.HasPrefix(line, "<<<<<<<") || strings.HasPrefix(line, "=======") || strings.HasPrefix(line, ">>>>>>>") || strings.HasPrefix(line, "|||||||") {
			return nil, &ParseError{Line: lineNo, Msg: "unresolved merge conflict marker; resolve the conflict in .gitmeta (or run 'git onesis record') before committing", Err: ErrConflict}
		}
		trimmed := strings.TrimLeft(line, " \t")
		if strings.TrimSpace(trimmed) == "" { // also \v, \f and other blanks strings.Fields drops
			continue
		}
		if trimmed[0] == '#' {
			if format == 0 && strings.HasPrefix(trimmed, "#mtree") {
				format = 1
			}
			if strings.HasPrefix(trimmed, formatPrefix) {
				v, _ := strconv.Atoi(strings.Fields(trimmed[len(formatPrefix):] + " x")[0])
				if v > FormatVersion {
					return nil, &ParseError{Line: lineNo, Msg: fmt.Sprintf("this .gitmeta is format v%d, written by a newer git-onesis; this one reads v%d", v, FormatVersion)}
				}
			}
			continue
		}
		if format == 0 {
			if legacyLine.MatchString(line) && !strings.HasPrefix(line, "./") && line != "." && !strings.HasPrefix(line, ".  ") {
				format = -1
				m.Legacy = true
			} else {
				format = 1
			}
		}
		var e Entry
		if format == -1 {
			e, err = parseLegacy(line)
		} else {
			e, err = parseEntry(trimmed)
		}
		if err != nil {
			return nil, &ParseError{Line: lineNo, Msg: err.Error(), Err: err}
		}
		if err := ValidPath(e.Path); err != nil {
			return nil, &ParseError{Line: lineNo, Msg: err.Error(), Err: err}
		}
		if prev, dup := seen[e.Path]; dup {
			return nil, &ParseError{Line: lineNo, Msg: fmt.Sprintf("%s is listed twice (first on line %d)", EscapePath(e.Path), prev)}
		}
		seen[e.Path] = lineNo
		if n := len(m.Entries); n > 0 && !Less(m.Entries[n-1].Path, e.Path) {
			sorted = false
		}
		m.Entries = append(m.Entries, e)
	}
	if !sorted {
		m.Sort()
	}
	if err := m.checkLinks(seen); err != nil {
		return nil, err
	}
	return m, nil
}

// ParseBytes is Parse over a byte slice. Large canonical files are parsed
// in parallel; anything else, errors included, goes through Parse.
func ParseBytes(b []byte) (*Manifest, error) {
	if len(b) >= parallelMin {
		if m, ok := parseParallel(b, true); ok {
			return m, nil
		}
	}
	return Parse(bytes.NewReader(b))
}

// ParseOwned is ParseBytes for a caller that hands b over: b must not
// change after the call. The manifest's strings are views of b rather
// than copies of their own (one allocation for a large file, not several
// per entry), so b's memory lives as long as any of them.
func ParseOwned(b []byte) (*Manifest, error) {
	if len(b) >= parallelMin {
		if m, ok := parseParallel(b, false); ok {
			return m, nil
		}
	}
	return Parse(bytes.NewReader(b))
}

func readLine(br *bufio.Reader) (string, error) {
	var buf []byte
	for {
		frag, err := br.ReadSlice('\n')
		buf = append(buf, frag...)
		if len(buf) > maxLine {
			return "", fmt.Errorf("line longer than %d bytes", maxLine)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return string(buf), err
		}
		return string(buf[:len(buf)-1]), nil
	}
}

// nextField returns the first blank-separated field of s and what follows
// it, as strings.Fields splits, without building a slice per line.
func nextField(s string) (field, rest string) {
	i := 0
	for i < len(s) && asciiSpace(s[i]) {
		i++
	}
	j := i
	for j < len(s) && !asciiSpace(s[j]) {
		j++
	}
	return s[i:j], s[j:]
}

// asciiSpace is strings.Fields's notion of a blank for ASCII bytes. Bytes
// of 0x80 and up are never blanks here: .gitmeta paths are vis-encoded
// ASCII, and a raw multi-byte rune is part of a field.
func asciiSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// checkLinks verifies that hardlink= keywords point at an earlier entry that
// is itself a primary file.
func (m *Manifest) checkLinks(lines map[string]int) error {
	for i := range m.Entries {
		e := &m.Entries[i]
		if e.Hardlink == "" {
			continue
		}
		t := m.Lookup(e.Hardlink)
		switch {
		case t == nil:
			return &ParseError{Line: lines[e.Path], Msg: fmt.Sprintf("%s: hardlink=%s names no entry", EscapePath(e.Path), EscapePath(e.Hardlink))}
		case t.Hardlink != "":
			return &ParseError{Line: lines[e.Path], Msg: fmt.Sprintf("%s: hardlink=%s names an entry that is itself a secondary link", EscapePath(e.Path), EscapePath(e.Hardlink))}
		case t.Type == TypeDir || t.Type == TypeSymlink:
			return &ParseError{Line: lines[e.Path], Msg: fmt.Sprintf("%s: hardlink=%s names a %s", EscapePath(e.Path), EscapePath(e.Hardlink), t.Type)}
		case t.Type != e.Type:
			return &ParseError{Line: lines[e.Path], Msg: fmt.Sprintf("%s: hard link of type %s to a %s", EscapePath(e.Path), e.Type, t.Type)}
		case !Less(t.Path, e.Path):
			return &ParseError{Line: lines[e.Path], Msg: fmt.Sprintf("%s: hardlink=%s must name an earlier path", EscapePath(e.Path), EscapePath(e.Hardlink))}
		}
	}
	return nil
}

func parseLegacy(line string) (Entry, error) {
	sm := legacyLine.FindStringSubmatch(line)
	if sm == nil {
		return Entry{}, errors.New("not a setgitperms line (want 'path  mode=0644  uid=0  gid=0')")
	}
	var e Entry
	e.Path = sm[1]
	if strings.HasPrefix(e.Path, "\"") {
		return Entry{}, fmt.Errorf("C-quoted path %s (written by setgitperms from 'git ls-files' output; re-record it with 'git onesis record')", sm[1])
	}
	mode, err := strconv.ParseUint(sm[2], 8, 32)
	if err != nil || mode > 07777 {
		return Entry{}, fmt.Errorf("bad mode %q", sm[2])
	}
	e.Mode = uint32(mode)
	uid, err1 := strconv.ParseUint(sm[3], 10, 32)
	gid, err2 := strconv.ParseUint(sm[4], 10, 32)
	if err1 != nil || err2 != nil {
		return Entry{}, errors.New("bad uid or gid")
	}
	e.UID, e.GID = uint32(uid), uint32(gid)
	return e, nil
}

// parseEntry parses one canonical entry line. The entry owns every string
// it holds (copied out of line), so line may be
// a view of a larger buffer that the caller lets go: a manifest of a million
// entries keeps their paths, not the text of the file.
func parseEntry(line string) (Entry, error) { return parseEntryIn(line, true) }

// parseEntryIn is parseEntry; with clone false, the entry's strings are
// views of line (whose memory the caller keeps unchanged for as long as
// the entry lives).
func parseEntryIn(line string, clone bool) (Entry, error) {
	own := strings.Clone
	if !clone {
		own = func(s string) string { return s }
	}
	var e Entry
	first, rest := nextField(line)
	switch {
	case first == ".":
		e.Path = "."
	case strings.HasPrefix(first, "./"):
		p, err := Unvis(first[2:])
		if err != nil {
			return e, fmt.Errorf("path %s: %w", first, err)
		}
		e.Path = own(p)
	case first == "/set" || first == "/unset":
		return e, fmt.Errorf("%s lines are not allowed: every .gitmeta line must be self-contained", first)
	default:
		return e, fmt.Errorf("path %q must start with \"./\" (a flat mtree v2.0 full path)", first)
	}
	var have struct{ mode, uid, gid, typ, dev bool }
	for {
		var f string
		if f, rest = nextField(rest); f == "" {
			break
		}
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return e, fmt.Errorf("%s: keyword %q has no value", first, f)
		}
		switch {
		case k == "mode":
			n, err := strconv.ParseUint(v, 8, 32)
			if err != nil || n > 07777 {
				return e, fmt.Errorf("%s: bad mode %q (want octal up to 07777)", first, v)
			}
			e.Mode, have.mode = uint32(n), true
		case k == "uid" || k == "gid":
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return e, fmt.Errorf("%s: bad %s %q (want a number)", first, k, v)
			}
			if k == "uid" {
				e.UID, have.uid = uint32(n), true
			} else {
				e.GID, have.gid = uint32(n), true
			}
		case k == "type":
			t, ok := ParseType(v)
			if !ok {
				return e, fmt.Errorf("%s: unknown type %q", first, v)
			}
			e.Type, have.typ = t, true
		case k == "device":
			parts := strings.Split(v, ",")
			if len(parts) != 3 || parts[0] != "native" {
				return e, fmt.Errorf("%s: bad device %q (want native,MAJOR,MINOR)", first, v)
			}
			ma, err1 := strconv.ParseUint(parts[1], 10, 32)
			mi, err2 := strconv.ParseUint(parts[2], 10, 32)
			if err1 != nil || err2 != nil {
				return e, fmt.Errorf("%s: bad device numbers %q", first, v)
			}
			e.Major, e.Minor, have.dev = uint32(ma), uint32(mi), true
		case k == "link":
			l, err := Unvis(v)
			if err != nil {
				return e, fmt.Errorf("%s: link: %w", first, err)
			}
			if l == "" || strings.IndexByte(l, 0) >= 0 {
				return e, fmt.Errorf("%s: empty or NUL symlink target", first)
			}
			e.Link = own(l)
		case k == "hardlink":
			if !strings.HasPrefix(v, "./") {
				return e, fmt.Errorf("%s: hardlink %q must start with \"./\"", first, v)
			}
			p, err := Unvis(v[2:])
			if err != nil {
				return e, fmt.Errorf("%s: hardlink: %w", first, err)
			}
			if err := ValidPath(p); err != nil {
				return e, fmt.Errorf("%s: hardlink: %w", first, err)
			}
			e.Hardlink = own(p)
		case k == "empty":
			if v != "1" {
				return e, fmt.Errorf("%s: empty=%q (want empty=1)", first, v)
			}
			e.Empty = true
		case strings.HasPrefix(k, "xattr."):
			name, err := Unvis(k[len("xattr."):])
			if err != nil || name == "" || strings.IndexByte(name, 0) >= 0 {
				return e, fmt.Errorf("%s: bad xattr name %q", first, k)
			}
			val, err := base64.StdEncoding.DecodeString(v)
			if err != nil {
				return e, fmt.Errorf("%s: xattr %s: value is not base64", first, name)
			}
			if _, dup := e.Xattr(name); dup {
				return e, fmt.Errorf("%s: xattr %s given twice", first, name)
			}
			e.Xattrs = append(e.Xattrs, Xattr{Name: own(name), Value: val})
		case ignoredKeywords[k]:
		default:
			return e, fmt.Errorf("%s: unknown keyword %q", first, k)
		}
	}
	switch {
	case !have.mode || !have.uid || !have.gid:
		return e, fmt.Errorf("%s: mode=, uid= and gid= are all required", first)
	case !have.typ:
		return e, fmt.Errorf("%s: type= is required", first)
	case (e.Type == TypeChar || e.Type == TypeBlock) != have.dev:
		return e, fmt.Errorf("%s: device= goes with type=char or type=block, and only with them", first)
	case (e.Type == TypeSymlink) != (e.Link != ""):
		return e, fmt.Errorf("%s: link= goes with type=link, and only with it", first)
	case e.Empty && e.Type != TypeDir:
		return e, fmt.Errorf("%s: empty=1 is only for directories", first)
	case e.Path == "." && e.Type != TypeDir:
		return e, fmt.Errorf(". must be type=dir")
	}
	e.SortXattrs()
	return e, nil
}
