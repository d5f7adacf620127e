package serve

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/onesis/git-onesis/boot/dhcp"
)

// TestBootFileFirmwares: every name serve --boot-file takes is one the
// DHCP server knows.
func TestBootFileFirmwares(t *testing.T) {
	for _, name := range BootFileFirmwares {
		if fw, ok := dhcp.ParseFirmware(name); !ok || fw.String() != name || !(fw.PXE() || fw.HTTPBoot()) {
			t.Errorf("%q: %v %v", name, fw, ok)
		}
	}
}

// TestPlanLoaders: which firmware serve answers with what, from the
// iPXE directory, --boot-file, --no-tftp and --no-http.
func TestPlanLoaders(t *testing.T) {
	debian := t.TempDir() // what Debian's ipxe package ships: no arm64
	for _, f := range []string{"undionly.kpxe", "ipxe.efi", "snponly.efi"} {
		write(t, debian, f, "x")
	}
	fedora := t.TempDir() // plus arm64-efi/snponly.efi, as Fedora's packages lay it out
	for _, f := range []string{"undionly.kpxe", "ipxe.efi", "snponly.efi", "arm64-efi/snponly.efi", "ipxe-arm64.efi"} {
		write(t, fedora, f, "x")
	}
	for _, tc := range []struct {
		name      string
		cfg       Config
		bootFiles map[string]string
		files     []string
		warn      string
		err       string
	}{
		{name: "debian: arm64 off",
			cfg:       Config{IPXEDir: debian},
			bootFiles: map[string]string{"efi-arm64": "", "efi-arm64-http": ""},
			files:     []string{"ipxe.efi", "snponly.efi", "undionly.kpxe"},
			warn:      "no iPXE for arm64"},
		{name: "fedora layout: arm64 on by default",
			cfg:       Config{IPXEDir: fedora},
			bootFiles: map[string]string{},
			files:     []string{"arm64-efi/snponly.efi", "ipxe.efi", "snponly.efi", "undionly.kpxe"}},
		{name: "arm64 binary named by --boot-file",
			cfg:       Config{IPXEDir: fedora, BootFiles: map[string]string{"efi-arm64": "ipxe-arm64.efi", "efi-arm64-http": "ipxe-arm64.efi"}},
			bootFiles: map[string]string{"efi-arm64": "ipxe-arm64.efi", "efi-arm64-http": "ipxe-arm64.efi"},
			files:     []string{"arm64-efi/snponly.efi", "ipxe-arm64.efi", "ipxe.efi", "snponly.efi", "undionly.kpxe"}},
		{name: "--no-tftp: PXE firmware off, HTTP boot on",
			cfg:       Config{IPXEDir: fedora, NoTFTP: true},
			bootFiles: map[string]string{"bios": "", "efi-ia32": "", "efi-x64": "", "efi-arm64": ""},
			files:     []string{"arm64-efi/snponly.efi", "ipxe.efi", "snponly.efi", "undionly.kpxe"},
			warn:      "TFTP is off"},
		{name: "--no-http: HTTP boot off unless a full URL",
			cfg:       Config{IPXEDir: fedora, NoHTTP: true, BootFiles: map[string]string{"efi-x64-http": "http://10.0.0.9/snp.efi"}},
			bootFiles: map[string]string{"efi-x64-http": "http://10.0.0.9/snp.efi", "efi-arm64-http": ""},
			files:     []string{"arm64-efi/snponly.efi", "ipxe.efi", "snponly.efi", "undionly.kpxe"}},
		{name: "refuse a firmware",
			cfg:       Config{IPXEDir: debian, BootFiles: map[string]string{"efi-x64": ""}},
			bootFiles: map[string]string{"efi-x64": "", "efi-arm64": "", "efi-arm64-http": ""},
			files:     []string{"ipxe.efi", "snponly.efi", "undionly.kpxe"},
			warn:      "arm64"},
		{name: "unknown firmware", cfg: Config{IPXEDir: debian, BootFiles: map[string]string{"efi-riscv64": "x.efi"}}, err: `--boot-file: "efi-riscv64" is not a firmware`},
		{name: "ipxe is not configurable", cfg: Config{IPXEDir: debian, BootFiles: map[string]string{"ipxe": "x"}}, err: `"ipxe" is not a firmware`},
		{name: "missing file", cfg: Config{IPXEDir: debian, BootFiles: map[string]string{"efi-arm64": "arm64.efi"}}, err: "efi-arm64=arm64.efi: there is no such file in --ipxe-dir"},
		{name: "escape", cfg: Config{IPXEDir: debian, BootFiles: map[string]string{"bios": "../../etc/shadow"}}, err: "clean relative name"},
		{name: "absolute", cfg: Config{IPXEDir: debian, BootFiles: map[string]string{"bios": "/etc/shadow"}}, err: "clean relative name"},
		{name: "URL for PXE", cfg: Config{IPXEDir: debian, BootFiles: map[string]string{"efi-x64": "http://x/y.efi"}}, err: "loads its boot file over TFTP"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := planLoaders(tc.cfg)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(p.bootFiles, tc.bootFiles) {
				t.Errorf("boot files %v, want %v", p.bootFiles, tc.bootFiles)
			}
			var names []string
			for n, path := range p.files {
				names = append(names, n)
				if path != filepath.Join(tc.cfg.IPXEDir, n) {
					t.Errorf("%s served from %s", n, path)
				}
			}
			slices.Sort(names)
			if !slices.Equal(names, tc.files) {
				t.Errorf("files %v, want %v", names, tc.files)
			}
			if w := strings.Join(p.warnings, "\n"); (tc.warn == "") != (w == "") || !strings.Contains(w, tc.warn) {
				t.Errorf("warnings %q, want %q", w, tc.warn)
			}
		})
	}
}

// TestFirmwareLog: serve records each node's firmware on change only, and
// node list reads it back.
func TestFirmwareLog(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	l, err := loadFirmwareLog(dir)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, n := range []struct{ node, fw string }{{"n1", "efi-x64"}, {"n2", "ipxe"}, {"n1", "efi-x64-http"}, {"", "bios"}, {"n3", ""}} {
		if err := l.note(n.node, n.fw, at); err != nil {
			t.Fatal(err)
		}
	}
	fi, _ := os.Stat(filepath.Join(dir, firmwareFile))
	if err := l.note("n2", "ipxe", at.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if fi2, _ := os.Stat(filepath.Join(dir, firmwareFile)); !os.SameFile(fi, fi2) {
		t.Errorf("unchanged firmware rewrote the file")
	}
	got, err := ReadNodeFirmware(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]NodeFirmware{"n1": {"efi-x64-http", at}, "n2": {"ipxe", at}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("read back %v, want %v", got, want)
	}
	if m, err := ReadNodeFirmware(t.TempDir()); err != nil || len(m) != 0 {
		t.Errorf("no file: %v %v", m, err)
	}
	write(t, dir, firmwareFile, "n1 efi-x64\n")
	if _, err := ReadNodeFirmware(dir); err == nil || !strings.Contains(err.Error(), "want NODE FIRMWARE TIME") {
		t.Errorf("damaged file: %v", err)
	}
}
