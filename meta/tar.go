package meta

import (
	"archive/tar"
	"encoding/base64"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// TarOptions tune WriteTar.
type TarOptions struct {
	// Open returns the content of the regular file at path (as recorded in
	// the manifest) and its size. It is called once per file that is not a
	// secondary hard link.
	Open func(path string) (io.ReadCloser, int64, error)
	// Names, if set, fills in user and group names (numeric ids are always
	// written).
	Names *Names
	// ModTime is written for every entry, so the archive is reproducible.
	ModTime time.Time
	// Skipped is told about entries a tar archive cannot hold (sockets).
	Skipped func(e *Entry, why string)
}

// WriteTar writes m as a POSIX (PAX) tar archive: every entry in manifest
// order except .gitmeta itself, with its numeric owner, all twelve mode bits, device numbers,
// symlink targets, hard links (as link entries to the group's first path)
// and xattrs (as SCHILY.xattr.* records, which GNU tar and bsdtar restore).
// The archive is exact whoever writes it: nothing is read from the
// filesystem's metadata, so a non-root clone produces the same archive as
// the root-owned image.
func WriteTar(w io.Writer, m *Manifest, o TarOptions) error {
	tw := tar.NewWriter(w)
	mtime := o.ModTime
	if mtime.IsZero() {
		mtime = time.Unix(0, 0)
	}
	for i := range m.Entries {
		e := &m.Entries[i]
		if e.Path == ".gitmeta" {
			continue // describes the archive; not part of the image
		}
		name := "./" + e.Path
		if e.IsRoot() {
			name = "./"
		}
		h := &tar.Header{
			Name:    name,
			Mode:    int64(e.Mode & 07777),
			Uid:     int(e.UID),
			Gid:     int(e.GID),
			ModTime: mtime,
			Format:  tar.FormatPAX,
		}
		if o.Names != nil {
			h.Uname = o.Names.Users[e.UID]
			h.Gname = o.Names.Groups[e.GID]
		}
		for _, x := range e.Xattrs {
			if h.PAXRecords == nil {
				h.PAXRecords = map[string]string{}
			}
			// tar programs restore POSIX ACLs from their own text records
			// and skip them as xattrs.
			if x.Name == xattrACLAccess || x.Name == xattrACLDefault {
				if text, ok := schilyACL(x.Value, o.Names); ok {
					key := "SCHILY.acl.access"
					if x.Name == xattrACLDefault {
						key = "SCHILY.acl.default"
					}
					h.PAXRecords[key] = text
					continue
				}
			}
			h.PAXRecords[paxXattrKey(x.Name)] = paxXattrValue(x.Name, x.Value)
		}
		if !utf8.ValidString(e.Path) || !utf8.ValidString(e.Link) || !utf8.ValidString(e.Hardlink) {
			// PAX strings are UTF-8 unless the archive says otherwise;
			// image paths are raw bytes.
			if h.PAXRecords == nil {
				h.PAXRecords = map[string]string{}
			}
			h.PAXRecords["hdrcharset"] = "BINARY"
		}
		var content io.ReadCloser
		switch {
		case e.Hardlink != "":
			h.Typeflag = tar.TypeLink
			h.Linkname = "./" + e.Hardlink
		case e.Type == TypeFile:
			h.Typeflag = tar.TypeReg
			if o.Open == nil {
				return fmt.Errorf("%s: no content source for regular files", showPath(e.Path))
			}
			rc, size, err := o.Open(e.Path)
			if err != nil {
				return fmt.Errorf("reading %s: %w", showPath(e.Path), err)
			}
			content, h.Size = rc, size
		case e.Type == TypeDir:
			h.Typeflag = tar.TypeDir
			if !e.IsRoot() {
				h.Name += "/"
			}
		case e.Type == TypeSymlink:
			h.Typeflag, h.Linkname = tar.TypeSymlink, e.Link
		case e.Type == TypeChar:
			h.Typeflag, h.Devmajor, h.Devminor = tar.TypeChar, int64(e.Major), int64(e.Minor)
		case e.Type == TypeBlock:
			h.Typeflag, h.Devmajor, h.Devminor = tar.TypeBlock, int64(e.Major), int64(e.Minor)
		case e.Type == TypeFifo:
			h.Typeflag = tar.TypeFifo
		default:
			if o.Skipped != nil {
				o.Skipped(e, "a tar archive cannot hold a "+typeWords(e.Type))
			}
			continue
		}
		if err := tw.WriteHeader(h); err != nil {
			if content != nil {
				content.Close()
			}
			return fmt.Errorf("writing %s to the archive: %w", showPath(e.Path), err)
		}
		if content != nil {
			n, err := io.Copy(tw, content)
			content.Close()
			if err != nil {
				return fmt.Errorf("writing %s to the archive: %w", showPath(e.Path), err)
			}
			if n != h.Size {
				return fmt.Errorf("writing %s to the archive: it has %d bytes, expected %d", showPath(e.Path), n, h.Size)
			}
		}
	}
	return tw.Close()
}

// schilyACL renders a POSIX ACL xattr in star's text form, which GNU tar
// and bsdtar read: "user::rw-,user:alice:r--:1000,group::r--,mask::r--,
// other::r--" (named entries carry their numeric id last).
func schilyACL(v []byte, n *Names) (string, bool) {
	a, ok := decodeACL(v)
	if !ok {
		return "", false
	}
	parts := make([]string, len(a))
	for i, e := range a {
		parts[i] = e.text(n)
		if e.tag == aclUser || e.tag == aclGroup {
			parts[i] += ":" + strconv.FormatUint(uint64(e.id), 10)
		}
	}
	return strings.Join(parts, ","), true
}

// paxXattrKey is the PAX record key for an xattr: SCHILY.xattr.NAME, which
// GNU tar and bsdtar both restore, unless NAME cannot be a PAX key (it holds
// '=', which ends a key, or a byte outside printable ASCII); then
// libarchive's LIBARCHIVE.xattr.NAME with NAME percent-encoded and the value
// in base64 (see paxXattrValue), which bsdtar restores and GNU tar skips.
func paxXattrKey(name string) string {
	if !needsLibarchiveKey(name) {
		return "SCHILY.xattr." + name
	}
	var b strings.Builder
	b.WriteString("LIBARCHIVE.xattr.")
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c >= 0x7f || c == '=' || c == '%' {
			fmt.Fprintf(&b, "%%%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// paxXattrValue is the record value that goes with paxXattrKey(name).
func paxXattrValue(name string, value []byte) string {
	if !needsLibarchiveKey(name) {
		return string(value)
	}
	return base64.StdEncoding.EncodeToString(value)
}

func needsLibarchiveKey(name string) bool {
	for i := 0; i < len(name); i++ {
		if c := name[i]; c == '=' || c < ' ' || c >= 0x7f {
			return true
		}
	}
	return false
}
