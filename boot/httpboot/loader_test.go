package httpboot

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLoaders: UEFI HTTP boot fetches iPXE from /ipxe/NAME, as EDK2's
// HttpBootDxe does: a HEAD (or GET) for the size first, then the GET.
// Only configured names exist; the type is application/efi.
func TestLoaders(t *testing.T) {
	dir := t.TempDir()
	bin := []byte("MZ-not-really-an-efi-binary")
	if err := os.MkdirAll(filepath.Join(dir, "arm64-efi"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"snponly.efi", "arm64-efi/snponly.efi", "secret"} {
		if err := os.WriteFile(filepath.Join(dir, p), bin, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h, st, _ := testHandler(t)
	h.cfg.Loaders = map[string]string{"snponly.efi": filepath.Join(dir, "snponly.efi"), "arm64-efi/snponly.efi": filepath.Join(dir, "arm64-efi/snponly.efi")}

	head := httptest.NewRequest("HEAD", "/ipxe/snponly.efi", nil)
	head.RemoteAddr = "10.77.0.13:40000"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, head)
	if w.Code != 200 || w.Header().Get("Content-Length") != "27" || w.Body.Len() != 0 {
		t.Errorf("HEAD: %d %v %q", w.Code, w.Header(), w.Body)
	}
	for _, p := range []string{"/ipxe/snponly.efi", "/ipxe/arm64-efi/snponly.efi"} {
		w := getFrom(h, "10.77.0.13", p)
		if w.Code != 200 || w.Body.String() != string(bin) || w.Header().Get("Content-Type") != "application/efi" {
			t.Errorf("GET %s: %d %q %v", p, w.Code, w.Body, w.Header())
		}
	}
	for _, p := range []string{"/ipxe/secret", "/ipxe/", "/ipxe/../ipxe/snponly.efi", "/ipxe/undionly.kpxe"} {
		if w := getFrom(h, "10.77.0.13", p); w.Code != 404 || strings.Contains(w.Body.String(), "MZ") {
			t.Errorf("GET %s: %d %q, want 404", p, w.Code, w.Body)
		}
	}
	snap := st.Snapshot(nil)
	if len(snap) != 1 || snap[0].Name != "n3" || snap[0].Stage != "http arm64-efi/snponly.efi" {
		t.Errorf("status after the loader fetches: %+v", snap)
	}
	if n := st.Counter("http", "loader"); n != 3 {
		t.Errorf("loader events: %d, want 3", n)
	}
}

// TestFirmwareStatus: /status keeps what started each node's boot, not
// the iPXE that firmware loaded nor the kernel's own DHCP.
func TestFirmwareStatus(t *testing.T) {
	st := NewStatus()
	t0 := time.Unix(1700000000, 0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	dhcp := func(node, fw string, s int) {
		st.Record(Event{Time: at(s), Service: "dhcp", Outcome: "ack", Node: node, Firmware: fw})
	}
	script := func(node string, s int) {
		st.Record(Event{Time: at(s), Service: "http", Outcome: "script", Node: node, Stage: "script", Commit: c1})
	}
	steps := []struct {
		do   func()
		node string
		want string
	}{
		// A UEFI PXE node: firmware, then its iPXE, the script, the kernel.
		{func() { dhcp("u", "efi-x64", 1) }, "u", "efi-x64"},
		{func() { dhcp("u", "ipxe", 2) }, "u", "efi-x64"},
		{func() { script("u", 3) }, "u", "efi-x64"},
		{func() { dhcp("u", "none", 4) }, "u", "efi-x64"},
		// It reboots by UEFI HTTP boot.
		{func() { dhcp("u", "efi-x64-http", 10) }, "u", "efi-x64-http"},
		{func() { dhcp("u", "ipxe", 11) }, "u", "efi-x64-http"},
		{func() { script("u", 12) }, "u", "efi-x64-http"},
		// Then with an iPXE ROM: after a script, iPXE starts a new boot.
		{func() { dhcp("u", "ipxe", 20) }, "u", "ipxe"},
		// An iPXE ROM node from the start.
		{func() { dhcp("r", "ipxe", 1) }, "r", "ipxe"},
		{func() { script("r", 2) }, "r", "ipxe"},
		{func() { dhcp("r", "none", 3) }, "r", "ipxe"},
		// A seeded value (from the last serve) gives way to any request.
		{func() { st.SetFirmware("s", "efi-x64", at(0)) }, "s", "efi-x64"},
		{func() { dhcp("s", "ipxe", 1) }, "s", "ipxe"},
		{func() { st.SetFirmware("s", "bios", at(0)) }, "s", "ipxe"},
	}
	for i, s := range steps {
		s.do()
		if got := st.Firmware(s.node); got != s.want {
			t.Fatalf("step %d: %s firmware %q, want %q", i, s.node, got, s.want)
		}
	}
	for _, ns := range st.Snapshot(nil) {
		if ns.Name == "u" && ns.Firmware != "ipxe" {
			t.Errorf("snapshot: %+v", ns)
		}
	}
}
