// Package serve runs `git onesis serve`: DHCP, TFTP, HTTP, portmap and the
// NFS root in one process, booting each known node from a commit of the
// image repository.
//
// The commit a node boots is decided once, when it fetches its iPXE
// script (see Resolver): the node's own ref, else serve --ref, else the
// branch checked out in the repository, re-read at every boot. Each boot
// is recorded as refs/onesis/booted/<node>, which also keeps the commit
// from gc and lets a restarted serve keep answering the node's NFS
// requests. The services of other packages (DHCP, TFTP, NFS, portmap,
// initramfs) are reached through the small interfaces of services.go.
package serve

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/onesis/git-onesis/boot/integrity"
)

// Config is the whole configuration of serve. The zero value of a port
// means its default.
type Config struct {
	// RepoDir is the image repository (work tree or git dir).
	RepoDir string
	// Iface is the provisioning interface. DHCP and TFTP bind to it; it
	// gives the server address when ServerIP is unset.
	Iface string
	// ServerIP is the address nodes reach the server at; default: the
	// first IPv4 address of Iface.
	ServerIP netip.Addr

	TFTPPort    int // default 69 (DHCP always uses 67)
	HTTPPort    int // default 8080
	NFSPort     int // default 2049 (MOUNT and NFS share it)
	PortmapPort int // default 111

	NoDHCP, NoTFTP, NoHTTP, NoNFS, NoPortmap bool
	// NoPrune keeps the whole NFS blob store and kernel and initramfs
	// cache. By default, at start and then every PruneEvery (default
	// 24h), what no booted or currently resolved commit uses is removed.
	NoPrune    bool
	PruneEvery time.Duration
	// TFTPMax caps TFTP transfers at once; more are refused ("server
	// busy") until one ends. 0 = 1024.
	TFTPMax int

	// Ref, when set, is what nodes without their own ref boot instead of
	// the checked-out branch.
	Ref string
	// RequireSignature turns the signature policy on whatever
	// onesis.serve.requireSignature says (package trust).
	RequireSignature bool
	// RetryAfter is how long a node refused by the policy waits before
	// asking again (0: httpboot.DefaultRetryAfter).
	RetryAfter time.Duration
	// Discover records unknown MACs for `git onesis node discovered`.
	Discover bool
	// PXELinux gives BIOS clients pxelinux.0 instead of undionly.kpxe.
	PXELinux bool
	// ProxyDHCP runs DHCP as a PXE proxy DHCP server beside the site's own
	// DHCP server, which gives the addresses (each node its inventory
	// address): only boot firmware is answered, without an address, and
	// its requests on port 4011.
	ProxyDHCP bool
	// IPXEDir holds undionly.kpxe, ipxe.efi and snponly.efi (default
	// /usr/lib/ipxe, from Debian's ipxe package), and arm64-efi/snponly.efi
	// if arm64 nodes boot.
	IPXEDir string
	// BootFiles overrides the boot file per firmware name (one of
	// BootFileFirmwares): a file in IPXEDir, served over TFTP and at
	// /ipxe/ over HTTP; for the -http kinds also a full URL; "" = do not
	// answer that firmware (serve --boot-file FIRMWARE=NAME).
	BootFiles map[string]string
	// StateDir holds cached kernels and initramfs images, discovered MACs
	// and the NFS state; default <common git dir>/onesis/serve.
	StateDir string
	// InitPath is the onesis-init binary put in initramfs images ("" =
	// look next to the executable, see gitfs.LocateInit).
	InitPath string
	// Modules are the kernel modules the initramfs loads (nil = its default).
	Modules []string
	// NFSOptions are appended to nfsroot= (default from the NFS port:
	// "port=P,mountport=P,vers=3,proto=tcp,nolock").
	NFSOptions string
	// NFSExportDir and NFSHost point nodes at a site's kernel NFS server:
	// nfsroot= then names NFSHost (default ServerIP) and
	// NFSExportDir/c/<commit>, the trees 'git onesis exports' prepares.
	NFSExportDir string
	NFSHost      netip.Addr
	// Console is the console= kernel argument ("" = ttyS0; "none" omits it).
	Console string
	// SecretsDir holds per-node secrets (SecretsDir/<node>/...), served at
	// /n/<node>/secrets to that node's root only; "" = off.
	SecretsDir string
	// Deny overrides the NFS secret deny list (nil = the NFS defaults).
	Deny []string
	// Poll is how often the inventory ref and booted refs are checked
	// (default 2 s).
	Poll time.Duration
	// AnnounceRA answers IPv6 router solicitations on Iface with a
	// router advertisement of lifetime 0, so iPXE's IPv6 autoconfiguration
	// ends at once instead of waiting ~16 s (see docs/serve.md).
	AnnounceRA bool

	// VerifyRate is the background re-verification of served files:
	// bytes per second with an optional k, m or g suffix, as git reads
	// integers ("" = 32M, "0" = off). Files are always verified before
	// their first byte is served; this re-reads them while they sit in
	// the caches (docs/serve.md, "Integrity of served files").
	VerifyRate string
	// SkipVerify serves stored files without verifying them first: only
	// for benchmarks measuring what verification costs.
	SkipVerify bool

	Logger *slog.Logger

	verifyRate int64 // VerifyRate, parsed by Validate
}

// ConfigError is a configuration mistake, naming the setting at fault.
type ConfigError struct {
	Setting string // e.g. "--iface", "--http-port"
	Msg     string
	Err     error // the cause, if any
}

// Error implements error: "SETTING: message".
func (e *ConfigError) Error() string { return e.Setting + ": " + e.Msg }

// Unwrap returns the cause, when the mistake came from one (a listen
// error, an unreadable directory), so errors.Is and errors.As see it.
func (e *ConfigError) Unwrap() error { return e.Err }

// cfgErr makes a ConfigError; a %w verb in format names the cause.
func cfgErr(setting, format string, a ...any) error {
	err := fmt.Errorf(format, a...)
	return &ConfigError{Setting: setting, Msg: err.Error(), Err: errors.Unwrap(err)}
}

// withDefaults fills in defaults without validating.
func (c Config) withDefaults() Config {
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	def(&c.TFTPPort, 69)
	def(&c.HTTPPort, 8080)
	def(&c.NFSPort, 2049)
	def(&c.PortmapPort, 111)
	if c.IPXEDir == "" {
		c.IPXEDir = "/usr/lib/ipxe"
	}
	if c.PruneEvery == 0 {
		c.PruneEvery = 24 * time.Hour
	}
	if c.Poll == 0 {
		c.Poll = 2 * time.Second
	}
	if c.NFSOptions == "" && (c.NoNFS || c.NFSExportDir != "") {
		// Another NFS server: the kernel asks its portmapper for the ports.
		c.NFSOptions = "vers=3,proto=tcp,nolock"
	} else if c.NFSOptions == "" {
		c.NFSOptions = fmt.Sprintf("port=%d,mountport=%d,vers=3,proto=tcp,nolock", c.NFSPort, c.NFSPort)
	}
	switch c.Console {
	case "":
		c.Console = "ttyS0"
	case "none":
		c.Console = ""
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate checks the configuration and fills in defaults (server address
// from the interface, ports). Every error names the setting that is wrong:
// the interface, a port, a directory, or a service this binary lacks.
func (c *Config) Validate(f Factories) error {
	*c = c.withDefaults()
	if c.RepoDir == "" {
		return cfgErr("repository", "no image repository given")
	}
	if st, err := os.Stat(c.RepoDir); err != nil || !st.IsDir() {
		return cfgErr("repository", "%s is not a directory", c.RepoDir)
	}
	if c.TFTPMax < 0 {
		return cfgErr("--tftp-max", "%d is not a number of transfers (at least 1)", c.TFTPMax)
	}
	if c.VerifyRate == "" {
		c.verifyRate = integrity.DefaultRate
	} else if r, err := integrity.ParseRate(c.VerifyRate); err != nil {
		return cfgErr("--verify-rate", "%s", err)
	} else {
		c.verifyRate = r
	}
	if c.PruneEvery < time.Minute {
		return cfgErr("--prune-every", "%v is too short (at least 1m; --no-prune turns pruning off)", c.PruneEvery)
	}
	if c.NFSExportDir != "" {
		if !filepath.IsAbs(c.NFSExportDir) || filepath.Clean(c.NFSExportDir) != c.NFSExportDir {
			return cfgErr("--nfs-export-dir", "%q must be a clean absolute path on the NFS server", c.NFSExportDir)
		}
		if strings.ContainsAny(c.NFSExportDir, " ,\t\n") {
			return cfgErr("--nfs-export-dir", "%q has a space or comma, which the kernel's nfsroot= cannot carry", c.NFSExportDir)
		}
		if !c.NoNFS {
			return cfgErr("--nfs-export-dir", "nodes would mount another NFS server's trees while serve's own NFS server runs; add --no-nfs")
		}
	}
	if c.ProxyDHCP && c.NoDHCP {
		return cfgErr("--proxy-dhcp", "DHCP is off (--no-dhcp)")
	}
	needIface := !c.NoDHCP || !c.NoTFTP || c.AnnounceRA
	if c.Iface == "" && needIface {
		return cfgErr("--iface", "the provisioning interface is required for DHCP and TFTP (or use --no-dhcp --no-tftp)")
	}
	if c.Iface != "" {
		ifc, err := net.InterfaceByName(c.Iface)
		if err != nil {
			return cfgErr("--iface", "no network interface %q on this machine", c.Iface)
		}
		if ifc.Flags&net.FlagUp == 0 {
			return cfgErr("--iface", "interface %s is down", c.Iface)
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			return cfgErr("--iface", "reading the addresses of %s: %w", c.Iface, err)
		}
		var v4 []netip.Addr
		for _, a := range addrs {
			if pn, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(pn.IP); ok && ip.Unmap().Is4() {
					v4 = append(v4, ip.Unmap())
				}
			}
		}
		if !c.ServerIP.IsValid() {
			if len(v4) == 0 {
				return cfgErr("--iface", "interface %s has no IPv4 address; give it one or pass --addr", c.Iface)
			}
			c.ServerIP = v4[0]
		} else {
			found := false
			for _, a := range v4 {
				found = found || a == c.ServerIP.Unmap()
			}
			if !found {
				return cfgErr("--addr", "%s is not an address of interface %s", c.ServerIP, c.Iface)
			}
		}
	}
	if !c.ServerIP.IsValid() {
		return cfgErr("--addr", "no server address: give --iface or --addr")
	}
	if !c.ServerIP.Is4() {
		return cfgErr("--addr", "%s is not an IPv4 address", c.ServerIP)
	}
	type port struct {
		flag  string
		p     int
		on    bool
		proto string
	}
	ports := []port{
		{"DHCP", 67, !c.NoDHCP, "udp"},
		{"DHCP (PXE boot server)", 4011, !c.NoDHCP, "udp"},
		{"--tftp-port", c.TFTPPort, !c.NoTFTP, "udp"},
		{"--http-port", c.HTTPPort, !c.NoHTTP, "tcp"},
		{"--nfs-port", c.NFSPort, !c.NoNFS, "tcp"},
		{"--portmap-port", c.PortmapPort, !c.NoPortmap, "udp+tcp"},
	}
	for i, p := range ports {
		if p.p < 1 || p.p > 65535 {
			return cfgErr(p.flag, "port %d is out of range 1-65535", p.p)
		}
		for _, q := range ports[:i] {
			if p.on && q.on && p.p == q.p && (p.proto == q.proto || p.proto == "udp+tcp" || q.proto == "udp+tcp") {
				return cfgErr(p.flag, "port %d is already used by %s", p.p, q.flag)
			}
		}
	}
	if c.NoHTTP && !c.NoDHCP {
		c.Logger.Warn("serve: --no-http with DHCP on: iPXE clients will be pointed at an HTTP server that must be provided elsewhere")
	}
	if !c.NoTFTP {
		for _, f := range []string{"undionly.kpxe", "ipxe.efi", "snponly.efi"} {
			if _, err := os.Stat(filepath.Join(c.IPXEDir, f)); err != nil {
				return cfgErr("--ipxe-dir", "%s has no %s (install Debian's ipxe package or give --ipxe-dir)", c.IPXEDir, f)
			}
		}
	}
	if _, err := planLoaders(*c); err != nil {
		return err
	}
	missing := func(on bool, has bool, flag, what string) error {
		if on && !has {
			return cfgErr(flag, "%s is on but serve was given no implementation of it; pass %s", what, flag)
		}
		return nil
	}
	return errors.Join(
		missing(!c.NoDHCP, f.DHCP != nil, "--no-dhcp", "the DHCP server"),
		missing(!c.NoTFTP, f.TFTP != nil, "--no-tftp", "the TFTP server"),
		missing(!c.NoNFS, f.NFS != nil, "--no-nfs", "the NFS server"),
		missing(!c.NoPortmap, f.Portmap != nil, "--no-portmap", "the portmapper"),
	)
}
