package personality_test

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/onesis/git-onesis/boot/mksysimage"
	"github.com/onesis/git-onesis/boot/personality"
	"github.com/onesis/git-onesis/boot/sysimage"
)

// entry is one object of a test image: kind "f", "d" or "l".
type entry struct {
	path, kind string
	mode       uint32
	uid, gid   int
	data       string
}

func mkImage(t *testing.T, root string, es []entry) {
	t.Helper()
	for _, e := range es {
		p := filepath.Join(root, e.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch e.kind {
		case "d":
			err = os.Mkdir(p, 0o700)
		case "l":
			err = os.Symlink(e.data, p)
		default:
			err = os.WriteFile(p, []byte(e.data), 0o600)
		}
		if err == nil {
			err = os.Lchown(p, e.uid, e.gid)
		}
		if err == nil && e.kind != "l" {
			m := fs.FileMode(e.mode & 0o777)
			if e.mode&0o4000 != 0 {
				m |= fs.ModeSetuid
			}
			err = os.Chmod(p, m)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to set owners; CI runs as root")
	}
}

// ramListing is the tree below dir: path, type, mode, owner, link text or
// file content, one line each.
func ramListing(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		switch st.Mode & syscall.S_IFMT {
		case syscall.S_IFLNK:
			l, _ := os.Readlink(p)
			lines = append(lines, fmt.Sprintf("%s -> %s", rel, l))
		case syscall.S_IFDIR:
			lines = append(lines, fmt.Sprintf("%s/ %04o %d:%d", rel, st.Mode&0o7777, st.Uid, st.Gid))
		default:
			b, _ := os.ReadFile(p)
			lines = append(lines, fmt.Sprintf("%s %04o %d:%d %q", rel, st.Mode&0o7777, st.Uid, st.Gid, b))
		}
		return nil
	})
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

const twoClassConf = `NODECLASS_REGEXP ^node\d+$ cluster.compute
NODECLASS_MAP web1 cluster.web
PROPERTY ib -c cluster.compute
RAMSIZE 64m
RAMSIZE 16m -c cluster.web
LINKBACK /etc/fstab CLASS
LINKBACK /etc/network/ifcfg-ib0 PROPERTY -h
LINKDIR /var/log -d
LINKFILE /etc/compute.conf -c cluster.compute
RAMDIR /var/spool/jobs -u alice -g staff -m 0770 -c cluster.compute
RAMFILE /usr/bin/helper -d
RAMDIR /var/lib/web -d -c cluster.web
`

func twoClassImage(t *testing.T, root string) {
	mkImage(t, root, []entry{
		{path: "etc", kind: "d", mode: 0o755},
		{path: "etc/passwd", mode: 0o644, data: "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n"},
		{path: "etc/group", mode: 0o644, data: "root:x:0:\nadm:x:4:\nstaff:x:50:\n"},
		{path: "etc/sysimage.conf", mode: 0o644, data: twoClassConf},
		{path: "etc/fstab", mode: 0o644, data: "default fstab\n"},
		{path: "etc/fstab.cluster.compute", mode: 0o644, data: "compute fstab\n"},
		{path: "etc/fstab.cluster.web", mode: 0o644, data: "web fstab\n"},
		{path: "etc/network", kind: "d", mode: 0o750, gid: 4},
		{path: "etc/network/ifcfg-ib0", mode: 0o644, data: "ONBOOT=no\n"},
		{path: "etc/network/.ifcfg-ib0.ib", mode: 0o644, data: "ONBOOT=yes\n"},
		{path: "etc/compute.conf", mode: 0o600, data: "compute only\n"},
		{path: "var", kind: "d", mode: 0o755},
		{path: "var/log", kind: "d", mode: 0o750, gid: 4},
		{path: "var/log/messages", mode: 0o640, gid: 4, data: "boot log\n"},
		{path: "var/log/apt", kind: "d", mode: 0o755},
		{path: "var/spool", kind: "d", mode: 0o755},
		{path: "var/lib", kind: "d", mode: 0o755},
		{path: "var/lib/web", kind: "d", mode: 0o700, uid: 1000, gid: 50},
		{path: "var/lib/web/index.html", mode: 0o644, uid: 1000, gid: 50, data: "<html/>\n"},
		{path: "var/lib/web/current", kind: "l", uid: 1000, gid: 50, data: "/srv/www"},
		{path: "usr/bin/helper", mode: 0o4755, gid: 50, data: "#!/bin/sh\n"},
	})
}

func parseImageConf(t *testing.T, root string) *sysimage.Config {
	t.Helper()
	r, err := os.OpenRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cfg, err := sysimage.Parse(func(p string) ([]byte, error) { return r.ReadFile(strings.TrimPrefix(p, "/")) }, "/etc/sysimage.conf")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestTwoClasses transforms one image, then gives a compute node and a web
// node their personalities and checks each /ram tree in full: links with
// their exact targets, -d copies with owners and modes (setuid kept),
// -u/-g/-m overrides resolved from the image's passwd and group, mirrored
// parents, and the image's default for a LINKFILE not configured for the
// node.
func TestTwoClasses(t *testing.T) {
	needRoot(t)
	img := t.TempDir()
	twoClassImage(t, img)
	cfg := parseImageConf(t, img)
	tr, err := mksysimage.Plan(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := mksysimage.Execute(img, tr.Ops); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		host, mount, want string
	}{
		{"node1", "size=64m,mode=0755", `etc/ 0755 0:0
etc/compute.conf 0600 0:0 ""
etc/fstab -> /etc/fstab.cluster.compute
etc/network/ 0750 0:4
etc/network/ifcfg-ib0 -> /etc/network/.ifcfg-ib0.ib
usr/ 0755 0:0
usr/bin/ 0755 0:0
usr/bin/helper 4755 0:50 "#!/bin/sh\n"
var/ 0755 0:0
var/log/ 0750 0:4
var/log/apt/ 0755 0:0
var/log/messages 0640 0:4 "boot log\n"
var/spool/ 0755 0:0
var/spool/jobs/ 0770 1000:50`},
		{"web1", "size=16m,mode=0755", `etc/ 0755 0:0
etc/compute.conf -> /etc/compute.conf.default
etc/fstab -> /etc/fstab.cluster.web
etc/network/ 0750 0:4
etc/network/ifcfg-ib0 -> /etc/network/.ifcfg-ib0.default
usr/ 0755 0:0
usr/bin/ 0755 0:0
usr/bin/helper 4755 0:50 "#!/bin/sh\n"
var/ 0755 0:0
var/lib/ 0755 0:0
var/lib/web/ 0700 1000:50
var/lib/web/current -> /srv/www
var/lib/web/index.html 0644 1000:50 "<html/>\n"
var/log/ 0750 0:4
var/log/apt/ 0755 0:0
var/log/messages 0640 0:4 "boot log\n"`},
	}
	for _, tc := range tests {
		t.Run(tc.host, func(t *testing.T) {
			d, err := personality.OpenDir(img)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			plan, err := personality.Build(d, cfg, tc.host, "")
			if err != nil {
				t.Fatal(err)
			}
			if plan.Steps[0].Kind != personality.Mount || plan.Steps[0].Options != tc.mount {
				t.Errorf("first step %v; want mount with %s", plan.Steps[0], tc.mount)
			}
			ram := t.TempDir()
			var mounted []string
			// A real tmpfs, mounted by the callback as the node's init does:
			// the steps must land in it, not in the directory beneath.
			err = personality.Execute(plan, img, ram, personality.ExecOptions{Mount: func(s personality.Step) error {
				mounted = append(mounted, s.Options)
				if err := syscall.Mount("tmpfs", ram, "tmpfs", 0, s.Options); err != nil {
					return err
				}
				t.Cleanup(func() { syscall.Unmount(ram, syscall.MNT_DETACH) })
				return nil
			}})
			if err != nil {
				t.Fatal(err)
			}
			if len(mounted) != 1 {
				t.Errorf("mount steps passed to ExecOptions.Mount: %v", mounted)
			}
			if got := ramListing(t, ram); got != tc.want {
				var b bytes.Buffer
				plan.Write(&b)
				t.Errorf("/ram of %s:\n%s\nwant:\n%s\nplan:\n%s", tc.host, got, tc.want, b.String())
			}
			// Executing again into the same directory is harmless.
			if err := personality.Execute(plan, img, ram, personality.ExecOptions{}); err != nil {
				t.Fatalf("second Execute: %v", err)
			}
			if got := ramListing(t, ram); got != tc.want {
				t.Errorf("/ram of %s changed on a second Execute:\n%s", tc.host, got)
			}
		})
	}
}

// TestHostile: image symlinks that point out of the image (at a stand-in
// for the host's /etc/shadow and /etc/ssh) are never followed: a -d copy
// of such a link copies the link, a linkback only writes the link text, a
// path below such a link is refused, and a symlink planted in the ram dir
// is replaced, not written through.
func TestHostile(t *testing.T) {
	needRoot(t)
	host := t.TempDir()
	mkImage(t, host, []entry{
		{path: "shadow", mode: 0o600, uid: 0, gid: 42, data: "root:SECRET:1::::::\n"},
		{path: "ssh", kind: "d", mode: 0o755},
		{path: "ssh/ssh_host_rsa_key", mode: 0o600, data: "SECRET KEY\n"},
		{path: "etcdir", kind: "d", mode: 0o755},
	})
	hostBefore := ramListing(t, host)
	img := t.TempDir()
	mkImage(t, img, []entry{
		{path: "etc", kind: "d", mode: 0o755},
		{path: "etc/fstab.default", kind: "l", data: filepath.Join(host, "shadow")},
		{path: "etc/fstab", kind: "l", data: "/ram/etc/fstab"},
		{path: "etc/ssh", kind: "l", data: filepath.Join(host, "ssh")},
		{path: "etc/motd", kind: "l", data: filepath.Join(host, "shadow")},
	})
	conf := "NODECLASS_MAP node1 compute\n" +
		"LINKBACK /etc/fstab CLASS\n" +
		"RAMFILE /etc/fstab.default -d -m 0644\n" +
		"RAMDIR /etc/ssh -d\n" +
		"RAMFILE /etc/motd\n"
	cfg := parse(t, conf)
	d, err := personality.OpenDir(img)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	plan, err := personality.Build(d, cfg, "node1", "")
	if err != nil {
		t.Fatal(err)
	}
	ram := t.TempDir()
	// A planted link where /ram/etc will be created.
	if err := os.Symlink(filepath.Join(host, "etcdir"), filepath.Join(ram, "etc")); err != nil {
		t.Fatal(err)
	}
	if err := personality.Execute(plan, img, ram, personality.ExecOptions{}); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`etc/ 0755 0:0
etc/fstab -> /etc/fstab.default
etc/fstab.default -> %s/shadow
etc/motd 0644 0:0 ""
etc/ssh -> %s/ssh`, host, host)
	if got := ramListing(t, ram); got != want {
		t.Errorf("/ram:\n%s\nwant:\n%s", got, want)
	}
	if got := ramListing(t, host); got != hostBefore {
		t.Errorf("the host's files changed:\n%s\nwas:\n%s", got, hostBefore)
	}

	// A -d copy below the out-of-image link is refused outright.
	_, err = personality.Build(d, parse(t, "RAMFILE /etc/ssh/ssh_host_rsa_key -d\n"), "node1", "")
	if err == nil || !strings.Contains(err.Error(), "symlink") {
		t.Errorf("RAMFILE -d below a symlink out of the image: %v; want a refusal", err)
	}
}

func parse(t *testing.T, conf string) *sysimage.Config {
	t.Helper()
	cfg, err := sysimage.Parse(func(p string) ([]byte, error) {
		if p == "/etc/sysimage.conf" {
			return []byte(conf), nil
		}
		return nil, fs.ErrNotExist
	}, "/etc/sysimage.conf")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
