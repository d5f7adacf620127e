package sysimage

import (
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
)

// expandBracesQuadratic is the first ExpandBraces, kept as the oracle for
// FuzzExpandBraces: obviously right, but quadratic in the pattern.
func expandBracesQuadratic(p string) ([]string, error) {
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
	rest, err := expandBracesQuadratic(suffix)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, a := range alts {
		heads, err := expandBracesQuadratic(prefix + a)
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

// FuzzExpandBraces: the linear expansion gives exactly what the simple
// recursive one gives, and refuses what it refuses (beyond the limits, the
// new one may refuse earlier).
func FuzzExpandBraces(f *testing.F) {
	for _, s := range []string{"/etc/{a,b}.conf", "/{a,b{1,2}}/{c,d}", "/{a,}", "/{x}{y}", "/a,b", "/{a", "/a}", "/}{", "/{{a},{b,c}d}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if len(p) > 256 {
			return
		}
		got, err := ExpandBraces(p)
		want, werr := expandBracesQuadratic(p)
		switch {
		case err == nil && werr == nil:
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("ExpandBraces(%q) = %q; want %q", p, got, want)
			}
		case err == nil:
			t.Fatalf("ExpandBraces(%q) = %q; want the error %v", p, got, werr)
		case werr == nil && !strings.Contains(err.Error(), "more than"):
			t.Fatalf("ExpandBraces(%q): %v; want %q", p, err, want)
		}
	})
}

// TestExpandBracesLinear: 100,000 "{x}" groups (once 4.6 s and 162 MB),
// deep nesting and wide groups are answered at once, within the limits.
func TestExpandBracesLinear(t *testing.T) {
	long := "/" + strings.Repeat("{x}", 100000)
	t0 := time.Now()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	got, err := ExpandBraces(long)
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
		t.Errorf("ExpandBraces(100k {x}) allocated %d MB; a 300 kB pattern should need a few", alloc>>20)
	}
	if err != nil || len(got) != 1 || got[0] != "/"+strings.Repeat("x", 100000) {
		t.Fatalf("ExpandBraces(100k {x}) = %d paths, %v", len(got), err)
	}
	t.Logf("100k {x}: %v", time.Since(t0))
	for _, bad := range []string{
		"/" + strings.Repeat("{", 1000) + "x" + strings.Repeat("}", 1000),
		"/{" + strings.Repeat("a,", 2000) + "a}",
		"/" + strings.Repeat("{a,b}", 11),
		"/{" + strings.Repeat("x", 600<<10) + ",y}{a,b}",
	} {
		if _, err := ExpandBraces(bad); err == nil || !strings.Contains(err.Error(), "more than") {
			t.Errorf("ExpandBraces(%.40q...) = %v; want a limit error", bad, err)
		}
	}
}
