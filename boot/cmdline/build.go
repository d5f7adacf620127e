package cmdline

import (
	"net"
	"strings"
)

// Boot is what serve tells a node on its kernel command line.
type Boot struct {
	// Initrd adds initrd=initrd, the name iPXE gives the initramfs it
	// loads; PXELINUX adds its own.
	Initrd bool
	// MAC is the boot NIC (BOOTIF=01-aa-bb-...).
	MAC net.HardwareAddr
	// NFSServer (an IPv4 address), Export and NFSOptions (comma-separated,
	// "" for none) make nfsroot=<server>:<export>[,<options>].
	NFSServer, Export, NFSOptions string
	// ReadWrite mounts the root read-write (rw), for a maintenance node's
	// work tree; else ro.
	ReadWrite bool
	// Commit and Node are onesis.commit= and onesis.node=; Node is also
	// hostname=.
	Commit, Node string
	// Secrets is the URL of the node's secrets (onesis.secrets=), "" for
	// none.
	Secrets string
	// Console is console=, "" for none.
	Console string
	// Extra are the node's own arguments (inventory args=, checked with
	// CheckArgs), last.
	Extra string
}

// Build returns the kernel command line for b:
//
//	[initrd=initrd] ip=dhcp BOOTIF=01-<mac> nfsroot=<srv>:<export>[,opts] ro|rw
//	onesis.commit=<sha> onesis.node=<name> hostname=<name>
//	[onesis.secrets=<url>] [console=<c>] [<extra>]
func Build(b Boot) string {
	nfsroot := b.NFSServer + ":" + b.Export
	if b.NFSOptions != "" {
		nfsroot += "," + b.NFSOptions
	}
	mode := "ro"
	if b.ReadWrite {
		mode = "rw"
	}
	var args []string
	if b.Initrd {
		args = append(args, "initrd=initrd")
	}
	args = append(args, "ip=dhcp", "BOOTIF=01-"+strings.ReplaceAll(b.MAC.String(), ":", "-"),
		"nfsroot="+nfsroot, mode,
		"onesis.commit="+b.Commit, "onesis.node="+b.Node, "hostname="+b.Node)
	if b.Secrets != "" {
		args = append(args, "onesis.secrets="+b.Secrets)
	}
	if b.Console != "" {
		args = append(args, "console="+b.Console)
	}
	if b.Extra != "" {
		args = append(args, b.Extra)
	}
	return strings.Join(args, " ")
}
