package sysimage

import (
	"fmt"
	"strings"
)

// Limits of brace expansion in RAM* and LINK* paths.
const (
	// maxBraceExpansions bounds how many paths one {a,b} pattern may
	// expand to.
	maxBraceExpansions = 1024
	// maxBraceBytes bounds the bytes of all the paths one pattern expands
	// to together, so a long line cannot multiply into a large allocation.
	maxBraceBytes = 1 << 20
	// maxBraceDepth bounds how deeply braces nest.
	maxBraceDepth = 32
)

// HasGlob reports whether an image path uses glob syntax (* ? [ ] { }).
func HasGlob(p string) bool { return strings.ContainsAny(p, "*?[]{}") }

// ExpandBraces expands the csh-style alternatives oneSIS's Perl glob
// accepts in RAM* and LINK* paths: "/etc/{a,b}.conf" ->
// ["/etc/a.conf", "/etc/b.conf"]. Braces nest; "{x}" is just "x". The
// results may still hold * ? [ ], for path.Match or fs.Glob. A '{' with
// no matching '}' is an error, and so is a pattern that expands to more
// than 1024 paths, to more than 1 MiB of paths, or nests braces more than
// 32 deep. The time taken is linear in the pattern and the output.
func ExpandBraces(p string) ([]string, error) {
	if strings.IndexByte(p, '{') < 0 {
		if strings.IndexByte(p, '}') >= 0 {
			return nil, fmt.Errorf("'}' without a matching '{' in %q", p)
		}
		return []string{p}, nil
	}
	x := braceExpander{p: p}
	out, err := x.seq(0)
	if err != nil {
		return nil, err
	}
	if x.i < len(p) { // seq stops only at the end or at a '}' or ',' inside braces
		return nil, fmt.Errorf("'}' without a matching '{' in %q", p)
	}
	res := make([]string, len(out))
	for i, b := range out {
		res[i] = string(b)
	}
	return res, nil
}

// braceExpander is a recursive-descent expansion of one pattern: a
// sequence of literal runs and {alt,alt,...} groups, each alternative a
// sequence again. Results are built by appending to byte slices, so a run
// of single-alternative groups costs no more than the text it adds.
type braceExpander struct {
	p string
	i int
}

func (x *braceExpander) tooMany() error {
	return fmt.Errorf("%q expands to more than %d paths", x.p, maxBraceExpansions)
}

// seq expands a sequence up to the end of the pattern, or (depth > 0) up
// to the ',' or '}' that ends an alternative, which it leaves unread.
func (x *braceExpander) seq(depth int) ([][]byte, error) {
	out := [][]byte{nil}
	size := 0
	for x.i < len(x.p) {
		c := x.p[x.i]
		switch {
		case c == '}' && depth == 0:
			return nil, fmt.Errorf("'}' without a matching '{' in %q", x.p)
		case (c == '}' || c == ',') && depth > 0:
			return out, nil
		case c == '{':
			if depth >= maxBraceDepth {
				return nil, fmt.Errorf("%q nests braces more than %d deep", x.p, maxBraceDepth)
			}
			alts, err := x.group(depth + 1)
			if err != nil {
				return nil, err
			}
			if len(alts) == 1 {
				for i := range out {
					out[i] = append(out[i], alts[0]...)
				}
				size += len(out) * len(alts[0])
				break
			}
			if len(out)*len(alts) > maxBraceExpansions {
				return nil, x.tooMany()
			}
			next := make([][]byte, 0, len(out)*len(alts))
			size = 0
			for _, h := range out {
				for _, a := range alts {
					b := make([]byte, 0, len(h)+len(a))
					next = append(next, append(append(b, h...), a...))
					size += len(h) + len(a)
				}
			}
			out = next
		default:
			j := x.i
			for j < len(x.p) && !strings.ContainsRune("{},", rune(x.p[j])) {
				j++
			}
			if j == x.i { // a ',' outside braces is literal
				j++
			}
			for i := range out {
				out[i] = append(out[i], x.p[x.i:j]...)
			}
			size += len(out) * (j - x.i)
			x.i = j
			continue
		}
		if size > maxBraceBytes {
			return nil, fmt.Errorf("%q expands to more than %d bytes of paths", x.p, maxBraceBytes)
		}
	}
	if depth > 0 {
		return nil, fmt.Errorf("'{' without a matching '}' in %q", x.p)
	}
	return out, nil
}

// group expands a {a,b,...} group whose '{' is at x.i and returns its
// alternatives in order.
func (x *braceExpander) group(depth int) ([][]byte, error) {
	x.i++ // '{'
	var alts [][]byte
	size := 0
	for {
		a, err := x.seq(depth)
		if err != nil {
			return nil, err
		}
		if len(alts)+len(a) > maxBraceExpansions {
			return nil, x.tooMany()
		}
		for _, b := range a {
			size += len(b)
		}
		if size > maxBraceBytes {
			return nil, fmt.Errorf("%q expands to more than %d bytes of paths", x.p, maxBraceBytes)
		}
		alts = append(alts, a...)
		c := x.p[x.i] // seq returned at ',' or '}'
		x.i++
		if c == '}' {
			return alts, nil
		}
	}
}
