package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestExportTarNonRoot: a non-root clone exports a tar archive whose
// listing and extracted metadata (owners, modes, devices, links, xattrs,
// ACLs, capabilities) match an archive bsdtar makes from the root-owned
// image itself, an independent checker.
func TestExportTarNonRoot(t *testing.T) {
	needRoot(t)
	needTool(t, "bsdtar")
	needTool(t, "getfattr")
	base, img, home, run := nobodyImage(t)
	asNobody := func(dir string, args ...string) string {
		t.Helper()
		r := run(dir, args...)
		if r.code != 0 {
			t.Fatalf("%v as nobody: exit %d\n%s", args, r.code, r.err)
		}
		return r.err
	}
	asNobody(home, "git", "clone", "-q", "--no-checkout", img, "clone")
	clone := filepath.Join(home, "clone")
	ours := filepath.Join(home, "ours.tar")
	stderr := asNobody(clone, "git", "onesis", "export", "--format=tar", "--rev", "HEAD", "-o", ours)
	if !strings.Contains(stderr, "var/spool/sock/s not archived") {
		t.Errorf("the socket was not reported as skipped:\n%s", stderr)
	}

	// The reference: bsdtar archives the root-owned image directly.
	ref := filepath.Join(base, "ref.tar")
	must(t, img, "bsdtar", "-cf", ref, "--xattrs", "--acls", "--exclude", "./.git", "--exclude", "./.gitmeta", ".")

	// Listings without dates (ours carry the commit time).
	dates := regexp.MustCompile(`^(\S+\s+\d+\s+\d+\s+\d+\s+[\d,\s]+?)\s+\w{3}\s+\d+\s+[\d:]+\s+`)
	listing := func(tarball string) string {
		out := string(runEnvMust(t, base, []string{"LC_ALL=C.UTF-8"}, "bsdtar", "-tv", "--numeric-owner", "-f", tarball))
		var lines []string
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			l = dates.ReplaceAllString(l, "$1 ")
			// bsdtar marks entries it stored an ACL for with "+"; the export
			// carries ACLs as their xattrs instead. The extracted-xattr
			// comparison below checks they are the same ACLs.
			if mode, rest, ok := strings.Cut(l, " "); ok {
				l = strings.TrimSuffix(mode, "+") + " " + rest
			}
			lines = append(lines, strings.Join(strings.Fields(l), " "))
		}
		// Which member of a hard-link group is stored and which links to
		// it depends on walk order; compare the group, not the choice.
		group := map[string]string{}
		var rest []string
		for _, l := range lines {
			if name, target, ok := strings.Cut(l, " link to "); ok {
				f := strings.Fields(name)
				a, b := f[len(f)-1], target
				if b < a {
					a, b = b, a
				}
				group[f[len(f)-1]], group[target] = a+"="+b, a+"="+b
				continue
			}
			rest = append(rest, l)
		}
		for i, l := range rest {
			f := strings.Fields(l)
			if g, ok := group[f[len(f)-1]]; ok {
				rest[i] = strings.Join(append(f[:len(f)-1], "hardlinks:"+g), " ")
			}
		}
		return strings.Join(sortedLines(rest), "\n")
	}
	if a, b := listing(ours), listing(ref); a != b {
		t.Errorf("tar listings differ\n--- export (non-root)\n%s\n--- bsdtar of the image (root)\n%s", a, b)
	}
	// Extract both as root and compare every xattr, ACL and capability.
	dump := func(tarball string) string {
		dir := filepath.Join(base, "x-"+filepath.Base(tarball))
		os.Mkdir(dir, 0o755)
		must(t, dir, "bsdtar", "-xpf", tarball, "--xattrs", "--acls", "--numeric-owner")
		out := must(t, dir, "getfattr", "-R", "-h", "-d", "-m", "-", "--absolute-names", ".")
		// One block per file, in the order getdents gives (creation
		// order on tmpfs, which the two extractions need not share).
		return strings.Join(sortedLines(strings.Split(strings.TrimSpace(out), "\n\n")), "\n\n")
	}
	if a, b := dump(ours), dump(ref); a != b || !strings.Contains(a, "security.capability") || !strings.Contains(a, "system.posix_acl_access") {
		t.Errorf("extracted xattrs differ or lack capabilities/ACLs\n--- export\n%s\n--- reference\n%s", a, b)
	}
	// Reproducible: the same revision gives the same bytes.
	again := filepath.Join(home, "again.tar")
	asNobody(clone, "git", "onesis", "export", "--format=tar", "--rev", "HEAD", "-o", again)
	a, _ := os.ReadFile(ours)
	b, _ := os.ReadFile(again)
	if !bytes.Equal(a, b) {
		t.Error("two exports of the same revision differ")
	}
}

func runEnvMust(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	r := runEnv(t, dir, env, name, args...)
	if r.code != 0 {
		t.Fatalf("%s %s: exit %d\n%s%s", name, strings.Join(args, " "), r.code, r.out, r.err)
	}
	return r.out
}

func sortedLines(l []string) []string {
	out := append([]string(nil), l...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// TestExportTarRecipe runs README's image-tarball recipe as written and
// extracts the archive with bsdtar: the tree that comes out matches the
// image (sockets aside, which tar cannot hold and the export reports, and
// .gitmeta, which the archive leaves out),
// including an xattr whose name holds '=', which a PAX SCHILY.xattr key
// cannot carry.
func TestExportTarRecipe(t *testing.T) {
	needRoot(t)
	needTool(t, "bsdtar")
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	const recipe = "git onesis export --format=tar -o image.tar"
	if !strings.Contains(string(readme), recipe) {
		t.Fatalf("README.md no longer shows %q; update this test with it", recipe)
	}
	img := filepath.Join(t.TempDir(), "image")
	os.Mkdir(img, 0o755)
	fixture(t, img)
	must(t, img, "setfattr", "-n", "user.odd=name", "-v", "v=1", "etc/secret")
	if r := onesis(t, img, "init", "--commit", "-q"); r.code != 0 {
		t.Fatal(r.err)
	}
	want := view(t, img)
	r := runIn(t, img, "sh", "-c", recipe)
	if r.code != 0 {
		t.Fatalf("%s: exit %d\n%s", recipe, r.code, r.err)
	}
	if !strings.Contains(r.err, "var/spool/sock/s not archived") {
		t.Errorf("the socket was not reported: %q", r.err)
	}
	out := t.TempDir()
	must(t, out, "bsdtar", "-xpf", filepath.Join(img, "image.tar"), "--xattrs", "--acls", "--numeric-owner")
	var keep []string
	for _, l := range strings.Split(want, "\n") {
		if !strings.HasPrefix(l, "var/spool/sock/s|") && !strings.HasPrefix(l, ".gitmeta|") {
			keep = append(keep, l)
		}
	}
	sameView(t, "bsdtar -x of the exported tar", view(t, out), strings.Join(keep, "\n"))
}
