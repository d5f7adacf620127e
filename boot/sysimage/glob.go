package sysimage

import (
	"fmt"
	"strings"
)

// maxBraceExpansions bounds how many paths one {a,b} pattern may expand
// to.
const maxBraceExpansions = 1024

// HasGlob reports whether an image path uses glob syntax (* ? [ ] { }).
func HasGlob(p string) bool { return strings.ContainsAny(p, "*?[]{}") }

// ExpandBraces expands the csh-style alternatives oneSIS's Perl glob
// accepts in RAM* and LINK* paths: "/etc/{a,b}.conf" ->
// ["/etc/a.conf", "/etc/b.conf"]. Braces nest; "{x}" is just "x". The
// results may still hold * ? [ ], for path.Match or fs.Glob. A '{' with
// no matching '}' is an error.
func ExpandBraces(p string) ([]string, error) {
	open := strings.IndexByte(p, '{')
	if open < 0 {
		if strings.IndexByte(p, '}') >= 0 {
			return nil, fmt.Errorf("'}' without a matching '{' in %q", p)
		}
		return []string{p}, nil
	}
	if c := strings.IndexByte(p[:open], '}'); c >= 0 {
		return nil, fmt.Errorf("'}' without a matching '{' in %q", p)
	}
	depth, close := 0, -1
	var commas []int
	for i := open; i < len(p) && close < 0; i++ {
		switch p[i] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				close = i
			}
		case ',':
			if depth == 1 {
				commas = append(commas, i)
			}
		}
	}
	if close < 0 {
		return nil, fmt.Errorf("'{' without a matching '}' in %q", p)
	}
	prefix, suffix := p[:open], p[close+1:]
	var alts []string
	start := open + 1
	for _, c := range append(commas, close) {
		alts = append(alts, p[start:c])
		start = c + 1
	}
	rest, err := ExpandBraces(suffix)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, a := range alts {
		heads, err := ExpandBraces(prefix + a)
		if err != nil {
			return nil, err
		}
		for _, h := range heads {
			for _, r := range rest {
				out = append(out, h+r)
				if len(out) > maxBraceExpansions {
					return nil, fmt.Errorf("%q expands to more than %d paths", p, maxBraceExpansions)
				}
			}
		}
	}
	return out, nil
}
