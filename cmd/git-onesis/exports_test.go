package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestExports: the trees 'git onesis exports --prepare' builds for a
// site's knfsd carry every owner, mode, device, fifo, socket, empty
// directory, hard link, xattr and capability of the image (find and
// getfattr are the independent checkers), hide the deny list's secrets,
// leave the repository's index and work tree alone; the exports lines name
// every node; --prune drops trees no node uses.
func TestExports(t *testing.T) {
	needRoot(t)
	for _, tool := range []string{"setcap", "setfattr", "setfacl", "getfattr"} {
		needTool(t, tool)
	}
	base := t.TempDir()
	img := filepath.Join(base, "image")
	os.Mkdir(img, 0o755)
	fixture(t, img)
	if r := onesis(t, img, "init", "--commit", "-q"); r.code != 0 {
		t.Fatalf("init: %s", r.err)
	}
	must(t, img, "git", "onesis", "node", "add", "n1", "--mac", "52:54:00:00:00:01", "--ip", "10.77.0.11")
	must(t, img, "git", "onesis", "node", "add", "n2", "--mac", "52:54:00:00:00:02", "--ip", "10.77.0.12")
	head := strings.TrimSpace(must(t, img, "git", "rev-parse", "HEAD"))
	dir := filepath.Join(base, "exp")

	r := onesis(t, img, "exports", "--dir", dir)
	if r.code != 1 || !strings.Contains(r.err, head[:12]+" (branch ") || !strings.Contains(r.err, "--prepare") ||
		strings.Count(r.out, "\n") != 1 {
		t.Fatalf("exports before --prepare: exit %d\n%s%s", r.code, r.out, r.err)
	}
	r = onesis(t, img, "exports", "--dir", dir, "--prepare")
	tree := filepath.Join(dir, "c", head)
	fsid := head[:8] + "-" + head[8:12] + "-" + head[12:16] + "-" + head[16:20] + "-" + head[20:32]
	opts := "(ro,no_root_squash,no_subtree_check,fsid=" + fsid + ")"
	wantLine := tree + " 10.77.0.11" + opts + " 10.77.0.12" + opts + "\n"
	if r.code != 0 || !strings.HasSuffix(r.out, wantLine) || !strings.Contains(r.err, "1 secrets hidden") {
		t.Fatalf("exports --prepare: exit %d\n%s%s\nwant the line %s", r.code, r.out, r.err, wantLine)
	}
	if s := must(t, img, "git", "status", "--porcelain"); s != "" {
		t.Errorf("exports changed the repository's work tree or index:\n%s", s)
	}

	// Independent checkers: find and getfattr see the same tree, except
	// .gitmeta and .gitignore (not part of a node's root, hidden by the
	// embedded server too) and the denied etc/shadow.
	strip := func(listing string) string {
		var keep []string
		for _, l := range strings.Split(listing, "\n") {
			if !strings.HasPrefix(l, ".gitmeta|") && !strings.HasPrefix(l, ".gitignore|") && !strings.HasPrefix(l, "etc/shadow|") {
				keep = append(keep, l)
			}
		}
		return strings.Join(keep, "\n")
	}
	if a, b := strip(findListing(t, img)), strip(findListing(t, tree)); a != b {
		t.Errorf("find sees a different tree:\nimage:\n%s\nexport:\n%s", a, b)
	}
	if a, b := xattrListing(t, img), xattrListing(t, tree); a != b {
		t.Errorf("getfattr sees different xattrs:\nimage:\n%s\nexport:\n%s", a, b)
	}
	if fi, err := os.Lstat(filepath.Join(tree, "etc/shadow")); err != nil || fi.Size() != 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("etc/shadow in the export is not an empty 0600 placeholder: %v %v", fi, err)
	}
	for _, name := range []string{".gitmeta", ".gitignore"} {
		if _, err := os.Lstat(filepath.Join(img, name)); err != nil {
			t.Fatalf("the image has no %s to leave out: %v", name, err)
		}
		if _, err := os.Lstat(filepath.Join(tree, name)); err == nil {
			t.Errorf("%s is in the export; the embedded server hides it", name)
		}
	}
	if i1, _ := inode(t, filepath.Join(tree, "usr/lib/libfoo.so.1")); true {
		if i2, _ := inode(t, filepath.Join(tree, "usr/lib/libfoo-hard.so")); i1 != i2 {
			t.Error("the hard-link pair is two files in the export")
		}
	}

	// A second run has nothing to build; --json and --output agree.
	r = onesis(t, img, "exports", "--dir", dir, "--prepare", "--json")
	var js struct {
		Dir     string `json:"dir"`
		Exports []struct {
			Commit  string   `json:"commit"`
			Present bool     `json:"present"`
			Clients []string `json:"clients"`
		} `json:"exports"`
	}
	if err := json.Unmarshal([]byte(r.out), &js); err != nil || r.code != 0 || strings.Contains(r.err, "materialising") ||
		js.Dir != dir || len(js.Exports) != 1 || js.Exports[0].Commit != head || !js.Exports[0].Present || len(js.Exports[0].Clients) != 2 {
		t.Errorf("exports --json: exit %d %v\n%s%s", r.code, err, r.out, r.err)
	}
	out := filepath.Join(base, "onesis.exports")
	if r = onesis(t, img, "exports", "--dir", dir, "--output", out); r.code != 0 {
		t.Fatalf("exports --output: %s", r.err)
	}
	if b, _ := os.ReadFile(out); !strings.HasSuffix(string(b), wantLine) {
		t.Errorf("%s:\n%s", out, b)
	}

	// A new commit: its tree is built, the old one pruned.
	unix.Chmod(filepath.Join(img, "usr/bin/su"), 0o4750)
	must(t, img, "git", "onesis", "commit", "-qam", "su 4750")
	head2 := strings.TrimSpace(must(t, img, "git", "rev-parse", "HEAD"))
	r = onesis(t, img, "exports", "--dir", dir, "--prepare", "--prune")
	if r.code != 0 || !strings.Contains(r.out, filepath.Join(dir, "c", head2)+" ") || strings.Contains(r.out, head) ||
		!strings.Contains(r.err, "removed "+tree) {
		t.Fatalf("exports after a commit: exit %d\n%s%s", r.code, r.out, r.err)
	}
	wantMode(t, filepath.Join(dir, "c", head2, "usr/bin/su"), 0o4750)
	if _, err := os.Stat(tree); err == nil {
		t.Error("the old tree is still there after --prune")
	}

	// Bad input: a usage error, not a half-written file.
	if r = onesis(t, img, "exports", "--dir", dir, "--client", "a b"); r.code != 129 {
		t.Errorf("--client 'a b': exit %d %s", r.code, r.err)
	}
	if r = onesis(t, img, "exports", "--dir", dir, "--options", "ro,fsid=1"); r.code != 129 {
		t.Errorf("--options with fsid: exit %d %s", r.code, r.err)
	}
}
