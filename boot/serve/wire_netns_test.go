package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/onesis/git-onesis/internal/testkit"
)

// TestServeWiredNetns runs the real serve (real DHCP, TFTP, HTTP, portmap
// and NFS servers) in a network namespace the test creates, on a veth
// pair, and talks to it with real clients from the other end: busybox
// udhcpc, tftp-hpa, curl and rpcinfo. No traffic leaves the namespace.
func TestServeWiredNetns(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root: creates a network namespace and binds ports 67, 69 and 111 (CI runs as root)")
	}
	for tool, pkg := range map[string]string{"busybox": "busybox-static", "tftp": "tftp-hpa", "curl": "curl", "rpcinfo": "rpcbind", "ip": "iproute2"} {
		testkit.NeedTool(t, tool, pkg)
	}
	testkit.NeedFile(t, "/etc/services", "netbase") // rpcinfo resolves "sunrpc" there
	dir, r := imageRepo(t)
	addNodes(t, r, "network 10.77.0.0/24 router=10.77.0.1 dns=10.77.0.1 domain=c.example\n"+
		"node n1 mac=52:54:00:00:00:01 ip=10.77.0.11\n")
	head := sh(t, dir, "git", "rev-parse", "HEAD")

	ns := fmt.Sprintf("onesis-serve-%d", os.Getpid())
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	run("ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	run("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
	run("ip", "-n", ns, "link", "set", "lo", "up")
	run("ip", "-n", ns, "link", "add", "srv0", "type", "veth", "peer", "name", "cli0")
	run("ip", "-n", ns, "addr", "add", "10.77.0.1/24", "dev", "srv0")
	run("ip", "-n", ns, "link", "set", "cli0", "address", "52:54:00:00:00:01")
	run("ip", "-n", ns, "link", "set", "srv0", "up")
	run("ip", "-n", ns, "link", "set", "cli0", "up")

	init := filepath.Join(t.TempDir(), "onesis-init") // never run: no initramfs is fetched here
	os.WriteFile(init, []byte("#!/bin/sh\n"), 0o755)
	state := t.TempDir()
	srv, logs, exited := serveInNS(t, ns, map[string]string{"repo": dir, "init": init, "state": state})
	in := func(args ...string) (string, error) {
		out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
		return string(out), err
	}
	// Wait for HTTP (the last service to start).
	var script string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if out, err := in("curl", "-sf", "--max-time", "2", "http://10.77.0.1:8080/boot/52-54-00-00-00-01.ipxe"); err == nil {
			script = out
			break
		}
	}
	if !strings.Contains(script, "onesis.commit="+head) || !strings.Contains(script, "nfsroot=10.77.0.1:/c/"+head) {
		t.Fatalf("script: %q\nserve logs:\n%s", script, logs.String())
	}

	// DHCP: the known MAC gets its lease; as an iPXE, the script URL.
	udhcpcScript := filepath.Join(t.TempDir(), "udhcpc.sh")
	os.WriteFile(udhcpcScript, []byte("#!/bin/sh\n[ \"$1\" = bound ] && echo \"LEASE ip=$ip subnet=$subnet router=$router dns=$dns hostname=$hostname domain=$domain boot_file=$boot_file\"\nexit 0\n"), 0o755)
	out, err := in("busybox", "udhcpc", "-i", "cli0", "-n", "-q", "-f", "-t", "4", "-T", "1", "-s", udhcpcScript)
	if err != nil || !strings.Contains(out, "LEASE ip=10.77.0.11 subnet=255.255.255.0 router=10.77.0.1 dns=10.77.0.1 hostname=n1 domain=c.example") {
		t.Errorf("udhcpc for the known MAC: %v\n%s", err, out)
	}
	out, err = in("busybox", "udhcpc", "-i", "cli0", "-n", "-q", "-f", "-t", "4", "-T", "1", "-s", udhcpcScript, "-x", "0x4d:69505845")
	if err != nil || !strings.Contains(out, "boot_file=http://10.77.0.1:8080/boot/${mac:hexhyp}.ipxe") {
		t.Errorf("udhcpc as iPXE: %v\n%s", err, out)
	}
	// As UEFI HTTP boot (vendor class and arch as OVMF sends them): the
	// URL of snponly.efi, which the HTTP server serves byte for byte.
	out, err = in("busybox", "udhcpc", "-i", "cli0", "-n", "-q", "-f", "-t", "4", "-T", "1", "-s", udhcpcScript,
		"-V", "HTTPClient:Arch:00016:UNDI:003000", "-x", "0x5d:0010")
	if err != nil || !strings.Contains(out, "boot_file=http://10.77.0.1:8080/ipxe/snponly.efi") {
		t.Errorf("udhcpc as UEFI HTTP boot: %v\n%s", err, out)
	}
	snp := filepath.Join(t.TempDir(), "snponly.efi")
	if out, err := in("curl", "-sSf", "--max-time", "5", "-o", snp, "http://10.77.0.1:8080/ipxe/snponly.efi"); err != nil {
		t.Errorf("curl snponly.efi: %v %s", err, out)
	}
	wantSNP, _ := os.ReadFile("/usr/lib/ipxe/snponly.efi")
	if b, _ := os.ReadFile(snp); !bytes.Equal(b, wantSNP) || len(wantSNP) == 0 {
		t.Errorf("HTTP snponly.efi: got %d bytes, want %d", len(b), len(wantSNP))
	}
	if out, err := in("curl", "-sf", "--max-time", "5", "http://10.77.0.1:8080/status"); err != nil || !strings.Contains(out, `"firmware": "efi-x64-http"`) {
		t.Errorf("status firmware after UEFI HTTP boot: %v\n%s", err, out)
	}
	if fw, err := ReadNodeFirmware(state); err != nil || fw["n1"].Firmware != "efi-x64-http" {
		t.Errorf("recorded firmware: %v %v", fw, err)
	}
	// An unknown MAC gets silence.
	run("ip", "-n", ns, "link", "set", "cli0", "address", "52:54:00:00:00:99")
	if out, err := in("busybox", "udhcpc", "-i", "cli0", "-n", "-q", "-f", "-t", "2", "-T", "1", "-s", udhcpcScript); err == nil || strings.Contains(out, "LEASE") {
		t.Errorf("udhcpc for an unknown MAC got a lease: %s", out)
	}

	// TFTP: the iPXE binary, byte for byte; traversal refused generically.
	got := filepath.Join(t.TempDir(), "undionly.kpxe")
	if out, err := in("tftp", "10.77.0.1", "-c", "get", "undionly.kpxe", got); err != nil {
		t.Errorf("tftp get: %v %s", err, out)
	}
	want, _ := os.ReadFile("/usr/lib/ipxe/undionly.kpxe")
	if b, _ := os.ReadFile(got); !bytes.Equal(b, want) || len(want) == 0 {
		t.Errorf("tftp: got %d bytes, want %d", len(b), len(want))
	}
	out, _ = in("tftp", "10.77.0.1", "-c", "get", "../../etc/shadow", filepath.Join(t.TempDir(), "x"))
	if !strings.Contains(out, "Error code") || strings.Contains(out, "/usr/lib") || strings.Contains(out, "shadow:") {
		t.Errorf("tftp traversal: %q", out)
	}

	// portmap answers for NFS and MOUNT on the NFS port.
	if out, err := in("rpcinfo", "-p", "10.77.0.1"); err != nil || !strings.Contains(out, "100003") || !strings.Contains(out, "2049") {
		t.Errorf("rpcinfo: %v\n%s", err, out)
	}
	// The kernel over HTTP, content-addressed.
	if out, err := in("curl", "-sf", "--max-time", "5", "http://10.77.0.1:8080/c/"+head+"/kernel"); err != nil || out != "KERNEL 6.1.0-10" {
		t.Errorf("kernel: %v %q", err, out)
	}
	if out, err := in("curl", "-sf", "--max-time", "5", "http://10.77.0.1:8080/status"); err != nil || !strings.Contains(out, `"dhcp": "ack"`) {
		t.Errorf("status after DHCP: %v\n%s", err, out)
	}
	srv.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Errorf("serve did not exit cleanly: %v\n%s", err, logs.String())
		}
	case <-time.After(15 * time.Second):
		t.Errorf("serve did not stop on SIGTERM")
	}
}

// serveInNS starts the real serve (TestServeHelper, with helper config
// cfg) inside ns, and stops it with SIGTERM when t ends. exited delivers
// its exit status once; logs collects what it prints.
func serveInNS(t *testing.T, ns string, cfg map[string]string) (srv *exec.Cmd, logs *testkit.Buffer, exited chan error) {
	t.Helper()
	b, _ := json.Marshal(cfg)
	srv = exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run=^TestServeHelper$")
	srv.Env = append(os.Environ(), "ONESIS_SERVE_HELPER="+string(b))
	logs = &testkit.Buffer{}
	srv.Stdout, srv.Stderr = logs, logs
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	exited = make(chan error, 1)
	go func() { exited <- srv.Wait() }()
	t.Cleanup(func() {
		srv.Process.Signal(syscall.SIGTERM) // ip netns exec execs the helper: this is its PID
		select {
		case err := <-exited:
			exited <- err
		case <-time.After(15 * time.Second):
			srv.Process.Kill()
			<-exited
		}
	})
	return srv, logs, exited
}

// TestServeHelper is the subprocess side of TestServeWiredNetns and
// TestServeARM64HTTPBootQEMU: the real serve on srv0 (or the "iface" the
// parent names, with its "ipxe" directory when given), until SIGTERM.
func TestServeHelper(t *testing.T) {
	env := os.Getenv("ONESIS_SERVE_HELPER")
	if env == "" {
		t.Skip("helper process for TestServeWiredNetns")
	}
	var p map[string]string
	if err := json.Unmarshal([]byte(env), &p); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	iface := p["iface"]
	if iface == "" {
		iface = "srv0"
	}
	srv, err := New(Config{RepoDir: p["repo"], Iface: iface, ServerIP: netip.MustParseAddr("10.77.0.1"),
		StateDir: p["state"], InitPath: p["init"], IPXEDir: p["ipxe"], AnnounceRA: true, Logger: log}, Real())
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute) // bounded even if never signalled
	defer cancel()
	if err := srv.Run(ctx); err != nil {
		t.Fatal(err)
	}
}
