package meta

import (
	"bytes"
	"runtime"
	"strconv"
	"sync"
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
	parts := make([][]Entry, len(chunks))
	fails := make([]bool, len(chunks))
	var wg sync.WaitGroup
	for ci, chunk := range chunks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			parts[ci], fails[ci] = parseChunk(chunk)
		}()
	}
	wg.Wait()
	total := 0
	for ci := range parts {
		if fails[ci] {
			return nil, false
		}
		total += len(parts[ci])
	}
	m = &Manifest{Entries: make([]Entry, 0, total)}
	for _, p := range parts {
		m.Entries = append(m.Entries, p...)
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

// parseChunk parses whole canonical entry lines; failed is true at the
// first line that is not one.
func parseChunk(chunk []byte) (entries []Entry, failed bool) {
	entries = make([]Entry, 0, bytes.Count(chunk, []byte{'\n'}))
	for len(chunk) > 0 {
		end := bytes.IndexByte(chunk, '\n')
		line := chunk[:end]
		chunk = chunk[end+1:]
		if len(line) == 0 || line[0] != '.' || bytes.IndexByte(line, '\r') >= 0 {
			return nil, true
		}
		e, err := parseEntry(string(line))
		if err != nil || ValidPath(e.Path) != nil {
			return nil, true
		}
		entries = append(entries, e)
	}
	return entries, false
}
