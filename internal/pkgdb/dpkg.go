// Package pkgdb reads the package databases inside an image (dpkg's status
// file) and compares two of them, so an admin sees which packages a commit
// added, removed, upgraded or downgraded: what "replaying the rpm database"
// means for a rollback.
//
// It reads bytes handed to it; finding the database at a revision or in the
// work tree is the caller's business.
package pkgdb

import (
	"bufio"
	"bytes"
	"fmt"
	"sort"
	"strings"
)

// DpkgStatus is the path of dpkg's database inside an image.
const DpkgStatus = "var/lib/dpkg/status"

// Package is one installed package.
type Package struct {
	Name    string `json:"name"`
	Arch    string `json:"arch,omitempty"`
	Version string `json:"version"`
}

// Key identifies a package across two databases: name, plus the
// architecture when it is not "all" (multi-arch packages can be installed
// once per architecture).
func (p Package) Key() string {
	if p.Arch == "" || p.Arch == "all" {
		return p.Name
	}
	return p.Name + ":" + p.Arch
}

// ParseDpkgStatus reads a dpkg status file and returns the packages whose
// Status says they are installed ("install ok installed", and the
// half-configured states, which still own files), sorted by Key. Stanzas
// are separated by blank lines; continuation lines start with a space.
// A stanza without Package or Version, or a package listed twice, is an
// error naming its line.
func ParseDpkgStatus(b []byte) ([]Package, error) {
	var (
		out   []Package
		cur   map[string]string
		start int
		last  string
		lines = map[string]int{} // key -> line of its stanza
	)
	flush := func() error {
		if cur == nil {
			return nil
		}
		defer func() { cur = nil }()
		st := strings.Fields(cur["status"])
		if len(st) != 3 || !installedState[st[2]] {
			return nil
		}
		if cur["package"] == "" {
			return fmt.Errorf("%s line %d: an installed package stanza has no Package field", DpkgStatus, start)
		}
		if cur["version"] == "" {
			return fmt.Errorf("%s line %d: package %s has no Version field", DpkgStatus, start, cur["package"])
		}
		p := Package{Name: cur["package"], Arch: cur["architecture"], Version: cur["version"]}
		if first, dup := lines[p.Key()]; dup {
			return fmt.Errorf("%s line %d: package %s is listed twice (first at line %d); the database is damaged", DpkgStatus, start, p.Key(), first)
		}
		lines[p.Key()] = start
		out = append(out, p)
		return nil
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	line := 0
	for sc.Scan() {
		line++
		l := sc.Text()
		if strings.TrimSpace(l) == "" {
			if err := flush(); err != nil {
				return nil, err
			}
			continue
		}
		if l[0] == ' ' || l[0] == '\t' {
			if cur == nil || last == "" {
				return nil, fmt.Errorf("%s line %d: a continuation line outside a field", DpkgStatus, line)
			}
			continue // continuation of a multi-line field we do not use
		}
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			return nil, fmt.Errorf("%s line %d: expected \"Field: value\", got %q", DpkgStatus, line, l)
		}
		if cur == nil {
			cur = map[string]string{}
			start = line
		}
		last = strings.ToLower(k)
		cur[last] = strings.TrimSpace(v)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", DpkgStatus, err)
	}
	if err := flush(); err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key() < out[j].Key() })
	return out, nil
}

// installedState lists the dpkg states in which a package's files are on
// disk.
var installedState = map[string]bool{
	"installed": true, "half-configured": true, "unpacked": true,
	"triggers-awaited": true, "triggers-pending": true, "half-installed": true,
}

// CompareDebianVersions compares two Debian version strings
// ([epoch:]upstream[-revision]) the way dpkg does, returning -1, 0 or 1.
func CompareDebianVersions(a, b string) int {
	ea, ua, ra := splitDebianVersion(a)
	eb, ub, rb := splitDebianVersion(b)
	if c := compareNumeric(ea, eb); c != 0 {
		return c
	}
	if c := compareDebianPart(ua, ub); c != 0 {
		return c
	}
	return compareDebianPart(ra, rb)
}

func splitDebianVersion(v string) (epoch, upstream, revision string) {
	if i := strings.IndexByte(v, ':'); i >= 0 {
		epoch, v = v[:i], v[i+1:]
	}
	if i := strings.LastIndexByte(v, '-'); i >= 0 {
		return epoch, v[:i], v[i+1:]
	}
	return epoch, v, ""
}

// compareNumeric compares two digit strings of any length.
func compareNumeric(a, b string) int {
	a = strings.TrimLeft(a, "0")
	b = strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}

// order is dpkg's weight for one character of a non-digit run: '~' sorts
// before everything, even the end of the string; letters sort before
// other characters.
func order(c byte, ok bool) int {
	switch {
	case !ok:
		return 0
	case c == '~':
		return -1
	case c >= '0' && c <= '9':
		return 0
	case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		return int(c)
	default:
		return int(c) + 256
	}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// compareDebianPart is dpkg's verrevcmp: alternating non-digit and digit
// runs, compared in turn.
func compareDebianPart(a, b string) int {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		for (i < len(a) && !isDigit(a[i])) || (j < len(b) && !isDigit(b[j])) {
			var ca, cb byte
			okA, okB := i < len(a) && !isDigit(a[i]), j < len(b) && !isDigit(b[j])
			if okA {
				ca = a[i]
			}
			if okB {
				cb = b[j]
			}
			if oa, ob := order(ca, okA), order(cb, okB); oa != ob {
				if oa < ob {
					return -1
				}
				return 1
			}
			if okA {
				i++
			}
			if okB {
				j++
			}
		}
		si := i
		for i < len(a) && isDigit(a[i]) {
			i++
		}
		sj := j
		for j < len(b) && isDigit(b[j]) {
			j++
		}
		if c := compareNumeric(a[si:i], b[sj:j]); c != 0 {
			return c
		}
	}
	return 0
}
