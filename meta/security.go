package meta

import "strings"

// SensitiveDirs are the image paths whose every change matters for
// security review: ssh configuration, PAM and sudo.
var SensitiveDirs = []string{"etc/ssh", "etc/pam.d", "etc/sudoers", "etc/sudoers.d", "etc/security", "root/.ssh"}

// Sensitive reports whether path lies in (or is) one of SensitiveDirs.
func Sensitive(path string) bool {
	for _, d := range SensitiveDirs {
		if path == d || strings.HasPrefix(path, d+"/") {
			return true
		}
	}
	return false
}

// SecurityRelevant reports whether a metadata change matters for a
// security review: setuid or setgid gained or lost, a file capability
// changed, something becoming world-writable (not a symlink, not a sticky
// directory), a device node added or changed, or anything under
// SensitiveDirs. The reason is a few words for the reviewer.
func SecurityRelevant(c Change) (string, bool) {
	if Sensitive(c.Path) {
		return "sensitive path", true
	}
	var o, n Entry
	if c.Old != nil {
		o = *c.Old
	}
	if c.New != nil {
		n = *c.New
	}
	special := func(e Entry) uint32 {
		if e.Type == TypeDir || e.Type == TypeSymlink {
			return 0
		}
		return e.Mode & 06000
	}
	if special(o) != special(n) {
		return "setuid/setgid", true
	}
	oc, _ := o.Xattr(xattrCapability)
	nc, _ := n.Xattr(xattrCapability)
	if string(oc) != string(nc) {
		return "capability", true
	}
	worldWritable := func(e Entry) bool {
		if e.Type == TypeSymlink || (e.Type == TypeDir && e.Mode&01000 != 0) {
			return false
		}
		return e.Mode&0o002 != 0
	}
	if !worldWritable(o) && worldWritable(n) {
		return "world-writable", true
	}
	isDev := func(e Entry) bool { return e.Type == TypeChar || e.Type == TypeBlock }
	if isDev(n) && (!isDev(o) || o.Type != n.Type || o.Major != n.Major || o.Minor != n.Minor || o.Mode != n.Mode || o.UID != n.UID || o.GID != n.GID) {
		return "device", true
	}
	return "", false
}
