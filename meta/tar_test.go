package meta

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func TestWriteTar(t *testing.T) {
	acl := []byte{2, 0, 0, 0, 1, 0, 6, 0, 0xff, 0xff, 0xff, 0xff, 2, 0, 4, 0, 0xe8, 3, 0, 0,
		4, 0, 4, 0, 0xff, 0xff, 0xff, 0xff, 0x10, 0, 4, 0, 0xff, 0xff, 0xff, 0xff, 0x20, 0, 4, 0, 0xff, 0xff, 0xff, 0xff}
	m := &Manifest{Entries: []Entry{
		{Path: ".", Type: TypeDir, Mode: 0o755},
		{Path: ".gitmeta", Type: TypeFile, Mode: 0o644},
		{Path: "bin/su", Type: TypeFile, Mode: 0o4755},
		{Path: "bin/su2", Type: TypeFile, Mode: 0o4755, Hardlink: "bin/su"},
		{Path: "dev/sda", Type: TypeBlock, Mode: 0o660, GID: 6, Major: 8, Minor: 0},
		{Path: "dev/fifo", Type: TypeFifo, Mode: 0o600},
		{Path: "run/sock", Type: TypeSocket, Mode: 0o777},
		{Path: "tmp", Type: TypeDir, Mode: 0o1777},
		{Path: "usr/bin/ping", Type: TypeFile, Mode: 0o755, Xattrs: []Xattr{{"security.capability", []byte{1, 0, 0, 2}}}},
		{Path: "home/a/.profile", Type: TypeFile, Mode: 0o644, UID: 1000, Xattrs: []Xattr{{"system.posix_acl_access", acl}}},
		{Path: "caf\xe9", Type: TypeSymlink, Mode: 0o777, Link: "/etc/passwd"},
	}}
	var skipped []string
	var buf bytes.Buffer
	err := WriteTar(&buf, m, TarOptions{
		Open: func(p string) (io.ReadCloser, int64, error) {
			return io.NopCloser(strings.NewReader("content of " + p)), int64(len("content of " + p)), nil
		},
		Names:   &Names{Users: map[uint32]string{1000: "alice"}, Groups: map[uint32]string{6: "disk"}},
		ModTime: time.Unix(1700000000, 0),
		Skipped: func(e *Entry, why string) { skipped = append(skipped, e.Path) },
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*tar.Header{}
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got[h.Name] = h
	}
	if _, ok := got["./.gitmeta"]; ok {
		t.Error(".gitmeta was archived")
	}
	if len(skipped) != 1 || skipped[0] != "run/sock" {
		t.Errorf("skipped = %v, want the socket", skipped)
	}
	for _, tt := range []struct {
		name  string
		check func(h *tar.Header) bool
	}{
		{"./", func(h *tar.Header) bool { return h.Typeflag == tar.TypeDir && h.Mode == 0o755 }},
		{"./bin/su", func(h *tar.Header) bool { return h.Mode == 0o4755 && h.Size == int64(len("content of bin/su")) }},
		{"./bin/su2", func(h *tar.Header) bool { return h.Typeflag == tar.TypeLink && h.Linkname == "./bin/su" }},
		{"./dev/sda", func(h *tar.Header) bool {
			return h.Typeflag == tar.TypeBlock && h.Devmajor == 8 && h.Gid == 6 && h.Gname == "disk"
		}},
		{"./dev/fifo", func(h *tar.Header) bool { return h.Typeflag == tar.TypeFifo && h.Mode == 0o600 }},
		{"./tmp/", func(h *tar.Header) bool { return h.Mode == 0o1777 }},
		{"./usr/bin/ping", func(h *tar.Header) bool {
			return h.PAXRecords["SCHILY.xattr.security.capability"] == "\x01\x00\x00\x02"
		}},
		{"./home/a/.profile", func(h *tar.Header) bool {
			return h.Uname == "alice" && h.PAXRecords["SCHILY.acl.access"] == "user::rw-,user:alice:r--:1000,group::r--,mask::r--,other::r--"
		}},
		{"./caf\xe9", func(h *tar.Header) bool {
			return h.Typeflag == tar.TypeSymlink && h.Linkname == "/etc/passwd" && h.PAXRecords["hdrcharset"] == "BINARY"
		}},
	} {
		h, ok := got[tt.name]
		if !ok {
			t.Errorf("%q missing from the archive", tt.name)
			continue
		}
		if !tt.check(h) {
			t.Errorf("%q: wrong header %+v", tt.name, h)
		}
		if !h.ModTime.Equal(time.Unix(1700000000, 0)) {
			t.Errorf("%q: mtime %v", tt.name, h.ModTime)
		}
	}
}
