package git

import (
	"bytes"
	"crypto/sha1"
	"testing"
)

// TestIndexPatchChunks writes a patched file larger than one chunk, with
// edits at its start, straddling the chunk boundary, twice at one offset
// and at the end of the body, and compares it with the edits made to a
// copy and the checksum computed over it; an all-zero checksum
// (index.skipHash) stays zero.
func TestIndexPatchChunks(t *testing.T) {
	const chunk = 1 << 20
	raw := make([]byte, chunk+5000+20)
	for i := range raw {
		raw[i] = byte(i * 7)
	}
	body := len(raw) - 20
	edit := func(off, n int, v byte) indexEdit {
		e := indexEdit{off: off, n: n}
		for i := 0; i < n; i++ {
			e.b[i] = v + byte(i)
		}
		return e
	}
	edits := []indexEdit{edit(0, 8, 1), edit(chunk-3, 8, 2), edit(chunk+100, 4, 3), edit(chunk+100, 2, 4), edit(body-8, 8, 5)}
	want := bytes.Clone(raw)
	for _, e := range edits {
		copy(want[e.off:], e.b[:e.n])
	}
	sum := sha1.Sum(want[:body])
	copy(want[body:], sum[:])

	p := &IndexPatch{ix: &Index{raw: raw, hashLen: 20}, edits: edits}
	if got := p.Bytes(); !bytes.Equal(got, want) {
		for i := range got {
			if i >= len(want) || got[i] != want[i] {
				t.Fatalf("patched file differs first at byte %d of %d (want %d bytes)", i, len(got), len(want))
			}
		}
		t.Fatalf("patched file is %d bytes, want %d", len(got), len(want))
	}

	copy(raw[body:], make([]byte, 20))
	got := p.Bytes()
	if !bytes.Equal(got[body:], make([]byte, 20)) || !bytes.Equal(got[:body], want[:body]) {
		t.Error("with index.skipHash's zero checksum: the checksum was written or the body differs")
	}
}
