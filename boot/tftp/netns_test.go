package tftp

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onesis/git-onesis/internal/testkit"
)

// The tests in this file run real TFTP clients (tftp-hpa, curl) against the
// server in network namespaces they create, joined by a veth pair:
//
//	server ns: vs 10.77.8.1/24  <--veth-->  client ns: vc 10.77.8.2/24
//
// The server is this test binary re-executed as TestHelperProcess inside
// the server namespace (pin/tftp opens a socket per transfer, and a Go
// socket belongs to the namespace of the thread that creates it, so the
// test process never setns()es).

const helperEnv = "ONESIS_TFTP_TEST_HELPER"

type helperConfig struct {
	Addr  string
	Iface string
	Files map[string]string
}

func needRoot(t *testing.T) {
	t.Helper()
	testkit.NeedRoot(t, "creates network namespaces and binds port 69")
}

func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	return testkit.Run(t, name, args...)
}

// setupPair creates the namespaces and returns their names.
func setupPair(t *testing.T) (srv, cli string) {
	t.Helper()
	return testkit.VethPair(t, "onesis-tftp", "10.77.8.1/24", "10.77.8.2/24")
}

type helper struct {
	mu     sync.Mutex
	events []Event
}

func (h *helper) snapshot() []Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Event(nil), h.events...)
}

// waitEvents waits (bounded) until n events have arrived.
func (h *helper) waitEvents(n int, d time.Duration) []Event {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if evs := h.snapshot(); len(evs) >= n {
			return evs
		}
		time.Sleep(50 * time.Millisecond)
	}
	return h.snapshot()
}

func startHelper(t *testing.T, ns string, cfg helperConfig) *helper {
	t.Helper()
	b, _ := json.Marshal(cfg)
	h := &helper{}
	testkit.StartHelper(t, ns, "TestHelperProcess", []string{helperEnv + "=" + string(b)}, func(line string) {
		if rest, ok := strings.CutPrefix(line, "EVENT "); ok {
			var ev Event
			if json.Unmarshal([]byte(rest), &ev) == nil {
				h.mu.Lock()
				h.events = append(h.events, ev)
				h.mu.Unlock()
			}
		}
	})
	return h
}

// TestHelperProcess is not a test: it is the server the namespace tests
// start with `ip netns exec`.
func TestHelperProcess(t *testing.T) {
	raw := os.Getenv(helperEnv)
	if raw == "" {
		t.Skip("subprocess of the namespace tests only")
	}
	var hc helperConfig
	if err := json.Unmarshal([]byte(raw), &hc); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var outMu sync.Mutex
	s, err := New(Config{Addr: hc.Addr, Iface: hc.Iface, Files: hc.Files, Timeout: time.Second, Retries: 3,
		Event: func(e Event) {
			b, _ := json.Marshal(e)
			outMu.Lock()
			fmt.Printf("EVENT %s\n", b)
			outMu.Unlock()
		}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(testkit.ServeUntilStopped(s.Serve, s.Close))
}

// TestClients: tftp-hpa and curl fetch the boot loaders byte-identical from
// the server bound to its interface; traversal, absolute and image paths
// are refused with a generic error that names no server path. Needs root
// and tftp-hpa (curl optional); about 3 s.
func TestClients(t *testing.T) {
	needRoot(t)
	tftpBin := testkit.NeedTool(t, "tftp", "tftp-hpa")
	srvNS, cliNS := setupPair(t)

	dir := t.TempDir()
	files := DefaultIPXEFiles(DefaultIPXEDir)
	if files["undionly.kpxe"] == "" {
		// Debian's ipxe package is missing: serve a stand-in of a similar size.
		p := filepath.Join(dir, "undionly.kpxe")
		b := make([]byte, 70_000)
		rand.Read(b)
		os.WriteFile(p, b, 0o644)
		files["undionly.kpxe"] = p
	}
	big := make([]byte, 3<<20+123) // many blocks, odd tail
	rand.Read(big)
	bigPath := filepath.Join(dir, "kernel.bin")
	if err := os.WriteFile(bigPath, big, 0o644); err != nil {
		t.Fatal(err)
	}
	files["boot/kernel.bin"] = bigPath
	h := startHelper(t, srvNS, helperConfig{Iface: "vs", Files: files}) // Addr "" = vs's address, port 69

	outDir := t.TempDir()
	clientRun := func(name string, args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", cliNS, name}, args...)...)
		cmd.Dir = outDir
		out, err := cmd.CombinedOutput()
		if ctx.Err() != nil {
			t.Fatalf("%s %v timed out: %s", name, args, out)
		}
		return string(out), err
	}
	sameAs := func(local, host string) {
		t.Helper()
		got, err := os.ReadFile(local)
		if err != nil {
			t.Errorf("%s: %v", local, err)
			return
		}
		want, _ := os.ReadFile(host)
		if !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes, not identical to the served %d-byte file", local, len(got), len(want))
		}
	}
	nEvents := 0

	// tftp-hpa: plain RFC 1350 transfers.
	for _, name := range []string{"undionly.kpxe", "/boot/kernel.bin"} {
		local := filepath.Join(outDir, "hpa-"+filepath.Base(name))
		out, err := clientRun(tftpBin, "-m", "binary", "10.77.8.1", "-c", "get", name, local)
		if err != nil || strings.Contains(out, "Error") {
			t.Errorf("tftp get %s: %v %s", name, err, out)
		}
		sameAs(local, files[strings.TrimPrefix(name, "/")])
		nEvents++
	}
	// Refusals, with what the client prints checked for leaks.
	leaks := []string{dir, DefaultIPXEDir, "/etc", "no such file", "open ", "permission"}
	refused := []string{"../../etc/shadow", "/etc/passwd", "pxelinux.cfg/../../x", "etc/shadow",
		"c/0123456789abcdef0123456789abcdef01234567/etc/shadow", "boot/vmlinuz-6.1.0-57-amd64", bigPath}
	for _, name := range refused {
		local := filepath.Join(outDir, "refused")
		out, _ := clientRun(tftpBin, "-m", "binary", "10.77.8.1", "-c", "get", name, local)
		t.Logf("tftp get %s -> %s", name, strings.TrimSpace(out))
		if !strings.Contains(out, "file not found") {
			t.Errorf("tftp get %s: want the generic \"file not found\", got %q", name, out)
		}
		for _, l := range leaks {
			if l != "/etc" && strings.Contains(out, l) || l == "/etc" && strings.Contains(strings.ReplaceAll(out, name, ""), l) {
				t.Errorf("tftp get %s: client output %q leaks %q", name, out, l)
			}
		}
		if b, err := os.ReadFile(local); err == nil && len(b) > 0 {
			t.Errorf("tftp get %s wrote %d bytes", name, len(b))
		}
		nEvents++
	}
	// A write is refused too.
	up := filepath.Join(outDir, "upload")
	os.WriteFile(up, []byte("x"), 0o644)
	if out, _ := clientRun(tftpBin, "-m", "binary", "10.77.8.1", "-c", "put", up, "new.bin"); !strings.Contains(strings.ToLower(out), "access violation") {
		t.Errorf("tftp put: want an access violation, got %q", out)
	}
	nEvents++

	// curl: negotiates tsize and blksize.
	if curl := testkit.NeedTool(t, "curl", "curl"); curl != "" {
		for _, bs := range []string{"512", "1468", "8192"} {
			local := filepath.Join(outDir, "curl-"+bs)
			out, err := clientRun(curl, "-sS", "--tftp-blksize", bs, "-o", local, "tftp://10.77.8.1/boot/kernel.bin")
			if err != nil {
				t.Errorf("curl blksize %s: %v %s", bs, err, out)
			}
			sameAs(local, bigPath)
			nEvents++
		}
		out, err := clientRun(curl, "-sS", "--path-as-is", "-o", filepath.Join(outDir, "curl-refused"), "tftp://10.77.8.1/../../etc/shadow")
		t.Logf("curl tftp://10.77.8.1/../../etc/shadow -> %s", strings.TrimSpace(out))
		if err == nil {
			t.Errorf("curl fetched ../../etc/shadow: %s", out)
		}
		for _, l := range leaks[:2] {
			if strings.Contains(out, l) {
				t.Errorf("curl output %q leaks %q", out, l)
			}
		}
		nEvents++
	} else {
		t.Log("curl not installed: second client skipped")
	}

	evs := h.waitEvents(nEvents, 10*time.Second)
	var sent, refusedN int
	sawTraversal := false
	for _, e := range evs {
		switch e.Status {
		case "sent":
			sent++
			if e.Client != "10.77.8.2" || e.Bytes == 0 {
				t.Errorf("sent event %+v", e)
			}
		case "refused":
			refusedN++
			if e.Name == "\"/../../etc/shadow\"" || e.Name == "\"../../etc/shadow\"" {
				sawTraversal = true
			}
		}
	}
	if !sawTraversal {
		t.Errorf("no refused event for the raw traversal name: %+v", evs)
	}
	wantSent := 2 + 3 // tftp-hpa, then curl at three block sizes
	if sent != wantSent || refusedN < len(refused)+1 {
		t.Errorf("server events: %d sent, %d refused; want %d and at least %d:\n%+v", sent, refusedN, wantSent, len(refused)+1, evs)
	}
}
