package pkgdb

import (
	"reflect"
	"strings"
	"testing"
)

func TestCompareDebianVersions(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"1.0", "1.0", 0},
		{"1.0", "1.1", -1},
		{"1.10", "1.9", 1},
		{"1.0~rc1", "1.0", -1}, // tilde sorts before the end
		{"1.0~rc1", "1.0~rc2", -1},
		{"1.0~~", "1.0~", -1},
		{"1.0", "1.0+b1", -1},
		{"1.0a", "1.0+", -1}, // letters before other characters
		{"1:0.9", "2.0", 1},  // epoch wins
		{"0:1.0", "1.0", 0},
		{"1.0-1", "1.0-2", -1},
		{"1.0-10", "1.0-9", 1},
		{"2.36-9+deb12u14", "2.36-9+deb12u4", 1},
		{"7.2+dfsg-7+deb12u18", "7.2+dfsg-7+deb12u2", 1},
		{"1.0-1", "1.0", 1},
		{"001.0", "1.0", 0},
		{"1.2.3-4ubuntu1", "1.2.3-4", 1},
	} {
		if got := CompareDebianVersions(tt.a, tt.b); sign(got) != tt.want {
			t.Errorf("CompareDebianVersions(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := CompareDebianVersions(tt.b, tt.a); sign(got) != -tt.want {
			t.Errorf("CompareDebianVersions(%q, %q) = %d, want %d", tt.b, tt.a, got, -tt.want)
		}
	}
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

const statusOld = `Package: bash
Status: install ok installed
Priority: required
Architecture: amd64
Version: 5.2.15-2+b2
Description: GNU Bourne Again SHell
 Bash is an sh-compatible command language interpreter.
 .
 More text.

Package: libc6
Status: install ok installed
Architecture: amd64
Multi-Arch: same
Version: 2.36-9+deb12u4

Package: libc6
Status: install ok installed
Architecture: i386
Version: 2.36-9+deb12u4

Package: oldtool
Status: install ok installed
Architecture: all
Version: 1.0-1

Package: removed-but-config
Status: deinstall ok config-files
Architecture: amd64
Version: 3.0-1

Package: zlib1g
Status: install ok installed
Architecture: amd64
Version: 1:1.2.13.dfsg-1
`

const statusNew = `Package: bash
Status: install ok installed
Architecture: amd64
Version: 5.2.15-2+b2

Package: libc6
Status: install ok installed
Architecture: amd64
Version: 2.36-9+deb12u14

Package: libc6
Status: install ok installed
Architecture: i386
Version: 2.36-9+deb12u14

Package: newtool
Status: install ok unpacked
Architecture: all
Version: 2.0-1

Package: zlib1g
Status: install ok installed
Architecture: amd64
Version: 1:1.2.11.dfsg-2
`

func TestParseAndDiff(t *testing.T) {
	old, err := ParseDpkgStatus([]byte(statusOld))
	if err != nil {
		t.Fatal(err)
	}
	if len(old) != 5 { // the config-files-only package is not installed
		t.Fatalf("parsed %d installed packages, want 5: %+v", len(old), old)
	}
	new, err := ParseDpkgStatus([]byte(statusNew))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range Diff(old, new, CompareDebianVersions) {
		got = append(got, c.String())
	}
	want := []string{
		"> libc6:amd64 2.36-9+deb12u4 -> 2.36-9+deb12u14",
		"> libc6:i386 2.36-9+deb12u4 -> 2.36-9+deb12u14",
		"+ newtool 2.0-1",
		"- oldtool 1.0-1",
		"< zlib1g:amd64 1:1.2.13.dfsg-1 -> 1:1.2.11.dfsg-2",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Diff:\n got %q\nwant %q", got, want)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"Package: a\nStatus: install ok installed\n", "line 1: package a has no Version"},
		{"Status: install ok installed\nVersion: 1\n", "line 1: an installed package stanza has no Package"},
		{"Package: a\nthis is not a field\n", "line 2: expected"},
		{" leading continuation\n", "line 1: a continuation line outside a field"},
		{"Package: a\nStatus: install ok installed\nVersion: 1\n\nPackage: a\nStatus: install ok installed\nVersion: 2\n", "line 5: package a is listed twice (first at line 1)"},
	} {
		_, err := ParseDpkgStatus([]byte(tt.in))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseDpkgStatus(%q) = %v, want an error containing %q", tt.in, err, tt.want)
		}
	}
}

func FuzzParseDpkgStatus(f *testing.F) {
	f.Add([]byte(statusOld))
	f.Add([]byte(statusNew))
	f.Fuzz(func(t *testing.T, b []byte) {
		ps, err := ParseDpkgStatus(b)
		if err != nil {
			return
		}
		for _, p := range ps {
			if p.Name == "" || p.Version == "" {
				t.Fatalf("parsed a package without a name or version: %+v", p)
			}
		}
		if d := Diff(ps, ps, CompareDebianVersions); len(d) != 0 {
			t.Fatalf("a database differs from itself: %v", d)
		}
	})
}
