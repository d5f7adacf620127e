package nfsroot

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/onesis/git-onesis/boot/portmap"
	"github.com/onesis/git-onesis/internal/testkit"
)

// The kernel test runs the server as a subprocess inside a network
// namespace the test creates (the test binary re-executed with
// ONESIS_NFS_HELPER=1) and mounts it with the Linux NFS client.

const helperEnv = "ONESIS_NFS_HELPER"

// TestHelperProcess is the NFS server subprocess of TestKernelMount; it
// does nothing in a normal run.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		t.Skip("helper process for TestKernelMount")
	}
	commit := os.Getenv("ONESIS_NFS_COMMIT")
	allow := allowCommits(commit)
	guest := net.ParseIP(os.Getenv("ONESIS_NFS_CLIENT")) // the QEMU guest, if any
	srv, err := New(Config{Objects: openGit(t, os.Getenv("ONESIS_NFS_REPO")), StateDir: os.Getenv("ONESIS_NFS_STATE"),
		Authorize: func(ip net.IP, export string) (Export, bool) {
			if guest != nil && ip.Equal(guest) {
				ip = net.IPv4(127, 0, 0, 1)
			}
			if w := os.Getenv("ONESIS_NFS_WORK"); w != "" && ip.IsLoopback() && export == "/w/node1" {
				return Export{Dir: w, ReadWrite: true}, true
			}
			return allow(ip, export)
		}})
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	if err := srv.Prepare(t.Context(), commit); err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	l, err := net.Listen("tcp", os.Getenv("ONESIS_NFS_ADDR"))
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	if pa := os.Getenv("ONESIS_PORTMAP_ADDR"); pa != "" {
		u, err := net.ListenPacket("udp", pa)
		if err != nil {
			fmt.Println("ERROR", err)
			os.Exit(1)
		}
		tl, err := net.Listen("tcp", pa)
		if err != nil {
			fmt.Println("ERROR", err)
			os.Exit(1)
		}
		port := l.Addr().(*net.TCPAddr).Port
		go portmap.Serve(t.Context(), u, tl, port, port, nil)
	}
	fmt.Println("READY")
	srv.Serve(l)
	os.Exit(0)
}

func kernelHasNFS() bool {
	exec.Command("modprobe", "nfs").Run()
	b, _ := os.ReadFile("/proc/filesystems")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(strings.TrimPrefix(l, "nodev")) == "nfs" {
			return true
		}
	}
	return false
}

type helperProc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func startHelper(t *testing.T, ns string, env []string) *helperProc {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run=^TestHelperProcess$", "-test.v")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &helperProc{cmd: cmd, done: make(chan struct{})}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			if line == "READY" || strings.HasPrefix(line, "ERROR") {
				select {
				case ready <- line:
				default:
				}
			}
		}
		cmd.Wait()
		close(h.done)
	}()
	t.Cleanup(h.stop)
	select {
	case line := <-ready:
		if line != "READY" {
			t.Fatalf("NFS server subprocess: %s", line)
		}
	case <-h.done:
		t.Fatal("NFS server subprocess exited before it was ready")
	case <-time.After(60 * time.Second):
		t.Fatal("NFS server subprocess not ready after 60s")
	}
	return h
}

// stop kills the subprocess (ip netns exec execs it, so the pid is the
// server's) and waits for it.
func (h *helperProc) stop() {
	select {
	case <-h.done:
		return
	default:
	}
	h.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-h.done:
	case <-time.After(10 * time.Second):
	}
}

func TestKernelMount(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root: creates a network namespace and mounts NFS")
	}
	testkit.NeedTool(t, "ip", "iproute2")
	if !kernelHasNFS() {
		t.Skip("the running kernel has no NFS client (no nfs in /proc/filesystems after modprobe nfs); the QEMU boot test covers the kernel client")
	}
	fx := newFixture(t)
	ns := fmt.Sprintf("onesis-nfs-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	if out, err := exec.Command("ip", "-n", ns, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("ip link set lo up: %v: %s", err, out)
	}
	const port = 2049
	env := []string{helperEnv + "=1", "ONESIS_NFS_COMMIT=" + fx.commit, "ONESIS_NFS_REPO=" + fx.repo,
		"ONESIS_NFS_STATE=" + t.TempDir(), fmt.Sprintf("ONESIS_NFS_ADDR=127.0.0.1:%d", port)}
	h := startHelper(t, ns, env)

	mnt := t.TempDir()
	opts := fmt.Sprintf("ro,vers=3,proto=tcp,port=%d,mountport=%d,nolock,noacl,timeo=50,retrans=3,addr=127.0.0.1", port, port)
	// nsenter --net only: the NFS client's socket lives in the namespace,
	// the mount itself in ours, so this process can look at it.
	mount := exec.Command("nsenter", "--net=/var/run/netns/"+ns, "mount", "-t", "nfs", "-o", opts, "127.0.0.1:/c/"+fx.commit, mnt)
	if out, err := mount.CombinedOutput(); err != nil {
		t.Fatalf("mount: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-f", "-l", mnt).Run() })

	statTests := []struct {
		path     string
		mode     os.FileMode
		uid, gid uint32
	}{
		{"bin/suid", 04755, 0, 0},
		{"bin/sgid", 02755, 0, 0},
		{"tmp", 01777, 0, 0},
		{"owned", 0640, 1234, 5678},
		{"etc/shadow", 0600, 0, 0},
	}
	for _, tc := range statTests {
		var st syscall.Stat_t
		if err := syscall.Lstat(filepath.Join(mnt, tc.path), &st); err != nil {
			t.Errorf("stat %s: %v", tc.path, err)
			continue
		}
		if os.FileMode(st.Mode&07777) != tc.mode || st.Uid != tc.uid || st.Gid != tc.gid {
			t.Errorf("%s: mode %#o uid %d gid %d; want %#o %d %d", tc.path, st.Mode&07777, st.Uid, st.Gid, tc.mode, tc.uid, tc.gid)
		}
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(filepath.Join(mnt, "dev/null"), &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFCHR || st.Rdev != 0x103 {
		t.Errorf("dev/null: %v mode %o rdev %#x; want a char device 1,3", err, st.Mode, st.Rdev)
	}
	if target, err := os.Readlink(filepath.Join(mnt, "hello.link")); err != nil || target != "/usr/bin/hello" {
		t.Errorf("readlink = %q, %v; want /usr/bin/hello", target, err)
	}
	if b, err := os.ReadFile(filepath.Join(mnt, "secret600")); err != nil || string(b) != "root-only-secret\n" {
		t.Errorf("root reading secret600: %q, %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(mnt, "etc/shadow")); err != nil || len(b) != 0 {
		t.Errorf("etc/shadow: %q, %v; want an empty placeholder", b, err)
	}
	asUser := func(args ...string) (string, error) {
		cmd := exec.Command("setpriv", append([]string{"--reuid=1000", "--regid=1000", "--clear-groups"}, args...)...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := asUser("cat", filepath.Join(mnt, "secret600")); err == nil || !strings.Contains(out, "Permission denied") {
		t.Errorf("uid 1000 cat secret600: %q, %v; want permission denied", out, err)
	}
	if out, err := asUser("cat", filepath.Join(mnt, "etc/passwd")); err != nil || !strings.Contains(out, "root:x:0:0") {
		t.Errorf("uid 1000 cat etc/passwd: %q, %v", out, err)
	}

	// Restart the server with the same state dir; the mount keeps working.
	h.stop()
	startHelper(t, ns, env)
	if b, err := os.ReadFile(filepath.Join(mnt, "usr/bin/hello")); err != nil || string(b) != "#!/bin/sh\necho hello\n" {
		t.Errorf("after a restart, reading usr/bin/hello: %q, %v (stale handle?)", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(mnt, "big.bin")); err != nil || len(b) != len(fx.big) {
		t.Errorf("after a restart, reading big.bin: %d bytes, %v", len(b), err)
	}
	if err := syscall.Lstat(filepath.Join(mnt, "bin/suid"), &st); err != nil || st.Mode&07777 != 04755 {
		t.Errorf("after a restart, stat bin/suid: %v mode %#o", err, st.Mode&07777)
	}
}
