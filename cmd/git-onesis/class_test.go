package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onesis/git-onesis/internal/testkit"
)

// writeConf writes body to root/rel, creating its directories.
var writeConf = testkit.WriteFile

func TestClassCommand(t *testing.T) {
	img := t.TempDir()
	must(t, img, "git", "init", "-q")
	writeConf(t, img, "etc/sysimage.conf", "DISTRO: RedHat-EL 6\n"+
		"NODECLASS_REGEX: node\\d+ cluster.compute\n"+
		"NODECLASS_RANGE: node[1-5] cluster.compute.gige\n"+
		"INCLUDE /etc/sysimage.d/props\n"+
		"DISKMOUNT sda 10% /scratch\nDISKMOUNT sdb 10% /tmp\n")
	writeConf(t, img, "etc/sysimage.d/props", "PROPERTY gpu -r node[1-2]\nPROPERTY ib -c cluster\n")
	must(t, img, "git", "add", "-A")
	must(t, img, "git", "commit", "-q", "-m", "config")

	tests := []struct {
		args []string
		code int
		out  string
		err  []string
	}{
		{[]string{"class", "node1", "node9"}, 0,
			"node1: class cluster.compute.gige (parents: cluster.compute,cluster) properties: gpu,ib\n" +
				"node9: class cluster.compute (parents: cluster) properties: ib\n",
			[]string{"warning: /etc/sysimage.conf:2: NODECLASS_REGEX is a misspelling", "warning: /etc/sysimage.conf:5: DISKMOUNT is not supported by git-onesis"}},
		{[]string{"class", "--classname", "io", "node1"}, 0, "node1: class io properties: gpu\n", nil},
		{[]string{"class", "login", "node3"}, 1,
			"login: (no class)\nnode3: class cluster.compute.gige (parents: cluster.compute,cluster) properties: ib\n", nil},
		{[]string{"class"}, 129, "", []string{"usage: name at least one HOST"}},
		{[]string{"class", "node1", "--bogus"}, 129, "", []string{"flag provided but not defined: -bogus"}},
		{[]string{"class", "a/b"}, 129, "", []string{"cannot contain '/'"}},
		{[]string{"class", "--rev", "nosuch", "node1"}, 128, "", []string{"does not name a commit"}},
	}
	for _, tt := range tests {
		r := onesis(t, img, tt.args...)
		if r.code != tt.code || r.out != tt.out {
			t.Errorf("git onesis %s: exit %d, out %q; want %d, %q\nstderr: %s", strings.Join(tt.args, " "), r.code, r.out, tt.code, tt.out, r.err)
		}
		for _, w := range tt.err {
			if !strings.Contains(r.err, w) {
				t.Errorf("git onesis %s: stderr %q lacks %q", strings.Join(tt.args, " "), r.err, w)
			}
		}
		if strings.Count(r.err, "DISKMOUNT") > 1 {
			t.Errorf("DISKMOUNT warned more than once: %s", r.err)
		}
	}

	// --rev reads the committed config, not the edited work tree.
	writeConf(t, img, "etc/sysimage.conf", "NODECLASS_MAP node1 changed\n")
	if r := onesis(t, img, "class", "node1"); r.out != "node1: class changed\n" || r.err != "" {
		t.Errorf("work tree: %+v", r)
	}
	r := onesis(t, img, "class", "--rev", "HEAD", "--json", "node1", "login")
	var js []jsonClass
	if err := json.Unmarshal([]byte(r.out), &js); err != nil || r.code != 1 {
		t.Fatalf("--json: exit %d, %v\n%s", r.code, err, r.out)
	}
	if len(js) != 2 || js[0].Class != "cluster.compute.gige" || js[0].From != "/etc/sysimage.conf:3" ||
		strings.Join(js[0].Parents, ",") != "cluster.compute,cluster" || strings.Join(js[0].Properties, ",") != "gpu,ib" ||
		js[1].Class != "" || len(js[1].Parents) != 0 {
		t.Errorf("--json = %+v", js)
	}

	// Errors name FILE:LINE; a missing config is fatal.
	writeConf(t, img, "etc/sysimage.conf", "NODECLASS_MAP node1 a\nINCLUDE /etc/missing\n")
	if r := onesis(t, img, "class", "node1"); r.code != 128 || !strings.Contains(r.err, "fatal: /etc/sysimage.conf:2: INCLUDE /etc/missing: cannot read the file") {
		t.Errorf("missing INCLUDE: %+v", r)
	}
	os.Remove(filepath.Join(img, "etc/sysimage.conf"))
	if r := onesis(t, img, "class", "node1"); r.code != 128 || !strings.Contains(r.err, "no etc/sysimage.conf in the work tree") {
		t.Errorf("missing config: %+v", r)
	}

	// A symlink cannot lead the work-tree read out of the image.
	outside := filepath.Join(t.TempDir(), "sysimage.conf")
	os.WriteFile(outside, []byte("NODECLASS_MAP node1 host-side\n"), 0o644)
	if err := os.Symlink(outside, filepath.Join(img, "etc/sysimage.conf")); err != nil {
		t.Fatal(err)
	}
	if r := onesis(t, img, "class", "node1"); r.code != 128 || strings.Contains(r.out, "host-side") {
		t.Errorf("escaping symlink followed: %+v", r)
	}
}
