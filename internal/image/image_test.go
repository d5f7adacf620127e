package image

import (
	"reflect"
	"testing"

	"github.com/onesis/git-onesis/meta"
)

func TestWithParents(t *testing.T) {
	tests := []struct {
		in, want []string
	}{
		{nil, nil},
		{[]string{"a"}, []string{"a"}},
		{[]string{"a/b/c", "a/b/d", "e"}, []string{"a/b/c", "a/b", "a", "a/b/d", "e"}},
	}
	for _, tc := range tests {
		if got := withParents(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("withParents(%q) = %q; want %q", tc.in, got, tc.want)
		}
	}
}

func TestSummary(t *testing.T) {
	tests := []struct {
		res  *meta.ApplyResult
		want []string
	}{
		{nil, nil},
		{&meta.ApplyResult{}, nil},
		{&meta.ApplyResult{OwnershipSkipped: 1234}, []string{"ownership of 1,234 entries not applied (not root); see 'git onesis ls'"}},
		{&meta.ApplyResult{Missing: []string{"etc/new\nline"}}, []string{`1 entries in .gitmeta are missing from the work tree (e.g. etc/new\012line); check them out, or run 'git onesis record'`}},
	}
	for _, tc := range tests {
		if got := Summary(tc.res); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Summary(%+v) = %q; want %q", tc.res, got, tc.want)
		}
	}
}

func TestOnlyPrivileged(t *testing.T) {
	base := meta.Entry{Path: "f", Type: meta.TypeFile, Mode: 0o644}
	mod := func(f func(e *meta.Entry)) meta.Change {
		n := base.Clone()
		f(&n)
		o := base.Clone()
		return meta.Change{Path: "f", Kind: meta.Modified, Old: &o, New: &n}
	}
	tests := []struct {
		name string
		c    meta.Change
		want bool
	}{
		{"uid only", mod(func(e *meta.Entry) { e.UID = 5 }), true},
		{"mode", mod(func(e *meta.Entry) { e.Mode = 0o600 }), false},
		{"setuid lost", mod(func(e *meta.Entry) { e.Mode = 0o4644 }), true},
		{"security xattr", mod(func(e *meta.Entry) { e.Xattrs = []meta.Xattr{{Name: "security.capability", Value: []byte{1}}} }), true},
		{"user xattr", mod(func(e *meta.Entry) { e.Xattrs = []meta.Xattr{{Name: "user.x", Value: []byte{1}}} }), false},
	}
	for _, tc := range tests {
		if got := onlyPrivileged(tc.c); got != tc.want {
			t.Errorf("%s: onlyPrivileged = %v; want %v", tc.name, got, tc.want)
		}
	}
}
