package pkgdb

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	// The pure-Go SQLite driver go-rpmdb opens rpmdb.sqlite with.
	_ "github.com/glebarez/go-sqlite"
	rpmdb "github.com/knqyf263/go-rpmdb/pkg"
)

// RPMDatabases are the places an image keeps its rpm database, newest
// layout first, each with the files that make it up (the first is the one
// to open; the others, such as SQLite's write-ahead log, come along when
// present).
var RPMDatabases = [][]string{
	{"usr/lib/sysimage/rpm/rpmdb.sqlite", "usr/lib/sysimage/rpm/rpmdb.sqlite-wal", "usr/lib/sysimage/rpm/rpmdb.sqlite-shm"},
	{"var/lib/rpm/rpmdb.sqlite", "var/lib/rpm/rpmdb.sqlite-wal", "var/lib/rpm/rpmdb.sqlite-shm"},
	{"usr/lib/sysimage/rpm/Packages.db"},
	{"var/lib/rpm/Packages.db"},
	{"var/lib/rpm/Packages"},
}

// ReadRPM lists the packages of an rpm database (SQLite, Berkeley DB or
// NDB, read in pure Go: no rpm binary and no host database is involved).
// files maps each file of one RPMDatabases layout to its content; the
// first name is the database itself. Packages are keyed name.arch and
// versioned [epoch:]version-release.
func ReadRPM(files map[string][]byte, layout []string) ([]Package, error) {
	main, ok := files[layout[0]]
	if !ok {
		return nil, fmt.Errorf("%s is missing", layout[0])
	}
	if len(main) == 0 {
		return nil, fmt.Errorf("%s is empty", layout[0])
	}
	dir, err := os.MkdirTemp("", "git-onesis-rpmdb-")
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", layout[0], err)
	}
	defer os.RemoveAll(dir)
	for _, name := range layout {
		if b, ok := files[name]; ok {
			if err := os.WriteFile(filepath.Join(dir, filepath.Base(name)), b, 0o600); err != nil {
				return nil, fmt.Errorf("reading %s: %w", layout[0], err)
			}
		}
	}
	ps, err := readRPMFile(filepath.Join(dir, filepath.Base(layout[0])))
	if err != nil {
		return nil, fmt.Errorf("reading the rpm database %s: %w", layout[0], err)
	}
	return ps, nil
}

func readRPMFile(path string) (ps []Package, err error) {
	defer func() {
		// A damaged database must be an error, not a crash.
		if r := recover(); r != nil {
			ps, err = nil, fmt.Errorf("the database is damaged: %v", r)
		}
	}()
	db, err := rpmdb.Open(path)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	list, err := db.ListPackages()
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, p := range list {
		if p == nil || p.Name == "" {
			continue
		}
		v := p.Version + "-" + p.Release
		if p.Epoch != nil && *p.Epoch != 0 {
			v = strconv.Itoa(*p.Epoch) + ":" + v
		}
		pkg := Package{Name: p.Name, Arch: p.Arch, Version: v}
		k := pkg.Key()
		if seen[k] {
			// rpm allows several versions of one name.arch (kernels);
			// key them by version too.
			pkg.Arch = p.Arch + "@" + v
			k = pkg.Key()
		}
		seen[k] = true
		ps = append(ps, pkg)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].Key() < ps[j].Key() })
	return ps, nil
}

// CompareRPMVersions compares two [epoch:]version-release strings as rpm
// does (rpmvercmp on version, then release; a missing epoch is 0).
func CompareRPMVersions(a, b string) int {
	ea, va, ra := splitRPM(a)
	eb, vb, rb := splitRPM(b)
	if c := compareNumeric(ea, eb); c != 0 {
		return c
	}
	if c := rpmvercmp(va, vb); c != 0 {
		return c
	}
	return rpmvercmp(ra, rb)
}

func splitRPM(s string) (epoch, version, release string) {
	for i := 0; i < len(s); i++ {
		if s[i] == ':' {
			epoch, s = s[:i], s[i+1:]
			break
		}
		if !isDigit(s[i]) {
			break
		}
	}
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '-' {
			return epoch, s[:i], s[i+1:]
		}
	}
	return epoch, s, ""
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// rpmvercmp is rpm's segment comparison: alphanumeric runs compared in
// turn, numbers numerically and beating letters; '~' sorts before
// anything (even the end), '^' after the end but before anything else.
func rpmvercmp(a, b string) int {
	if a == b {
		return 0
	}
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		for i < len(a) && !isDigit(a[i]) && !isAlpha(a[i]) && a[i] != '~' && a[i] != '^' {
			i++
		}
		for j < len(b) && !isDigit(b[j]) && !isAlpha(b[j]) && b[j] != '~' && b[j] != '^' {
			j++
		}
		ta, tb := i < len(a) && a[i] == '~', j < len(b) && b[j] == '~'
		if ta || tb {
			if !ta {
				return 1
			}
			if !tb {
				return -1
			}
			i, j = i+1, j+1
			continue
		}
		ca, cb := i < len(a) && a[i] == '^', j < len(b) && b[j] == '^'
		if ca || cb {
			switch {
			case i >= len(a):
				return -1
			case j >= len(b):
				return 1
			case !ca:
				return 1
			case !cb:
				return -1
			}
			i, j = i+1, j+1
			continue
		}
		if i >= len(a) || j >= len(b) {
			break
		}
		si, sj := i, j
		num := isDigit(a[i])
		if num {
			for i < len(a) && isDigit(a[i]) {
				i++
			}
			for j < len(b) && isDigit(b[j]) {
				j++
			}
		} else {
			for i < len(a) && isAlpha(a[i]) {
				i++
			}
			for j < len(b) && isAlpha(b[j]) {
				j++
			}
		}
		sa, sb := a[si:i], b[sj:j]
		if sb == "" {
			// Different kinds of segment: numbers are newer.
			if num {
				return 1
			}
			return -1
		}
		var c int
		if num {
			c = compareNumeric(sa, sb)
		} else if sa < sb {
			c = -1
		} else if sa > sb {
			c = 1
		}
		if c != 0 {
			return c
		}
	}
	switch {
	case i >= len(a) && j >= len(b):
		return 0
	case i >= len(a):
		return -1
	}
	return 1
}
