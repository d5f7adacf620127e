package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/onesis/git-onesis/boot/booted"
	"github.com/onesis/git-onesis/boot/httpboot"
	"github.com/onesis/git-onesis/boot/inventory"
	"github.com/onesis/git-onesis/boot/invref"
	"github.com/onesis/git-onesis/boot/nfsroot"
	"github.com/onesis/git-onesis/internal/git"
	"github.com/onesis/git-onesis/internal/testkit"
)

func TestMain(m *testing.M) { os.Exit(testkit.HermeticGit(m)) }

var (
	sh    = testkit.Sh
	write = testkit.WriteFile
)

// imageRepo makes an image repository with two kernels (the newer must be
// chosen), a modules tree, and a branch "testing".
func imageRepo(t *testing.T) (dir string, r *git.Repo) {
	t.Helper()
	dir = testkit.Repo(t, map[string]string{
		"boot/vmlinuz-6.1.0-9-amd64":                          "old kernel",
		"boot/vmlinuz-6.1.0-10-amd64":                         "KERNEL 6.1.0-10",
		"usr/lib/modules/6.1.0-10-amd64/kernel/virtio_net.ko": "module",
		"etc/hostname": "v1",
	})
	r, err := git.Discover(dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir, r
}

func addNodes(t *testing.T, r *git.Repo, text string) {
	t.Helper()
	add, err := inventory.Parse("add", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := invref.Update(r, "test nodes", func(inv *inventory.Inventory) error {
		for _, nw := range add.Networks {
			if err := inv.PutNetwork(nw); err != nil {
				return err
			}
		}
		for _, n := range add.Nodes {
			if err := inv.Put(n); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func TestValidate(t *testing.T) {
	dir, _ := imageRepo(t)
	all := Factories{
		DHCP:    func(DHCPParams) (Service, error) { return nil, nil },
		TFTP:    func(TFTPParams) (Service, error) { return nil, nil },
		NFS:     func(NFSParams) (NFSServer, error) { return nil, nil },
		Portmap: func(context.Context, net.PacketConn, net.Listener, int, int, *slog.Logger) error { return nil },
	}
	ipxe := t.TempDir()
	for _, f := range []string{"undionly.kpxe", "ipxe.efi", "snponly.efi"} {
		write(t, ipxe, f, "x")
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		f    Factories
		want string
	}{
		{"no iface", Config{RepoDir: dir}, all, "--iface: the provisioning interface is required"},
		{"bad iface", Config{RepoDir: dir, Iface: "nosuch0"}, all, `--iface: no network interface "nosuch0"`},
		{"addr not on iface", Config{RepoDir: dir, Iface: "lo", ServerIP: netip.MustParseAddr("10.9.9.9"), IPXEDir: ipxe}, all, "--addr: 10.9.9.9 is not an address of interface lo"},
		{"port clash", Config{RepoDir: dir, Iface: "lo", HTTPPort: 2049, IPXEDir: ipxe}, all, "--nfs-port: port 2049 is already used by --http-port"},
		{"port range", Config{RepoDir: dir, Iface: "lo", HTTPPort: 70000, IPXEDir: ipxe}, all, "--http-port: port 70000 is out of range"},
		{"port 4011", Config{RepoDir: dir, Iface: "lo", TFTPPort: 4011, IPXEDir: ipxe}, all, "--tftp-port: port 4011 is already used by DHCP (PXE boot server)"},
		{"proxy without dhcp", Config{RepoDir: dir, Iface: "lo", IPXEDir: ipxe, NoDHCP: true, ProxyDHCP: true}, all, "--proxy-dhcp: DHCP is off"},
		{"no ipxe", Config{RepoDir: dir, Iface: "lo", IPXEDir: t.TempDir()}, all, "--ipxe-dir: "},
		{"unwired", Config{RepoDir: dir, Iface: "lo", IPXEDir: ipxe}, Factories{}, "--no-dhcp: the DHCP server is on but serve was given no implementation of it"},
		{"no repo", Config{RepoDir: "/nonexistent", Iface: "lo"}, all, "repository: /nonexistent is not a directory"},
		{"ok", Config{RepoDir: dir, Iface: "lo", IPXEDir: ipxe}, all, ""},
		{"boot file", Config{RepoDir: dir, Iface: "lo", IPXEDir: ipxe, BootFiles: map[string]string{"efi-arm64": "arm64.efi"}}, all, "--boot-file: efi-arm64=arm64.efi: there is no such file"},
		{"export dir with own nfs", Config{RepoDir: dir, Iface: "lo", IPXEDir: ipxe, NFSExportDir: "/srv/onesis"}, all, "--nfs-export-dir: nodes would mount another NFS server's trees while serve's own NFS server runs; add --no-nfs"},
		{"export dir relative", Config{RepoDir: dir, Iface: "lo", IPXEDir: ipxe, NoNFS: true, NFSExportDir: "srv/onesis"}, all, `--nfs-export-dir: "srv/onesis" must be a clean absolute path`},
		{"export dir comma", Config{RepoDir: dir, Iface: "lo", IPXEDir: ipxe, NoNFS: true, NFSExportDir: "/srv/a,b"}, all, "cannot carry"},
		{"knfsd", Config{RepoDir: dir, Iface: "lo", IPXEDir: ipxe, NoNFS: true, NoPortmap: true, NFSExportDir: "/srv/onesis"}, all, ""},
		{"tftp max", Config{RepoDir: dir, Iface: "lo", IPXEDir: ipxe, TFTPMax: -1}, all, "--tftp-max: -1 is not a number"},
		{"prune too often", Config{RepoDir: dir, Iface: "lo", IPXEDir: ipxe, PruneEvery: time.Second}, all, "--prune-every: 1s is too short"},
		{"http only", Config{RepoDir: dir, ServerIP: netip.MustParseAddr("127.0.0.1"), NoDHCP: true, NoTFTP: true, NoNFS: true, NoPortmap: true}, Factories{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.cfg
			err := c.Validate(tc.f)
			if tc.want == "" {
				if err != nil || c.ServerIP != netip.MustParseAddr("127.0.0.1") || c.HTTPPort != 8080 {
					t.Errorf("Validate: %v, %+v", err, c)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate error = %v, want %q", err, tc.want)
			}
		})
	}
}

// fakeDHCP stands in for package dhcp (NET's; wired in wire_dhcp.go): it
// captures the parameters so the test can call Lookup as the server would.
type fakeDHCP struct {
	p      DHCPParams
	closed chan struct{}
}

func (f *fakeDHCP) Serve() error { <-f.closed; return nil }
func (f *fakeDHCP) Close() error {
	select {
	case <-f.closed:
	default:
		close(f.closed)
	}
	return nil
}

// fakeNFS stands in for package nfsroot (NFS's; wired in wire_nfs.go): it
// records Prepare calls and exposes Authorize.
type fakeNFS struct {
	p        NFSParams
	mu       sync.Mutex
	prepared []string
	pruned   [][]string
}

func (f *fakeNFS) Prepare(_ context.Context, c string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.prepared = append(f.prepared, c)
	return nil
}
func (f *fakeNFS) Serve(l net.Listener) error {
	for {
		c, err := l.Accept()
		if err != nil {
			return nil
		}
		c.Close()
	}
}
func (f *fakeNFS) Close() error { return nil }
func (f *fakeNFS) Prune(keep []string) (nfsroot.PruneStats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pruned = append(f.pruned, keep)
	return nfsroot.PruneStats{Commits: len(keep)}, nil
}

// fakeBuilder stands in for initramfs.Build (INIT's; wired in
// wire_initramfs.go): it writes a deterministic image naming its inputs
// and counts builds, so the cache can be checked.
type fakeBuilder struct {
	mu     sync.Mutex
	builds int
}

func (b *fakeBuilder) Key() string { return "modules=virtio_net init=fake" }
func (b *fakeBuilder) Build(_ context.Context, commit, kver string, w io.Writer) error {
	b.mu.Lock()
	b.builds++
	b.mu.Unlock()
	_, err := fmt.Fprintf(w, "INITRD for %s", kver)
	return err
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

type testServe struct {
	srv    *Server
	base   string
	dhcp   *fakeDHCP
	nfs    *fakeNFS
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

func startServe(t *testing.T, dir string, b *fakeBuilder, logs io.Writer) *testServe {
	t.Helper()
	ts := &testServe{dhcp: &fakeDHCP{closed: make(chan struct{})}, nfs: &fakeNFS{}}
	f := Factories{
		DHCP: func(p DHCPParams) (Service, error) { ts.dhcp.p = p; return ts.dhcp, nil },
		NFS:  func(p NFSParams) (NFSServer, error) { ts.nfs.p = p; return ts.nfs, nil },
		Portmap: func(ctx context.Context, _ net.PacketConn, _ net.Listener, _, _ int, _ *slog.Logger) error {
			<-ctx.Done()
			return nil
		},
		Initrd: func(InitrdParams) (InitrdBuilder, error) { return b, nil },
	}
	port := freePort(t)
	cfg := Config{RepoDir: dir, Iface: "lo", HTTPPort: port, NFSPort: freePort(t), PortmapPort: freePort(t),
		NoTFTP: true, Poll: 20 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(logs, nil))}
	srv, err := New(cfg, f)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts.srv, ts.cancel, ts.done = srv, cancel, make(chan error, 1)
	go func() { ts.done <- srv.Run(ctx) }()
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	addr, err := srv.HTTPAddr(wctx)
	if err != nil {
		t.Fatal(err)
	}
	ts.base = "http://" + addr.String()
	t.Cleanup(ts.stop)
	return ts
}

func (ts *testServe) stop() {
	ts.once.Do(func() {
		ts.cancel()
		select {
		case <-ts.done:
		case <-time.After(15 * time.Second):
			panic("serve did not stop within 15 s")
		}
	})
}

func TestServeOnLoopback(t *testing.T) {
	dir, r := imageRepo(t)
	wt := filepath.Join(t.TempDir(), "update")
	sh(t, dir, "git", "worktree", "add", "-q", "-b", "update", wt)
	wt, _ = filepath.EvalSymlinks(wt)
	addNodes(t, r, "network 10.77.0.0/24 router=10.77.0.1 dns=10.77.0.2 domain=c.example\n"+
		"node n1 mac=52:54:00:00:00:01 ip=10.77.0.11\n"+
		"node n2 mac=52:54:00:00:00:02 ip=10.77.0.12 ref=testing\n"+
		"node m1 mac=52:54:00:00:00:03 ip=10.77.0.13 maintenance="+wt+"\n")
	c1 := sh(t, dir, "git", "rev-parse", "HEAD")
	var logs syncBuffer
	b := &fakeBuilder{}
	ts := startServe(t, dir, b, &logs)

	// DHCP policy: known MACs only, with the network's parameters.
	l, ok := ts.dhcp.p.Lookup(net.HardwareAddr{0x52, 0x54, 0, 0, 0, 1})
	if !ok || l.IP.String() != "10.77.0.11" || net.IP(l.Mask).String() != "255.255.255.0" || l.Router.String() != "10.77.0.1" ||
		len(l.DNS) != 1 || l.Hostname != "n1" || l.Domain != "c.example" {
		t.Errorf("Lookup(n1) = %+v, %v", l, ok)
	}
	if _, ok := ts.dhcp.p.Lookup(net.HardwareAddr{0x52, 0x54, 0, 0, 0, 0x99}); ok {
		t.Error("an unknown MAC got a lease")
	}
	if !strings.HasSuffix(ts.dhcp.p.HTTPBootURL, "/boot/${mac:hexhyp}.ipxe") || ts.dhcp.p.Discover != nil {
		t.Errorf("DHCP params: %+v", ts.dhcp.p)
	}

	code, script := httpGet(t, ts.base+"/boot/52-54-00-00-00-01.ipxe")
	if code != 200 || !strings.Contains(script, "onesis.commit="+c1) || !strings.Contains(script, "nfsroot=127.0.0.1:/c/"+c1+",port=") {
		t.Fatalf("script: %d\n%s", code, script)
	}
	if got := sh(t, dir, "git", "rev-parse", "refs/onesis/booted/n1"); got != c1 {
		t.Errorf("booted ref = %s, want %s", got, c1)
	}
	code, k := httpGet(t, ts.base+"/c/"+c1+"/kernel")
	if code != 200 || k != "KERNEL 6.1.0-10" {
		t.Errorf("kernel: %d %q", code, k)
	}
	code, ird := httpGet(t, ts.base+"/c/"+c1+"/initrd")
	if code != 200 || ird != "INITRD for 6.1.0-10-amd64" {
		t.Errorf("initrd: %d %q", code, ird)
	}

	// NFS policy: n1 may mount its pinned commit only; strangers nothing.
	auth := ts.nfs.p.Authorize
	if e, ok := auth(net.ParseIP("10.77.0.11"), "/c/"+c1); !ok || e.Commit != c1 || e.ReadWrite {
		t.Errorf("n1 mount of its commit: %+v %v", e, ok)
	}
	if _, ok := auth(net.ParseIP("10.77.0.99"), "/c/"+c1); ok {
		t.Error("an unknown address may mount")
	}
	if _, ok := auth(net.ParseIP("10.77.0.11"), "/w/m1"); ok {
		t.Error("n1 may mount m1's work tree")
	}
	if e, ok := auth(net.ParseIP("10.77.0.13"), "/w/m1"); !ok || !e.ReadWrite || e.Dir != wt {
		t.Errorf("maintenance mount: %+v %v", e, ok)
	}

	// The branch moves: n1 stays on c1 until it fetches a script again.
	write(t, dir, "etc/hostname", "v2")
	sh(t, dir, "git", "commit", "-q", "-am", "v2")
	c2 := sh(t, dir, "git", "rev-parse", "HEAD")
	if _, ok := auth(net.ParseIP("10.77.0.11"), "/c/"+c1); !ok {
		t.Error("a running node lost its root when the branch moved")
	}
	if _, ok := auth(net.ParseIP("10.77.0.11"), "/c/"+c2); ok {
		t.Error("a running node may mount a commit it did not boot")
	}
	_, script = httpGet(t, ts.base+"/boot/52-54-00-00-00-01.ipxe")
	if !strings.Contains(script, "onesis.commit="+c2) {
		t.Errorf("reboot does not follow the moved branch:\n%s", script)
	}
	// n2 has its own ref; the old commit stays servable (pinned).
	_, script = httpGet(t, ts.base+"/boot/52-54-00-00-00-02.ipxe")
	if !strings.Contains(script, "onesis.commit="+c1) {
		t.Errorf("node ref ignored:\n%s", script)
	}
	if code, _ := httpGet(t, ts.base+"/c/"+c1+"/kernel"); code != 200 {
		t.Errorf("pinned old commit: %d", code)
	}
	// The initramfs is built once: c2 has the same kernel and modules.
	httpGet(t, ts.base+"/c/"+c2+"/initrd")
	httpGet(t, ts.base+"/c/"+c1+"/initrd")
	if b.builds != 1 {
		t.Errorf("initramfs built %d times, want 1", b.builds)
	}
	// Maintenance node: its work tree, read-write.
	_, script = httpGet(t, ts.base+"/boot/52-54-00-00-00-03.ipxe")
	if !strings.Contains(script, "nfsroot=127.0.0.1:/w/m1,") || !strings.Contains(script, " rw ") {
		t.Errorf("maintenance script:\n%s", script)
	}
	// A commit no one booted is not served.
	orphan := sh(t, dir, "git", "commit-tree", "-m", "x", c1+"^{tree}")
	if code, _ := httpGet(t, ts.base+"/c/"+orphan+"/kernel"); code != 404 {
		t.Errorf("unpinned commit served: %d", code)
	}

	// The inventory reloads without a restart.
	addNodes(t, r, "node n4 mac=52:54:00:00:00:04 ip=10.77.0.14\n")
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, ok := ts.dhcp.p.Lookup(net.HardwareAddr{0x52, 0x54, 0, 0, 0, 4}); ok {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, _ := httpGet(t, ts.base+"/boot/52-54-00-00-00-04.ipxe"); code != 200 {
		t.Errorf("new node after reload: %d", code)
	}
	if _, body := httpGet(t, ts.base+"/status"); !strings.Contains(body, `"commit": "`+c2+`"`) {
		t.Errorf("status lacks n1's commit:\n%s", body)
	}
	ts.dhcp.p.Event(httpboot.Event{Service: "dhcp", Outcome: "ack", MAC: net.HardwareAddr{0x52, 0x54, 0, 0, 0, 1}, Stage: "dhcp"})
	if _, m := httpGet(t, ts.base+"/metrics"); !strings.Contains(m, `onesis_serve_events_total{service="dhcp",outcome="ack"} 1`) {
		t.Errorf("metrics:\n%s", m)
	}

	// Restart: a new serve still authorises the running nodes' mounts.
	ts.stop()
	ts2 := startServe(t, dir, b, &logs)
	if _, ok := ts2.nfs.p.Authorize(net.ParseIP("10.77.0.11"), "/c/"+c2); !ok {
		t.Error("after a restart the running node's root is refused")
	}
	if code, _ := httpGet(t, ts2.base+"/c/"+c1+"/kernel"); code != 200 {
		t.Errorf("after a restart a booted commit is not served: %d", code)
	}
	if !strings.Contains(logs.String(), "serve: ready") || !strings.Contains(logs.String(), "serve: shutting down") {
		t.Errorf("logs:\n%s", logs.String())
	}
}

func TestServeFailsFastOnBusyPort(t *testing.T) {
	dir, _ := imageRepo(t)
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	busy := l.Addr().(*net.TCPAddr).Port
	srv, err := New(Config{RepoDir: dir, ServerIP: netip.MustParseAddr("127.0.0.1"), HTTPPort: busy,
		NoDHCP: true, NoTFTP: true, NoNFS: true, NoPortmap: true}, Factories{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = srv.Run(ctx)
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Setting != "--http-port" || !strings.Contains(err.Error(), fmt.Sprintf("127.0.0.1:%d", busy)) {
		t.Errorf("Run on a busy port: %v", err)
	}
	// The cause survives (ConfigError.Unwrap), and the address is named once.
	if !errors.Is(err, syscall.EADDRINUSE) || strings.Count(err.Error(), fmt.Sprint(busy)) != 1 {
		t.Errorf("Run on a busy port: %v; want EADDRINUSE in the chain and the port named once", err)
	}
}

func TestKernelChoice(t *testing.T) {
	dir, _ := imageRepo(t)
	// A boot/vmlinuz symlink wins over the newest version.
	sh(t, dir, "ln", "-s", "vmlinuz-6.1.0-9-amd64", "boot/vmlinuz")
	sh(t, dir, "git", "add", "-A")
	sh(t, dir, "git", "commit", "-q", "-m", "link")
	c := sh(t, dir, "git", "rev-parse", "HEAD")
	a, err := NewGitArtifacts(dir, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	blob, err := a.Kernel(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(blob.Content)
	blob.Content.Close()
	if string(got) != "old kernel" || blob.Hash != sh(t, dir, "git", "rev-parse", c+":boot/vmlinuz-6.1.0-9-amd64") {
		t.Errorf("kernel via symlink: %q hash %s", got, blob.Hash)
	}
	// A symlink out of the image is refused.
	sh(t, dir, "ln", "-sfn", "../../../etc/passwd", "boot/vmlinuz")
	sh(t, dir, "git", "commit", "-q", "-am", "escape")
	c = sh(t, dir, "git", "rev-parse", "HEAD")
	if _, err := a.Kernel(context.Background(), c); err == nil || !strings.Contains(err.Error(), "leaves the image") {
		t.Errorf("escaping symlink: %v", err)
	}
	if _, err := a.Initrd(context.Background(), c); err == nil || !strings.Contains(err.Error(), "no initramfs builder") {
		t.Errorf("initrd without a builder: %v", err)
	}
}

type syncBuffer = testkit.Buffer

func TestPXELinuxOverTFTP(t *testing.T) {
	dir, r := imageRepo(t)
	addNodes(t, r, "node n1 mac=52:54:00:00:00:01 ip=10.77.0.11 args=\"quiet\"\n")
	head := sh(t, dir, "git", "rev-parse", "HEAD")
	b := &fakeBuilder{}
	srv, err := New(Config{RepoDir: dir, ServerIP: netip.MustParseAddr("127.0.0.1"), NoDHCP: true, NoTFTP: true,
		NoNFS: true, NoPortmap: true, NoHTTP: true, PXELinux: true}, Factories{Initrd: func(InitrdParams) (InitrdBuilder, error) { return b, nil }})
	if err != nil {
		t.Fatal(err)
	}
	orphan := sh(t, dir, "git", "commit-tree", "-m", "x", head+"^{tree}")
	if _, ok := tftpBytes(srv, "c/"+orphan+"/kernel", net.ParseIP("10.77.0.11")); ok {
		t.Error("kernel of a commit nobody booted (and no ref names) served")
	}
	if _, ok := tftpBytes(srv, "pxelinux.cfg/01-52-54-00-00-00-01", net.ParseIP("10.77.0.99")); ok {
		t.Error("config served to an address that is not the node's")
	}
	cfg, ok := tftpBytes(srv, "pxelinux.cfg/01-52-54-00-00-00-01", net.ParseIP("10.77.0.11"))
	want := "# git-onesis: node n1 boots commit " + head + "\nDEFAULT onesis\nPROMPT 0\nTIMEOUT 0\nLABEL onesis\n" +
		"  KERNEL c/" + head + "/kernel\n  INITRD c/" + head + "/initrd\n" +
		"  APPEND ip=dhcp BOOTIF=01-52-54-00-00-00-01 nfsroot=127.0.0.1:/c/" + head + ",vers=3,proto=tcp,nolock ro" +
		" onesis.commit=" + head + " onesis.node=n1 hostname=n1 console=ttyS0 quiet\n"
	if !ok || string(cfg) != want {
		t.Errorf("pxelinux config (ok=%v):\n%q\nwant:\n%q", ok, cfg, want)
	}
	if got := sh(t, dir, "git", "rev-parse", "refs/onesis/booted/n1"); got != head {
		t.Errorf("booted ref %s", got)
	}
	if k, ok := tftpBytes(srv, "c/"+head+"/kernel", net.ParseIP("10.77.0.11")); !ok || string(k) != "KERNEL 6.1.0-10" {
		t.Errorf("kernel over TFTP: %q %v", k, ok)
	}
	if k, ok := tftpBytes(srv, "c/"+head+"/initrd", net.ParseIP("10.77.0.11")); !ok || string(k) != "INITRD for 6.1.0-10-amd64" {
		t.Errorf("initrd over TFTP: %q %v", k, ok)
	}
	for _, bad := range []string{"c/" + head + "/vmlinuz", "c/../kernel", "pxelinux.cfg/default", "pxelinux.cfg/01-zz"} {
		if _, ok := tftpBytes(srv, bad, net.ParseIP("10.77.0.11")); ok {
			t.Errorf("%s served", bad)
		}
	}
}

func TestDiscover(t *testing.T) {
	dir, _ := imageRepo(t)
	fd := &fakeDHCP{closed: make(chan struct{})}
	state := t.TempDir()
	srv, err := New(Config{RepoDir: dir, Iface: "lo", HTTPPort: freePort(t), StateDir: state, Discover: true,
		NoTFTP: true, NoNFS: true, NoPortmap: true},
		Factories{DHCP: func(p DHCPParams) (Service, error) { fd.p = p; return fd, nil }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if _, err := srv.HTTPAddr(wctx); err != nil {
		t.Fatal(err)
	}
	if fd.p.Discover == nil {
		t.Fatal("--discover did not reach DHCP")
	}
	fd.p.Discover(net.HardwareAddr{0x52, 0x54, 0, 0, 0, 0x42}, "firmware=bios")
	cancel()
	<-done
	list, err := inventory.ReadDiscovered(filepath.Join(state, "discovered"))
	if err != nil || len(list) != 1 || list[0].MAC.String() != "52:54:00:00:00:42" || list[0].Info != "firmware=bios" {
		t.Errorf("discovered: %v %+v", err, list)
	}
}

// tftpBytes reads what tftpGenerate streams, as the TFTP server would,
// checking the size it announced.
func tftpBytes(srv *Server, name string, client net.IP) ([]byte, bool) {
	rc, size, ok := srv.tftpGenerate(name, client)
	if !ok {
		return nil, false
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil || int64(len(b)) != size {
		return nil, false
	}
	return b, true
}

// TestPinsBatched: a storm's worth of nodes pinned at once, some twice:
// every node's booted ref ends at the commit of its last record, each
// record returns only once its ref is written.
func TestPinsBatched(t *testing.T) {
	dir, r := imageRepo(t)
	c1 := sh(t, dir, "git", "rev-parse", "HEAD")
	write(t, dir, "etc/hostname", "v2")
	sh(t, dir, "git", "commit", "-q", "-am", "v2")
	c2 := sh(t, dir, "git", "rev-parse", "HEAD")
	p, err := loadPins(r)
	if err != nil {
		t.Fatal(err)
	}
	const n = 120
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			node := fmt.Sprintf("n%d", i)
			if err := p.record(node, httpboot.Resolution{Commit: c1, From: "branch main"}); err != nil {
				errs[i] = err
				return
			}
			// Written before record returned: git sees it now.
			if got := sh(t, dir, "git", "rev-parse", booted.Prefix+node); got != c1 {
				errs[i] = fmt.Errorf("%s is %s right after record, want %s", node, got, c1)
				return
			}
			if i%3 == 0 {
				errs[i] = p.record(node, httpboot.Resolution{Commit: c2, From: "node ref testing"})
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("node n%d: %v", i, err)
		}
	}
	out := sh(t, dir, "git", "for-each-ref", "--format=%(refname:strip=3) %(objectname)", booted.Prefix)
	got := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, " "); ok {
			got[k] = v
		}
	}
	for i := 0; i < n; i++ {
		want := c1
		if i%3 == 0 {
			want = c2
		}
		if node := fmt.Sprintf("n%d", i); got[node] != want || p.node(node) != want {
			t.Errorf("%s: ref %s, pin %s; want %s", node, got[node], p.node(node), want)
		}
	}
}

// TestPruneKeepsBootedAndCurrent: at start serve prunes the NFS store
// once, before serving, keeping every booted commit and what the default
// and node refs resolve to, and nothing else.
func TestPruneKeepsBootedAndCurrent(t *testing.T) {
	dir, r := imageRepo(t)
	c1 := sh(t, dir, "git", "rev-parse", "testing")
	sh(t, dir, "git", "checkout", "-q", "-b", "old")
	write(t, dir, "etc/hostname", "old")
	sh(t, dir, "git", "commit", "-q", "-am", "old")
	c3 := sh(t, dir, "git", "rev-parse", "HEAD")
	sh(t, dir, "git", "checkout", "-q", "-b", "unused")
	write(t, dir, "etc/hostname", "unused")
	sh(t, dir, "git", "commit", "-q", "-am", "unused")
	sh(t, dir, "git", "checkout", "-q", "main")
	write(t, dir, "etc/hostname", "v2")
	sh(t, dir, "git", "commit", "-q", "-am", "v2")
	c2 := sh(t, dir, "git", "rev-parse", "HEAD")
	sh(t, dir, "git", "update-ref", booted.Prefix+"n1", c3) // n1 still runs c3
	addNodes(t, r, "network 10.77.0.0/24\n"+
		"node n1 mac=52:54:00:00:00:01 ip=10.77.0.11\n"+
		"node n2 mac=52:54:00:00:00:02 ip=10.77.0.12 ref=testing\n"+
		"node n3 mac=52:54:00:00:00:03 ip=10.77.0.13 ref=gone\n")
	ts := startServe(t, dir, &fakeBuilder{}, io.Discard)
	want := []string{c1, c2, c3}
	sort.Strings(want)
	ts.nfs.mu.Lock()
	if len(ts.nfs.pruned) != 1 || !slices.Equal(ts.nfs.pruned[0], want) {
		t.Errorf("pruned keeping %q, want one prune keeping %q (booted c3, default c2, n2's testing c1)", ts.nfs.pruned, want)
	}
	if len(ts.nfs.prepared) != 0 {
		t.Errorf("prepared %q before any node asked", ts.nfs.prepared)
	}
	ts.nfs.mu.Unlock()
	// n1 reboots into c2: the next prune (what the ticker runs) lets c3 go.
	if code, script := httpGet(t, ts.base+"/boot/52-54-00-00-00-01.ipxe"); code != 200 || !strings.Contains(script, c2) {
		t.Fatalf("n1's script: %d\n%s", code, script)
	}
	ts.srv.prune()
	want = []string{c1, c2}
	sort.Strings(want)
	ts.nfs.mu.Lock()
	defer ts.nfs.mu.Unlock()
	if len(ts.nfs.pruned) != 2 || !slices.Equal(ts.nfs.pruned[1], want) {
		t.Errorf("after n1 rebooted into c2, pruned keeping %q, want %q", ts.nfs.pruned, want)
	}
}

// TestArtifactsPrune: cached kernels and initramfs images that no kept
// commit uses are removed (with the image's .sha256), kept ones and files
// that are not the cache's own stay, and a pruned commit's files are
// built again when asked for.
func TestArtifactsPrune(t *testing.T) {
	dir, _ := imageRepo(t)
	c1 := sh(t, dir, "git", "rev-parse", "HEAD")
	write(t, dir, "boot/vmlinuz-6.1.0-11-amd64", "KERNEL 6.1.0-11")
	write(t, dir, "lib/modules/6.1.0-11-amd64/modules.dep", "")
	sh(t, dir, "git", "add", "-A")
	sh(t, dir, "git", "commit", "-q", "-m", "new kernel")
	c2 := sh(t, dir, "git", "rev-parse", "HEAD")
	state := t.TempDir()
	b := &fakeBuilder{}
	a, err := NewGitArtifacts(dir, state, b)
	if err != nil {
		t.Fatal(err)
	}
	fetch := func(c string) {
		t.Helper()
		for _, get := range []func(context.Context, string) (*httpboot.Blob, error){a.Kernel, a.Initrd} {
			blob, err := get(context.Background(), c)
			if err != nil {
				t.Fatal(err)
			}
			blob.Content.Close()
		}
	}
	fetch(c1)
	fetch(c2)
	count := func(sub string) int {
		ents, _ := os.ReadDir(filepath.Join(state, sub))
		return len(ents)
	}
	if count("blobs") != 2 || count("initrd") != 4 {
		t.Fatalf("cache before the prune: %d kernels, %d initrd files; want 2 and 4", count("blobs"), count("initrd"))
	}
	write(t, state, "blobs/.tmp-in-flight", "x")
	write(t, state, "initrd/notes.txt", "x")

	removed, freed, err := a.Prune([]string{c2})
	if err != nil {
		t.Fatal(err)
	}
	if removed != 3 || freed == 0 {
		t.Errorf("Prune removed %d files, %d bytes; want c1's kernel, initramfs and its .sha256", removed, freed)
	}
	k1 := sh(t, dir, "git", "rev-parse", c1+":boot/vmlinuz-6.1.0-10-amd64")
	k2 := sh(t, dir, "git", "rev-parse", c2+":boot/vmlinuz-6.1.0-11-amd64")
	for p, want := range map[string]bool{"blobs/" + k1: false, "blobs/" + k2: true, "blobs/.tmp-in-flight": true, "initrd/notes.txt": true} {
		if _, err := os.Stat(filepath.Join(state, p)); (err == nil) != want {
			t.Errorf("%s present = %v after the prune, want %v", p, err == nil, want)
		}
	}
	if count("initrd") != 3 {
		t.Errorf("%d initrd files after the prune, want c2's two and notes.txt", count("initrd"))
	}
	builds := b.builds
	fetch(c1)
	if b.builds != builds+1 {
		t.Errorf("c1's initramfs was not built again after the prune (%d builds, had %d)", b.builds, builds)
	}
	if _, err := os.Stat(filepath.Join(state, "blobs", k1)); err != nil {
		t.Errorf("c1's kernel was not cached again: %v", err)
	}
}
