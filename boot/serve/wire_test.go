package serve

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/onesis/git-onesis/boot/dhcp"
	"github.com/onesis/git-onesis/boot/nfsroot"
	"github.com/onesis/git-onesis/boot/tftp"
)

// TestWired checks that Real provides every service and that their
// events map onto status events.
func TestWired(t *testing.T) {
	if f := Real(); f.DHCP == nil || f.TFTP == nil || f.NFS == nil || f.Portmap == nil || f.Initrd == nil {
		t.Fatalf("a service is missing: %+v", f)
	}
	ev := dhcpEvent(dhcp.Event{Time: time.Now(), MAC: "52:54:00:00:00:01", Message: "REQUEST", Reply: "ACK", Answered: true, IP: "10.77.0.11"})
	if ev.Outcome != "ack" || ev.Stage != "dhcp" || ev.MAC.String() != "52:54:00:00:00:01" || ev.IP.String() != "10.77.0.11" {
		t.Errorf("dhcp ack: %+v", ev)
	}
	ev = dhcpEvent(dhcp.Event{MAC: "52:54:00:00:00:09", Message: "DISCOVER", Reason: "unknown MAC"})
	if ev.Outcome != "ignored" || ev.Stage != "" {
		t.Errorf("dhcp ignored: %+v", ev)
	}
	ev = tftpEvent(tftp.Event{Client: "10.77.0.11", Name: "undionly.kpxe", Status: "sent"})
	if ev.Outcome != "sent" || ev.Stage != "tftp undionly.kpxe" || ev.IP.String() != "10.77.0.11" {
		t.Errorf("tftp: %+v", ev)
	}
}

// TestWiredNFSPrune: the NFS server reports a prune that another store
// user blocks as nfsroot.ErrStoreBusy, and a prune it runs as counts.
func TestWiredNFSPrune(t *testing.T) {
	dir, _ := imageRepo(t)
	head := sh(t, dir, "git", "rev-parse", "HEAD")
	p := NFSParams{RepoDir: dir, StateDir: t.TempDir(),
		Authorize: func(net.IP, string) (nfsroot.Export, bool) { return nfsroot.Export{}, false }}
	a, err := Real().NFS(p)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Real().NFS(p)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := a.Prune([]string{head}); !errors.Is(err, nfsroot.ErrStoreBusy) {
		t.Errorf("Prune beside another store user = %+v, %v; want ErrStoreBusy", r, err)
	}
	b.Close()
	if r, err := a.Prune([]string{head}); err != nil || r.Commits != 1 {
		t.Errorf("Prune alone = %+v, %v; want 1 commit kept", r, err)
	}
	if _, err := a.Prune([]string{"no-such-ref"}); err == nil {
		t.Error("Prune keeping an unknown ref: no error")
	}
	a.Close()
}
