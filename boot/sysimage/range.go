package sysimage

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// maxRangeDigits bounds the digits of a range bound or of a number in a
// host name, so every value fits an int64 with room to spare.
const maxRangeDigits = 18

// Range is a compiled host range such as "rack[1-4]node[001-032]": literal
// text and bracket groups, each group a comma list of numbers and inclusive
// a-b spans.
//
// Zero-padding: a group item whose lower bound is written with a leading
// zero ("001-100", "08-10") is fixed-width: a host number matches only when
// written with exactly that many digits, as printf("%0*d") would print it,
// and both bounds must then have the same number of digits. An item
// without a leading zero ("1-100") matches numbers written without leading
// zeros only: "node[1-100]" matches node7 and node100 but not node007, and
// "node[001-100]" matches node007 but not node7.
type Range struct {
	src  string
	segs []rangeSeg
}

// rangeSeg is literal text (items == nil) or one bracket group.
type rangeSeg struct {
	lit   string
	items []rangeItem
}

// rangeItem is one number or span of a bracket group.
type rangeItem struct {
	lo, hi int64
	width  int // 0: no leading zeros allowed; >0: exactly this many digits
}

// ParseRange compiles a range pattern. Errors say what was expected at
// which byte of the pattern.
func ParseRange(pattern string) (*Range, error) {
	if pattern == "" {
		return nil, errors.New("empty range; expected something like node[1-5,7]")
	}
	r := &Range{src: pattern}
	rest := pattern
	for rest != "" {
		open := strings.IndexAny(rest, "[]")
		if open < 0 {
			r.segs = append(r.segs, rangeSeg{lit: rest})
			break
		}
		if rest[open] == ']' {
			return nil, fmt.Errorf("range %q: ']' without a matching '['", pattern)
		}
		if open > 0 {
			r.segs = append(r.segs, rangeSeg{lit: rest[:open]})
		}
		end := strings.IndexAny(rest[open+1:], "[]")
		if end < 0 || rest[open+1+end] != ']' {
			return nil, fmt.Errorf("range %q: '[' is not closed by ']'; groups cannot nest", pattern)
		}
		body := rest[open+1 : open+1+end]
		items, err := parseGroup(body)
		if err != nil {
			return nil, fmt.Errorf("range %q, group [%s]: %w", pattern, body, err)
		}
		r.segs = append(r.segs, rangeSeg{items: items})
		rest = rest[open+1+end+1:]
	}
	return r, nil
}

func parseGroup(body string) ([]rangeItem, error) {
	if body == "" {
		return nil, errors.New("empty group; expected numbers such as 1-5,7")
	}
	var items []rangeItem
	for _, part := range strings.Split(body, ",") {
		if part == "" {
			return nil, errors.New("empty item; expected a number or a-b between the commas")
		}
		loS, hiS, span := strings.Cut(part, "-")
		if !span {
			hiS = loS
		}
		lo, err := parseBound(loS)
		if err != nil {
			return nil, err
		}
		hi, err := parseBound(hiS)
		if err != nil {
			return nil, err
		}
		if lo > hi {
			return nil, fmt.Errorf("%s-%s runs backwards; expected the lower bound first", loS, hiS)
		}
		it := rangeItem{lo: lo, hi: hi}
		if padded(loS) || padded(hiS) {
			if len(loS) != len(hiS) {
				return nil, fmt.Errorf("zero-padded span %s-%s has bounds of different widths; write both with the same number of digits, e.g. 001-100", loS, hiS)
			}
			it.width = len(loS)
		}
		items = append(items, it)
	}
	return items, nil
}

func padded(s string) bool { return len(s) > 1 && s[0] == '0' }

func parseBound(s string) (int64, error) {
	if s == "" {
		return 0, errors.New("missing number; expected a-b with both bounds")
	}
	if len(s) > maxRangeDigits {
		return 0, fmt.Errorf("%q has more than %d digits", s, maxRangeDigits)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%q is not a decimal number (only numeric ranges are supported)", s)
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

// String returns the pattern as written.
func (r *Range) String() string { return r.src }

// Match reports whether host is one of the names the range describes. The
// whole host must match; comparison is byte-exact (case-sensitive).
func (r *Range) Match(host string) bool {
	// With one bracket group there is nothing to search: resolving
	// thousands of hosts against hundreds of ranges should not allocate
	// per match.
	groups, g := 0, 0
	for i, s := range r.segs {
		if s.items != nil {
			groups, g = groups+1, i
		}
	}
	if groups != 1 {
		return r.search(host)
	}
	// host is the literals before the group, a number, and the literals
	// after it.
	rest := host
	for _, s := range r.segs[:g] {
		if !strings.HasPrefix(rest, s.lit) {
			return false
		}
		rest = rest[len(s.lit):]
	}
	for i := len(r.segs) - 1; i > g; i-- {
		if !strings.HasSuffix(rest, r.segs[i].lit) {
			return false
		}
		rest = rest[:len(rest)-len(r.segs[i].lit)]
	}
	return len(rest) >= 1 && len(rest) <= maxRangeDigits && allDigits(rest) && groupHas(r.segs[g].items, rest)
}

// allDigits reports whether s is ASCII digits only (strings.Trim with a
// cutset builds its set on every call: a quarter of `node list`'s time at
// 10,000 nodes).
func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// search matches host by trying every split of its digits among the
// groups. memo[i][pos] (0 unknown, 1 no, 2 yes) bounds the work for
// patterns with many adjacent groups.
func (r *Range) search(host string) bool {
	memo := make([][]uint8, len(r.segs)+1)
	for i := range memo {
		memo[i] = make([]uint8, len(host)+1)
	}
	var match func(i, pos int) bool
	match = func(i, pos int) bool {
		if i == len(r.segs) {
			return pos == len(host)
		}
		if m := memo[i][pos]; m != 0 {
			return m == 2
		}
		ok := false
		s := r.segs[i]
		if s.items == nil {
			ok = strings.HasPrefix(host[pos:], s.lit) && match(i+1, pos+len(s.lit))
		} else {
			for n := 1; n <= maxRangeDigits && pos+n <= len(host); n++ {
				c := host[pos+n-1]
				if c < '0' || c > '9' {
					break
				}
				if groupHas(s.items, host[pos:pos+n]) && match(i+1, pos+n) {
					ok = true
					break
				}
			}
		}
		memo[i][pos] = 1
		if ok {
			memo[i][pos] = 2
		}
		return ok
	}
	return match(0, 0)
}

// groupHas reports whether the digit string num is in one of the items.
func groupHas(items []rangeItem, num string) bool {
	var v int64 // at most maxRangeDigits digits: no overflow
	for i := 0; i < len(num); i++ {
		if num[i] < '0' || num[i] > '9' {
			return false
		}
		v = v*10 + int64(num[i]-'0')
	}
	for _, it := range items {
		if v < it.lo || v > it.hi {
			continue
		}
		if it.width == 0 && !padded(num) {
			return true
		}
		if it.width > 0 && len(num) == it.width {
			return true
		}
	}
	return false
}

// MatchRange reports whether host is in the range pattern, e.g.
// MatchRange("rack[1-4]node[1-32]", "rack4node12") is true. See Range for
// the zero-padding rule.
func MatchRange(pattern, host string) (bool, error) {
	r, err := ParseRange(pattern)
	if err != nil {
		return false, err
	}
	return r.Match(host), nil
}
