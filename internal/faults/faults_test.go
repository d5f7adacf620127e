package faults

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/onesis/git-onesis/internal/bootsim"
	"github.com/onesis/git-onesis/internal/testkit"
)

const (
	nClients = 20
	kver     = "6.1.0-10-amd64"
	srvIP    = "10.77.0.1"
)

// clientMAC and clientIP are node i's (1-based) addresses.
func clientMAC(i int) string { return fmt.Sprintf("52:54:00:fa:00:%02x", i) }
func clientIP(i int) string  { return fmt.Sprintf("10.77.0.%d", 100+i) }

// lab is one test's world: an image repository with 20 nodes in its
// inventory, a server namespace (bridge br0 at 10.77.0.1, serve on it) and
// a client namespace (one veth per node, its end on br0). Two namespaces,
// because an address of the namespace itself would be reached over lo,
// past the bridge and any netem on it.
type lab struct {
	t          *testing.T
	bin, repo  string
	state      string
	srvNS      string
	iface      string // serve's interface: br0, or srv0 behind impairLink
	cliNS      string
	kernelSize int

	mu    sync.Mutex
	serve *exec.Cmd
	done  chan struct{}
	logs  *syncBuffer
}

type syncBuffer = testkit.Buffer

func run(t *testing.T, dir string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// newLab builds git-onesis, the image repository and both namespaces.
func newLab(t *testing.T, kernelSize int) *lab {
	if os.Getuid() != 0 {
		t.Skip("needs root: creates network namespaces, a bridge, veths and netem qdiscs, and binds ports 67 and 69 (CI runs as root)")
	}
	for _, tool := range []string{"ip", "tc", "git", "go", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed (CI installs iproute2, curl, git and Go): %v", tool, err)
		}
	}
	for _, f := range []string{"/usr/lib/ipxe/undionly.kpxe"} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("%s missing (CI installs the ipxe package): %v", f, err)
		}
	}
	l := &lab{t: t, kernelSize: kernelSize, logs: &syncBuffer{}, iface: "br0"}
	bindir := t.TempDir()
	l.bin = filepath.Join(bindir, "git-onesis")
	run(t, "", "go", "build", "-o", l.bin, "github.com/onesis/git-onesis/cmd/git-onesis")
	os.WriteFile(filepath.Join(bindir, "onesis-init"), []byte("#!/bin/sh\n# never run: the simulated nodes execute nothing\n"), 0o755)
	t.Setenv("PATH", bindir+":"+os.Getenv("PATH"))
	for k, v := range map[string]string{"GIT_AUTHOR_NAME": "faults", "GIT_AUTHOR_EMAIL": "faults@example.invalid",
		"GIT_COMMITTER_NAME": "faults", "GIT_COMMITTER_EMAIL": "faults@example.invalid"} {
		t.Setenv(k, v)
	}

	l.repo, _ = filepath.EvalSymlinks(t.TempDir())
	l.state = t.TempDir()
	run(t, l.repo, "git", "init", "-q", "-b", "main")
	os.MkdirAll(filepath.Join(l.repo, "lib/modules", kver), 0o755)
	os.WriteFile(filepath.Join(l.repo, "lib/modules", kver, "modules.dep"), nil, 0o644)
	os.WriteFile(filepath.Join(l.repo, "etc-motd"), []byte("fault image\n"), 0o644)
	l.commitKernel("v1")
	for i := 1; i <= nClients; i++ {
		run(t, l.repo, l.bin, "node", "add", fmt.Sprintf("n%d", i), "--mac", clientMAC(i), "--ip", clientIP(i))
	}

	id := os.Getpid()
	l.srvNS, l.cliNS = fmt.Sprintf("onesis-fs-%d", id), fmt.Sprintf("onesis-fc-%d", id)
	for _, ns := range []string{l.srvNS, l.cliNS} {
		run(t, "", "ip", "netns", "add", ns)
		ns := ns
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		run(t, "", "ip", "-n", ns, "link", "set", "lo", "up")
	}
	// Each client address leaves through its own veth (a rule per
	// address) and answers ARP only there.
	run(t, "", "ip", "netns", "exec", l.cliNS, "sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=1",
		"net.ipv4.conf.all.arp_announce=2", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0",
		"net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
	run(t, "", "ip", "-n", l.srvNS, "link", "add", "br0", "type", "bridge")
	run(t, "", "ip", "-n", l.srvNS, "addr", "add", srvIP+"/24", "dev", "br0")
	run(t, "", "ip", "-n", l.srvNS, "link", "set", "br0", "up")
	var batch strings.Builder
	for i := 1; i <= nClients; i++ {
		fmt.Fprintf(&batch, "link add p%d netns %s type veth peer name c%d netns %s\n", i, l.srvNS, i, l.cliNS)
	}
	os.WriteFile(filepath.Join(l.state, "links.batch"), []byte(batch.String()), 0o644)
	run(t, "", "ip", "-batch", filepath.Join(l.state, "links.batch"))
	batch.Reset()
	var cb strings.Builder
	for i := 1; i <= nClients; i++ {
		fmt.Fprintf(&batch, "link set p%d master br0\nlink set p%d up\n", i, i)
		fmt.Fprintf(&cb, "link set c%d address %s\naddr add %s/24 dev c%d noprefixroute\nlink set c%d up\n"+
			"rule add from %s table %d\nroute add 10.77.0.0/24 dev c%d src %s table %d\n",
			i, clientMAC(i), clientIP(i), i, i, clientIP(i), 100+i, i, clientIP(i), 100+i)
	}
	os.WriteFile(filepath.Join(l.state, "srv.batch"), []byte(batch.String()), 0o644)
	os.WriteFile(filepath.Join(l.state, "cli.batch"), []byte(cb.String()), 0o644)
	run(t, "", "ip", "-n", l.srvNS, "-batch", filepath.Join(l.state, "srv.batch"))
	run(t, "", "ip", "-n", l.cliNS, "-batch", filepath.Join(l.state, "cli.batch"))
	t.Cleanup(l.stopServe)
	return l
}

// commitKernel writes a new random kernel of l.kernelSize bytes with tag
// in it and commits it on the checked-out branch; it returns the commit.
func (l *lab) commitKernel(tag string) string {
	b := make([]byte, l.kernelSize)
	rand.Read(b)
	copy(b, "KERNEL "+tag+"\n")
	if err := os.MkdirAll(filepath.Join(l.repo, "boot"), 0o755); err != nil {
		l.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(l.repo, "boot", "vmlinuz-"+kver), b, 0o644); err != nil {
		l.t.Fatal(err)
	}
	run(l.t, l.repo, "git", "add", "-A")
	run(l.t, l.repo, "git", "commit", "-q", "-m", "kernel "+tag)
	return run(l.t, l.repo, "git", "rev-parse", "HEAD")
}

// startServe starts `git onesis serve` in the server namespace and waits
// until HTTP answers.
func (l *lab) startServe() {
	l.t.Helper()
	cmd := exec.Command("ip", "netns", "exec", l.srvNS, l.bin, "serve", "--iface", l.iface,
		"--state-dir", l.state, "--init", filepath.Join(filepath.Dir(l.bin), "onesis-init"), "--no-ra")
	cmd.Dir = l.repo
	cmd.Stdout, cmd.Stderr = l.logs, l.logs
	if err := cmd.Start(); err != nil {
		l.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	l.mu.Lock()
	l.serve, l.done = cmd, done
	l.mu.Unlock()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		select {
		case <-done:
			l.t.Fatalf("serve exited at start:\n%s", l.logs.String())
		default:
		}
		if _, err := l.inSrv("curl", "-sf", "--max-time", "2", "-o", "/dev/null", "http://"+srvIP+":8080/status"); err == nil {
			return
		}
	}
	l.t.Fatalf("serve did not answer HTTP in 30 s:\n%s", l.logs.String())
}

// killServe sends sig to serve (ip netns exec execs it: same PID) and
// waits up to 15 s for it to exit.
func (l *lab) killServe(sig syscall.Signal) {
	l.mu.Lock()
	cmd, done := l.serve, l.done
	l.serve = nil
	l.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

func (l *lab) stopServe() { l.killServe(syscall.SIGTERM) }

func (l *lab) inSrv(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", l.srvNS}, args...)...).CombinedOutput()
	return string(out), err
}

// netem adds a netem qdisc to dev in ns.
func (l *lab) netem(ns, dev string, args ...string) {
	run(l.t, "", append([]string{"ip", "netns", "exec", ns, "tc", "qdisc", "replace", "dev", dev, "root", "netem"}, args...)...)
}

// slow limits what the server sends to 50 Mbit/s (tbf on br0), so that
// a storm lasts seconds, not milliseconds.
func (l *lab) slow() {
	run(l.t, "", "ip", "netns", "exec", l.srvNS, "tc", "qdisc", "replace", "dev", "br0", "root", "tbf",
		"rate", "50mbit", "burst", "64kb", "latency", "2s")
}

// clientOutcome is one line of TestHelperClients' output.
type clientOutcome struct {
	Node   int             `json:"node"`
	Result *bootsim.Result `json:"result"`
	Err    string          `json:"err,omitempty"`
}

// storm starts the 20 simulated clients as one subprocess in the client
// namespace; the returned function waits for them (bounded by limit).
// Client i starts (i-1)*stagger after the first.
func (l *lab) storm(limit, stagger time.Duration) func() []clientOutcome {
	ctx, cancel := context.WithTimeout(context.Background(), limit+30*time.Second)
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", l.cliNS, os.Args[0], "-test.run=^TestHelperClients$", "-test.timeout=10m")
	cmd.Env = append(os.Environ(), fmt.Sprintf("ONESIS_FAULTS_CLIENTS=%d %d", limit/time.Second, stagger/time.Millisecond))
	var out, errs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errs
	if err := cmd.Start(); err != nil {
		l.t.Fatal(err)
	}
	return func() []clientOutcome {
		defer cancel()
		err := cmd.Wait()
		var res []clientOutcome
		sc := bufio.NewScanner(&out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line, ok := strings.CutPrefix(sc.Text(), "CLIENT ")
			if !ok {
				continue
			}
			var o clientOutcome
			if err := json.Unmarshal([]byte(line), &o); err != nil {
				l.t.Fatalf("client output %q: %v", line, err)
			}
			res = append(res, o)
		}
		if len(res) != nClients {
			l.t.Fatalf("%d of %d clients reported (exit %v)\nstdout:\n%s\nstderr:\n%s\nserve:\n%s", len(res), nClients, err, out.String(), errs.String(), tail(l.logs.String(), 3000))
		}
		l.t.Logf("client log:\n%s", tail(errs.String(), 4000))
		return res
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// TestHelperClients is the subprocess side of storm: 20 bootsim clients,
// one per veth c1..c20, all at once, one JSON line each.
func TestHelperClients(t *testing.T) {
	env := os.Getenv("ONESIS_FAULTS_CLIENTS")
	if env == "" {
		t.Skip("helper process for the fault tests")
	}
	var secs, stagger int
	fmt.Sscan(env, &secs, &stagger)
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs)*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := 1; i <= nClients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration((i-1)*stagger) * time.Millisecond)
			mac, _ := net.ParseMAC(clientMAC(i))
			r, err := bootsim.Boot(ctx, bootsim.Config{Iface: fmt.Sprintf("c%d", i), MAC: mac, BindLease: true,
				Timeout: 10 * time.Second, FileTimeout: 90 * time.Second, Attempts: 8,
				Logf: func(f string, a ...any) { fmt.Fprintf(os.Stderr, "n%d: "+f+"\n", append([]any{i}, a...)...) }})
			o := clientOutcome{Node: i, Result: r}
			if err != nil {
				o.Err = err.Error()
			}
			b, _ := json.Marshal(o)
			mu.Lock()
			fmt.Printf("CLIENT %s\n", b)
			mu.Unlock()
		}()
	}
	wg.Wait()
}

// checkAll fails the test for every client that did not finish or got
// an IP, commit or kernel that is not its own; want maps a commit to its
// kernel blob id (nil: the commit must be one of the repo's).
func (l *lab) checkAll(res []clientOutcome, want map[string]string) {
	l.t.Helper()
	var slowest time.Duration
	for _, o := range res {
		if o.Err != "" || o.Result == nil {
			l.t.Errorf("n%d did not finish: %s", o.Node, o.Err)
			continue
		}
		r := o.Result
		if r.IP.String() != clientIP(o.Node) {
			l.t.Errorf("n%d got address %s, want %s", o.Node, r.IP, clientIP(o.Node))
		}
		blob, ok := want[r.Commit]
		if !ok {
			l.t.Errorf("n%d booted commit %s, not one the test made", o.Node, r.Commit)
			continue
		}
		if r.KernelBlob != blob {
			l.t.Errorf("n%d: script named commit %.12s, whose kernel is blob %.12s, but it received blob %.12s", o.Node, r.Commit, blob, r.KernelBlob)
		}
		if r.InitrdETag == "" || r.InitrdSHA != r.InitrdETag {
			l.t.Errorf("n%d: initrd sha256 %.12s, ETag %q", o.Node, r.InitrdSHA, r.InitrdETag)
		}
		slowest = max(slowest, r.Total)
	}
	l.t.Logf("%d clients, slowest %v", len(res), slowest)
}

// kernelBlob is commit's kernel blob id, from git.
func (l *lab) kernelBlob(commit string) string {
	return run(l.t, l.repo, "git", "rev-parse", commit+":boot/vmlinuz-"+kver)
}

// TestLossAndDelay: 5% loss and 50 ms delay on what the server sends
// (netem on its bridge), and 5% loss on what every client sends (netem on
// its veth); all 20 nodes still boot. Without netem in the kernel, a
// user-space relay between serve and the bridge does the same (impairLink).
func TestLossAndDelay(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root: creates network namespaces, a bridge, veths and netem qdiscs, and binds ports 67 and 69 (CI runs as root)")
	}
	netem := netemAvailable(t)
	l := newLab(t, 1<<20)
	head := run(t, l.repo, "git", "rev-parse", "HEAD")
	if netem {
		l.netem(l.srvNS, "br0", "loss", "5%", "delay", "50ms")
		for i := 1; i <= nClients; i++ {
			l.netem(l.cliNS, fmt.Sprintf("c%d", i), "loss", "5%")
		}
	} else {
		t.Log("this kernel has no netem qdisc: loss and delay come from a user-space relay between serve and the bridge")
		l.impairLink(5, 50*time.Millisecond)
	}
	l.startServe()
	start := time.Now()
	res := l.storm(4*time.Minute, 0)()
	t.Logf("20 clients under loss and delay: %v", time.Since(start))
	l.checkAll(res, map[string]string{head: l.kernelBlob(head)})
}

// TestServeKilledMidStorm: serve gets SIGKILL while the clients are at it
// and is started again 2 s later; every client retries and finishes.
func TestServeKilledMidStorm(t *testing.T) {
	l := newLab(t, 4<<20)
	head := run(t, l.repo, "git", "rev-parse", "HEAD")
	l.startServe()
	l.slow() // a storm long enough to land in
	wait := l.storm(3*time.Minute, 0)
	// Kill once scripts are being served, before the storm is over.
	killed := false
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline) && !killed; time.Sleep(50 * time.Millisecond) {
		if strings.Count(l.logs.String(), "boot script") >= 3 {
			l.killServe(syscall.SIGKILL)
			killed = true
		}
	}
	if !killed {
		t.Fatalf("no boot script was served in 60 s:\n%s", tail(l.logs.String(), 3000))
	}
	time.Sleep(2 * time.Second)
	l.startServe()
	res := wait()
	l.checkAll(res, map[string]string{head: l.kernelBlob(head)})
	retried := 0
	for _, o := range res {
		if o.Result != nil {
			for _, s := range o.Result.Stages {
				if s.Attempts > 1 {
					retried++
					break
				}
			}
		}
	}
	t.Logf("%d of %d clients needed a retry after the kill", retried, nClients)
	if retried == 0 {
		t.Errorf("no client needed a retry: the kill did not land in the storm, so this run tested nothing")
	}
}

// TestRefsMoveMidTransfer: while the clients boot, main gets new commits
// (each with a new kernel) and HEAD is switched between main and another
// branch; every client's kernel is exactly the kernel of the commit its
// script named, and the initramfs is the one the server says.
func TestRefsMoveMidTransfer(t *testing.T) {
	l := newLab(t, 2<<20)
	want := map[string]string{}
	c := run(t, l.repo, "git", "rev-parse", "HEAD")
	want[c] = l.kernelBlob(c)
	run(t, l.repo, "git", "checkout", "-q", "-b", "other")
	c = l.commitKernel("other")
	want[c] = l.kernelBlob(c)
	run(t, l.repo, "git", "checkout", "-q", "main")
	l.startServe()
	l.slow()
	wait := l.storm(3*time.Minute, 250*time.Millisecond) // scripts over ~5 s
	for i := 0; i < 16; i++ {
		if i%3 == 2 {
			run(t, l.repo, "git", "checkout", "-q", "other")
			time.Sleep(300 * time.Millisecond)
			run(t, l.repo, "git", "checkout", "-q", "main")
			continue
		}
		c := l.commitKernel(fmt.Sprintf("v%d", i+2))
		want[c] = l.kernelBlob(c)
		time.Sleep(300 * time.Millisecond)
	}
	res := wait()
	l.checkAll(res, want)
	seen := map[string]bool{}
	for _, o := range res {
		if o.Result != nil {
			seen[o.Result.Commit] = true
		}
	}
	t.Logf("the clients booted %d different commits of the %d made", len(seen), len(want))
	if len(seen) < 2 {
		t.Errorf("every client booted the same commit: the refs did not move while they booted, so this run tested nothing")
	}
}
