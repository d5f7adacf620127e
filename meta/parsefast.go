package meta

import (
	"bytes"
	"runtime"
	"strconv"
	"sync"
	"unsafe"

	"github.com/onesis/git-onesis/internal/hugemem"
)

// parallelMin is the size from which ParseBytes tries the parallel parser.
const parallelMin = 256 << 10

// parseParallel parses a canonical git-onesis .gitmeta (signature, header
// comments, then one self-contained entry per line, sorted) with one worker
// per CPU. Every line stands alone, so chunks split at newlines parse
// independently, and strict sort order across the whole file also proves
// there are no duplicates. ok is false for anything else (legacy files,
// comments or blank lines in the body, CR line ends, conflict markers, any
// error), and the caller then runs the sequential Parse, which reports
// problems with their exact line numbers.
func parseParallel(b []byte, clone bool) (m *Manifest, ok bool) {
	if !bytes.HasPrefix(b, []byte(Signature+"\n")) {
		return nil, false
	}
	pos := len(Signature) + 1
	for pos < len(b) && b[pos] == '#' {
		end := bytes.IndexByte(b[pos:], '\n')
		if end < 0 {
			return nil, false
		}
		line := b[pos : pos+end]
		if len(line) > maxLine {
			return nil, false
		}
		if bytes.HasPrefix(line, []byte(formatPrefix)) {
			f := bytes.Fields(line[len(formatPrefix):])
			if len(f) == 0 {
				return nil, false
			}
			if v, err := strconv.Atoi(string(f[0])); err != nil || v > FormatVersion {
				return nil, false
			}
		}
		pos += end + 1
	}
	body := b[pos:]
	if len(body) == 0 || body[len(body)-1] != '\n' {
		return nil, false
	}
	workers := runtime.NumCPU()
	var chunks [][]byte
	for len(body) > 0 {
		n := len(body) / workers
		if n < 64<<10 || workers == 1 {
			chunks = append(chunks, body)
			break
		}
		cut := bytes.IndexByte(body[n:], '\n') + n + 1
		chunks = append(chunks, body[:cut])
		body = body[cut:]
		workers--
	}
	// One slice for every entry, each worker filling its own part: no
	// per-chunk copies to join.
	start := make([]int, len(chunks)+1)
	for ci, chunk := range chunks {
		start[ci+1] = start[ci] + bytes.Count(chunk, []byte{'\n'})
	}
	m = &Manifest{Entries: hugemem.Slice[Entry](start[len(chunks)])}
	fails := make([]bool, len(chunks))
	var wg sync.WaitGroup
	for ci, chunk := range chunks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fails[ci] = !parseChunk(chunk, m.Entries[start[ci]:start[ci+1]], clone)
		}()
	}
	wg.Wait()
	for _, failed := range fails {
		if failed {
			return nil, false
		}
	}
	for i := 1; i < len(m.Entries); i++ {
		if !Less(m.Entries[i-1].Path, m.Entries[i].Path) {
			return nil, false
		}
	}
	if m.checkLinks(nil) != nil {
		return nil, false
	}
	return m, true
}

// parseChunk parses whole canonical entry lines into entries, one per
// line (with strings that are views of chunk unless clone is set); it reports false at the first line that is not one, or that is
// longer than the 1 MiB the sequential parser allows (which then names
// it).
func parseChunk(chunk []byte, entries []Entry, clone bool) bool {
	for i := range entries {
		end := bytes.IndexByte(chunk, '\n')
		line := chunk[:end]
		chunk = chunk[end+1:]
		if len(line) == 0 || len(line) > maxLine || line[0] != '.' || bytes.IndexByte(line, '\r') >= 0 {
			return false
		}
		// A view of the line, not a copy: parseEntry copies out what the
		// entry keeps (unless the caller owns chunk: ParseOwned), and
		// nothing else outlives this call.
		e, err := parseEntryIn(unsafe.String(&line[0], len(line)), clone)
		if err != nil || ValidPath(e.Path) != nil {
			return false
		}
		entries[i] = e
	}
	return true
}

// canonicalBody returns the entry lines of a canonical .gitmeta (after the
// signature and the header comments), or ok false.
func canonicalBody(b []byte) (header, body []byte, ok bool) {
	if !bytes.HasPrefix(b, []byte(Signature+"\n")) {
		return nil, nil, false
	}
	pos := len(Signature) + 1
	for pos < len(b) && b[pos] == '#' {
		end := bytes.IndexByte(b[pos:], '\n')
		if end < 0 {
			return nil, nil, false
		}
		pos += end + 1
	}
	body = b[pos:]
	if len(body) > 0 && body[len(body)-1] != '\n' {
		return nil, nil, false
	}
	return b[:pos], body, true
}

// LineDiff is what an incremental apply needs of two versions of a
// canonical .gitmeta, found by comparing their lines rather than parsing
// both whole.
type LineDiff struct {
	// Old holds the entries of the old version whose lines the new one
	// does not have (changed or removed), in order.
	Old *Manifest
	// Changed lists the paths of the new version whose lines the old one
	// does not have (changed or added), in order.
	Changed []string
}

// DiffLines compares two canonical .gitmeta files line by line: a line
// that is byte for byte in both is one unchanged entry, and only the
// others are parsed. ok is false when either file is not canonical (other
// headers, a line that does not parse, paths out of order among the lines
// that differ); the caller then parses both in full.
//
// Every line of new is either in old unchanged or named in Changed, and
// every line of old either in new unchanged or in Old, so an apply that
// visits Changed (and what git wrote) and removes what Old has and new
// lacks does what a full comparison of the two manifests would, visiting
// no entry less.
func DiffLines(old, new []byte) (d *LineDiff, ok bool) {
	oh, ob, ok1 := canonicalBody(old)
	nh, nb, ok2 := canonicalBody(new)
	if !ok1 || !ok2 || !bytes.Equal(oh, nh) {
		return nil, false
	}
	d = &LineDiff{Old: &Manifest{}}
	next := func(b []byte) ([]byte, []byte) {
		end := bytes.IndexByte(b, '\n')
		return b[:end], b[end+1:]
	}
	parse := func(line []byte) (Entry, bool) {
		if len(line) == 0 || len(line) > maxLine || line[0] != '.' || bytes.IndexByte(line, '\r') >= 0 {
			return Entry{}, false
		}
		// A view of the line: parseEntry copies out what the entry keeps.
		e, err := parseEntry(unsafe.String(&line[0], len(line)))
		return e, err == nil && ValidPath(e.Path) == nil
	}
	// The paths taken from each side must ascend.
	addOld := func(e Entry) bool {
		if n := len(d.Old.Entries); n > 0 && !Less(d.Old.Entries[n-1].Path, e.Path) {
			return false
		}
		d.Old.Entries = append(d.Old.Entries, e)
		return true
	}
	addNew := func(e Entry) bool {
		if n := len(d.Changed); n > 0 && !Less(d.Changed[n-1], e.Path) {
			return false
		}
		d.Changed = append(d.Changed, e.Path)
		return true
	}
	var ol, nl []byte
	for len(ob) > 0 || len(nb) > 0 {
		switch {
		case len(nb) == 0:
			ol, ob = next(ob)
			e, ok := parse(ol)
			if !ok || !addOld(e) {
				return nil, false
			}
			continue
		case len(ob) == 0:
			nl, nb = next(nb)
			e, ok := parse(nl)
			if !ok || !addNew(e) {
				return nil, false
			}
			continue
		}
		ol, orest := next(ob)
		nl, nrest := next(nb)
		if bytes.Equal(ol, nl) {
			ob, nb = orest, nrest
			continue
		}
		oe, ok1 := parse(ol)
		ne, ok2 := parse(nl)
		if !ok1 || !ok2 {
			return nil, false
		}
		switch {
		case oe.Path == ne.Path:
			ob, nb = orest, nrest
			if !addOld(oe) || !addNew(ne) {
				return nil, false
			}
		case Less(oe.Path, ne.Path):
			ob = orest
			if !addOld(oe) {
				return nil, false
			}
		default:
			nb = nrest
			if !addNew(ne) {
				return nil, false
			}
		}
	}
	return d, true
}
