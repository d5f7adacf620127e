package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Users of the tests that drop privileges: nobody is the reviewer (its
// group, nogroup, is the reviewers' group), other is any other local user.
const (
	nobodyID = 65534
	otherID  = 4242
)

// adminBase makes a directory every user may traverse (t.TempDir is
// 0700), with a HOME for each test user: nobody's own, and a shared one
// for the other user (its git trusts every directory).
func adminBase(t *testing.T) (base, nobodyHome, otherHome string) {
	t.Helper()
	base, err := os.MkdirTemp("", "onesis-admin-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	os.Chmod(base, 0o755)
	nobodyHome = filepath.Join(base, "nobody")
	otherHome = filepath.Join(base, "other")
	for _, h := range []string{nobodyHome, otherHome} {
		os.Mkdir(h, 0o755)
		os.WriteFile(filepath.Join(h, ".gitconfig"), []byte("[safe]\n\tdirectory = *\n[user]\n\tname = Reviewer\n\temail = r@example.invalid\n"), 0o644)
	}
	os.Chown(nobodyHome, nobodyID, nobodyID)
	os.Chown(filepath.Join(nobodyHome, ".gitconfig"), nobodyID, nobodyID)
	return base, nobodyHome, otherHome
}

// adminTree writes a small image: a secret (etc/shadow 0640 root:shadow),
// a setuid tool, a dpkg database, a kernel for serve, and the image's own
// passwd and group.
func adminTree(t *testing.T, img string) {
	t.Helper()
	writeTree(t, img, map[string]string{
		"etc/passwd":                  "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n",
		"etc/group":                   "root:x:0:\nshadow:x:42:\nnogroup:x:65534:\n",
		"etc/shadow":                  "root:$6$SECRET-HASH:19000::::::\n",
		"etc/motd":                    "v1\n",
		"etc/hostname":                "node\n",
		"etc/fstab":                   "proc /proc proc defaults 0 0\n",
		"usr/bin/tool":                "#!/bin/sh\n",
		"var/lib/dpkg/status":         "Package: tool\nStatus: install ok installed\nArchitecture: all\nVersion: 1.0-1\n",
		"boot/vmlinuz-6.1.0-10-amd64": "KERNEL",
	})
	if os.Geteuid() == 0 {
		if err := os.Chown(filepath.Join(img, "etc/shadow"), 0, 42); err != nil {
			t.Fatal(err)
		}
	}
	chmod(t, filepath.Join(img, "etc/shadow"), 0o640)
	chmod(t, filepath.Join(img, "usr/bin/tool"), 0o4755)
}

// adminRepo writes adminTree at img and commits it with 'git onesis init'.
func adminRepo(t *testing.T, img string) {
	t.Helper()
	adminTree(t, img)
	if r := onesis(t, img, "init", "--commit", "-q"); r.code != 0 {
		t.Fatalf("init: %s", r.err)
	}
}

// secretReadBy reports whether the user uid:gid can read the committed
// etc/shadow out of img's objects.
func secretReadBy(t *testing.T, uid, gid uint32, home, img string) bool {
	t.Helper()
	r := userRun(t, uid, gid, home, "/", "git", "-C", img, "cat-file", "-p", "HEAD:etc/shadow")
	return r.code == 0 || strings.Contains(r.out, "SECRET-HASH")
}

// followHint finds the hint in out that ends with suffix, as
// "(use 'COMMAND' to ...)", and runs COMMAND literally with sh in dir;
// an editor git opens writes a message.
func followHint(t *testing.T, dir, out, suffix string) string {
	t.Helper()
	re := regexp.MustCompile(`'([^']+)'` + regexp.QuoteMeta(suffix))
	m := re.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no hint %q in:\n%s", suffix, out)
	}
	editor := filepath.Join(t.TempDir(), "editor")
	os.WriteFile(editor, []byte("#!/bin/sh\necho 'followed the hint' > \"$1\"\n"), 0o755)
	r := runEnv(t, dir, []string{"GIT_EDITOR=" + editor}, "sh", "-c", m[1])
	if r.code != 0 {
		t.Fatalf("following the hint %q: exit %d\n%s%s", m[1], r.code, r.out, r.err)
	}
	return m[1]
}

// served is a 'git onesis serve' the test started.
type served struct {
	base   string // http://127.0.0.1:PORT
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   chan error // gets Wait's result once it exits
}

// startServe runs 'git onesis serve' on loopback with only HTTP on, in
// img, until the test ends (or the test stops it).
func startServe(t *testing.T, img string) *served {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	// The binary itself, as systemd runs it: `git onesis` would put git in
	// between, and git dies of the SIGTERM it forwards. --init: serve
	// needs an init binary to start; these tests never fetch an initramfs.
	initBin := filepath.Join(t.TempDir(), "onesis-init")
	os.WriteFile(initBin, []byte("#!/bin/sh\n"), 0o755)
	s := &served{base: fmt.Sprintf("http://127.0.0.1:%d", port), stderr: &bytes.Buffer{}, done: make(chan error, 1)}
	s.cmd = exec.Command(filepath.Join(binDir, "git-onesis"), "serve", "--addr", "127.0.0.1", "--http-port", fmt.Sprint(port),
		"--no-dhcp", "--no-tftp", "--no-nfs", "--no-portmap", "--log-format", "json", "--init", initBin)
	s.cmd.Dir = img
	s.cmd.Stderr = s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- s.cmd.Wait() }()
	t.Cleanup(func() {
		if s.cmd.ProcessState == nil {
			s.cmd.Process.Kill()
			<-s.done
		}
	})
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp4", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			return s
		}
	}
	t.Fatalf("serve did not come up:\n%s", s.stderr.String())
	return nil
}

// bootScript fetches a node's boot script from serve.
func bootScript(t *testing.T, base, mac string) (int, string) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(base + "/boot/" + strings.ReplaceAll(mac, ":", "-") + ".ipxe")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// bootsCommit waits (serve reloads the inventory within seconds) until
// the node's boot script names commit, and fails the test otherwise.
func bootsCommit(t *testing.T, base, mac, commit, when string) {
	t.Helper()
	var code int
	var body string
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if code, body = bootScript(t, base, mac); code == 200 && strings.Contains(body, "onesis.commit="+commit) {
			return
		}
	}
	t.Errorf("%s: node %s's boot script does not name %.12s: %d\n%s", when, mac, commit, code, body)
}
