package multisite

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/onesis/git-onesis/internal/bootsim"
	"github.com/onesis/git-onesis/internal/testkit"
)

// The site: nSites client subnets, each with nNodes nodes and its own boot
// server on a subnet of its own, all joined by one router that relays DHCP.
//
//	site k client subnet 10.83.k.0/24      router (relay, giaddr) 10.83.k.1, nodes 10.83.k.11..
//	site k server link   10.83.(100+k).0/24 router 10.83.(100+k).1, serve 10.83.(100+k).2
const (
	nSites     = 3
	nNodes     = 3
	kver       = "6.1.0-10-amd64"
	kernelSize = 1 << 20
)

func gateway(site int) string       { return fmt.Sprintf("10.83.%d.1", site) }
func subnet(site int) string        { return fmt.Sprintf("10.83.%d.0/24", site) }
func routerUplink(site int) string  { return fmt.Sprintf("10.83.%d.1", 100+site) }
func serverIP(site int) string      { return fmt.Sprintf("10.83.%d.2", 100+site) }
func nodeIP(site, i int) string     { return fmt.Sprintf("10.83.%d.%d", site, 10+i) }
func nodeMAC(site, i int) string    { return fmt.Sprintf("52:54:00:83:%02x:%02x", site, i) }
func nodeName(site, i int) string   { return fmt.Sprintf("site%d-n%d", site, i) }
func clientIface(i int) string      { return fmt.Sprintf("c%d", i) }
func routerPort(site, i int) string { return fmt.Sprintf("p%d_%d", site, i) }

// world is the whole site: the admin's repository, the central bare
// repository, the router namespace with the relay, and one boot server and
// one client namespace per subnet.
type world struct {
	t         *testing.T
	base      string
	bin       string
	initBin   string
	admin     string // the admin's work tree; pushes to central
	central   string // the bare central repository
	rtNS      string
	dnsmasq   string    // its path
	relay     *exec.Cmd // dnsmasq, relaying
	relayDone chan struct{}
	relayLog  *testkit.Buffer
	sites     [nSites + 1]*site // 1-based
}

// site is one subnet: its boot server (a clone of central, running serve
// in srvNS) and its nodes (interfaces c1..cN in cliNS).
type site struct {
	n     int
	repo  string
	state string
	srvNS string
	cliNS string
	logs  *testkit.Buffer
	serve *exec.Cmd
	done  chan struct{}
}

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

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// TestThreeBootServers: a central image repository, three boot servers
// that are `git clone`s of it (each `git onesis install` + `git onesis
// sync`, each running the real `git onesis serve` in its own network
// namespace), and three client subnets whose DHCP reaches "their" server
// only through a relay (dnsmasq --dhcp-relay, giaddr = the subnet's
// gateway). Every node boots the central repository's HEAD from the
// server of its own subnet; after a new commit is pushed to the central
// repository and each server runs `git onesis sync`, every node boots
// the new commit, and a node whose inventory entry changed centrally gets
// the change. Last, with server 3 stopped and subnet 3's relay also
// forwarding to server 1, subnet 3's nodes boot from server 1.
func TestThreeBootServers(t *testing.T) {
	testkit.NeedRoot(t, "creates network namespaces, veths and bridges, runs dnsmasq and serve on ports 67 and 69")
	testkit.NeedTool(t, "git", "git")
	testkit.NeedTool(t, "curl", "curl")
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatalf("go not in PATH (the test builds the server): %v", err)
	}
	dnsmasq := testkit.NeedTool(t, "dnsmasq", "dnsmasq-base")
	testkit.NeedFile(t, "/usr/lib/ipxe/undionly.kpxe", "ipxe")
	w := newWorld(t)
	w.dnsmasq = dnsmasq
	w.network()
	w.startRelay(nil)

	// Round 1: the central repository's first commit.
	v1 := w.centralHead()
	for k := 1; k <= nSites; k++ {
		s := w.sites[k]
		// git clone copies branches, not refs/onesis/inventory: sync
		// fetches it, so the nodes are added once, centrally.
		if err := exec.Command("git", "-C", s.repo, "rev-parse", "-q", "--verify", "refs/onesis/inventory").Run(); err == nil {
			t.Fatalf("site %d: the clone has an inventory before sync", k)
		}
		out := w.sync(s)
		if !strings.Contains(out, "main: up to date with origin") || !strings.Contains(out, "prepared "+v1[:12]) {
			t.Fatalf("site %d: first sync did not prepare %.12s:\n%s", k, v1, out)
		}
		w.checkInventory(s)
		w.startServe(s)
	}
	w.check(w.round(), v1)

	// The inventory changes centrally too: one node gets extra kernel
	// arguments.
	run(t, w.admin, "git", "onesis", "node", "set", nodeName(2, 1), "--args", "multisite=v2")

	// A new commit (a new kernel) reaches the central repository; each
	// server follows it with `git onesis sync`, serve keeps running.
	v2 := w.commitKernel("v2")
	if v2 == v1 {
		t.Fatal("the second commit is the first")
	}
	blob2 := w.kernelBlob(v2)
	for k := 1; k <= nSites; k++ {
		s := w.sites[k]
		out := w.sync(s)
		if !strings.Contains(out, "main: "+v1[:12]+" -> "+v2[:12]+" (from origin)") || !strings.Contains(out, "prepared "+v2[:12]) {
			t.Fatalf("site %d: the second sync did not follow %.12s -> %.12s:\n%s", k, v1, v2, out)
		}
		if head := run(t, s.repo, "git", "rev-parse", "HEAD"); head != v2 {
			t.Fatalf("site %d: HEAD is %.12s after sync, want %.12s", k, head, v2)
		}
		// serve (running all along) picks the synced inventory up.
		w.waitInventory(s, w.checkInventory(s))
		// sync built the kernel into serve's cache before any node asked.
		if _, err := os.Stat(filepath.Join(s.state, "blobs", blob2)); err != nil {
			t.Errorf("site %d: sync did not put the new kernel in serve's cache: %v", k, err)
		}
	}
	res := w.check(w.round(), v2)
	for _, o := range res {
		if got, want := strings.Contains(o.Result.Script.Cmdline, "multisite=v2"), o.Site == 2 && o.Node == 1; got != want {
			t.Errorf("%s: kernel command line %q: has the centrally added argument: %v, want %v",
				nodeName(o.Site, o.Node), o.Result.Script.Cmdline, got, want)
		}
	}

	// Redundancy. Subnet 1's relay forwards to servers 1 and 2, both up:
	// both offer, each node takes one offer and the other server stands
	// down at its REQUEST. Server 3 goes down, and subnet 3's relay
	// forwards to server 1 as well. Every node of subnets 1 and 3 boots
	// the same commit: every server knows every node and every subnet,
	// and holds the same commits.
	w.stopServe(w.sites[3])
	w.stopRelay()
	w.startRelay(map[int]int{1: 2, 3: 1})
	blob := w.kernelBlob(v2)
	from := map[string]int{}
	for _, o := range w.round(1, 3) {
		name := nodeName(o.Site, o.Node)
		servers := []string{serverIP(1), serverIP(2)} // subnet 1
		if o.Site == 3 {
			servers = []string{serverIP(1)}
		}
		r := o.Result
		if o.Err != "" || r == nil {
			t.Errorf("%s did not boot: %s", name, o.Err)
			continue
		}
		script, _ := url.Parse(r.ScriptURL)
		kernel, _ := url.Parse(r.Script.Kernel)
		switch {
		case r.IP.String() != nodeIP(o.Site, o.Node):
			t.Errorf("%s got address %s, want %s", name, r.IP, nodeIP(o.Site, o.Node))
		case script == nil || !slices.Contains(servers, script.Hostname()):
			t.Errorf("%s fetched its script from %s, want one of %v", name, r.ScriptURL, servers)
		case kernel == nil || kernel.Host != script.Host:
			t.Errorf("%s fetched its script from %s but its kernel from %s", name, r.ScriptURL, r.Script.Kernel)
		case r.Commit != v2 || r.KernelBlob != blob:
			t.Errorf("%s booted commit %.12s (kernel %.12s), want %.12s (kernel %.12s)", name, r.Commit, r.KernelBlob, v2, blob)
		default:
			from[fmt.Sprintf("subnet %d from %s", o.Site, script.Hostname())]++
		}
	}
	t.Logf("with two servers per relay: %v", from)
	for _, n := range []string{"site3-n1", "site3-n2", "site3-n3"} {
		if got := run(t, w.sites[1].repo, "git", "rev-parse", "refs/onesis/booted/"+n); got != v2 {
			t.Errorf("server 1's booted ref for %s is %.12s, want %.12s", n, got, v2)
		}
	}
	if !strings.Contains(w.sites[1].logs.String(), "relay="+gateway(3)+" ") {
		t.Errorf("server 1 logged no request relayed by %s", gateway(3))
	}
	if l1, l2 := w.sites[1].logs.String(), w.sites[2].logs.String(); !strings.Contains(l1+l2, "client selected another server") {
		t.Errorf("servers 1 and 2 both got subnet 1's requests, yet neither stood down at a REQUEST for the other")
	}
}

// checkInventory fails the test unless the server's inventory is the
// central one; it returns its commit.
func (w *world) checkInventory(s *site) string {
	w.t.Helper()
	want := run(w.t, "", "git", "--git-dir", w.central, "rev-parse", "refs/onesis/inventory")
	if got := run(w.t, s.repo, "git", "rev-parse", "refs/onesis/inventory"); got != want {
		w.t.Fatalf("site %d: inventory %.12s after sync, the central one is %.12s", s.n, got, want)
	}
	return want
}

// waitInventory waits (15 s at most) until the site's serve reports the
// inventory commit in /status.
func (w *world) waitInventory(s *site, commit string) {
	w.t.Helper()
	var last string
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		out, err := exec.CommandContext(ctx, "ip", "netns", "exec", s.srvNS, "curl", "-sf", "--max-time", "2",
			"http://"+serverIP(s.n)+":8080/status").Output()
		cancel()
		var st struct {
			Inventory string `json:"inventory_commit"`
		}
		if err == nil && json.Unmarshal(out, &st) == nil {
			if last = st.Inventory; last == commit {
				return
			}
		}
	}
	w.t.Fatalf("site %d: serve still reports inventory %.12s 15 s after sync, want %.12s", s.n, last, commit)
}

// newWorld builds git-onesis, the admin's image repository with the node
// inventory, the central bare repository, and a clone per boot server.
func newWorld(t *testing.T) *world {
	w := &world{t: t}
	w.base, _ = filepath.EvalSymlinks(t.TempDir())
	bindir := filepath.Join(w.base, "bin")
	w.bin = filepath.Join(bindir, "git-onesis")
	run(t, "", "go", "build", "-o", w.bin, "github.com/onesis/git-onesis/cmd/git-onesis")
	w.initBin = filepath.Join(bindir, "onesis-init")
	if err := os.WriteFile(w.initBin, []byte("#!/bin/sh\n# never run: the simulated nodes execute nothing\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bindir+":"+os.Getenv("PATH"))
	for k, v := range map[string]string{"GIT_AUTHOR_NAME": "multisite", "GIT_AUTHOR_EMAIL": "multisite@example.invalid",
		"GIT_COMMITTER_NAME": "multisite", "GIT_COMMITTER_EMAIL": "multisite@example.invalid", "GIT_CONFIG_NOSYSTEM": "1"} {
		t.Setenv(k, v)
	}

	// The admin's repository: a small image, committed with git onesis.
	w.admin = filepath.Join(w.base, "admin")
	for name, data := range map[string]string{
		"lib/modules/" + kver + "/modules.dep": "",
		"etc/motd":                             "multisite image\n",
	} {
		os.MkdirAll(filepath.Join(w.admin, filepath.Dir(name)), 0o755)
		if err := os.WriteFile(filepath.Join(w.admin, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	w.writeKernel("v1")
	run(t, w.admin, "git", "init", "-q", "-b", "main")
	run(t, w.admin, "git", "onesis", "init", "--commit", "-q")
	// The inventory is one ref, shared by every clone that fetches it
	// (sync does): every node and every subnet is added once, here.
	for k := 1; k <= nSites; k++ {
		run(t, w.admin, "git", "onesis", "node", "network", subnet(k), "--router", gateway(k))
		for i := 1; i <= nNodes; i++ {
			run(t, w.admin, "git", "onesis", "node", "add", nodeName(k, i), "--mac", nodeMAC(k, i), "--ip", nodeIP(k, i))
		}
	}

	// The central repository, bare; the admin pushes the branch and the
	// inventory to it.
	w.central = filepath.Join(w.base, "central.git")
	run(t, "", "git", "init", "-q", "--bare", "-b", "main", w.central)
	run(t, w.admin, "git", "remote", "add", "origin", w.central)
	run(t, w.admin, "git", "push", "-q", "origin", "main", "refs/onesis/inventory")

	pid := os.Getpid()
	w.rtNS = fmt.Sprintf("ms-rt-%d", pid)
	for k := 1; k <= nSites; k++ {
		s := &site{n: k, logs: &testkit.Buffer{},
			repo:  filepath.Join(w.base, fmt.Sprintf("server%d", k)),
			state: filepath.Join(w.base, fmt.Sprintf("state%d", k)),
			srvNS: fmt.Sprintf("ms-s%d-%d", k, pid), cliNS: fmt.Sprintf("ms-c%d-%d", k, pid)}
		run(t, "", "git", "clone", "-q", w.central, s.repo)
		run(t, s.repo, "git", "onesis", "install", "-q")
		w.sites[k] = s
	}
	return w
}

// writeKernel writes a random kernel of kernelSize bytes with tag in it
// into the admin's work tree.
func (w *world) writeKernel(tag string) {
	b := make([]byte, kernelSize)
	rand.Read(b)
	copy(b, "KERNEL "+tag+"\n")
	os.MkdirAll(filepath.Join(w.admin, "boot"), 0o755)
	if err := os.WriteFile(filepath.Join(w.admin, "boot", "vmlinuz-"+kver), b, 0o644); err != nil {
		w.t.Fatal(err)
	}
}

// commitKernel commits a new kernel in the admin's repository and pushes
// it, and the inventory, to the central one; it returns the commit.
func (w *world) commitKernel(tag string) string {
	w.writeKernel(tag)
	run(w.t, w.admin, "git", "onesis", "commit", "-q", "-a", "-m", "kernel "+tag)
	run(w.t, w.admin, "git", "push", "-q", "origin", "main", "refs/onesis/inventory")
	return w.centralHead()
}

func (w *world) centralHead() string {
	return run(w.t, "", "git", "--git-dir", w.central, "rev-parse", "main")
}

func (w *world) kernelBlob(commit string) string {
	return run(w.t, "", "git", "--git-dir", w.central, "rev-parse", commit+":boot/vmlinuz-"+kver)
}

// sync runs `git onesis sync` on a boot server, with serve's state
// directory and init, and returns its output.
func (w *world) sync(s *site) string {
	return run(w.t, s.repo, "git", "onesis", "sync", "--state-dir", s.state, "--init", w.initBin)
}

// network creates the namespaces: the router (a bridge per client subnet,
// a veth per server, forwarding on), a server namespace per site (lan0,
// default route via the router) and a client namespace per site (c1..cN,
// each with its node's MAC, no address yet: the nodes configure the
// address and route their DHCP answer gives them).
func (w *world) network() {
	t := w.t
	nss := []string{w.rtNS}
	for k := 1; k <= nSites; k++ {
		nss = append(nss, w.sites[k].srvNS, w.sites[k].cliNS)
	}
	for _, ns := range nss {
		run(t, "", "ip", "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	}
	var links, rt strings.Builder
	var later []func() // once the links exist
	rt.WriteString("link set lo up\n")
	for k := 1; k <= nSites; k++ {
		s := w.sites[k]
		fmt.Fprintf(&links, "link add s%d netns %s type veth peer name lan0 netns %s\n", k, w.rtNS, s.srvNS)
		fmt.Fprintf(&rt, "link add b%d type bridge\naddr add %s/24 dev b%d\nlink set b%d up\n", k, gateway(k), k, k)
		fmt.Fprintf(&rt, "addr add %s/24 dev s%d\nlink set s%d up\n", routerUplink(k), k, k)
		var srv, cli strings.Builder
		fmt.Fprintf(&srv, "link set lo up\naddr add %s/24 dev lan0\nlink set lan0 up\nroute add default via %s\n", serverIP(k), routerUplink(k))
		cli.WriteString("link set lo up\n")
		for i := 1; i <= nNodes; i++ {
			fmt.Fprintf(&links, "link add %s netns %s type veth peer name %s netns %s\n", routerPort(k, i), w.rtNS, clientIface(i), s.cliNS)
			fmt.Fprintf(&rt, "link set %s master b%d\nlink set %s up\n", routerPort(k, i), k, routerPort(k, i))
			fmt.Fprintf(&cli, "link set %s address %s\nlink set %s up\n", clientIface(i), nodeMAC(k, i), clientIface(i))
		}
		later = append(later, func() {
			w.batch(s.srvNS, srv.String())
			w.batch(s.cliNS, cli.String())
			// Each node's address leaves through its own interface (a
			// rule per address, see configure) and answers ARP only there.
			run(t, "", "ip", "netns", "exec", s.cliNS, "sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=1",
				"net.ipv4.conf.all.arp_announce=2", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0",
				"net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
			run(t, "", "ip", "netns", "exec", s.srvNS, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
		})
	}
	w.batch("", links.String())
	w.batch(w.rtNS, rt.String())
	for _, f := range later {
		f()
	}
	run(t, "", "ip", "netns", "exec", w.rtNS, "sysctl", "-qw", "net.ipv4.ip_forward=1",
		"net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
}

// batch runs `ip [-n ns] -batch` on cmds.
func (w *world) batch(ns, cmds string) {
	f := filepath.Join(w.base, fmt.Sprintf("batch-%d", time.Now().UnixNano()))
	if err := os.WriteFile(f, []byte(cmds), 0o644); err != nil {
		w.t.Fatal(err)
	}
	args := []string{"ip"}
	if ns != "" {
		args = append(args, "-n", ns)
	}
	run(w.t, "", append(args, "-batch", f)...)
}

// startRelay runs dnsmasq in the router namespace as a DHCP relay only
// (no DNS, no DHCP service of its own): a request broadcast on subnet k
// is forwarded to server k with giaddr = 10.83.k.1, and the answer, which
// serve sends back to giaddr, is forwarded to the node. backup[k] = j
// also forwards subnet k's requests to server j (a second --dhcp-relay
// for the same local address).
func (w *world) startRelay(backup map[int]int) {
	t := w.t
	w.relayLog = &testkit.Buffer{}
	args := []string{"netns", "exec", w.rtNS, w.dnsmasq, "--no-daemon", "--conf-file=/dev/null", "--port=0",
		"--pid-file=", "--log-facility=-", "--log-dhcp", "--user=root", "--group=root"}
	for k := 1; k <= nSites; k++ {
		args = append(args, fmt.Sprintf("--interface=b%d", k), fmt.Sprintf("--dhcp-relay=%s,%s", gateway(k), serverIP(k)))
		if j, ok := backup[k]; ok {
			args = append(args, fmt.Sprintf("--dhcp-relay=%s,%s", gateway(k), serverIP(j)))
		}
	}
	cmd := exec.Command("ip", args...)
	cmd.Stdout, cmd.Stderr = w.relayLog, w.relayLog
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting dnsmasq: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	w.relay, w.relayDone = cmd, done
	t.Cleanup(w.stopRelay) // before the namespaces go
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		select {
		case <-done:
			t.Fatalf("dnsmasq exited at start:\n%s", w.relayLog.String())
		default:
		}
		if strings.Count(w.relayLog.String(), "DHCP relay from") == nSites+len(backup) {
			return
		}
	}
	t.Fatalf("dnsmasq did not start its relays in 15 s:\n%s", w.relayLog.String())
}

func (w *world) stopRelay() {
	if w.relay == nil {
		return
	}
	w.relay.Process.Signal(syscall.SIGTERM) // ip netns exec execs dnsmasq: same PID
	select {
	case <-w.relayDone:
	case <-time.After(10 * time.Second):
		w.relay.Process.Kill()
		<-w.relayDone
	}
	w.relay = nil
	if w.t.Failed() {
		w.t.Logf("dnsmasq (relay) log:\n%s", tail(w.relayLog.String(), 4000))
	}
}

// startServe runs `git onesis serve` in the site's server namespace, in
// its clone, and waits until HTTP answers.
func (w *world) startServe(s *site) {
	t := w.t
	cmd := exec.Command("ip", "netns", "exec", s.srvNS, w.bin, "serve", "--iface", "lan0",
		"--state-dir", s.state, "--init", w.initBin, "--no-ra")
	cmd.Dir = s.repo
	cmd.Stdout, cmd.Stderr = s.logs, s.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.serve, s.done = cmd, make(chan struct{})
	go func() { cmd.Wait(); close(s.done) }()
	t.Cleanup(func() { w.stopServe(s) }) // before the namespaces go
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		select {
		case <-s.done:
			t.Fatalf("site %d: serve exited at start:\n%s", s.n, s.logs.String())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := exec.CommandContext(ctx, "ip", "netns", "exec", s.srvNS, "curl", "-sf", "--max-time", "2",
			"-o", "/dev/null", "http://"+serverIP(s.n)+":8080/status").Run()
		cancel()
		if err == nil {
			return
		}
	}
	t.Fatalf("site %d: serve did not answer HTTP in 30 s:\n%s", s.n, s.logs.String())
}

func (w *world) stopServe(s *site) {
	if s.serve == nil {
		return
	}
	s.serve.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		s.serve.Process.Kill()
		<-s.done
	}
	s.serve = nil
	if w.t.Failed() {
		w.t.Logf("site %d serve log:\n%s", s.n, tail(s.logs.String(), 4000))
	}
}

// outcome is one line of TestHelperSite's output.
type outcome struct {
	Site   int             `json:"site"`
	Node   int             `json:"node"`
	Result *bootsim.Result `json:"result"`
	Err    string          `json:"err,omitempty"`
}

// round boots every node of the given sites (default: all) once, the
// sites at the same time (one helper process per client namespace), and
// returns the outcomes.
func (w *world) round(sites ...int) []outcome {
	if len(sites) == 0 {
		for k := 1; k <= nSites; k++ {
			sites = append(sites, k)
		}
	}
	t := w.t
	var mu sync.Mutex
	var all []outcome
	var wg sync.WaitGroup
	for _, k := range sites {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, log, err := w.bootSite(k)
			mu.Lock()
			defer mu.Unlock()
			if err != nil || len(res) != nNodes {
				t.Errorf("site %d: %d of %d nodes reported (%v)\nclients:\n%s", k, len(res), nNodes, err, tail(log, 4000))
			}
			all = append(all, res...)
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return all
}

// bootSite runs TestHelperSite in site k's client namespace.
func (w *world) bootSite(k int) ([]outcome, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", w.sites[k].cliNS, os.Args[0], "-test.run=^TestHelperSite$", "-test.timeout=3m")
	cmd.Env = append(os.Environ(), fmt.Sprintf("ONESIS_MULTISITE_SITE=%d", k))
	var out, errs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errs
	err := cmd.Run()
	var res []outcome
	sc := bufio.NewScanner(&out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "CLIENT ")
		if !ok {
			continue
		}
		var o outcome
		if err := json.Unmarshal([]byte(line), &o); err != nil {
			return res, errs.String(), fmt.Errorf("client output %q: %w", line, err)
		}
		res = append(res, o)
	}
	return res, out.String() + errs.String(), err
}

// TestHelperSite is the subprocess side of round: the nodes of one site,
// one per interface c1..cN of the client namespace, all at once, one JSON
// line each.
func TestHelperSite(t *testing.T) {
	env := os.Getenv("ONESIS_MULTISITE_SITE")
	if env == "" {
		t.Skip("helper process for TestThreeBootServers")
	}
	var k int
	fmt.Sscan(env, &k)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := 1; i <= nNodes; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mac, _ := net.ParseMAC(nodeMAC(k, i))
			r, err := bootsim.Boot(ctx, bootsim.Config{Iface: clientIface(i), MAC: mac, BindLease: true,
				Timeout: 10 * time.Second, FileTimeout: 60 * time.Second, Attempts: 6,
				Configure: configure(clientIface(i), 100+i),
				Logf: func(f string, a ...any) {
					fmt.Fprintf(os.Stderr, "%s: "+f+"\n", append([]any{nodeName(k, i)}, a...)...)
				}})
			o := outcome{Site: k, Node: i, Result: r}
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

// configure does what a node's firmware does with its lease: the address
// on its interface, and a route to its subnet and a default route through
// the router the lease names. Several nodes share the client namespace,
// so the routes go in a table of the node's own, chosen by a rule on the
// source address.
func configure(iface string, table int) func(ip net.IP, mask net.IPMask, router net.IP) error {
	return func(ip net.IP, mask net.IPMask, router net.IP) error {
		if router == nil {
			return fmt.Errorf("the lease for %s names no router, and the boot server is on another subnet", ip)
		}
		if mask == nil {
			return fmt.Errorf("the lease for %s has no subnet mask", ip)
		}
		bits, _ := mask.Size()
		pfx := &net.IPNet{IP: ip.Mask(mask), Mask: mask}
		tbl := fmt.Sprint(table)
		exec.Command("ip", "rule", "del", "from", ip.String(), "table", tbl).Run() // from an earlier round
		for _, args := range [][]string{
			{"addr", "replace", fmt.Sprintf("%s/%d", ip, bits), "dev", iface, "noprefixroute"},
			{"rule", "add", "from", ip.String(), "table", tbl},
			{"route", "replace", pfx.String(), "dev", iface, "src", ip.String(), "table", tbl},
			{"route", "replace", "default", "via", router.String(), "dev", iface, "src", ip.String(), "table", tbl},
		} {
			if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
				return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, out)
			}
		}
		return nil
	}
}

// check fails the test unless every node of every site booted commit from
// its own site's server with its own address, and each server recorded
// exactly its own nodes at that commit.
func (w *world) check(res []outcome, commit string) []outcome {
	t := w.t
	t.Helper()
	blob := w.kernelBlob(commit)
	for _, o := range res {
		name := nodeName(o.Site, o.Node)
		if o.Err != "" || o.Result == nil {
			t.Errorf("%s did not boot: %s", name, o.Err)
			continue
		}
		r := o.Result
		_, sub, _ := net.ParseCIDR(subnet(o.Site))
		if r.IP.String() != nodeIP(o.Site, o.Node) || !sub.Contains(r.IP) {
			t.Errorf("%s got address %s, want %s in %s", name, r.IP, nodeIP(o.Site, o.Node), sub)
		}
		if u, err := url.Parse(r.ScriptURL); err != nil || u.Hostname() != serverIP(o.Site) {
			t.Errorf("%s fetched its script from %s, not from its subnet's server %s", name, r.ScriptURL, serverIP(o.Site))
		}
		if u, err := url.Parse(r.Script.Kernel); err != nil || u.Hostname() != serverIP(o.Site) {
			t.Errorf("%s fetched its kernel from %s, not from its subnet's server %s", name, r.Script.Kernel, serverIP(o.Site))
		}
		if r.Commit != commit {
			t.Errorf("%s booted commit %.12s, the central repository's main is %.12s", name, r.Commit, commit)
		}
		if r.KernelBlob != blob {
			t.Errorf("%s received kernel blob %.12s, the central commit's kernel is %.12s", name, r.KernelBlob, blob)
		}
		if r.InitrdETag == "" || r.InitrdSHA != r.InitrdETag {
			t.Errorf("%s: initramfs sha256 %.12s, ETag %q", name, r.InitrdSHA, r.InitrdETag)
		}
	}
	for k := 1; k <= nSites; k++ {
		s := w.sites[k]
		// Booted refs are written by the server that served the script:
		// each server holds its own subnet's nodes, and only those.
		got := run(t, s.repo, "git", "for-each-ref", "--format=%(refname:lstrip=3) %(objectname)", "refs/onesis/booted/")
		var want []string
		for i := 1; i <= nNodes; i++ {
			want = append(want, nodeName(k, i)+" "+commit)
		}
		if got != strings.Join(want, "\n") {
			t.Errorf("site %d: booted refs\n%s\nwant\n%s", k, got, strings.Join(want, "\n"))
		}
		// Every DHCP answer went through the relay of this site's subnet.
		logs := s.logs.String()
		if !strings.Contains(logs, "relay="+gateway(k)+" ") {
			t.Errorf("site %d: serve logged no request relayed by %s:\n%s", k, gateway(k), tail(logs, 3000))
		}
		for j := 1; j <= nSites; j++ {
			if j != k && strings.Contains(logs, "relay="+gateway(j)+" ") {
				t.Errorf("site %d: serve got a request relayed from site %d's subnet", k, j)
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("%d nodes on %d subnets booted %.12s, each from its own subnet's server", len(res), nSites, commit)
	return res
}
