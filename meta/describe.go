package meta

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Names maps numeric ids to the user and group names of one image, read
// from the image's own etc/passwd and etc/group (not the host's). A nil
// *Names is valid and knows no names.
type Names struct {
	Users, Groups map[uint32]string
}

// ParseNames reads passwd and group text (either may be nil). Comments,
// blank lines, NIS "+"/"-" lines and lines without a numeric third field are
// ignored; when an id appears twice the first name wins, as with getpwuid.
func ParseNames(passwd, group []byte) *Names {
	return &Names{Users: parseIDFile(passwd), Groups: parseIDFile(group)}
}

func parseIDFile(b []byte) map[uint32]string {
	m := make(map[uint32]string)
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte{'\n'})
		line = bytes.TrimRight(line, "\r")
		if len(line) == 0 || line[0] == '#' || line[0] == '+' || line[0] == '-' {
			continue
		}
		f := bytes.SplitN(line, []byte{':'}, 4)
		if len(f) < 3 || len(f[0]) == 0 || !printableName(f[0]) {
			continue
		}
		id, err := strconv.ParseUint(string(f[2]), 10, 32)
		if err != nil {
			continue
		}
		if _, dup := m[uint32(id)]; !dup {
			m[uint32(id)] = string(f[0])
		}
	}
	return m
}

// printableName accepts names that are safe to print on a terminal.
func printableName(b []byte) bool {
	for _, c := range b {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// User returns the name of uid, or the number when the image does not
// know it.
func (n *Names) User(uid uint32) string {
	if n != nil {
		if s, ok := n.Users[uid]; ok {
			return s
		}
	}
	return strconv.FormatUint(uint64(uid), 10)
}

// Group returns the name of gid, or the number when the image does not
// know it.
func (n *Names) Group(gid uint32) string {
	if n != nil {
		if s, ok := n.Groups[gid]; ok {
			return s
		}
	}
	return strconv.FormatUint(uint64(gid), 10)
}

// showPath is how Describe prints a path: escaped like the file does
// (so it is always one printable token) without the leading "./".
func showPath(p string) string { return strings.TrimPrefix(EscapePath(p), "./") }

func typeWords(t Type) string {
	switch t {
	case TypeFile:
		return "file"
	case TypeDir:
		return "directory"
	case TypeSymlink:
		return "symlink"
	case TypeChar:
		return "char device"
	case TypeBlock:
		return "block device"
	case TypeFifo:
		return "fifo"
	case TypeSocket:
		return "socket"
	}
	return "entry"
}

// Describe explains a change in words for a cluster admin, one line per
// differing field, for example:
//
//	new char device dev/null 1,3 root:root 0666
//	removed fifo run/x
//	etc/shadow: mode 0640 -> 0644
//	usr/bin/su: setuid bit added
//	etc/x: owner root -> alice (0 -> 1000)
//	usr/bin/ping: capability cap_net_raw+ep removed
//	etc/z: ACL user:1000:r-x added
//
// Names, which may be nil, turns ids into the image's user and group names.
func Describe(c Change, n *Names) []string {
	p := showPath(c.Path)
	switch c.Kind {
	case Added:
		if c.New == nil {
			return nil
		}
		return []string{describeNew(c.New, n)}
	case Removed:
		t := TypeUnknown
		if c.Old != nil {
			t = c.Old.Type
		}
		return []string{"removed " + typeWords(t) + " " + p}
	}
	if c.Old == nil || c.New == nil {
		return nil
	}
	o, e := c.Old, c.New
	var out []string
	add := func(format string, a ...any) { out = append(out, p+": "+fmt.Sprintf(format, a...)) }
	for _, f := range c.Fields() {
		switch f {
		case "type":
			add("type %s -> %s", typeWords(o.Type), typeWords(e.Type))
		case "mode":
			for _, b := range []struct {
				bit  uint32
				name string
			}{{04000, "setuid"}, {02000, "setgid"}, {01000, "sticky"}} {
				switch {
				case o.Mode&b.bit == 0 && e.Mode&b.bit != 0:
					add("%s bit added", b.name)
				case o.Mode&b.bit != 0 && e.Mode&b.bit == 0:
					add("%s bit removed", b.name)
				}
			}
			if o.Mode&0777 != e.Mode&0777 {
				add("mode %s -> %s", fourDigitMode(o.Mode), fourDigitMode(e.Mode))
			}
		case "uid":
			add("owner %s", idChange(n.User(o.UID), n.User(e.UID), o.UID, e.UID))
		case "gid":
			add("group %s", idChange(n.Group(o.GID), n.Group(e.GID), o.GID, e.GID))
		case "device":
			add("device %d,%d -> %d,%d", o.Major, o.Minor, e.Major, e.Minor)
		case "link":
			add("symlink target %s -> %s", visText(o.Link), visText(e.Link))
		case "hardlink":
			switch {
			case o.Hardlink == "":
				add("now a hard link to %s", showPath(e.Hardlink))
			case e.Hardlink == "":
				add("no longer a hard link to %s", showPath(o.Hardlink))
			default:
				add("hard link to %s -> %s", showPath(o.Hardlink), showPath(e.Hardlink))
			}
		case "empty":
			if e.Empty {
				add("directory is now empty")
			} else {
				add("directory is no longer empty")
			}
		default:
			name := strings.TrimPrefix(f, "xattr.")
			ov, ook := o.Xattr(name)
			nv, nok := e.Xattr(name)
			for _, s := range describeXattrChange(name, ov, ook, nv, nok, n) {
				add("%s", s)
			}
		}
	}
	return out
}

func describeNew(e *Entry, n *Names) string {
	var b strings.Builder
	b.WriteString("new ")
	b.WriteString(typeWords(e.Type))
	b.WriteByte(' ')
	b.WriteString(showPath(e.Path))
	switch e.Type {
	case TypeChar, TypeBlock:
		fmt.Fprintf(&b, " %d,%d", e.Major, e.Minor)
	case TypeSymlink:
		b.WriteString(" -> ")
		b.WriteString(visText(e.Link))
	}
	fmt.Fprintf(&b, " %s:%s", n.User(e.UID), n.Group(e.GID))
	if e.Type != TypeSymlink {
		b.WriteByte(' ')
		b.WriteString(fourDigitMode(e.Mode))
	}
	if e.Hardlink != "" {
		b.WriteString(", hard link to ")
		b.WriteString(showPath(e.Hardlink))
	}
	for _, x := range e.Xattrs {
		b.WriteString(", ")
		b.WriteString(xattrLabel(x.Name))
		b.WriteByte(' ')
		b.WriteString(DescribeXattr(x.Name, x.Value))
	}
	return b.String()
}

// fourDigitMode prints a mode the way admins write it for chmod: 0644, 4755.
func fourDigitMode(m uint32) string { return fmt.Sprintf("%04o", m) }

func idChange(oname, nname string, oid, nid uint32) string {
	if oname == strconv.FormatUint(uint64(oid), 10) && nname == strconv.FormatUint(uint64(nid), 10) {
		return oname + " -> " + nname
	}
	return fmt.Sprintf("%s -> %s (%d -> %d)", oname, nname, oid, nid)
}

// visText escapes arbitrary bytes (a symlink target) for a terminal.
func visText(s string) string { return string(appendVis(nil, s, false)) }

// xattrLabel is the admin word for an attribute.
func xattrLabel(name string) string {
	switch name {
	case xattrCapability:
		return "capability"
	case xattrSELinux:
		return "selinux label"
	case xattrACLAccess:
		return "ACL"
	case xattrACLDefault:
		return "default ACL"
	}
	return "xattr " + visText(name)
}

func describeXattrChange(name string, ov []byte, ook bool, nv []byte, nok bool, n *Names) []string {
	label := xattrLabel(name)
	if name == xattrACLAccess || name == xattrACLDefault {
		if lines, ok := describeACLChange(label, ov, nv, n); ok {
			return lines
		}
	}
	switch {
	case !ook:
		return []string{label + " " + DescribeXattr(name, nv) + " added"}
	case !nok:
		return []string{label + " " + DescribeXattr(name, ov) + " removed"}
	}
	return []string{label + " " + DescribeXattr(name, ov) + " -> " + DescribeXattr(name, nv)}
}

// describeACLChange reports ACL differences entry by entry. A missing side
// counts as an empty ACL. ok is false when either side does not decode.
func describeACLChange(label string, ov, nv []byte, n *Names) ([]string, bool) {
	var oa, na []aclEntry
	var ok bool
	if ov != nil {
		if oa, ok = decodeACL(ov); !ok {
			return nil, false
		}
	}
	if nv != nil {
		if na, ok = decodeACL(nv); !ok {
			return nil, false
		}
	}
	type key struct {
		tag uint16
		id  uint32
	}
	olds := make(map[key]aclEntry, len(oa))
	for _, a := range oa {
		olds[key{a.tag, a.id}] = a
	}
	news := make(map[key]bool, len(na))
	var out []string
	for _, a := range na {
		k := key{a.tag, a.id}
		news[k] = true
		if o, had := olds[k]; !had {
			out = append(out, label+" "+a.text(n)+" added")
		} else if o.perm != a.perm {
			out = append(out, label+" "+o.text(n)+" -> "+a.text(n))
		}
	}
	for _, a := range oa {
		if !news[key{a.tag, a.id}] {
			out = append(out, label+" "+a.text(n)+" removed")
		}
	}
	return out, true
}

// Attribute names with a readable rendering.
const (
	xattrCapability = "security.capability"
	xattrSELinux    = "security.selinux"
	xattrACLAccess  = "system.posix_acl_access"
	xattrACLDefault = "system.posix_acl_default"
)

// DescribeXattr renders an attribute value readably: file capabilities in
// libcap's text form ("cap_net_raw+ep"), SELinux labels as text, POSIX ACLs
// in getfacl's short form ("user::rwx,user:1000:r-x,group::r-x,mask::r-x,
// other::r-x"), other printable values as a quoted string and anything else
// as "base64:<data>". Values that do not decode fall back to the quoted or
// base64 form. The result never holds control characters.
func DescribeXattr(name string, value []byte) string {
	switch name {
	case xattrCapability:
		if s, ok := decodeCaps(value); ok {
			return s
		}
	case xattrSELinux:
		v := bytes.TrimRight(value, "\x00")
		if len(v) > 0 && isPlainText(v) && !bytes.ContainsAny(v, " \"") {
			return string(v)
		}
	case xattrACLAccess, xattrACLDefault:
		if a, ok := decodeACL(value); ok {
			return aclText(a, nil)
		}
	}
	return genericValue(value)
}

// genericValue quotes printable text and base64-encodes the rest.
func genericValue(v []byte) string {
	if isPlainText(v) {
		return strconv.Quote(string(v))
	}
	return "base64:" + base64.StdEncoding.EncodeToString(v)
}

// isPlainText reports whether v is valid UTF-8 made of printable characters
// (spaces allowed).
func isPlainText(v []byte) bool {
	if !utf8.Valid(v) {
		return false
	}
	for _, r := range string(v) {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

var capNames = [...]string{
	"cap_chown", "cap_dac_override", "cap_dac_read_search", "cap_fowner",
	"cap_fsetid", "cap_kill", "cap_setgid", "cap_setuid", "cap_setpcap",
	"cap_linux_immutable", "cap_net_bind_service", "cap_net_broadcast",
	"cap_net_admin", "cap_net_raw", "cap_ipc_lock", "cap_ipc_owner",
	"cap_sys_module", "cap_sys_rawio", "cap_sys_chroot", "cap_sys_ptrace",
	"cap_sys_pacct", "cap_sys_admin", "cap_sys_boot", "cap_sys_nice",
	"cap_sys_resource", "cap_sys_time", "cap_sys_tty_config", "cap_mknod",
	"cap_lease", "cap_audit_write", "cap_audit_control", "cap_setfcap",
	"cap_mac_override", "cap_mac_admin", "cap_syslog", "cap_wake_alarm",
	"cap_block_suspend", "cap_audit_read", "cap_perfmon", "cap_bpf",
	"cap_checkpoint_restore",
}

func capName(i int) string {
	if i < len(capNames) {
		return capNames[i]
	}
	return "cap_" + strconv.Itoa(i)
}

// Layout of struct vfs_cap_data (linux/capability.h).
const (
	vfsCapRevisionMask = 0xFF000000
	vfsCapFlagsEffect  = 0x000001
	vfsCapRevision1    = 0x01000000
	vfsCapRevision2    = 0x02000000
	vfsCapRevision3    = 0x03000000
)

// decodeCaps renders a security.capability value the way libcap's
// cap_to_text does in its "+" form: caps sharing the same flags are joined
// with commas and followed by "+" and the flags in "eip" order; groups are
// separated by spaces, ordered by their lowest capability. A v3 value with
// a non-zero root id gets " rootid=N".
func decodeCaps(v []byte) (string, bool) {
	if len(v) < 4 {
		return "", false
	}
	magic := binary.LittleEndian.Uint32(v)
	var words int
	switch magic & vfsCapRevisionMask {
	case vfsCapRevision1:
		words = 1
		if len(v) != 4+8 {
			return "", false
		}
	case vfsCapRevision2:
		words = 2
		if len(v) != 4+16 {
			return "", false
		}
	case vfsCapRevision3:
		words = 2
		if len(v) != 4+16+4 {
			return "", false
		}
	default:
		return "", false
	}
	if magic&^(vfsCapRevisionMask|vfsCapFlagsEffect) != 0 {
		return "", false
	}
	effective := magic&vfsCapFlagsEffect != 0
	var perm, inh uint64
	for w := 0; w < words; w++ {
		perm |= uint64(binary.LittleEndian.Uint32(v[4+8*w:])) << (32 * w)
		inh |= uint64(binary.LittleEndian.Uint32(v[8+8*w:])) << (32 * w)
	}
	type group struct {
		flags string
		caps  []string
	}
	var groups []*group
	byFlags := map[string]*group{}
	for i := 0; i < 64; i++ {
		p, in := perm&(1<<i) != 0, inh&(1<<i) != 0
		if !p && !in {
			continue
		}
		flags := ""
		if effective {
			flags += "e"
		}
		if in {
			flags += "i"
		}
		if p {
			flags += "p"
		}
		g := byFlags[flags]
		if g == nil {
			g = &group{flags: flags}
			byFlags[flags] = g
			groups = append(groups, g)
		}
		g.caps = append(g.caps, capName(i))
	}
	var b strings.Builder
	for i, g := range groups {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strings.Join(g.caps, ","))
		b.WriteByte('+')
		b.WriteString(g.flags)
	}
	if len(groups) == 0 {
		b.WriteString("none")
	}
	if magic&vfsCapRevisionMask == vfsCapRevision3 {
		if root := binary.LittleEndian.Uint32(v[20:]); root != 0 {
			fmt.Fprintf(&b, " rootid=%d", root)
		}
	}
	return b.String(), true
}

// POSIX ACL xattr layout (linux/posix_acl_xattr.h).
const (
	aclVersion  = 2
	aclUserObj  = 0x01
	aclUser     = 0x02
	aclGroupObj = 0x04
	aclGroup    = 0x08
	aclMask     = 0x10
	aclOther    = 0x20
)

type aclEntry struct {
	tag, perm uint16
	id        uint32
}

func decodeACL(v []byte) ([]aclEntry, bool) {
	if len(v) < 4 || (len(v)-4)%8 != 0 || binary.LittleEndian.Uint32(v) != aclVersion {
		return nil, false
	}
	var out []aclEntry
	for off := 4; off < len(v); off += 8 {
		e := aclEntry{
			tag:  binary.LittleEndian.Uint16(v[off:]),
			perm: binary.LittleEndian.Uint16(v[off+2:]),
			id:   binary.LittleEndian.Uint32(v[off+4:]),
		}
		switch e.tag {
		case aclUserObj, aclUser, aclGroupObj, aclGroup, aclMask, aclOther:
		default:
			return nil, false
		}
		if e.perm > 7 {
			return nil, false
		}
		if e.tag != aclUser && e.tag != aclGroup {
			e.id = 0 // ACL_UNDEFINED_ID; not part of the meaning
		}
		out = append(out, e)
	}
	return out, true
}

func aclText(a []aclEntry, n *Names) string {
	parts := make([]string, len(a))
	for i, e := range a {
		parts[i] = e.text(n)
	}
	return strings.Join(parts, ",")
}

func (e aclEntry) text(n *Names) string {
	perm := []byte("---")
	if e.perm&4 != 0 {
		perm[0] = 'r'
	}
	if e.perm&2 != 0 {
		perm[1] = 'w'
	}
	if e.perm&1 != 0 {
		perm[2] = 'x'
	}
	switch e.tag {
	case aclUserObj:
		return "user::" + string(perm)
	case aclUser:
		return "user:" + n.User(e.id) + ":" + string(perm)
	case aclGroupObj:
		return "group::" + string(perm)
	case aclGroup:
		return "group:" + n.Group(e.id) + ":" + string(perm)
	case aclMask:
		return "mask::" + string(perm)
	}
	return "other::" + string(perm)
}

// Textconv writes m in the form git's diff=gitmeta textconv shows: each
// line as stored, except that xattr values are rendered with DescribeXattr
// (xattr.security.capability=cap_net_raw+ep), so 'git log -p' is readable.
func Textconv(m *Manifest, w io.Writer) error {
	bw := bufio.NewWriterSize(w, 256<<10)
	bw.WriteString(Signature)
	bw.WriteByte('\n')
	bw.WriteString(FormatLine)
	bw.WriteByte('\n')
	var line []byte
	for i := range m.Entries {
		e := m.Entries[i]
		xs := e.Xattrs
		e.Xattrs = nil
		line = AppendEntry(line[:0], &e)
		for _, x := range xs {
			line = append(line, "  xattr."...)
			line = appendVis(line, x.Name, true)
			line = append(line, '=')
			line = append(line, DescribeXattr(x.Name, x.Value)...)
		}
		line = append(line, '\n')
		if _, err := bw.Write(line); err != nil {
			return fmt.Errorf("writing .gitmeta text view: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing .gitmeta text view: %w", err)
	}
	return nil
}
