package personality

import (
	"errors"
	"strings"
	"testing"
)

// TestLinkbackResolution walks every way a LINKBACK target is chosen.
// Classes: node1..9 are cluster.compute (a subclass of cluster), web1 is
// cluster.web; node2 has the properties gpu and ib, node3 only ib.
func TestLinkbackResolution(t *testing.T) {
	const classes = "NODECLASS_REGEXP ^node\\d+$ cluster.compute\n" +
		"NODECLASS_MAP web1 cluster.web\n" +
		"PROPERTY ib -n node2,node3\n" +
		"PROPERTY gpu -n node2\n"
	tests := []struct {
		name     string
		conf     string // LINKBACK lines
		host     string
		class    string // classname= override
		files    []string
		want     string // symlink text of /ram/etc/fstab
		wantWarn string
	}{
		{"class most specific", "LINKBACK /etc/fstab CLASS", "node1", "",
			[]string{"etc/fstab.cluster.compute", "etc/fstab.cluster", "etc/fstab.default"}, "/etc/fstab.cluster.compute", ""},
		{"class falls back to parent", "LINKBACK /etc/fstab CLASS", "node1", "",
			[]string{"etc/fstab.cluster", "etc/fstab.default", "etc/fstab.cluster.web"}, "/etc/fstab.cluster", ""},
		{"class falls back to default", "LINKBACK /etc/fstab CLASS", "node1", "",
			[]string{"etc/fstab.default", "etc/fstab.cluster.web"}, "/etc/fstab.default", ""},
		{"class of another node", "LINKBACK /etc/fstab CLASS", "web1", "",
			[]string{"etc/fstab.cluster.compute", "etc/fstab.cluster.web", "etc/fstab.default"}, "/etc/fstab.cluster.web", ""},
		{"classname= override", "LINKBACK /etc/fstab CLASS", "node1", "cluster.web",
			[]string{"etc/fstab.cluster.compute", "etc/fstab.cluster.web", "etc/fstab.default"}, "/etc/fstab.cluster.web", ""},
		{"class forced", "LINKBACK /etc/fstab CLASS -f", "node1", "",
			[]string{"etc/fstab.default"}, "/etc/fstab.cluster.compute", ""},
		{"no class at all", "LINKBACK /etc/fstab CLASS", "other", "",
			[]string{"etc/fstab.cluster", "etc/fstab.default"}, "/etc/fstab.default", ""},
		{"node", "LINKBACK /etc/fstab NODE", "node1", "",
			[]string{"etc/fstab.node1", "etc/fstab.cluster.compute", "etc/fstab.default"}, "/etc/fstab.node1", ""},
		{"node falls back to default", "LINKBACK /etc/fstab NODE", "node1", "",
			[]string{"etc/fstab.node2", "etc/fstab.default"}, "/etc/fstab.default", ""},
		{"node forced", "LINKBACK /etc/fstab NODE -f", "node1", "",
			[]string{"etc/fstab.default"}, "/etc/fstab.node1", ""},
		{"property alphanumeric first", "LINKBACK /etc/fstab PROPERTY", "node2", "",
			[]string{"etc/fstab.ib", "etc/fstab.gpu", "etc/fstab.default"}, "/etc/fstab.gpu", ""},
		{"property first existing", "LINKBACK /etc/fstab PROPERTY", "node2", "",
			[]string{"etc/fstab.ib", "etc/fstab.default"}, "/etc/fstab.ib", ""},
		{"property of a node without it", "LINKBACK /etc/fstab PROPERTY", "node3", "",
			[]string{"etc/fstab.gpu", "etc/fstab.default"}, "/etc/fstab.default", ""},
		{"hidden class", "LINKBACK /etc/fstab CLASS -h", "node1", "",
			[]string{"etc/.fstab.cluster", "etc/fstab.cluster.compute", "etc/.fstab.default"}, "/etc/.fstab.cluster", ""},
		{"hidden default", "LINKBACK /etc/fstab NODE -h", "node1", "",
			[]string{"etc/fstab.node1", "etc/.fstab.default"}, "/etc/.fstab.default", ""},
		{"hidden property", "LINKBACK /etc/fstab PROPERTY -h", "node3", "",
			[]string{"etc/.fstab.ib", "etc/.fstab.default"}, "/etc/.fstab.ib", ""},
		{"interpolated target", "LINKBACK /etc/fstab /etc/fstab.$CLASS-$NODE", "node1", "",
			[]string{"etc/fstab.cluster.compute-node1", "etc/fstab.default"}, "/etc/fstab.cluster.compute-node1", ""},
		{"interpolated braces", "LINKBACK /etc/fstab /srv/${NODE}/fstab", "node1", "",
			[]string{"srv/node1/fstab", "etc/fstab.default"}, "/srv/node1/fstab", ""},
		{"relative target", "LINKBACK /etc/fstab fstab.$NODE", "node1", "",
			[]string{"etc/fstab.node1", "etc/fstab.default"}, "/etc/fstab.node1", ""},
		{"missing target falls back", "LINKBACK /etc/fstab /etc/fstab.$NODE", "node1", "",
			[]string{"etc/fstab.default"}, "/etc/fstab.default", ""},
		{"forced target on a network path", "LINKBACK /etc/fstab /net/$NODE/fstab -f", "node1", "",
			[]string{"etc/fstab.default"}, "/net/node1/fstab", ""},
		{"later linkback wins", "LINKBACK /etc/fstab CLASS\nLINKBACK /etc/fstab PROPERTY", "node2", "",
			[]string{"etc/fstab.cluster.compute", "etc/fstab.ib", "etc/fstab.default"}, "/etc/fstab.ib", ""},
		{"filtered linkback", "LINKBACK /etc/fstab CLASS\nLINKBACK /etc/fstab NODE -c cluster.web", "node1", "",
			[]string{"etc/fstab.cluster.compute", "etc/fstab.node1", "etc/fstab.default"}, "/etc/fstab.cluster.compute", ""},
		{"nothing exists", "LINKBACK /etc/fstab CLASS", "node1", "",
			[]string{"etc/passwd"}, "/etc/fstab.default", "will dangle"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			var objs []obj
			for _, f := range tc.files {
				objs = append(objs, obj{path: f, data: f})
			}
			build(t, root, objs)
			img, err := OpenDir(root)
			if err != nil {
				t.Fatal(err)
			}
			defer img.Close()
			plan, err := Build(img, parse(t, classes+tc.conf+"\n"), tc.host, tc.class)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range plan.Steps {
				if s.Kind == Symlink && s.Path == "etc/fstab" {
					got = append(got, s.Target)
				}
			}
			if len(got) != 1 || got[0] != tc.want {
				t.Errorf("/ram/etc/fstab -> %v; want %s", got, tc.want)
			}
			warns := strings.Join(plan.Warnings, "\n")
			if (tc.wantWarn == "") != (warns == "") || !strings.Contains(warns, tc.wantWarn) {
				t.Errorf("warnings %q; want one containing %q", warns, tc.wantWarn)
			}
		})
	}
}

// TestLinkbackParentSymlink: a variant below a symlinked directory is
// never looked up through the link.
func TestLinkbackParentSymlink(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	build(t, outside, []obj{{path: "x.cluster.compute", data: "host file"}})
	build(t, root, []obj{{path: "opt/conf", kind: "l", data: outside}})
	img, err := OpenDir(root)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	_, err = Build(img, parse(t, "NODECLASS_MAP node1 cluster.compute\nLINKBACK /opt/conf/x CLASS\n"), "node1", "")
	if !errors.Is(err, ErrParentSymlink) {
		t.Fatalf("Build: %v; want an error about the symlinked parent", err)
	}
}
