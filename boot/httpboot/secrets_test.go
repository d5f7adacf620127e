package httpboot

import (
	"archive/tar"
	"bytes"
	"io"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/onesis/git-onesis/boot/inventory"
)

func TestSecrets(t *testing.T) {
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "n1", "etc", "ssh"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "n1", "etc", "ssh", "ssh_host_ed25519_key"), []byte("PRIVATE"), 0o600))
	must(os.Symlink("/etc/passwd", filepath.Join(dir, "n1", "escape")))
	must(os.Symlink("../n2", filepath.Join(dir, "n1", "sibling")))
	must(os.MkdirAll(filepath.Join(dir, "n2"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "n2", "other"), []byte("N2"), 0o600))
	inv, err := inventory.Parse("nodes", []byte("node n1 mac=52:54:00:00:00:01 ip=10.77.0.11\nnode n2 mac=52:54:00:00:00:02 ip=10.77.0.12\n"))
	must(err)
	h, err := New(Config{BaseURL: "http://10.77.0.1:8080", NFSServer: netip.MustParseAddr("10.77.0.1"),
		Inventory: func() *inventory.Inventory { return inv }, Resolver: fakeResolver{}, Artifacts: memArtifacts{},
		Servable: func(string) bool { return false }, SecretsDir: dir})
	must(err)
	fetch := func(path, remote string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", path, nil)
		req.RemoteAddr = remote
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	for _, tc := range []struct{ path, remote string }{
		{"/n/n1/secrets", "10.77.0.11:40000"}, // unprivileged port: any user on the node
		{"/n/n1/secrets", "10.77.0.12:700"},   // another node's root
		{"/n/n1/secrets", "10.77.0.99:700"},   // not a node
		{"/n/../secrets", "10.77.0.11:700"},
	} {
		if w := fetch(tc.path, tc.remote); w.Code != 403 && w.Code != 404 || bytes.Contains(w.Body.Bytes(), []byte("PRIVATE")) {
			t.Errorf("GET %s from %s: %d", tc.path, tc.remote, w.Code)
		}
	}
	w := fetch("/n/n1/secrets", "10.77.0.11:700")
	if w.Code != 200 {
		t.Fatalf("node's root: %d %s", w.Code, w.Body)
	}
	tr := tar.NewReader(w.Body)
	got := map[string]string{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		must(err)
		b, _ := io.ReadAll(tr)
		got[hdr.Name] = string(b)
		if hdr.Name == "etc/ssh/ssh_host_ed25519_key" && (hdr.Mode != 0o600 || hdr.Uid != 0) {
			t.Errorf("key header: mode %o uid %d", hdr.Mode, hdr.Uid)
		}
	}
	if got["etc/ssh/ssh_host_ed25519_key"] != "PRIVATE" || len(got) != 3 {
		t.Errorf("archive: %v", got)
	}
	for name := range got {
		if name == "escape" || name == "sibling" || name == "sibling/other" {
			t.Errorf("a symlink was followed or archived: %s", name)
		}
	}
}
