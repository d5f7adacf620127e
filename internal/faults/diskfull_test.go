package faults

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/onesis/git-onesis/internal/bootsim"
)

// fetch GETs url inside the server namespace with curl and returns the
// HTTP status and the body.
func (l *lab) fetch(url string) (int, []byte) {
	l.t.Helper()
	out := filepath.Join(l.t.TempDir(), "body")
	code, err := l.inSrv("curl", "-s", "--max-time", "30", "-o", out, "-w", "%{http_code}", url)
	if err != nil {
		l.t.Fatalf("curl %s: %v %s", url, err, code)
	}
	var status int
	fmt.Sscan(code, &status)
	b, _ := os.ReadFile(out)
	return status, b
}

// TestDiskFullWhileMaterialising: serve's state directory is a small
// tmpfs. After the 20 nodes booted commit v1, the tmpfs is filled up and
// v2 (a new kernel) is committed. Serving v2's kernel fails with an error
// that says the disk is full, leaves no partial file, and v1's kernel and
// initramfs are still served byte for byte; once space is freed, v2 is
// served too.
func TestDiskFullWhileMaterialising(t *testing.T) {
	l := newLab(t, 1<<20)
	state := filepath.Join(t.TempDir(), "state")
	os.Mkdir(state, 0o755)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=16m", "onesis-faults", state).CombinedOutput(); err != nil {
		t.Fatalf("mounting a tmpfs for the state directory: %v %s", err, out)
	}
	t.Cleanup(func() {
		l.stopServe() // before the unmount: it holds files there
		exec.Command("umount", "-l", state).Run()
	})
	l.state = state
	v1 := run(t, l.repo, "git", "rev-parse", "HEAD")
	l.startServe()
	l.checkAll(l.storm(3*time.Minute, 0)(), map[string]string{v1: l.kernelBlob(v1)})
	base := "http://" + srvIP + ":8080/c/"
	code, initrd1 := l.fetch(base + v1 + "/initrd")
	if code != 200 || len(initrd1) == 0 {
		t.Fatalf("v1 initrd before the disk filled up: HTTP %d, %d bytes", code, len(initrd1))
	}

	// Fill the tmpfs up.
	filler, err := os.Create(filepath.Join(state, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for i := 0; i < 16<<20/len(chunk)+1; i++ {
		if _, err = filler.Write(chunk); err != nil {
			break
		}
	}
	filler.Close()
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("filling the state tmpfs: %v, want no space left", err)
	}
	v2 := l.commitKernel("v2")

	// n1 follows main: its script now names v2.
	code, script := l.fetch("http://" + srvIP + ":8080/boot/" + strings.ReplaceAll(clientMAC(1), ":", "-") + ".ipxe")
	t.Logf("n1's script with the disk full: HTTP %d", code)
	if code == 200 && !strings.Contains(string(script), "onesis.commit="+v2) {
		t.Errorf("n1's script does not name v2 %s:\n%s", v2, script)
	}
	code, body := l.fetch(base + v2 + "/kernel")
	if code == 200 {
		t.Errorf("v2's kernel was served (%d bytes) although it could not be cached", len(body))
	} else if code < 500 {
		t.Errorf("v2's kernel with the disk full: HTTP %d, want a server error", code)
	}
	if logs := l.logs.String(); !strings.Contains(logs, "no space left on device") {
		t.Errorf("serve's log does not say the disk is full:\n%s", tail(logs, 3000))
	} else {
		for _, line := range strings.Split(logs, "\n") {
			if strings.Contains(line, "no space left") {
				t.Logf("serve says: %s", line)
				break
			}
		}
	}
	// v1 is unharmed.
	if code, b := l.fetch(base + v1 + "/kernel"); code != 200 || bootsim.GitBlobID(b) != l.kernelBlob(v1) {
		t.Errorf("v1 kernel with the disk full: HTTP %d, blob %.12s, want %.12s", code, bootsim.GitBlobID(b), l.kernelBlob(v1))
	}
	if code, b := l.fetch(base + v1 + "/initrd"); code != 200 || string(b) != string(initrd1) {
		t.Errorf("v1 initrd with the disk full: HTTP %d, %d bytes, want the %d bytes served before", code, len(b), len(initrd1))
	}
	// No partial file is left behind.
	filepath.WalkDir(state, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasPrefix(d.Name(), ".") {
			t.Errorf("a temporary file is left in the state directory: %s", p)
		}
		return nil
	})

	// Space again: v2 is served.
	os.Remove(filepath.Join(state, "filler"))
	if code, b := l.fetch(base + v2 + "/kernel"); code != 200 || bootsim.GitBlobID(b) != l.kernelBlob(v2) {
		t.Errorf("v2 kernel after space was freed: HTTP %d, blob %.12s, want %.12s", code, bootsim.GitBlobID(b), l.kernelBlob(v2))
	}
}
