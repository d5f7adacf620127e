package meta

import (
	"bytes"
	"runtime"
	"strconv"
	"sync"
	"unsafe"
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
func parseParallel(b []byte) (m *Manifest, ok bool) {
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
	m = &Manifest{Entries: make([]Entry, start[len(chunks)])}
	fails := make([]bool, len(chunks))
	var wg sync.WaitGroup
	for ci, chunk := range chunks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fails[ci] = !parseChunk(chunk, m.Entries[start[ci]:start[ci+1]])
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
// line; it reports false at the first line that is not one, or that is
// longer than the 1 MiB the sequential parser allows (which then names
// it).
func parseChunk(chunk []byte, entries []Entry) bool {
	for i := range entries {
		end := bytes.IndexByte(chunk, '\n')
		line := chunk[:end]
		chunk = chunk[end+1:]
		if len(line) == 0 || len(line) > maxLine || line[0] != '.' || bytes.IndexByte(line, '\r') >= 0 {
			return false
		}
		// A view of the line, not a copy: parseEntry copies out what the
		// entry keeps, and nothing else outlives this call.
		e, err := parseEntry(unsafe.String(&line[0], len(line)))
		if err != nil || ValidPath(e.Path) != nil {
			return false
		}
		entries[i] = e
	}
	return true
}
