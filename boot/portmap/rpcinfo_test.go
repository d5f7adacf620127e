package portmap

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/onesis/git-onesis/internal/testkit"
)

const helperEnv = "ONESIS_PORTMAP_HELPER"

// TestHelperProcess is the portmapper subprocess of TestRpcinfo (it binds
// port 111 inside the test's own network namespace).
func TestHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		t.Skip("helper process for TestRpcinfo")
	}
	u, err := net.ListenPacket("udp", "127.0.0.1:111")
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	l, err := net.Listen("tcp", "127.0.0.1:111")
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	fmt.Println("READY")
	Serve(context.Background(), u, l, 2049, 2049, nil)
	os.Exit(0)
}

// TestRpcinfo asks our portmapper with the real rpcinfo(8), inside a
// network namespace the test creates.
func TestRpcinfo(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root: creates a network namespace to bind port 111")
	}
	rpcinfo := testkit.NeedTool(t, "rpcinfo", "rpcbind")
	testkit.NeedFile(t, "/etc/services", "netbase") // rpcinfo resolves "sunrpc" there
	ns := fmt.Sprintf("onesis-pmap-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	if out, err := exec.Command("ip", "-n", ns, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("ip link set lo up: %v: %s", err, out)
	}
	cmd := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case ready <- sc.Text():
			default:
			}
		}
		cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGKILL)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
		}
	})
	select {
	case line := <-ready:
		if line != "READY" {
			t.Fatalf("portmap subprocess: %s", line)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("portmap subprocess not ready")
	}
	runNS := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		b, err := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
		return string(b), err
	}
	got, err := runNS(rpcinfo, "-p", "127.0.0.1")
	if err != nil {
		t.Fatalf("rpcinfo -p: %v\n%s", err, got)
	}
	for _, want := range [][]string{{"100000", "2", "tcp", "111"}, {"100000", "2", "udp", "111"},
		{"100003", "3", "tcp", "2049"}, {"100005", "3", "tcp", "2049"}} {
		found := false
		for _, line := range strings.Split(got, "\n") {
			if f := strings.Fields(line); len(f) >= 4 && strings.Join(f[:4], " ") == strings.Join(want, " ") {
				found = true
			}
		}
		if !found {
			t.Errorf("rpcinfo -p lacks %v:\n%s", want, got)
		}
	}
	for _, proto := range []string{"-u", "-t"} {
		got, err := runNS(rpcinfo, proto, "127.0.0.1", "100000", "2")
		if err != nil || !strings.Contains(got, "ready and waiting") {
			t.Errorf("rpcinfo %s 127.0.0.1 100000 2: %v\n%s", proto, err, got)
		}
	}
}
