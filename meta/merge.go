package meta

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
)

// mergeItem is the outcome of merging one path.
type mergeItem struct {
	path     string
	result   *Entry // nil when the path is gone from the result
	conflict bool
	ours     *Entry // for conflicts
	theirs   *Entry
}

// Merge3 merges three manifests path by path, the core of the merge=gitmeta
// driver. An entry changed on one side only takes that side (a deletion
// included); the same change on both sides is fine; different changes on
// both sides, a modify/delete or an add/add with different values is a
// conflict. For a conflicted path merged holds our entry (or none if we
// deleted it), and conflicts lists the paths in order.
//
// Entries from legacy (setgitperms) files carry only mode, uid and gid. Such
// an entry counts as equal to a typed one with the same three values, and
// when a legacy change wins over an unchanged typed entry the result keeps
// the typed data with the new mode and owner. When the base is legacy and
// both sides are typed but differ beyond mode and owner, there is no way to
// tell which side changed, so that is a conflict too. A legacy entry that
// cannot be given a type in a non-legacy result is also reported as a
// conflict, to be settled by re-recording.
//
// A hard link whose target the merge removed or turned into something that
// cannot be linked to is reported as a conflict on the linking path.
//
// merged is Legacy only when both sides are. Nil manifests count as empty.
func Merge3(base, ours, theirs *Manifest) (merged *Manifest, conflicts []string) {
	items, legacy := merge3(base, ours, theirs)
	merged = &Manifest{Legacy: legacy}
	for _, it := range items {
		if it.conflict {
			conflicts = append(conflicts, it.path)
			if it.ours != nil {
				merged.Entries = append(merged.Entries, it.ours.Clone())
			}
			continue
		}
		if it.result != nil {
			merged.Entries = append(merged.Entries, it.result.Clone())
		}
	}
	return merged, conflicts
}

func entriesOf(m *Manifest) []Entry {
	if m == nil {
		return nil
	}
	return m.Entries
}

func merge3(base, ours, theirs *Manifest) ([]mergeItem, bool) {
	b, o, t := entriesOf(base), entriesOf(ours), entriesOf(theirs)
	legacy := ours != nil && ours.Legacy && theirs != nil && theirs.Legacy
	var items []mergeItem
	i, j, k := 0, 0, 0
	for i < len(b) || j < len(o) || k < len(t) {
		// The smallest path among the three heads.
		var p string
		have := false
		for _, s := range []struct {
			es []Entry
			n  int
		}{{b, i}, {o, j}, {t, k}} {
			if s.n < len(s.es) && (!have || Less(s.es[s.n].Path, p)) {
				p, have = s.es[s.n].Path, true
			}
		}
		var be, oe, te *Entry
		if i < len(b) && b[i].Path == p {
			be = &b[i]
			i++
		}
		if j < len(o) && o[j].Path == p {
			oe = &o[j]
			j++
		}
		if k < len(t) && t[k].Path == p {
			te = &t[k]
			k++
		}
		items = append(items, mergePath(p, be, oe, te, legacy))
	}
	checkMergedLinks(items)
	return items, legacy
}

func mergePath(p string, b, o, t *Entry, legacy bool) mergeItem {
	it := mergeItem{path: p, ours: o, theirs: t}
	ou, tu := mergeUnchanged(b, o), mergeUnchanged(b, t)
	switch {
	case mergeSideEqual(o, t):
		it.result = mergePreferTyped(o, t)
	case ou && !tu:
		it.result = mergeUpgrade(t, o)
	case tu && !ou:
		it.result = mergeUpgrade(o, t)
	default:
		it.conflict = true
	}
	if !it.conflict && !legacy && it.result != nil && it.result.Type == TypeUnknown {
		it.conflict = true
		it.result = nil
	}
	return it
}

// mergeSideEqual compares two sides, relaxed when either is legacy.
func mergeSideEqual(a, b *Entry) bool {
	switch {
	case a == nil || b == nil:
		return a == nil && b == nil
	case a.Type == TypeUnknown || b.Type == TypeUnknown:
		return a.Mode == b.Mode && a.UID == b.UID && a.GID == b.GID
	}
	return a.Equal(b)
}

// mergeUnchanged reports whether side s still says what base b said.
func mergeUnchanged(b, s *Entry) bool { return mergeSideEqual(b, s) }

func mergePreferTyped(a, b *Entry) *Entry {
	if a != nil && a.Type == TypeUnknown && b != nil && b.Type != TypeUnknown {
		return b
	}
	return a
}

// mergeUpgrade returns the winning side c; when c is a legacy entry and the
// other side has typed data, the typed entry with c's mode and owner.
func mergeUpgrade(c, other *Entry) *Entry {
	if c == nil || c.Type != TypeUnknown || other == nil || other.Type == TypeUnknown {
		return c
	}
	e := other.Clone()
	e.Mode, e.UID, e.GID = c.Mode, c.UID, c.GID
	return &e
}

// checkMergedLinks turns into conflicts the merged hard links that no longer
// point at a valid primary.
func checkMergedLinks(items []mergeItem) {
	idx := make(map[string]*Entry)
	for _, it := range items {
		if !it.conflict && it.result != nil {
			idx[it.path] = it.result
		}
	}
	for n := range items {
		it := &items[n]
		if it.conflict || it.result == nil || it.result.Hardlink == "" {
			continue
		}
		tgt := idx[it.result.Hardlink]
		if tgt == nil || tgt.Hardlink != "" || tgt.Type != it.result.Type || tgt.Type == TypeDir || tgt.Type == TypeSymlink {
			it.conflict = true
			it.result = nil
		}
	}
}

// EncodeMerge merges like Merge3 and writes the result. For each conflicted
// path it writes git-style markers around just that path's lines:
//
//	<<<<<<< oursLabel
//	our line (none if we removed the path)
//	=======
//	their line (none if they removed it)
//	>>>>>>> theirsLabel
//
// Header lines are regenerated. When both sides are legacy setgitperms
// files the result is written in that format, without a header. It returns
// the number of conflicted paths.
func EncodeMerge(w io.Writer, base, ours, theirs *Manifest, oursLabel, theirsLabel string) (conflicts int, err error) {
	items, legacy := merge3(base, ours, theirs)
	bw := bufio.NewWriterSize(w, 256<<10)
	if !legacy {
		bw.WriteString(Signature)
		bw.WriteByte('\n')
		bw.WriteString(FormatLine)
		bw.WriteByte('\n')
	}
	line := func(b []byte, e *Entry) []byte {
		if legacy {
			return appendLegacyLine(b, e)
		}
		return AppendEntry(b, e)
	}
	var buf []byte
	for _, it := range items {
		buf = buf[:0]
		switch {
		case it.conflict:
			conflicts++
			buf = append(buf, "<<<<<<< "...)
			buf = append(buf, oursLabel...)
			buf = append(buf, '\n')
			if it.ours != nil {
				buf = append(line(buf, it.ours), '\n')
			}
			buf = append(buf, "=======\n"...)
			if it.theirs != nil {
				buf = append(line(buf, it.theirs), '\n')
			}
			buf = append(buf, ">>>>>>> "...)
			buf = append(buf, theirsLabel...)
			buf = append(buf, '\n')
		case it.result != nil:
			buf = append(line(buf, it.result), '\n')
		default:
			continue
		}
		if _, err := bw.Write(buf); err != nil {
			return conflicts, fmt.Errorf("writing merged .gitmeta: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return conflicts, fmt.Errorf("writing merged .gitmeta: %w", err)
	}
	return conflicts, nil
}

// appendLegacyLine writes e the way setgitperms.perl does: the raw path,
// then "  mode=%04o  uid=N  gid=N".
func appendLegacyLine(b []byte, e *Entry) []byte {
	b = append(b, e.Path...)
	b = append(b, "  mode="...)
	b = append(b, fmt.Sprintf("%04o", e.Mode)...)
	b = append(b, "  uid="...)
	b = strconv.AppendUint(b, uint64(e.UID), 10)
	b = append(b, "  gid="...)
	b = strconv.AppendUint(b, uint64(e.GID), 10)
	return b
}
