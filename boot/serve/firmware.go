package serve

import (
	"bufio"
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/renameio/v2"

	"github.com/onesis/git-onesis/boot/dhcp"
)

// BootFileFirmwares are the firmware names serve --boot-file accepts, in
// the order docs and errors list them.
var BootFileFirmwares = []string{"bios", "efi-ia32", "efi-x64", "efi-arm64", "efi-x64-http", "efi-arm64-http"}

// loaderPlan is what serve hands each kind of boot firmware, worked out
// once from the configuration and the iPXE directory.
type loaderPlan struct {
	// bootFiles overrides DHCP's defaults, by firmware name ("" = ignore
	// that firmware's requests).
	bootFiles map[string]string
	// files are the boot loaders served over TFTP and at /ipxe/ over
	// HTTP: client name -> host path.
	files map[string]string
	// warnings say which firmware will not be answered, and why.
	warnings []string
}

// planLoaders checks --boot-file against the iPXE directory and decides
// per firmware: the iPXE binaries Debian ships serve BIOS and UEFI x64,
// PXE (TFTP) and HTTP boot alike; arm64 needs a binary Debian does not
// ship (dhcp.ARM64BootFile, or --boot-file efi-arm64=NAME); with TFTP off
// PXE firmware cannot load anything and is not answered.
func planLoaders(c Config) (loaderPlan, error) {
	p := loaderPlan{bootFiles: map[string]string{}, files: map[string]string{}}
	have := func(name string) bool {
		fi, err := os.Stat(filepath.Join(c.IPXEDir, filepath.FromSlash(name)))
		return err == nil && fi.Mode().IsRegular()
	}
	add := func(name string) {
		if have(name) {
			p.files[name] = filepath.Join(c.IPXEDir, filepath.FromSlash(name))
		}
	}
	for _, n := range []string{dhcp.BIOSBootFile, "ipxe.efi", dhcp.EFI64BootFile, dhcp.ARM64BootFile} {
		add(n)
	}
	for _, fw := range slices.Sorted(maps.Keys(c.BootFiles)) {
		name := c.BootFiles[fw]
		if !slices.Contains(BootFileFirmwares, fw) {
			return p, cfgErr("--boot-file", "%q is not a firmware serve hands boot files to (one of %s)", fw, strings.Join(BootFileFirmwares, ", "))
		}
		p.bootFiles[fw] = name
		if name == "" || (strings.HasSuffix(fw, "-http") && strings.Contains(name, "://")) {
			continue
		}
		if strings.Contains(name, "://") {
			return p, cfgErr("--boot-file", "%s=%s: PXE firmware loads its boot file over TFTP; give a file name in --ipxe-dir", fw, name)
		}
		if path.IsAbs(name) || path.Clean(name) != name || strings.HasPrefix(name, "../") || name == ".." || strings.ContainsAny(name, "\\ \t\n") {
			return p, cfgErr("--boot-file", "%s=%s: give a clean relative name under --ipxe-dir %s", fw, name, c.IPXEDir)
		}
		if !have(name) {
			return p, cfgErr("--boot-file", "%s=%s: there is no such file in --ipxe-dir %s", fw, name, c.IPXEDir)
		}
		add(name)
	}
	if _, ok := c.BootFiles["efi-arm64"]; !ok && !have(dhcp.ARM64BootFile) {
		p.bootFiles["efi-arm64"] = ""
		p.warnings = append(p.warnings, fmt.Sprintf("no iPXE for arm64 (%s in %s; Debian ships none): UEFI arm64 PXE nodes will not be answered; build iPXE's bin-arm64-efi/snponly.efi and put it there, or pass --boot-file efi-arm64=NAME", dhcp.ARM64BootFile, c.IPXEDir))
	}
	if _, ok := c.BootFiles["efi-arm64-http"]; !ok && !have(dhcp.ARM64BootFile) {
		p.bootFiles["efi-arm64-http"] = ""
	}
	if c.NoTFTP {
		var off []string
		for _, fw := range []string{"bios", "efi-ia32", "efi-x64", "efi-arm64"} {
			if f, ok := p.bootFiles[fw]; !ok || f != "" {
				off = append(off, fw)
			}
			p.bootFiles[fw] = ""
		}
		if len(off) > 0 && !c.NoDHCP {
			p.warnings = append(p.warnings, "TFTP is off (--no-tftp): PXE firmware ("+strings.Join(off, ", ")+") will not be answered; UEFI HTTP boot and iPXE ROMs still boot")
		}
	}
	if c.NoHTTP {
		for _, fw := range []string{"efi-x64-http", "efi-arm64-http"} {
			if !strings.Contains(p.bootFiles[fw], "://") {
				p.bootFiles[fw] = ""
			}
		}
	} else if _, ok := c.BootFiles["efi-x64-http"]; !ok && !have(dhcp.EFI64BootFile) {
		p.bootFiles["efi-x64-http"] = ""
		p.warnings = append(p.warnings, fmt.Sprintf("no %s in %s: UEFI x64 HTTP boot nodes will not be answered (install Debian's ipxe package)", dhcp.EFI64BootFile, c.IPXEDir))
	}
	return p, nil
}

// firmwareFile is where serve records the firmware each node last booted
// with, for `git onesis node list` (StateDir/firmware).
const firmwareFile = "firmware"

// NodeFirmware is one node's firmware as serve last saw it boot.
type NodeFirmware struct {
	Firmware string
	Time     time.Time
}

// ReadNodeFirmware reads what serve recorded in stateDir: node name ->
// firmware. A missing file (serve never ran) is an empty map.
func ReadNodeFirmware(stateDir string) (map[string]NodeFirmware, error) {
	out := map[string]NodeFirmware{}
	f, err := os.Open(filepath.Join(stateDir, firmwareFile))
	if errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the nodes' firmware: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		t := sc.Text()
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		fs := strings.Fields(t)
		if len(fs) != 3 {
			return nil, fmt.Errorf("%s:%d: want NODE FIRMWARE TIME", f.Name(), line)
		}
		at, err := time.Parse(time.RFC3339, fs[2])
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", f.Name(), line, err)
		}
		out[fs[0]] = NodeFirmware{Firmware: fs[1], Time: at}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", f.Name(), err)
	}
	return out, nil
}

// firmwareLog keeps StateDir/firmware in step with what nodes boot with,
// rewriting it (atomically) only when a node's firmware changes.
type firmwareLog struct {
	dir string
	mu  sync.Mutex
	m   map[string]NodeFirmware
}

func loadFirmwareLog(stateDir string) (*firmwareLog, error) {
	m, err := ReadNodeFirmware(stateDir)
	if err != nil {
		return nil, err
	}
	return &firmwareLog{dir: stateDir, m: m}, nil
}

// note records node's firmware; it writes only on a change.
func (l *firmwareLog) note(node, fw string, at time.Time) error {
	if node == "" || fw == "" || strings.ContainsAny(node+fw, " \t\n") {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m[node].Firmware == fw {
		return nil
	}
	l.m[node] = NodeFirmware{Firmware: fw, Time: at.UTC()}
	var b strings.Builder
	b.WriteString("# NODE FIRMWARE SINCE: what each node last booted with, written by git onesis serve\n")
	for _, n := range slices.Sorted(maps.Keys(l.m)) {
		fmt.Fprintf(&b, "%s %s %s\n", n, l.m[n].Firmware, l.m[n].Time.Format(time.RFC3339))
	}
	if err := os.MkdirAll(l.dir, 0o755); err != nil {
		return fmt.Errorf("recording node firmware: %w", err)
	}
	if err := renameio.WriteFile(filepath.Join(l.dir, firmwareFile), []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("recording node firmware: %w", err)
	}
	return nil
}
