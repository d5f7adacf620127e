package mksysimage

import (
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/onesis/git-onesis/boot/sysimage"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// fixtureConf exercises every kind of path the transform handles: a
// LINKBACK, a hidden LINKBACK, a LINKDIR, a LINKFILE glob, a LINKFILE that
// does not exist yet, one whose parents are missing, and a RAMDIR, which
// the transform leaves alone.
const fixtureConf = `DISTRO: Debian 12
NODECLASS_REGEXP ^node\d+$ cluster.compute
NODECLASS_MAP web1 cluster.web
RAMSIZE 20m
LINKBACK /etc/fstab CLASS
LINKBACK /etc/network/ifcfg-eth0 NODE -h
LINKDIR /var/log -d
LINKFILE /etc/ssh/ssh_host_*_key     # a glob
LINKFILE /etc/resolv.conf            # not in the image yet
LINKFILE /var/lib/new/state          # nor are its parents
RAMDIR /var/cache/x
`

// fixtureImage builds the image the golden test transforms.
func fixtureImage(t *testing.T, root, conf string) {
	t.Helper()
	files := map[string]string{
		"etc/sysimage.conf":             conf,
		"etc/inittab":                   "id:3:initdefault:\n",
		"etc/fstab":                     "proc /proc proc defaults 0 0\n",
		"etc/fstab.cluster.compute":     "compute fstab\n",
		"etc/network/ifcfg-eth0":        "DEVICE=eth0\n",
		"etc/network/.ifcfg-eth0.node1": "DEVICE=eth0 IPADDR=10.0.0.1\n",
		"etc/ssh/ssh_host_rsa_key":      "rsa\n",
		"etc/ssh/ssh_host_ed25519_key":  "ed25519\n",
		"etc/ssh/ssh_host_rsa_key.pub":  "rsa pub\n",
		"var/log/messages":              "boot\n",
		"var/cache/x/keep":              "",
		"usr/share/doc/readme":          "doc\n",
	}
	for p, body := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(root, "etc/ssh/ssh_host_rsa_key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(root, "var/log"), 0o750); err != nil {
		t.Fatal(err)
	}
}

// readConf parses etc/sysimage.conf of the image at root.
func readConf(t *testing.T, root string) *sysimage.Config {
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

// tree lists every path with its type, mode and link target.
func tree(t *testing.T, root string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		line := fmt.Sprintf("%s %s", rel, fi.Mode())
		if fi.Mode()&fs.ModeSymlink != 0 {
			l, _ := os.Readlink(p)
			line += " -> " + l
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n") + "\n"
}

func opsText(tr *Transform) string {
	var b strings.Builder
	for _, o := range tr.Ops {
		b.WriteString(o.String() + "\n")
	}
	for _, w := range tr.Warnings {
		b.WriteString("warning: " + w + "\n")
	}
	return b.String()
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file:\n--- got\n%s--- want\n%s", name, got, want)
	}
}

// TestTransformGolden transforms the fixture image and compares the plan
// and the resulting tree with golden files; a second run must plan
// nothing, and a revert must give back the original tree.
func TestTransformGolden(t *testing.T) {
	old := umask(0o022)
	defer umask(old)
	root := t.TempDir()
	fixtureImage(t, root, fixtureConf)
	before := tree(t, root)
	cfg := readConf(t, root)

	tr, err := Plan(root, cfg)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "transform.plan", opsText(tr))
	if err := Execute(root, tr.Ops); err != nil {
		t.Fatal(err)
	}
	golden(t, "transform.tree", tree(t, root))
	state, err := os.ReadFile(filepath.Join(root, StateFile))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "transform.state", string(state))

	again, err := Plan(root, readConf(t, root))
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Ops) != 0 {
		t.Errorf("a second run is not idempotent; it plans:\n%s", opsText(again))
	}

	rv, err := PlanRevert(root)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "revert.plan", opsText(rv))
	if err := Execute(root, rv.Ops); err != nil {
		t.Fatal(err)
	}
	if after := tree(t, root); after != before {
		t.Errorf("revert did not give back the original tree:\n--- after\n%s--- before\n%s", after, before)
	}
}

// TestDroppedPathRestored: a path dropped from the configuration gets its
// original back on the next run, and the others stay linked.
func TestDroppedPathRestored(t *testing.T) {
	root := t.TempDir()
	fixtureImage(t, root, fixtureConf)
	tr, err := Plan(root, readConf(t, root))
	if err != nil {
		t.Fatal(err)
	}
	if err := Execute(root, tr.Ops); err != nil {
		t.Fatal(err)
	}
	conf := strings.Replace(fixtureConf, "LINKDIR /var/log -d\n", "", 1)
	if err := os.WriteFile(filepath.Join(root, "etc/sysimage.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	tr, err = Plan(root, readConf(t, root))
	if err != nil {
		t.Fatal(err)
	}
	got := opsText(tr)
	want := "restore /var/log  (from /var/log.default)    # no longer in etc/sysimage.conf\nrecord  /etc/onesis/sysimage.state\n"
	if got != want {
		t.Fatalf("plan after dropping LINKDIR /var/log:\n%s\nwant:\n%s", got, want)
	}
	if err := Execute(root, tr.Ops); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(filepath.Join(root, "var/log"))
	if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o750 {
		t.Fatalf("var/log after restore: %v %v; want the original 0750 directory", fi, err)
	}
	if _, err := os.Lstat(filepath.Join(root, "var/log/messages")); err != nil {
		t.Errorf("var/log/messages lost: %v", err)
	}
	if l, _ := os.Readlink(filepath.Join(root, "etc/fstab")); l != "/ram/etc/fstab" {
		t.Errorf("etc/fstab -> %q; the other links must stay", l)
	}
	if tr, _ := Plan(root, readConf(t, root)); len(tr.Ops) != 0 {
		t.Errorf("not idempotent after a restore:\n%s", opsText(tr))
	}
}

// TestRefused: paths that can never be links, and trees the transform
// would have to clobber, are refused with a clear error and nothing is
// changed.
func TestRefused(t *testing.T) {
	ram := func(kind, p string) *sysimage.Config {
		return &sysimage.Config{Ram: []sysimage.RamEntry{{Kind: kind, Path: p, Pos: sysimage.Pos{File: "/etc/sysimage.conf", Line: 7}}}}
	}
	lb := func(p string) *sysimage.Config {
		return &sysimage.Config{Linkbacks: []sysimage.Linkback{{Path: p, Target: "CLASS", Pos: sysimage.Pos{File: "/etc/sysimage.conf", Line: 9}}}}
	}
	tests := []struct {
		name string
		cfg  *sysimage.Config
		want string
	}{
		{"inittab", ram("LINKFILE", "/etc/inittab"), "/etc/inittab cannot be a link"},
		{"sysimage.conf", lb("/etc/sysimage.conf"), "/etc/sysimage.conf cannot be a link"},
		{"mtab", lb("/etc/mtab"), "/etc/mtab cannot be a link"},
		{"menu.lst", lb("/boot/grub/menu.lst"), "/boot/grub/menu.lst cannot be a link"},
		{"dir holding inittab", ram("LINKDIR", "/etc"), "it holds /etc/inittab"},
		{"dir holding menu.lst", ram("LINKDIR", "/boot/grub"), "it holds /boot/grub/menu.lst"},
		{"the state file's dir", ram("LINKDIR", "/etc/onesis"), "it holds /etc/onesis/sysimage.state"},
		{"inside /ram", ram("LINKDIR", "/ram/x"), "inside /ram itself"},
		{"git's files", ram("LINKDIR", "/.git"), "belongs to git"},
		{"the root", ram("LINKDIR", "/"), "image root"},
		{"glob reaching inittab", ram("LINKFILE", "/etc/init*"), "/etc/inittab cannot be a link"},
		{"file as LINKDIR", ram("LINKDIR", "/etc/fstab"), "not a directory; use LINKFILE"},
		{"dir as LINKFILE", ram("LINKFILE", "/var/log"), "is a directory in the image; use LINKDIR"},
		{"both P and P.default", ram("LINKFILE", "/etc/motd"), "both /etc/motd and /etc/motd.default exist"},
		{"symlinked parent", ram("LINKFILE", "/opt/out/x"), "symlink"},
		{"nested links", &sysimage.Config{Ram: []sysimage.RamEntry{{Kind: "LINKDIR", Path: "/var/log"}, {Kind: "LINKFILE", Path: "/var/log/messages"}}}, "inside a linked directory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			outside := t.TempDir()
			fixtureImage(t, root, fixtureConf)
			os.WriteFile(filepath.Join(root, "etc/motd"), []byte("hi\n"), 0o644)
			os.WriteFile(filepath.Join(root, "etc/motd.default"), []byte("old\n"), 0o644)
			os.MkdirAll(filepath.Join(outside, "x"), 0o755)
			os.MkdirAll(filepath.Join(root, "opt"), 0o755)
			if err := os.Symlink(outside, filepath.Join(root, "opt/out")); err != nil {
				t.Fatal(err)
			}
			before := tree(t, root)
			outBefore := tree(t, outside)
			_, err := Plan(root, tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Plan: %v; want an error containing %q", err, tc.want)
			}
			if tree(t, root) != before || tree(t, outside) != outBefore {
				t.Errorf("a refused plan changed something")
			}
		})
	}
}

// TestStateRoundTrip: odd paths survive the state file.
func TestStateRoundTrip(t *testing.T) {
	st := &State{Dirs: []string{"ram", "a b/\"c\""}, Links: []LinkRecord{
		{Path: "etc/new\nline", Default: "etc/new\nline.default", Moved: true},
		{Path: "etc/x", Default: "etc/.x.default"},
	}}
	got, err := ParseState(st.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(st) {
		t.Errorf("round trip: %v; want %v", got, st)
	}
	for _, bad := range []string{"link \"a\"\n", "dir\n", "what \"x\"\n", "link \"a\" \"b\" maybe\n", "dir \"unterminated\n"} {
		if _, err := ParseState([]byte(bad)); err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("ParseState(%q): %v; want an error naming line 1", bad, err)
		}
	}
}
