package serve

// The adapter from serve to package tftp.

import (
	"maps"
	"net/netip"
	"strings"

	"github.com/onesis/git-onesis/boot/httpboot"
	"github.com/onesis/git-onesis/boot/tftp"
)

func newTFTP(p TFTPParams) (Service, error) {
	files := tftp.DefaultIPXEFiles(p.IPXEDir)
	maps.Copy(files, p.Files)
	if p.PXELinux {
		maps.Copy(files, tftp.PXELinuxFiles(tftp.DefaultPXELinuxDir, tftp.DefaultSyslinuxBIOSDir))
	}
	cfg := tftp.Config{Addr: p.Addr, Iface: p.Iface, Files: files, Generate: p.Generate, Logger: p.Logger, MaxTransfers: p.MaxTransfers}
	if p.Event != nil {
		cfg.Event = func(e tftp.Event) { p.Event(tftpEvent(e)) }
	}
	return tftp.New(cfg)
}

// tftpEvent maps a transfer onto a status event: outcome "sent",
// "refused" or "failed"; a sent iPXE binary moves the node to stage "ipxe".
func tftpEvent(e tftp.Event) httpboot.Event {
	ev := httpboot.Event{Time: e.Time, Service: "tftp", Outcome: e.Status, Detail: strings.TrimSpace(e.Name + " " + e.Reason)}
	if ip, err := netip.ParseAddr(e.Client); err == nil {
		ev.IP = ip.Unmap()
	}
	if e.Status == "sent" {
		ev.Stage = "tftp " + e.Name
	}
	return ev
}
