package meta

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"unsafe"
)

// Indexed is a canonical .gitmeta whose entry lines are located but not
// parsed: an incremental apply parses the few entries it visits (Subset)
// rather than every line of a large image's file.
//
// It relies on the file being canonical and strictly sorted by path,
// which IndexCanonical checks for every line. It does not check that the
// lines it never parses are well formed: a caller uses it only for a file
// whose other lines are byte for byte those of a file parsed before
// (DiffLines against the record of the last apply).
type Indexed struct {
	b      []byte   // the whole file; parsed entries' strings are views of it
	starts []uint32 // where each entry line starts in b, in path order
	// secondaries maps a path to the entries whose hardlink= names it.
	secondaries map[string][]string
}

// hardlinkKey is how a secondary hard link names its primary.
var hardlinkKey = []byte("hardlink=")

// IndexCanonical locates the entry lines of a canonical .gitmeta (the
// signature, header comments, then one entry line per path, sorted),
// checking that the paths strictly ascend. b must not change while the
// index or anything parsed through it is in use. ok is false for any
// other file (legacy, comments or blank lines in the body, out of order,
// duplicates, over 4 GiB, a hard-link line that does not parse): the
// caller parses it whole, which names what is wrong.
func IndexCanonical(b []byte) (ix *Indexed, ok bool) {
	if int64(len(b)) >= 1<<32 {
		return nil, false
	}
	header, body, ok := canonicalBody(b)
	if !ok || !headerReadable(header) {
		return nil, false
	}
	pos := len(b) - len(body)
	ix = &Indexed{b: b, starts: make([]uint32, 0, bytes.Count(body, []byte{'\n'}))}
	var prev []byte
	prevEsc := false
	for pos < len(b) {
		end := bytes.IndexByte(b[pos:], '\n')
		line := b[pos : pos+end]
		if len(line) == 0 || line[0] != '.' {
			return nil, false
		}
		p := pathField(line)
		if !(len(p) == 1 || len(p) > 2 && p[1] == '/') || string(p) == "./." {
			// Not "." or "./" and a path: the parser says what is wrong.
			return nil, false
		}
		// A field without escapes is its path (after "./"), and such
		// fields sort as their paths do, "." first.
		esc := bytes.IndexByte(p, '\\') >= 0
		if prev != nil {
			if esc || prevEsc {
				if !fieldLess(prev, p) {
					return nil, false
				}
			} else if bytes.Compare(prev, p) >= 0 {
				return nil, false
			}
		}
		prev, prevEsc = p, esc
		ix.starts = append(ix.starts, uint32(pos))
		pos += end + 1
	}
	// Hard links are rare: find their lines by the keyword rather than
	// parse every line.
	ix.secondaries = make(map[string][]string)
	lastLine := -1
	for rest, off := b[len(b)-len(body):], len(b)-len(body); ; {
		k := bytes.Index(rest, hardlinkKey)
		if k < 0 {
			break
		}
		at := off + k
		start := bytes.LastIndexByte(b[:at], '\n') + 1
		nl := bytes.IndexByte(b[at:], '\n') + at
		rest, off = b[nl+1:], nl+1
		if start == lastLine {
			continue
		}
		lastLine = start
		e, err := parseEntryIn(unsafe.String(&b[start], nl-start), false)
		if err != nil {
			return nil, false
		}
		if e.Hardlink != "" {
			ix.secondaries[e.Hardlink] = append(ix.secondaries[e.Hardlink], e.Path)
		}
	}
	return ix, true
}

// headerReadable reports whether the signature and header comments of a
// canonical file (canonicalBody) name a format this build reads.
func headerReadable(header []byte) bool {
	for _, line := range bytes.Split(header, []byte{'\n'}) {
		if len(line) > maxLine {
			return false
		}
		if bytes.HasPrefix(line, []byte(formatPrefix)) {
			f := bytes.Fields(line[len(formatPrefix):])
			if len(f) == 0 {
				return false
			}
			if v, err := strconv.Atoi(string(f[0])); err != nil || v > FormatVersion {
				return false
			}
		}
	}
	return true
}

// Len returns the number of entries.
func (ix *Indexed) Len() int { return len(ix.starts) }

// line returns entry line i, without its newline.
func (ix *Indexed) line(i int) []byte {
	start := int(ix.starts[i])
	return ix.b[start : start+bytes.IndexByte(ix.b[start:], '\n')]
}

// find returns the number of the line for path p.
func (ix *Indexed) find(p string) (int, bool) {
	lo, hi := 0, len(ix.starts)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if fieldBefore(pathField(ix.line(mid)), p) {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo < len(ix.starts) && fieldIs(pathField(ix.line(lo)), p) {
		return lo, true
	}
	return lo, false
}

// Subset parses the entries for paths (those the file has; the others
// are left out) and the members of their hard-link groups, including the
// secondaries of any path the file no longer has, and returns them as a
// sorted manifest with its hard links checked. An error means a line
// that was parsed is not valid; the caller parses the whole file to name
// it.
func (ix *Indexed) Subset(paths []string) (*Manifest, error) {
	lines := make(map[int]bool, len(paths))
	var queue []string
	add := func(p string) {
		if i, ok := ix.find(p); ok && !lines[i] {
			lines[i] = true
			queue = append(queue, p)
		}
	}
	for _, p := range paths {
		add(p)
		// Secondaries of a primary that changed or went: their lines
		// are checked against it.
		for _, s := range ix.secondaries[p] {
			add(s)
		}
	}
	// A group is a primary and the secondaries naming it.
	parsed := make(map[int]Entry, len(lines))
	for len(queue) > 0 {
		p := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		i, _ := ix.find(p)
		e, err := ix.parse(i)
		if err != nil {
			return nil, err
		}
		if e.Path != p {
			// Blanks other than spaces in the path field: only the
			// parser says where it ends.
			return nil, &ParseError{Msg: fmt.Sprintf("the line for %s is not canonical", EscapePath(p))}
		}
		parsed[i] = e
		for _, s := range ix.secondaries[e.Path] {
			add(s)
		}
		if e.Hardlink != "" {
			add(e.Hardlink)
			for _, s := range ix.secondaries[e.Hardlink] {
				add(s)
			}
		}
	}
	order := make([]int, 0, len(parsed))
	for i := range parsed {
		order = append(order, i)
	}
	slices.Sort(order)
	m := &Manifest{Entries: make([]Entry, len(order))}
	for k, i := range order {
		m.Entries[k] = parsed[i]
	}
	if err := m.checkLinks(nil); err != nil {
		return nil, err
	}
	return m, nil
}

// parse parses entry line i, with strings that are views of the file.
func (ix *Indexed) parse(i int) (Entry, error) {
	line := ix.line(i)
	if len(line) > maxLine || bytes.IndexByte(line, '\r') >= 0 {
		return Entry{}, &ParseError{Msg: "a line of .gitmeta is not canonical"}
	}
	e, err := parseEntryIn(unsafe.String(&line[0], len(line)), false)
	if err != nil {
		return Entry{}, err
	}
	if err := ValidPath(e.Path); err != nil {
		return Entry{}, err
	}
	return e, nil
}

// pathField returns the path field of an entry line: "." or "./" and the
// vis-encoded path.
func pathField(line []byte) []byte {
	if i := bytes.IndexByte(line, ' '); i >= 0 {
		return line[:i]
	}
	return line
}

// fieldPath returns the path a path field names, decoding it only when it
// has escapes.
func fieldPath(f []byte) string {
	if len(f) == 1 && f[0] == '.' {
		return "."
	}
	if len(f) < 2 {
		return string(f)
	}
	s := unsafe.String(&f[0], len(f))[2:]
	if bytes.IndexByte(f, '\\') < 0 {
		return s
	}
	p, err := Unvis(s)
	if err != nil {
		return s // a bad escape is reported when the line is parsed
	}
	return p
}

// fieldLess reports whether path field a sorts before path field b.
func fieldLess(a, b []byte) bool { return Less(fieldPath(a), fieldPath(b)) }

// fieldBefore reports whether path field f sorts before path p.
func fieldBefore(f []byte, p string) bool { return Less(fieldPath(f), p) }

// fieldIs reports whether path field f names path p.
func fieldIs(f []byte, p string) bool { return fieldPath(f) == p }
