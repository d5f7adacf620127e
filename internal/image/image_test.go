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
		{&meta.ApplyResult{OwnershipSkipped: 1234}, []string{"not applied (not root): ownership of 1,234 entries; 'git onesis ls' shows what is recorded"}},
		{&meta.ApplyResult{OwnershipSkipped: 3, DevicesSkipped: 2, OwnerAccessKept: 1}, []string{"not applied (not root): ownership of 3 entries, 2 devices; 1 files and directories keep their owner's access, which .gitmeta records without (root needs none); 'git onesis ls' shows what is recorded"}},
		{&meta.ApplyResult{Missing: []string{"etc/new\nline"}}, []string{`1 entries in .gitmeta are missing from the work tree (e.g. etc/new\012line); check them out, or run 'git onesis record'`}},
	}
	for _, tc := range tests {
		if got := Summary(tc.res); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Summary(%+v) = %q; want %q", tc.res, got, tc.want)
		}
	}
}

func TestNotRootDrift(t *testing.T) {
	mod := func(base meta.Entry, f func(e *meta.Entry)) meta.Change {
		n := base.Clone()
		f(&n)
		o := base.Clone()
		return meta.Change{Path: base.Path, Kind: meta.Modified, Old: &o, New: &n}
	}
	file := meta.Entry{Path: "f", Type: meta.TypeFile, Mode: 0o644}
	secret := meta.Entry{Path: "etc/shadow", Type: meta.TypeFile, Mode: 0}
	dir := meta.Entry{Path: "d", Type: meta.TypeDir, Mode: 0o555}
	dev := meta.Entry{Path: "dev/null", Type: meta.TypeChar, Mode: 0o666, Major: 1, Minor: 3}
	tests := []struct {
		name string
		c    meta.Change
		want bool
	}{
		{"uid only", mod(file, func(e *meta.Entry) { e.UID = 5 }), true},
		{"mode", mod(file, func(e *meta.Entry) { e.Mode = 0o600 }), false},
		{"setuid lost", mod(file, func(e *meta.Entry) { e.Mode = 0o4644 }), true},
		{"security xattr", mod(file, func(e *meta.Entry) { e.Xattrs = []meta.Xattr{{Name: "security.capability", Value: []byte{1}}} }), true},
		{"user xattr", mod(file, func(e *meta.Entry) { e.Xattrs = []meta.Xattr{{Name: "user.x", Value: []byte{1}}} }), false},
		{"0000 file kept readable", mod(secret, func(e *meta.Entry) { e.Mode = 0o400; e.UID = 65534 }), true},
		{"0000 file made writable", mod(secret, func(e *meta.Entry) { e.Mode = 0o600 }), false},
		{"0555 dir kept writable", mod(dir, func(e *meta.Entry) { e.Mode = 0o755 }), true},
		{"0555 dir opened to others", mod(dir, func(e *meta.Entry) { e.Mode = 0o557 }), false},
		{"owner read dropped", mod(file, func(e *meta.Entry) { e.Mode = 0o244 }), false},
		{"device not created", meta.Change{Path: dev.Path, Kind: meta.Removed, Old: &dev}, true},
		{"file missing", meta.Change{Path: file.Path, Kind: meta.Removed, Old: &file}, false},
		{"extra device", meta.Change{Path: dev.Path, Kind: meta.Added, New: &dev}, false},
	}
	for _, tc := range tests {
		if got := NotRootDrift(tc.c); got != tc.want {
			t.Errorf("%s: NotRootDrift = %v; want %v", tc.name, got, tc.want)
		}
	}
}
