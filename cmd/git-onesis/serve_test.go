package main

import (
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServeCommand runs the real binary on loopback with only HTTP on (the
// other services need root and a namespace; they are covered by their own
// packages and the demo), fetches a boot script and a kernel, and checks
// that SIGTERM shuts it down cleanly with exit 0.
func TestServeCommand(t *testing.T) {
	img := t.TempDir()
	must(t, img, "git", "init", "-q")
	writeConf(t, img, "boot/vmlinuz-6.1.0-10-amd64", "KERNEL")
	must(t, img, "git", "add", "-A")
	must(t, img, "git", "commit", "-q", "-m", "image")
	head := strings.TrimSpace(must(t, img, "git", "rev-parse", "HEAD"))
	must(t, img, "git", "onesis", "node", "add", "n1", "--mac", "52:54:00:00:00:01", "--ip", "10.77.0.11")

	s := startServe(t, img)
	base, stderr, done, cmd := s.base, s.stderr, s.done, s.cmd
	client := &http.Client{Timeout: 5 * time.Second}
	if code, body := bootScript(t, base, "52:54:00:00:00:01"); code != 200 || !strings.Contains(body, "onesis.commit="+head) {
		t.Errorf("script: %d\n%s", code, body)
	}
	if got := strings.TrimSpace(must(t, img, "git", "rev-parse", "refs/onesis/booted/n1")); got != head {
		t.Errorf("booted ref %s, want %s", got, head)
	}
	resp, err := client.Get(base + "/c/" + head + "/kernel")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "KERNEL" {
		t.Errorf("kernel: %d %q", resp.StatusCode, body)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve exited with %v after SIGTERM\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("serve did not stop after SIGTERM\n%s", stderr.String())
	}
	for _, want := range []string{`"msg":"serve: ready"`, `"msg":"serve: shutting down"`, `"node":"n1"`} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("logs lack %s:\n%s", want, stderr.String())
		}
	}
	if st := must(t, img, "git", "status", "--porcelain"); st != "" {
		t.Errorf("serve changed the work tree: %q", st)
	}
}

func TestServeConfigErrors(t *testing.T) {
	img := t.TempDir()
	must(t, img, "git", "init", "-q")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"serve", "--iface", "nosuch0", "--no-dhcp", "--no-tftp", "--no-nfs", "--no-portmap"}, 128, `fatal: --iface: no network interface "nosuch0"`},
		{[]string{"serve", "--addr", "banana"}, 129, "--addr: \"banana\" is not an IP address"},
		{[]string{"serve", "--addr", "127.0.0.1", "--http-port", "2049", "--no-dhcp", "--no-tftp", "--no-portmap"}, 128, "--nfs-port: port 2049 is already used by --http-port"},
		{[]string{"serve", "--http-port", "0"}, 129, "--http-port: 0 is not a port number"},
		{[]string{"serve", "extra"}, 129, "serve takes no arguments"},
		{[]string{"serve", "--tftp-max", "0"}, 129, "--tftp-max: 0 is not a number of transfers"},
		{[]string{"serve", "--prune-every", "1s", "--addr", "127.0.0.1", "--no-dhcp", "--no-tftp", "--no-portmap"}, 128, "--prune-every: 1s is too short"},
		{[]string{"serve", "--verify-rate", "fast"}, 129, `--verify-rate: "fast" is not a rate in bytes per second`},
	} {
		r := onesis(t, img, tc.args...)
		if r.code != tc.code || !strings.Contains(r.err, tc.want) {
			t.Errorf("git onesis %s: exit %d %q; want %d %q", strings.Join(tc.args, " "), r.code, r.err, tc.code, tc.want)
		}
	}
	must(t, img, "git", "config", "onesis.serve.verifyRate", "10mb")
	r := onesis(t, img, "serve", "--addr", "127.0.0.1", "--no-dhcp", "--no-tftp", "--no-portmap")
	if r.code != 128 || !strings.Contains(r.err, `fatal: onesis.serve.verifyRate: "10mb" is not a rate`) {
		t.Errorf("a bad onesis.serve.verifyRate: exit %d %q", r.code, r.err)
	}
}
