package serve

import (
	"context"
	"io"
	"log/slog"
	"net"

	"github.com/onesis/git-onesis/boot/dhcp"
	"github.com/onesis/git-onesis/boot/httpboot"
	"github.com/onesis/git-onesis/boot/integrity"
	"github.com/onesis/git-onesis/boot/nfsroot"
	"github.com/onesis/git-onesis/boot/portmap"
)

// The network services are reached through Factories, so a test can run
// serve with fakes or without a service; Real returns the real ones (the
// adapters in wire_*.go). Values that cross (a lease, an export, prune
// statistics) are the service packages' own types, not copies.

// Service is a running network service.
type Service interface {
	Serve() error
	Close() error
}

// DHCPParams configures the DHCP server (package dhcp).
type DHCPParams struct {
	Iface    string
	ServerIP net.IP
	// Lookup answers known MACs only; false means stay silent.
	Lookup func(mac net.HardwareAddr) (dhcp.Lease, bool)
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

// NFSParams configures the NFS root server (package nfsroot).
type NFSParams struct {
	RepoDir   string
	StateDir  string
	Authorize func(client net.IP, export string) (nfsroot.Export, bool)
	Deny      []string
	Event     func(httpboot.Event)
	Logger    *slog.Logger
	// Report is told of every stored blob found not to be what its
	// name says.
	Report func(integrity.Report)
	// SkipVerify serves stored blobs unverified (benchmarks only).
	SkipVerify bool
}

// NFSServer is the NFS root server.
type NFSServer interface {
	// Prepare materialises commit ahead of the node's MOUNT.
	Prepare(ctx context.Context, commit string) error
	// Serve answers MOUNT and NFS on l until Close.
	Serve(l net.Listener) error
	Close() error
	// Prune removes stored data none of keep's commits (nor any commit
	// the server is serving) uses. An error that is nfsroot.ErrStoreBusy
	// says it did nothing because another process (git onesis sync) has
	// the store open.
	Prune(keep []string) (nfsroot.PruneStats, error)
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
// factory is a service the caller did not provide (tests); Config.Validate
// refuses to run one that is on.
type Factories struct {
	DHCP    func(DHCPParams) (Service, error)
	TFTP    func(TFTPParams) (Service, error)
	NFS     func(NFSParams) (NFSServer, error)
	Portmap PortmapFunc
	Initrd  func(InitrdParams) (InitrdBuilder, error)
}

// Real returns the real services: packages dhcp, tftp, nfsroot, portmap
// and initramfs.
func Real() Factories {
	return Factories{DHCP: newDHCP, TFTP: newTFTP, NFS: newNFS, Portmap: portmap.Serve, Initrd: newInitrd}
}
