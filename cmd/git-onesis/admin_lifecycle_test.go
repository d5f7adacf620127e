package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// nodeList reads 'git onesis node list --json'.
func nodeList(t *testing.T, dir string) map[string]jsonNode {
	t.Helper()
	var ns []jsonNode
	if err := json.Unmarshal([]byte(must(t, dir, "git", "onesis", "node", "list", "--json")), &ns); err != nil {
		t.Fatal(err)
	}
	m := map[string]jsonNode{}
	for _, n := range ns {
		m[n.Name] = n
	}
	return m
}

// noNodeStranded fails t for a node whose maintenance work tree or ref
// no longer exists.
func noNodeStranded(t *testing.T, dir, when string) {
	t.Helper()
	for _, n := range nodeList(t, dir) {
		if n.Maintenance != "" {
			if _, err := os.Stat(n.Maintenance); err != nil {
				t.Errorf("%s: node %s boots the work tree %s, which is gone", when, n.Name, n.Maintenance)
			}
		}
		if n.Ref != "" && runIn(t, dir, "git", "rev-parse", "--verify", "--quiet", n.Ref).code != 0 {
			t.Errorf("%s: node %s boots ref %s, which is gone", when, n.Name, n.Ref)
		}
	}
}

// TestMaintenanceFlow is the proof of the documented maintenance
// flow (docs/images.md), with serve answering boot scripts: upgrade start
// with a maintenance node, a package change in the worktree, promote, the
// node's boot script naming the promoted commit, rollback, abandon; no
// node is left pointing at anything that no longer exists (item 5), and a
// start naming an unknown node makes nothing (item 6).
func TestMaintenanceFlow(t *testing.T) {
	base := t.TempDir()
	img := filepath.Join(base, "image-prod")
	adminRepo(t, img)
	v1 := strings.TrimSpace(must(t, img, "git", "rev-parse", "HEAD"))
	const mac17, mac18 = "52:54:00:00:00:17", "52:54:00:00:00:18"
	must(t, img, "git", "onesis", "node", "add", "n17", "--mac", mac17, "--ip", "10.77.0.17")
	must(t, img, "git", "onesis", "node", "add", "n18", "--mac", mac18, "--ip", "10.77.0.18")
	srv := startServe(t, img).base
	bootsCommit(t, srv, mac17, v1, "before the upgrade")

	// Item 6: an unknown node is refused before anything is made.
	r := onesis(t, img, "upgrade", "start", "--node", "n17", "--node", "n9", "--maintenance", "u1")
	if r.code != 128 || !strings.Contains(r.err, `no node "n9"`) {
		t.Errorf("start with an unknown node: exit %d\n%s", r.code, r.err)
	}
	if runIn(t, img, "git", "rev-parse", "--verify", "--quiet", "refs/heads/u1").code == 0 {
		t.Error("a refused start left branch u1")
	}
	if _, err := os.Stat(img + "-u1"); err == nil {
		t.Error("a refused start left the worktree")
	}
	if n := nodeList(t, img)["n17"]; n.Ref != "" || n.Maintenance != "" {
		t.Errorf("a refused start changed n17: %+v", n)
	}

	// The documented flow: start with a maintenance node.
	r = onesis(t, img, "upgrade", "start", "--node", "n17", "--maintenance", "u1")
	wt := img + "-u1"
	if r.code != 0 || !strings.Contains(r.out, "node n17 boots "+wt+" read-write") {
		t.Fatalf("upgrade start again: exit %d\n%s%s", r.code, r.out, r.err)
	}
	if n := nodeList(t, img)["n17"]; n.Maintenance != wt || n.Ref != "u1" {
		t.Errorf("n17 after start: %+v", n)
	}
	bootsCommit(t, srv, mac17, v1, "the maintenance node, before any change")
	// A package change in the worktree, as apt would make it on the node.
	writeTree(t, wt, map[string]string{"var/lib/dpkg/status": "Package: tool\nStatus: install ok installed\nArchitecture: all\nVersion: 1.1-1\n"})
	must(t, wt, "git", "onesis", "commit", "-qam", "tool 1.1-1")
	v2 := strings.TrimSpace(must(t, wt, "git", "rev-parse", "HEAD"))
	bootsCommit(t, srv, mac17, v2, "the maintenance node, after the commit in its worktree")

	// Promote: the maintenance node goes back to production, which now has
	// the upgrade.
	r = onesis(t, img, "upgrade", "promote", "u1")
	if r.code != 0 || !strings.Contains(r.out, "main fast-forwarded to u1") || !strings.Contains(r.out, "node n17 boots the default") {
		t.Fatalf("promote: exit %d\n%s%s", r.code, r.out, r.err)
	}
	if n := nodeList(t, img)["n17"]; n.Maintenance != "" || n.Ref != "" {
		t.Errorf("n17 still on the upgrade after promote: %+v", n)
	}
	bootsCommit(t, srv, mac17, v2, "n17 after promote")
	bootsCommit(t, srv, mac18, v2, "n18 after promote")

	// Rollback: a new commit with v1's tree; the nodes boot it.
	r = onesis(t, img, "rollback", "main~1")
	if r.code != 0 || !strings.Contains(r.out, "node n17 still runs "+v2[:12]) {
		t.Fatalf("rollback: exit %d\n%s%s", r.code, r.out, r.err)
	}
	v3 := strings.TrimSpace(must(t, img, "git", "rev-parse", "HEAD"))
	bootsCommit(t, srv, mac17, v3, "n17 after rollback")

	// Abandon: the worktree goes; nothing points at it.
	if r := onesis(t, img, "upgrade", "abandon", "u1"); r.code != 0 {
		t.Fatalf("abandon: exit %d\n%s", r.code, r.err)
	}
	noNodeStranded(t, img, "after abandon")
	for _, mac := range []string{mac17, mac18} {
		if code, body := bootScript(t, srv, mac); code != 200 {
			t.Errorf("boot script of %s after abandon: %d\n%s", mac, code, body)
		}
	}

	// Abandon without promote: a maintenance node of an upgrade that is
	// dropped goes back to what it booted before (here: a ref).
	must(t, img, "git", "branch", "testing", v1)
	must(t, img, "git", "onesis", "node", "set", "n18", "--ref", "testing")
	if r := onesis(t, img, "upgrade", "start", "--node", "n18", "--maintenance", "u2"); r.code != 0 {
		t.Fatal(r.err)
	}
	if r := onesis(t, img, "upgrade", "abandon", "u2"); r.code != 0 || !strings.Contains(r.out, "node n18 boots testing") {
		t.Fatalf("abandon u2: exit %d\n%s%s", r.code, r.out, r.err)
	}
	if n := nodeList(t, img)["n18"]; n.Ref != "testing" || n.Maintenance != "" {
		t.Errorf("n18 after abandon: %+v; want back on testing", n)
	}
	noNodeStranded(t, img, "after abandoning u2")
	bootsCommit(t, srv, mac18, v1, "n18 back on testing")
}

// TestNodeTargetsChecked (item 7): node add and set refuse a maintenance
// directory that is not a work tree of this repository and a ref that
// names nothing; a real worktree and branch are accepted.
func TestNodeTargetsChecked(t *testing.T) {
	base := t.TempDir()
	img := filepath.Join(base, "image")
	adminRepo(t, img)
	must(t, img, "git", "onesis", "node", "add", "n1", "--mac", "52:54:00:00:00:01", "--ip", "10.77.0.11")
	for _, args := range [][]string{
		{"set", "n1", "--maintenance", "/etc"},
		{"set", "n1", "--maintenance", "no/such/dir"},
		{"set", "n1", "--maintenance", filepath.Join(img, "etc")},
		{"set", "n1", "--ref", "nosuchbranch"},
		{"add", "n2", "--mac", "52:54:00:00:00:02", "--ip", "10.77.0.12", "--maintenance", "/etc"},
		{"add", "n3", "--mac", "52:54:00:00:00:03", "--ip", "10.77.0.13", "--ref", "nosuchbranch"},
	} {
		r := onesis(t, img, append([]string{"node"}, args...)...)
		if r.code == 0 || !strings.Contains(r.err, "error: node n") {
			t.Errorf("node %s: exit %d, want a refusal\n%s", strings.Join(args, " "), r.code, r.err)
		}
	}
	if l := nodeList(t, img); len(l) != 1 || l["n1"].Ref != "" || l["n1"].Maintenance != "" {
		t.Errorf("refused changes were stored: %+v", l)
	}
	wt := filepath.Join(base, "update")
	must(t, img, "git", "worktree", "add", "-q", "-b", "update", wt)
	must(t, img, "git", "onesis", "node", "set", "n1", "--maintenance", wt, "--ref", "update")
	if n := nodeList(t, img)["n1"]; n.Maintenance != wt || n.Ref != "update" {
		t.Errorf("n1 = %+v", n)
	}
}

// TestNodesUnderTheirBranch (item 8): rollback lists only the nodes that
// boot the rolled-back branch, and images lists each node under the
// branch it boots, not under every branch whose history has its commit.
func TestNodesUnderTheirBranch(t *testing.T) {
	base := t.TempDir()
	img := filepath.Join(base, "image")
	adminRepo(t, img)
	if r := onesis(t, img, "images", "add", "--base", "main", "compute"); r.code != 0 {
		t.Fatal(r.err)
	}
	v1 := strings.TrimSpace(must(t, img, "git", "rev-parse", "HEAD"))
	cwt := filepath.Join(base, "compute")
	must(t, img, "git", "worktree", "add", "-q", cwt, "compute")
	writeTree(t, cwt, map[string]string{"etc/compute.conf": "ib\n"})
	must(t, cwt, "git", "add", "-A")
	must(t, cwt, "git", "onesis", "commit", "-qm", "compute v2")
	c2 := strings.TrimSpace(must(t, cwt, "git", "rev-parse", "HEAD"))
	must(t, img, "git", "onesis", "node", "add", "c1", "--mac", "52:54:00:00:00:31", "--ip", "10.77.0.31", "--ref", "compute")
	must(t, img, "git", "onesis", "node", "add", "m1", "--mac", "52:54:00:00:00:32", "--ip", "10.77.0.32")
	// Both booted: c1 compute's tip, m1 main's (which compute contains).
	must(t, img, "git", "update-ref", "refs/onesis/booted/c1", c2)
	must(t, img, "git", "update-ref", "refs/onesis/booted/m1", v1)

	var vs []struct {
		Branch string
		Nodes  map[string]string
	}
	if err := json.Unmarshal([]byte(must(t, img, "git", "onesis", "images", "--json")), &vs); err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		want := map[string]string{"main": "m1", "compute": "c1"}[v.Branch]
		if len(v.Nodes) != 1 || v.Nodes[want] == "" {
			t.Errorf("images: branch %s lists nodes %v; want only %s", v.Branch, v.Nodes, want)
		}
	}
	r := onesis(t, img, "rollback", "--branch", "compute", "compute~1")
	if r.code != 0 || !strings.Contains(r.out, "node c1 still runs") || strings.Contains(r.out, "node m1") {
		t.Errorf("rollback --branch compute: exit %d; want c1 listed and not m1 (it boots main)\n%s%s", r.code, r.out, r.err)
	}
}

// TestUpgradeInstallsPackages (item 15): the package lists git ignores are
// copied into the upgrade's worktree, so apt finds and fetches a package
// there without an 'apt-get update' (here from a file: repository, as an
// offline maintenance node would from its cache or a local mirror).
func TestUpgradeInstallsPackages(t *testing.T) {
	needRoot(t)
	for _, tool := range []string{"apt-get", "apt-cache", "dpkg-deb"} {
		needTool(t, tool)
	}
	base := t.TempDir()
	// A one-package repository.
	repo := filepath.Join(base, "repo")
	pkg := filepath.Join(base, "pkg")
	writeTree(t, pkg, map[string]string{
		"DEBIAN/control":                    "Package: hello-onesis\nVersion: 1.0\nArchitecture: all\nMaintainer: Test <t@example.invalid>\nDescription: test package\n",
		"usr/share/doc/hello-onesis/README": "hello\n",
	})
	os.MkdirAll(repo, 0o755)
	deb := filepath.Join(repo, "hello-onesis_1.0_all.deb")
	must(t, base, "dpkg-deb", "--root-owner-group", "-b", pkg, deb)
	info, _ := os.Stat(deb)
	sum := strings.Fields(must(t, base, "sha256sum", deb))[0]
	os.WriteFile(filepath.Join(repo, "Packages"), []byte(fmt.Sprintf(
		"Package: hello-onesis\nVersion: 1.0\nArchitecture: all\nMaintainer: Test <t@example.invalid>\nFilename: ./hello-onesis_1.0_all.deb\nSize: %d\nSHA256: %s\nDescription: test package\n\n",
		info.Size(), sum)), 0o644)

	img := filepath.Join(base, "image")
	adminTree(t, img)
	writeTree(t, img, map[string]string{"etc/apt/sources.list": "deb [trusted=yes] file:" + repo + " ./\n"})
	for _, d := range []string{"var/lib/apt/lists/partial", "var/cache/apt/archives/partial", "etc/apt/apt.conf.d", "etc/apt/preferences.d", "etc/apt/sources.list.d"} {
		os.MkdirAll(filepath.Join(img, d), 0o755)
	}
	apt := func(root, tool string, args ...string) result {
		t.Helper()
		cmd := exec.Command(tool, append([]string{"-o", "Dir=" + root, "-o", "Dir::State::status=" + filepath.Join(root, "var/lib/dpkg/status"),
			"-o", "APT::Sandbox::User=root", "-o", "Debug::NoLocking=1",
			// As on a stock Debian (container images often set it true):
			// the list of a file: repository is then a symlink to it.
			"-o", "Acquire::GzipIndexes=false"}, args...)...)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return result{out: string(out), code: code}
	}
	if r := apt(img, "apt-get", "update"); r.code != 0 {
		t.Fatalf("apt-get update in the image: %s", r.out)
	}
	if r := onesis(t, img, "init", "--commit", "-q"); r.code != 0 {
		t.Fatal(r.err)
	}
	if tree := must(t, img, "git", "ls-tree", "-r", "--name-only", "HEAD", "var/lib/apt/lists"); tree != "" {
		t.Fatalf("the package lists are in git: %s", tree)
	}
	if r := onesis(t, img, "upgrade", "start", "u1"); r.code != 0 {
		t.Fatalf("upgrade start: %s", r.err)
	}
	wt := img + "-u1"
	if st := onesis(t, wt, "status"); st.code != 0 {
		t.Errorf("the copied lists show in status: exit %d\n%s", st.code, st.out)
	}
	if r := apt(wt, "apt-cache", "policy", "hello-onesis"); r.code != 0 || !strings.Contains(r.out, "Candidate: 1.0") {
		t.Fatalf("apt-cache policy in the upgrade worktree: exit %d\n%s", r.code, r.out)
	}
	if r := apt(wt, "apt-get", "install", "-y", "--download-only", "hello-onesis"); r.code != 0 || !strings.Contains(r.out, "hello-onesis") {
		t.Fatalf("apt-get install in the upgrade worktree: exit %d\n%s", r.code, r.out)
	}
}
