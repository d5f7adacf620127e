package meta

import "testing"

func TestSecurityRelevant(t *testing.T) {
	file := func(mode uint32) *Entry { return &Entry{Path: "usr/bin/x", Type: TypeFile, Mode: mode} }
	capd := &Entry{Path: "usr/bin/x", Type: TypeFile, Mode: 0o755, Xattrs: []Xattr{{"security.capability", []byte{1}}}}
	for _, tt := range []struct {
		name string
		c    Change
		want string
	}{
		{"setuid added", Change{Path: "usr/bin/x", Kind: Modified, Old: file(0o755), New: file(0o4755)}, "setuid/setgid"},
		{"setgid removed", Change{Path: "usr/bin/x", Kind: Modified, Old: file(0o2755), New: file(0o755)}, "setuid/setgid"},
		{"new setuid file", Change{Path: "usr/bin/x", Kind: Added, New: file(0o4755)}, "setuid/setgid"},
		{"capability added", Change{Path: "usr/bin/x", Kind: Modified, Old: file(0o755), New: capd}, "capability"},
		{"capability removed", Change{Path: "usr/bin/x", Kind: Modified, Old: capd, New: file(0o755)}, "capability"},
		{"world-writable", Change{Path: "usr/bin/x", Kind: Modified, Old: file(0o644), New: file(0o646)}, "world-writable"},
		{"new world-writable file", Change{Path: "usr/bin/x", Kind: Added, New: file(0o666)}, "world-writable"},
		{"sticky dir is fine", Change{Path: "tmp", Kind: Added, New: &Entry{Path: "tmp", Type: TypeDir, Mode: 0o1777}}, ""},
		{"symlink is fine", Change{Path: "l", Kind: Added, New: &Entry{Path: "l", Type: TypeSymlink, Mode: 0o777}}, ""},
		{"new device", Change{Path: "dev/sda", Kind: Added, New: &Entry{Path: "dev/sda", Type: TypeBlock, Mode: 0o660, Major: 8}}, "device"},
		{"device renumbered", Change{Path: "dev/null", Kind: Modified,
			Old: &Entry{Path: "dev/null", Type: TypeChar, Mode: 0o666, Major: 1, Minor: 3},
			New: &Entry{Path: "dev/null", Type: TypeChar, Mode: 0o666, Major: 1, Minor: 5}}, "device"},
		{"sshd_config mode", Change{Path: "etc/ssh/sshd_config", Kind: Modified, Old: file(0o644), New: file(0o600)}, "sensitive path"},
		{"sudoers", Change{Path: "etc/sudoers", Kind: Modified, Old: file(0o440), New: file(0o444)}, "sensitive path"},
		{"sudoersX is not sudoers", Change{Path: "etc/sudoersX", Kind: Modified, Old: file(0o440), New: file(0o444)}, ""},
		{"plain chmod", Change{Path: "etc/motd", Kind: Modified, Old: file(0o644), New: file(0o640)}, ""},
		{"removed plain file", Change{Path: "etc/motd", Kind: Removed, Old: file(0o644)}, ""},
	} {
		got, ok := SecurityRelevant(tt.c)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("%s: SecurityRelevant = %q, %v; want %q", tt.name, got, ok, tt.want)
		}
	}
}
