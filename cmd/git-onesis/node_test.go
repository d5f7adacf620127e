package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestNodeCommand(t *testing.T) {
	img := t.TempDir()
	must(t, img, "git", "init", "-q")
	writeConf(t, img, "etc/sysimage.conf", "NODECLASS_RANGE: node[1-5] cluster.compute\nPROPERTY gpu -r node[1-2]\n")
	must(t, img, "git", "add", "-A")
	must(t, img, "git", "commit", "-q", "-m", "config")
	must(t, img, "git", "branch", "testing")
	writeConf(t, img, "etc/sysimage.conf", "NODECLASS_RANGE: node[1-5] cluster.io\n")
	must(t, img, "git", "commit", "-q", "-am", "io")

	steps := []struct {
		args []string
		code int
		out  string
		err  string
	}{
		{[]string{"node", "add", "node1", "--mac", "52:54:00:00:00:01", "--ip", "10.77.0.11", "--ref", "testing"}, 0, "", ""},
		{[]string{"node", "add", "node2", "--mac", "52-54-00-00-00-02", "--mac", "52:54:00:00:01:02", "--ip", "10.77.0.12", "--args", "quiet"}, 0, "", ""},
		{[]string{"node", "add", "node3", "--mac", "52:54:00:00:00:01", "--ip", "10.77.0.13"}, 1, "",
			"error: MAC 52:54:00:00:00:01 of node node3 is already used by node node1 (line 2)"},
		{[]string{"node", "add", "node3", "--mac", "52:54:00:00:00:03", "--ip", "10.77.0.12"}, 1, "",
			"IP 10.77.0.12 of node node3 is already used by node node2"},
		{[]string{"node", "add", "node1", "--mac", "52:54:00:00:00:09", "--ip", "10.77.0.19"}, 1, "", "node node1 already exists"},
		{[]string{"node", "add", "node3", "--ip", "10.77.0.13"}, 129, "", "needs --mac and --ip"},
		{[]string{"node", "add", "node3", "--mac", "zz", "--ip", "10.77.0.13"}, 129, "", "not an Ethernet MAC"},
		{[]string{"node", "add", "bad_name", "--mac", "52:54:00:00:00:03", "--ip", "10.77.0.13"}, 129, "", "not a valid node name"},
		{[]string{"node", "add", "node3", "--mac", "52:54:00:00:00:03", "--ip", "10.77.0.13", "--args", "nfsroot=x:/y"}, 129, "", "set by serve"},
		{[]string{"node", "set", "node9", "--ip", "10.77.0.19"}, 1, "", "there is no node \"node9\""},
		{[]string{"node", "set", "node2", "--ip", "10.77.0.22"}, 0, "", ""},
		{[]string{"node", "network", "10.77.0.0/24", "--router", "10.77.0.1", "--dns", "10.77.0.1"}, 0, "", ""},
		{[]string{"node", "list", "--porcelain"}, 0,
			"node1\t52:54:00:00:00:01\t10.77.0.11\ttesting\t\tcluster.compute\tgpu\t\t\t\t\n" +
				"node2\t52:54:00:00:00:02,52:54:00:00:01:02\t10.77.0.22\t\t\tcluster.io\t\tquiet\t\t\t\n", ""},
		{[]string{"node", "list", "node9"}, 1, "", "no node \"node9\""},
		{[]string{"node", "rm", "node9"}, 1, "", "no node \"node9\""},
		{[]string{"node", "rm", "node2"}, 0, "", ""},
		{[]string{"node", "frob"}, 129, "", ""},
	}
	for _, s := range steps {
		r := onesis(t, img, s.args...)
		if r.code != s.code || (s.out != "" && r.out != s.out) || !strings.Contains(r.err, s.err) {
			t.Errorf("git onesis %s: exit %d\nstdout %q\nstderr %q\nwant exit %d, stdout %q, stderr containing %q",
				strings.Join(s.args, " "), r.code, r.out, r.err, s.code, s.out, s.err)
		}
	}
	// The audit trail: one commit per change, by the admin.
	log := must(t, img, "git", "log", "--format=%an|%s", "refs/onesis/inventory")
	want := "Test Admin|node rm node2\n" +
		"Test Admin|node network set 10.77.0.0/24\n" +
		"Test Admin|node set node2 ip=\"10.77.0.22\"\n" +
		"Test Admin|node add node2 (52:54:00:00:00:02,52:54:00:00:01:02)\n" +
		"Test Admin|node add node1 (52:54:00:00:00:01)\n"
	if log != want {
		t.Errorf("inventory history:\n%s\nwant:\n%s", log, want)
	}
	// The branch and work tree are untouched.
	if st := must(t, img, "git", "status", "--porcelain"); st != "" {
		t.Errorf("work tree changed: %q", st)
	}

	// JSON output, with the booted commit once serve recorded one.
	head := strings.TrimSpace(must(t, img, "git", "rev-parse", "HEAD"))
	must(t, img, "git", "update-ref", "refs/onesis/booted/node1", head)
	r := onesis(t, img, "node", "list", "--json")
	var nodes []jsonNode
	if err := json.Unmarshal([]byte(r.out), &nodes); err != nil || len(nodes) != 1 || nodes[0].Class != "cluster.compute" || nodes[0].ClassFrom != "testing" || nodes[0].Booted != head {
		t.Errorf("list --json: %v %+v", err, nodes)
	}
	// And the firmware it booted with, as serve records it in its state
	// directory (then the refused column: empty, no signature policy).
	state := filepath.Join(img, ".git", "onesis", "serve")
	if err := os.MkdirAll(state, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(state, "firmware"), []byte("# NODE FIRMWARE SINCE\nnode1 efi-x64-http 2026-01-02T03:04:05Z\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := must(t, img, "git", "onesis", "node", "list", "--porcelain"); !strings.HasSuffix(strings.SplitN(got, "\n", 2)[0], "\t"+head+"\tefi-x64-http\t") {
		t.Errorf("list --porcelain with a recorded firmware: %q", got)
	}
	if got := must(t, img, "git", "onesis", "node", "list"); !strings.Contains(got, "FIRMWARE") || !strings.Contains(got, " efi-x64-http ") {
		t.Errorf("list with a recorded firmware:\n%s", got)
	}

	// Import the seed's dhcpd.conf.
	writeConf(t, img, "../dhcpd.conf", "use-host-decl-names on;\n"+
		"subnet 10.77.0.0 netmask 255.255.255.0 { option routers 10.77.0.1;\n"+
		"  host node4 { hardware ethernet 52:54:00:00:00:04; fixed-address 10.77.0.14; }\n"+
		"  host node5 { hardware ethernet 52:54:00:00:00:01; fixed-address 10.77.0.15; }\n}\n")
	conf := filepath.Join(img, "..", "dhcpd.conf")
	r = onesis(t, img, "node", "import", conf)
	if r.code != 1 || !strings.Contains(r.err, "dhcpd.conf:4: MAC 52:54:00:00:00:01 of node node5 is already used by node node1") {
		t.Errorf("import with a duplicate: exit %d %s", r.code, r.err)
	}
	if got := must(t, img, "git", "onesis", "node", "list", "--porcelain"); strings.Contains(got, "node4") {
		t.Error("a failed import changed the inventory")
	}
	writeConf(t, img, "../dhcpd.conf", "use-host-decl-names on;\nhost node4 { hardware ethernet 52:54:00:00:00:04; fixed-address 10.77.0.14; }\n")
	must(t, img, "git", "onesis", "node", "import", conf)
	if got := must(t, img, "git", "onesis", "node", "list", "--porcelain"); !strings.Contains(got, "node4\t52:54:00:00:00:04\t10.77.0.14\t") {
		t.Errorf("import: %s", got)
	}
}

func TestNodeEdit(t *testing.T) {
	img := t.TempDir()
	must(t, img, "git", "init", "-q")
	must(t, img, "git", "onesis", "node", "add", "n1", "--mac", "52:54:00:00:00:01", "--ip", "10.77.0.11")
	// A scripted "editor" appends a node.
	r := runEnv(t, img, []string{`GIT_EDITOR=printf 'node n2 mac=52:54:00:00:00:02 ip=10.77.0.12\n' >>`}, "git", "onesis", "node", "edit", "-m", "add n2 by hand")
	if r.code != 0 {
		t.Fatalf("edit: %d %s", r.code, r.err)
	}
	if got := must(t, img, "git", "onesis", "node", "list", "--porcelain"); !strings.Contains(got, "n2\t52:54:00:00:00:02\t10.77.0.12") {
		t.Errorf("after edit: %s", got)
	}
	if log := must(t, img, "git", "log", "-1", "--format=%s", "refs/onesis/inventory"); log != "add n2 by hand\n" {
		t.Errorf("message: %q", log)
	}
	// A bad edit is refused with the line, and nothing changes.
	before := must(t, img, "git", "rev-parse", "refs/onesis/inventory")
	r = runEnv(t, img, []string{`GIT_EDITOR=printf 'node n3 mac=52:54:00:00:00:01 ip=10.77.0.13\n' >>`}, "git", "onesis", "node", "edit")
	if r.code != 1 || !strings.Contains(r.err, "nodes:4: MAC 52:54:00:00:00:01 of node n3 is already used by node n1 (line 2)") || !strings.Contains(r.err, "your text is in") {
		t.Errorf("bad edit: %d %s", r.code, r.err)
	}
	if must(t, img, "git", "rev-parse", "refs/onesis/inventory") != before {
		t.Error("a bad edit changed the inventory")
	}
}
