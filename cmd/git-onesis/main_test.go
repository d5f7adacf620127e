package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/onesis/git-onesis/internal/testkit"
)

// TestRunInProcess drives the CLI through run, in this process, the way
// main does: exit codes, output streams, and the node -> commit -> class
// answer that node list and class share (package resolve).
func TestRunInProcess(t *testing.T) {
	dir := testkit.Repo(t, map[string]string{"etc/sysimage.conf": "NODECLASS_RANGE: n[1-2] cluster.compute\n"})
	testkit.Sh(t, dir, "git", "checkout", "-q", "testing")
	testkit.WriteFile(t, dir, "etc/sysimage.conf", "NODECLASS_RANGE: n[1-2] cluster.io\n")
	testkit.Sh(t, dir, "git", "commit", "-qam", "io")
	testkit.Sh(t, dir, "git", "checkout", "-q", "main")
	testingC := testkit.Sh(t, dir, "git", "rev-parse", "testing")
	t.Chdir(dir)

	call := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), strings.NewReader(""), &stdout, &stderr, append([]string{"git-onesis"}, args...))
		return code, stdout.String(), stderr.String()
	}
	if code, out, _ := call(); code != exitDiff || !strings.Contains(out, "USAGE") {
		t.Errorf("bare: exit %d\n%s", code, out)
	}
	for _, h := range []string{"-h", "--help"} {
		if code, out, errOut := call(h); code != exitUsage || !strings.Contains(out, "USAGE") || errOut != "" {
			t.Errorf("%s: exit %d, stdout %.40q, stderr %q; want the overview on stdout and exit 129", h, code, out, errOut)
		}
	}
	if code, _, errOut := call("class"); code != exitUsage || !strings.Contains(errOut, "name at least one HOST") {
		t.Errorf("class without a host: exit %d %q", code, errOut)
	}
	if code, out, _ := call("class", "n1"); code != exitOK || strings.TrimSpace(out) != "n1: class cluster.compute (parents: cluster)" {
		t.Errorf("class n1: exit %d %q", code, out)
	}
	if code, out, _ := call("class", "--rev", "testing", "n1", "x9"); code != exitDiff || !strings.Contains(out, "n1: class cluster.io") || !strings.Contains(out, "x9: (no class)") {
		t.Errorf("class --rev testing n1 x9: exit %d %q", code, out)
	}
	if code, _, errOut := call("node", "add", "n2", "--mac", "52:54:00:00:00:02", "--ip", "10.77.0.12", "--ref", "testing"); code != exitOK {
		t.Fatalf("node add: exit %d %s", code, errOut)
	}
	code, out, errOut := call("node", "list", "--json")
	var nodes []jsonNode
	if err := json.Unmarshal([]byte(out), &nodes); code != exitOK || err != nil || len(nodes) != 1 {
		t.Fatalf("node list --json: exit %d %v\n%s%s", code, err, out, errOut)
	}
	if n := nodes[0]; n.Commit != testingC || n.CommitFrom != "node ref testing" || n.Class != "cluster.io" || n.ClassFrom != "testing" {
		t.Errorf("node list: %+v; want n2 on %.12s, class cluster.io from testing", n, testingC)
	}
	if code, _, errOut := call("node", "set", "n2", "--ref", "nosuch"); code != exitDiff || !strings.Contains(errOut, "names no commit") {
		t.Errorf("node set --ref nosuch: exit %d %q", code, errOut)
	}
	// run's stdin reaches what commands start: the editor of node edit,
	// here one that takes the new file from it.
	t.Setenv("GIT_EDITOR", "cat >")
	var stdout, stderr bytes.Buffer
	edited := "node n3 mac=52:54:00:00:00:03 ip=10.77.0.13 ref=testing\n"
	if code := run(context.Background(), strings.NewReader(edited), &stdout, &stderr, []string{"git-onesis", "node", "edit", "-m", "from stdin"}); code != exitOK {
		t.Fatalf("node edit: exit %d %s", code, stderr.String())
	}
	if code, out, _ := call("node", "list", "--porcelain"); code != exitOK || !strings.HasPrefix(out, "n3\t52:54:00:00:00:03\t10.77.0.13\ttesting\t") || strings.Contains(out, "n2") {
		t.Errorf("node list after an edit from stdin: exit %d\n%s", code, out)
	}
}

// TestNodeListUnbornHEAD: before the first commit nothing boots, and node
// list still shows the class the work tree's config gives.
func TestNodeListUnbornHEAD(t *testing.T) {
	dir := t.TempDir()
	testkit.Sh(t, dir, "git", "init", "-q", "-b", "main")
	testkit.WriteFile(t, dir, "etc/sysimage.conf", "NODECLASS_RANGE: n[1-2] cluster.compute\n")
	t.Chdir(dir)
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), strings.NewReader(""), &stdout, &stderr, []string{"git-onesis", "node", "add", "n1", "--mac", "52:54:00:00:00:01", "--ip", "10.77.0.11"}); code != exitOK {
		t.Fatalf("node add: exit %d %s", code, stderr.String())
	}
	stdout.Reset()
	if code := run(context.Background(), strings.NewReader(""), &stdout, &stderr, []string{"git-onesis", "node", "list", "--json"}); code != exitOK {
		t.Fatalf("node list: exit %d %s", code, stderr.String())
	}
	var nodes []jsonNode
	if err := json.Unmarshal(stdout.Bytes(), &nodes); err != nil || len(nodes) != 1 {
		t.Fatalf("node list --json: %v\n%s", err, stdout.String())
	}
	if n := nodes[0]; n.Commit != "" || n.Class != "cluster.compute" || n.ClassFrom != "worktree" {
		t.Errorf("node list on an unborn HEAD: %+v; want no commit, class cluster.compute from the work tree", n)
	}
}
