package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStatusHintsWork (issue 22, item 4): every hint status prints does
// what it says when followed literally: after it, status is clean and the
// commit holds the change.
func TestStatusHintsWork(t *testing.T) {
	img := t.TempDir()
	adminRepo(t, img)
	const commitHint = " to record and commit the tree as it is"
	status := func(want int) string {
		t.Helper()
		r := onesis(t, img, "status")
		if r.code != want {
			t.Fatalf("status: exit %d, want %d\n%s%s", r.code, want, r.out, r.err)
		}
		return r.out
	}

	// An edit and a chmod: the commit hint commits both.
	writeTree(t, img, map[string]string{"etc/motd": "edited\n"})
	chmod(t, filepath.Join(img, "usr/bin/tool"), 0o700)
	hint := followHint(t, img, status(1), commitHint)
	status(0)
	if got := must(t, img, "git", "show", "HEAD:etc/motd"); got != "edited\n" {
		t.Errorf("after %q the commit has etc/motd %q", hint, got)
	}
	if gm := must(t, img, "git", "show", "HEAD:.gitmeta"); !strings.Contains(gm, "./usr/bin/tool  mode=0700") {
		t.Errorf("after %q the commit lacks the chmod", hint)
	}

	// A new file and a chmod.
	writeTree(t, img, map[string]string{"etc/new.conf": "new\n"})
	chmod(t, filepath.Join(img, "etc/motd"), 0o600)
	hint = followHint(t, img, status(1), commitHint)
	status(0)
	if gm := must(t, img, "git", "show", "HEAD:.gitmeta"); !strings.Contains(gm, "./etc/new.conf  mode=0644") || !strings.Contains(gm, "./etc/motd  mode=0600") {
		t.Errorf("after %q the commit lacks the new file or the chmod:\n%s", hint, gm)
	}

	// A chmod alone: the apply hint restores it, the commit hint keeps it.
	chmod(t, filepath.Join(img, "etc/hostname"), 0o666)
	followHint(t, img, status(1), " to restore the recorded metadata")
	status(0)
	wantMode(t, filepath.Join(img, "etc/hostname"), 0o644)
	chmod(t, filepath.Join(img, "etc/hostname"), 0o600)
	followHint(t, img, status(1), commitHint)
	status(0)
	if gm := must(t, img, "git", "show", "HEAD:.gitmeta"); !strings.Contains(gm, "./etc/hostname  mode=0600") {
		t.Errorf("the metadata-only commit lacks the chmod")
	}
}

// TestSysimageHintWorks (issue 22, item 3): following sysimage's closing
// hint literally commits the whole transform (links, the .default
// originals, the state file and a new etc/sysimage.conf), and the image
// is clean afterwards.
func TestSysimageHintWorks(t *testing.T) {
	img := t.TempDir()
	adminRepo(t, img)
	// The configuration is new: the admin just wrote it.
	writeTree(t, img, map[string]string{"etc/sysimage.conf": "LINKFILE /etc/hostname\nLINKFILE /etc/fstab\nRAMSIZE 32m\n"})
	r := onesis(t, img, "sysimage")
	if r.code != 0 {
		t.Fatalf("sysimage: exit %d\n%s%s", r.code, r.out, r.err)
	}
	hint := followHint(t, img, strings.ReplaceAll(r.out, "\n", " "), ".")
	if st := onesis(t, img, "status"); st.code != 0 {
		t.Fatalf("status after following %q: exit %d\n%s", hint, st.code, st.out)
	}
	tree := must(t, img, "git", "ls-tree", "-r", "HEAD")
	for _, want := range []string{
		"120000 blob", "\tetc/hostname\n", "\tetc/hostname.default\n", "\tetc/fstab.default\n",
		"\tetc/sysimage.conf\n", "\tetc/onesis/sysimage.state\n",
	} {
		if !strings.Contains(tree, want) {
			t.Errorf("after %q the commit lacks %q:\n%s", hint, want, tree)
		}
	}
	if gm := must(t, img, "git", "show", "HEAD:.gitmeta"); !strings.Contains(gm, "./etc/fstab  mode=0777  uid=") || !strings.Contains(gm, "link=/ram/etc/fstab") || !strings.Contains(gm, "./ram  mode=0755") {
		t.Errorf("the committed .gitmeta lacks the links or /ram:\n%s", gm)
	}
	if _, err := os.Lstat(filepath.Join(img, "etc/fstab.default")); err != nil {
		t.Error(err)
	}
}
