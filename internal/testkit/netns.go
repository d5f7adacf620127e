package testkit

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// NeedRoot skips t, saying why, unless it runs as root with iproute2: the
// network-namespace tests run in CI, which is root.
func NeedRoot(t testing.TB, why string) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root: " + why + " (runs in CI as root)")
	}
	NeedTool(t, "ip", "iproute2")
}

// Run runs a command (bounded to 30 s) and fails t unless it succeeds.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

var nsCounter atomic.Int32

// VethPair creates two network namespaces, "<prefix>-<pid>-<n>-s" and
// "...-c", joined by a veth pair "vs" (server side) and "vc" (client
// side), both up, with the given addresses ("" = none). The namespaces
// are deleted when t ends; nothing outside them is touched.
func VethPair(t testing.TB, prefix, srvCIDR, cliCIDR string) (srv, cli string) {
	t.Helper()
	n := nsCounter.Add(1)
	srv = fmt.Sprintf("%s-%d-%d-s", prefix, os.Getpid(), n)
	cli = fmt.Sprintf("%s-%d-%d-c", prefix, os.Getpid(), n)
	for _, ns := range []string{srv, cli} {
		Run(t, "ip", "netns", "add", ns)
		ns := ns
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		Run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	Run(t, "ip", "-n", srv, "link", "add", "vs", "type", "veth", "peer", "name", "vc", "netns", cli)
	if srvCIDR != "" {
		Run(t, "ip", "-n", srv, "addr", "add", srvCIDR, "dev", "vs")
	}
	if cliCIDR != "" {
		Run(t, "ip", "-n", cli, "addr", "add", cliCIDR, "dev", "vc")
	}
	Run(t, "ip", "-n", srv, "link", "set", "vs", "up")
	Run(t, "ip", "-n", cli, "link", "set", "vc", "up")
	return srv, cli
}

// Helper is the test binary re-executed inside a network namespace (so
// every socket it opens lives there), speaking a line protocol on stdout:
// "READY" once it serves, then whatever lines the test wants.
type Helper struct {
	Ready chan struct{} // closed at "READY"
	Done  chan struct{} // closed when its stdout ends
}

// StartHelper runs `ip netns exec ns <this test binary> -test.run=^run$`
// with env added, hands every stdout line but "READY" to onLine (from one
// goroutine), and waits (30 s at most) for "READY". When t ends the
// helper's stdin is closed and it gets SIGTERM, then SIGKILL after 20 s;
// a helper that does not exit 0 fails t, and its stderr is logged when t
// failed.
func StartHelper(t testing.TB, ns, run string, env []string, onLine func(string)) *Helper {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run=^"+run+"$", "-test.timeout=5m")
	cmd.Env = append(os.Environ(), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &Helper{Ready: make(chan struct{}), Done: make(chan struct{})}
	go func() {
		defer close(h.Done)
		sc := bufio.NewScanner(stdout)
		ready := false
		for sc.Scan() {
			line := sc.Text()
			if line == "READY" && !ready {
				ready = true
				close(h.Ready)
				continue
			}
			if onLine != nil {
				onLine(line)
			}
		}
	}()
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-h.Done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
		}
		if err := cmd.Wait(); err != nil {
			t.Errorf("helper in %s: %v (a clean shutdown exits 0)", ns, err)
		}
		if t.Failed() {
			t.Logf("helper stderr:\n%s", stderr.String())
		}
	})
	select {
	case <-h.Ready:
	case <-h.Done:
		cmd.Wait()
		t.Fatalf("helper in %s exited before it was ready:\n%s", ns, stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("helper in %s not ready after 30s:\n%s", ns, stderr.String())
	}
	return h
}

// ServeUntilStopped is the body of a helper process (see StartHelper): it
// prints "READY", runs serve, and on SIGTERM, SIGINT or the end of stdin
// calls stop and waits (15 s at most) for serve to return. It returns the
// process exit code: 0 after a clean stop, 1 when serve failed or did not
// return.
func ServeUntilStopped(serve func() error, stop func() error) int {
	fmt.Println("READY")
	errc := make(chan error, 1)
	go func() { errc <- serve() }()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	stdinEOF := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(stdinEOF) }()
	select {
	case <-sig:
	case <-stdinEOF:
	case err := <-errc:
		fmt.Fprintln(os.Stderr, "serve:", err)
		return 1
	}
	stop()
	select {
	case err := <-errc:
		if err != nil {
			fmt.Fprintln(os.Stderr, "serve after stop:", err)
			return 1
		}
	case <-time.After(15 * time.Second):
		fmt.Fprintln(os.Stderr, "serve did not return after stop")
		return 1
	}
	return 0
}
