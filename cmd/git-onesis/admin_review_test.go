package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onesis/git-onesis/internal/testkit"
	"time"

	"golang.org/x/sys/unix"
)

// TestLogSecurityMatchesDiff (item 9): log --security keeps what diff
// --security keeps for the same commit, content changes under etc/pam.d
// and etc/sudoers.d included.
func TestLogSecurityMatchesDiff(t *testing.T) {
	img := t.TempDir()
	adminTree(t, img)
	writeTree(t, img, map[string]string{"etc/pam.d/sshd": "auth required pam_unix.so\n"})
	if r := onesis(t, img, "init", "--commit", "-q"); r.code != 0 {
		t.Fatal(r.err)
	}
	writeTree(t, img, map[string]string{
		"etc/pam.d/sshd":         "auth sufficient pam_permit.so\n",
		"etc/sudoers.d/backdoor": "ALL ALL=(ALL) NOPASSWD: ALL\n",
		"etc/motd":               "not security\n",
	})
	must(t, img, "git", "add", "-A")
	must(t, img, "git", "onesis", "commit", "-qm", "pam and sudo")
	d := onesis(t, img, "diff", "--security", "HEAD~1", "HEAD")
	l := onesis(t, img, "log", "--security", "-n1")
	for _, want := range []string{"etc/pam.d/sshd: content changed", "added etc/sudoers.d/backdoor (content)"} {
		if !strings.Contains(d.out, want) {
			t.Errorf("diff --security lacks %q:\n%s", want, d.out)
		}
		if !strings.Contains(l.out, want) {
			t.Errorf("log --security lacks %q, which diff --security reports:\n%s", want, l.out)
		}
	}
	if strings.Contains(l.out, "etc/motd") {
		t.Errorf("log --security shows etc/motd:\n%s", l.out)
	}
	var js []jsonLogCommit
	if err := json.Unmarshal([]byte(must(t, img, "git", "onesis", "log", "--security", "--json", "-n1")), &js); err != nil || len(js) != 1 || len(js[0].Content) != 2 {
		t.Errorf("log --security --json: %v %+v", err, js)
	}
}

// TestVerifySignatureReported (item 10): a commit signed with a key that
// is not among the allowed signers fails --require-signature, and every
// output says so: no "nothing to report", JSON "clean": false with a
// signature object, porcelain an S record.
func TestVerifySignatureReported(t *testing.T) {
	needTool(t, "ssh-keygen")
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"etc/motd": "v1\n"})
	must(t, dir, "git", "init", "-q")
	key, other := testkit.SSHKey(t), testkit.SSHKey(t)
	testkit.SSHSigning(t, dir, key, other) // signs with key; only other is allowed
	must(t, dir, "git", "onesis", "init", "-q")
	must(t, dir, "git", "add", "-A")
	must(t, dir, "git", "commit", "-q", "-S", "-m", "signed by an unknown key")

	r := onesis(t, dir, "verify", "--require-signature")
	if r.code != 1 || strings.Contains(r.out, "nothing to report") || !strings.Contains(r.out, "NO valid signature") {
		t.Errorf("verify --require-signature: exit %d\n%s%s", r.code, r.out, r.err)
	}
	r = onesis(t, dir, "verify", "--require-signature", "--json")
	var js struct {
		Clean     bool `json:"clean"`
		Signature *struct {
			Commit string `json:"commit"`
			Valid  bool   `json:"valid"`
		} `json:"signature"`
	}
	if err := json.Unmarshal([]byte(r.out), &js); err != nil || r.code != 1 || js.Clean || js.Signature == nil || js.Signature.Valid || len(js.Signature.Commit) != 40 {
		t.Errorf("verify --require-signature --json: exit %d, %v\n%s", r.code, err, r.out)
	}
	r = onesis(t, dir, "verify", "--require-signature", "--porcelain")
	if r.code != 1 || !strings.HasPrefix(r.out, "S invalid ") {
		t.Errorf("verify --require-signature --porcelain: exit %d %q", r.code, r.out)
	}
	// The allowed key: valid, and said so.
	must(t, dir, "git", "config", "user.signingkey", other)
	must(t, dir, "git", "commit", "-q", "-S", "--amend", "--no-edit")
	r = onesis(t, dir, "verify", "--require-signature", "--json")
	if err := json.Unmarshal([]byte(r.out), &js); err != nil || r.code != 0 || !js.Clean || js.Signature == nil || !js.Signature.Valid {
		t.Errorf("verify of a good signature: exit %d %v\n%s%s", r.code, err, r.out, r.err)
	}
}

// TestNonRootReview (item 11 and issue 16): a reviewer without root, in a
// clone of an image with devices and a mode-0000 file, sees no drift from
// what only root can apply (owners, devices), diff against the work tree
// does not drown in "owner root -> nobody", apply -v lists only what it
// did, and status and the tar export work on the 0000 file.
func TestNonRootReview(t *testing.T) {
	needRoot(t)
	base, nobodyHome, _ := adminBase(t)
	img := filepath.Join(base, "image")
	adminTree(t, img)
	chmod(t, filepath.Join(img, "etc/shadow"), 0)
	os.MkdirAll(filepath.Join(img, "dev"), 0o755)
	if err := unix.Mknod(filepath.Join(img, "dev/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Fatal(err)
	}
	chmod(t, filepath.Join(img, "dev/null"), 0o666)
	if err := unix.Mknod(filepath.Join(img, "dev/sda"), unix.S_IFBLK|0o660, int(unix.Mkdev(8, 0))); err != nil {
		t.Fatal(err)
	}
	if r := onesis(t, img, "init", "--commit", "-q", "--reviewers", "nogroup"); r.code != 0 {
		t.Fatal(r.err)
	}
	for i := 2; i <= 4; i++ {
		writeTree(t, img, map[string]string{"etc/motd": strings.Repeat("v", i) + "\n"})
		must(t, img, "git", "onesis", "commit", "-qam", "motd")
	}
	must(t, img, "chown", "1000:1000", "etc/hostname")
	must(t, img, "git", "onesis", "commit", "-qm", "hostname to uid 1000")

	nb := func(dir string, args ...string) result {
		t.Helper()
		return userRun(t, nobodyID, nobodyID, nobodyHome, dir, args...)
	}
	if r := nb(nobodyHome, "git", "clone", "-q", img, "clone"); r.code != 0 {
		t.Fatal(r.err)
	}
	clone := filepath.Join(nobodyHome, "clone")
	if r := nb(clone, "git", "onesis", "install"); r.code != 0 {
		t.Fatalf("install: %d\n%s", r.code, r.err)
	}
	for _, cmd := range []string{"status", "verify"} {
		r := nb(clone, "git", "onesis", cmd)
		if r.code != 0 || strings.Contains(r.out, "git onesis apply") || !strings.Contains(r.out, "nothing to report") {
			t.Errorf("%s as non-root: exit %d\n%s%s", cmd, r.code, r.out, r.err)
		}
	}
	d := nb(clone, "git", "onesis", "diff", "HEAD~3")
	if d.code != 0 || strings.Contains(d.out, "owner") && strings.Contains(d.out, "nobody") || strings.Contains(d.out, "dev/null") ||
		!strings.Contains(d.out, "etc/hostname: owner root -> 1000") || len(strings.Split(strings.TrimSpace(d.out), "\n")) > 2 {
		t.Errorf("diff HEAD~3 as non-root: want only the hostname's real owner change:\n%s%s", d.out, d.err)
	}
	a := nb(clone, "git", "onesis", "apply", "-v")
	if a.code != 0 || strings.Contains(a.out, "chown") || strings.Contains(a.out, "mknod") {
		t.Errorf("apply -v as non-root lists changes it did not make: exit %d\n%s%s", a.code, a.out, a.err)
	}
	tarball := filepath.Join(nobodyHome, "wt.tar")
	if r := nb(clone, "git", "onesis", "export", "--format=tar", "-o", tarball); r.code != 0 {
		t.Errorf("export --format=tar of the work tree with a 0000 file: exit %d\n%s", r.code, r.err)
	}
	// A clone applied before the fix (or a chmod 0): status says how to
	// get the file readable again, and that works.
	// (git compares whole seconds of ctime: let one pass since the index
	// was last refreshed, as it would for an admin.)
	var st unix.Stat_t
	unix.Stat(filepath.Join(clone, ".git/index"), &st)
	for time.Now().Unix() <= st.Ctim.Sec {
		time.Sleep(50 * time.Millisecond)
	}
	chmod(t, filepath.Join(clone, "etc/shadow"), 0)
	r := nb(clone, "git", "onesis", "status")
	if r.code != 1 || !strings.Contains(r.out, "'git onesis apply' gives the owner read access back") {
		t.Errorf("status with an unreadable 0000 file: exit %d\n%s", r.code, r.out)
	}
	nb(clone, "git", "onesis", "apply", "-q")
	if r := nb(clone, "git", "onesis", "status"); r.code != 0 {
		t.Errorf("status after apply: exit %d\n%s", r.code, r.out)
	}
}
