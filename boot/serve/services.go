package serve

import (
	"context"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/onesis/git-onesis/boot/httpboot"
)

// The other boot packages are reached through these interfaces, so this
// package builds and is tested without them. The adapters that call their
// real APIs live in wire_*.go and fill Wired in
// their init functions.

// Service is a running network service.
type Service interface {
	Serve() error
	Close() error
}

// Lease is what DHCP hands a known node.
type Lease struct {
	IP        net.IP
	Mask      net.IPMask
	Router    net.IP // nil when the network has none
	DNS       []net.IP
	Hostname  string
	Domain    string
	LeaseTime time.Duration
}

// DHCPParams configures the DHCP server (package dhcp).
type DHCPParams struct {
	Iface    string
	ServerIP net.IP
	// Lookup answers known MACs only; false means stay silent.
	Lookup func(mac net.HardwareAddr) (Lease, bool)
	// HTTPBootURL is the script URL given to a running iPXE, with iPXE's
	// ${mac:hexhyp} left for the client to expand.
	HTTPBootURL string
	// IPXEBaseURL is where HTTP serves the boot loaders ("" = HTTP off):
	// UEFI HTTP boot clients get it joined with their binary's name.
	IPXEBaseURL string
	// BootFiles overrides the boot file by firmware name ("bios",
	// "efi-x64-http", ...; see BootFileFirmwares); "" = ignore it.
	BootFiles map[string]string
	PXELinux  bool
	// Proxy: answer as a proxy DHCP server (no addresses).
	Proxy bool
	// Discover, when non-nil, is called for unknown MACs with a
	// description of the client.
	Discover func(mac net.HardwareAddr, info string)
	// Event receives every request answered or ignored.
	Event  func(httpboot.Event)
	Logger *slog.Logger
}

// TFTPParams configures the TFTP server (package tftp).
type TFTPParams struct {
	Addr     string // ip:port
	Iface    string
	IPXEDir  string // the iPXE binaries come from here
	PXELinux bool   // also serve pxelinux.0 and ldlinux.c32
	// Files are more boot loaders to serve (name -> host path), e.g. an
	// arm64 iPXE given with --boot-file.
	Files map[string]string
	// Generate answers names outside the fixed files (pxelinux.cfg/01-<mac>
	// and the kernel and initramfs it names, under --pxelinux); nil = none.
	Generate func(name string, client net.IP) (io.ReadCloser, int64, bool)
	Event    func(httpboot.Event)
	Logger   *slog.Logger
	// MaxTransfers caps TFTP transfers at once (0 = the package default).
	MaxTransfers int
}

// NFSExport is what a client may mount (mirrors nfsroot.Export).
type NFSExport struct {
	Commit    string // for /c/<commit>
	Dir       string // for /w/<node>: the maintenance work tree
	ReadWrite bool
}

// NFSParams configures the NFS root server (package nfsroot).
type NFSParams struct {
	RepoDir   string
	StateDir  string
	Authorize func(client net.IP, export string) (NFSExport, bool)
	Deny      []string
	Event     func(httpboot.Event)
	Logger    *slog.Logger
}

// NFSServer is the NFS root server.
type NFSServer interface {
	// Prepare materialises commit ahead of the node's MOUNT.
	Prepare(ctx context.Context, commit string) error
	// Serve answers MOUNT and NFS on l until Close.
	Serve(l net.Listener) error
	Close() error
	// Prune removes stored data none of keep's commits (nor any commit
	// the server is serving) uses. Busy says it did nothing because
	// another process (git onesis sync) has the store open.
	Prune(keep []string) (PruneResult, error)
}

// PruneResult says what NFSServer.Prune did.
type PruneResult struct {
	Busy      bool
	Commits   int   // commits kept
	Kept      int   // files kept
	KeptBytes int64 // their bytes
	Removed   int   // files removed
	Freed     int64 // their bytes
}

// PortmapFunc runs a PMAP v2 responder until ctx is done (package portmap).
type PortmapFunc func(ctx context.Context, udp net.PacketConn, tcp net.Listener, nfsPort, mountPort int, log *slog.Logger) error

// InitrdParams configures the initramfs builder (package initramfs).
type InitrdParams struct {
	RepoDir  string
	InitPath string   // onesis-init binary ("" = locate it)
	Modules  []string // nil = the builder's default
}

// InitrdBuilder builds the initramfs for a commit's kernel.
type InitrdBuilder interface {
	// Key names everything besides the image's modules that goes into
	// the initramfs (module list, init binary hash); it is part of the
	// cache key.
	Key() string
	// Build writes the initramfs for kernel version kver of commit's
	// image to w (reproducibly: same inputs, same bytes).
	Build(ctx context.Context, commit, kver string, w io.Writer) error
}

// Factories create the services of the other boot packages. A nil
// factory means this binary was built without that service.
type Factories struct {
	DHCP    func(DHCPParams) (Service, error)
	TFTP    func(TFTPParams) (Service, error)
	NFS     func(NFSParams) (NFSServer, error)
	Portmap PortmapFunc
	Initrd  func(InitrdParams) (InitrdBuilder, error)
}

// Wired holds the real services; the wire_*.go files fill it in.
var Wired Factories
