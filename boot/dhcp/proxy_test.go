package dhcp

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/onesis/git-onesis/internal/testkit"
)

// TestProxyDHCP: with Config.Proxy the site's DHCP server gives addresses;
// we answer only boot firmware of known MACs, with offers that carry no
// address (PXE 2.1 proxy offers), and their REQUESTs on port 4011.
func TestProxyDHCP(t *testing.T) {
	s := captureServer(t, func(c *Config) { c.Proxy = true })
	nodeIP := net.IPv4(10, 77, 0, 11).To4()
	for _, tc := range []struct {
		name    string
		req     *dhcpv4.DHCPv4
		binl    bool
		reply   dhcpv4.MessageType // None = ignored
		file    string
		opt60   string
		edk2    string // how EDK2 classifies the reply
		addrOpt bool   // lease options in the reply (must not be, for a proxy)
	}{
		{name: "UEFI PXE DISCOVER gets a proxy offer",
			req: readCapture(t, "ovmf-pxe-discover"), reply: dhcpv4.MessageTypeOffer, file: "snponly.efi", opt60: "PXEClient", edk2: "binl"},
		{name: "UEFI PXE REQUEST on port 67 is the site server's",
			req: readCapture(t, "ovmf-pxe-request")},
		{name: "UEFI PXE REQUEST on port 4011 gets the boot file",
			req: withCiaddr(readCapture(t, "ovmf-pxe-request"), nodeIP), binl: true, reply: dhcpv4.MessageTypeAck, file: "snponly.efi", opt60: "PXEClient", edk2: "binl"},
		{name: "port 4011 from an address that is not the node's",
			req: withCiaddr(readCapture(t, "ovmf-pxe-request"), net.IPv4(10, 77, 0, 200)), binl: true},
		{name: "UEFI HTTP boot DISCOVER gets a proxy offer with the URL",
			req: readCapture(t, "ovmf-http-discover"), reply: dhcpv4.MessageTypeOffer, file: testLoaders + "snponly.efi", opt60: "HTTPClient"},
		{name: "iPXE DISCOVER gets a proxy offer with the script",
			req: readCapture(t, "ipxe-efi-snponly-discover"), reply: dhcpv4.MessageTypeOffer, file: testBootURL, opt60: "PXEClient"},
		{name: "iPXE REQUEST on port 4011 gets the script",
			req: withCiaddr(readCapture(t, "ipxe-efi-snponly-request"), nodeIP), binl: true, reply: dhcpv4.MessageTypeAck, file: testBootURL, opt60: "PXEClient"},
		{name: "the kernel's DHCP is the site server's",
			req: readCapture(t, "onesis-init-discover")},
		{name: "the kernel's DHCP on port 4011",
			req: withCiaddr(readCapture(t, "onesis-init-request"), nodeIP), binl: true},
		{name: "an unknown MAC",
			req: pkt(t, unknownMAC, dhcpv4.MessageTypeDiscover, vc("PXEClient:Arch:00007:UNDI:003000"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var resp *dhcpv4.DHCPv4
			if tc.binl {
				resp = s.ReplyBINL(tc.req)
			} else {
				resp = s.Reply(tc.req)
			}
			if tc.reply == dhcpv4.MessageTypeNone {
				if resp != nil {
					t.Fatalf("want no reply, got %s", resp.Summary())
				}
				t.Logf("ignored: %s", s.decideOn(tc.req, tc.binl).ev.Reason)
				return
			}
			if resp == nil {
				t.Fatalf("no reply: %s", s.decideOn(tc.req, tc.binl).ev.Reason)
			}
			resp, err := dhcpv4.FromBytes(resp.ToBytes())
			if err != nil {
				t.Fatal(err)
			}
			if resp.MessageType() != tc.reply || resp.BootFileNameOption() != tc.file || resp.ClassIdentifier() != tc.opt60 {
				t.Errorf("reply %s file %q option 60 %q, want %s %q %q", resp.MessageType(), resp.BootFileNameOption(), resp.ClassIdentifier(), tc.reply, tc.file, tc.opt60)
			}
			if !isZero(resp.YourIPAddr) || resp.Options.Has(dhcpv4.OptionIPAddressLeaseTime) || resp.Options.Has(dhcpv4.OptionSubnetMask) ||
				resp.Options.Has(dhcpv4.OptionRouter) || resp.Options.Has(dhcpv4.OptionEtherboot) {
				t.Errorf("a proxy reply carries an address, lease options or iPXE's no-pxedhcp: %s", resp.Summary())
			}
			if !resp.ServerIPAddr.Equal(testServer) || !resp.ServerIdentifier().Equal(testServer) {
				t.Errorf("siaddr %v, option 54 %v", resp.ServerIPAddr, resp.ServerIdentifier())
			}
			if tc.edk2 != "" {
				if typ, ok := edk2OfferType(resp); typ != tc.edk2 || !ok {
					t.Errorf("EDK2 takes it for %s (%v), want %s", typ, ok, tc.edk2)
				}
			}
		})
	}
}

func withCiaddr(m *dhcpv4.DHCPv4, ip net.IP) *dhcpv4.DHCPv4 {
	m.ClientIPAddr = ip
	return m
}

// TestBINLWithoutProxy: port 4011 is answered in the ordinary mode too,
// for firmware that treats a "PXEClient" offer as EDK2 does (a BIOS PXE
// ROM gets "PXEClient" back).
func TestBINLWithoutProxy(t *testing.T) {
	s := captureServer(t, nil)
	req := withCiaddr(pkt(t, captureMAC, dhcpv4.MessageTypeRequest, vc("PXEClient:Arch:00000:UNDI:002001")), net.IPv4(10, 77, 0, 11))
	resp := s.ReplyBINL(req)
	if resp == nil || resp.MessageType() != dhcpv4.MessageTypeAck || resp.BootFileNameOption() != BIOSBootFile {
		t.Fatalf("BINL reply: %v (%s)", resp, s.decideOn(req, true).ev.Reason)
	}
}

// siteDHCP is a DHCP server a site might run beside serve's proxy DHCP:
// the node's fixed address (the inventory's), nothing about booting.
// These are the halves of docs/serve.md's proxy DHCP section.
type siteDHCP struct {
	name, tool, pkg string
	// conf writes the server's configuration into dir and returns its
	// command line (tool is the path NeedTool found) and environment.
	conf func(t *testing.T, dir, tool string) (args, env []string)
	// gave is what the server logs when it hands the node its address.
	gave string
}

var siteDHCPs = []siteDHCP{
	{
		name: "dnsmasq", tool: "dnsmasq", pkg: "dnsmasq-base",
		conf: func(t *testing.T, dir, tool string) ([]string, []string) {
			conf := filepath.Join(dir, "dnsmasq.conf")
			writeConf(t, conf, "port=0\ninterface=uefisite1\nbind-interfaces\n"+
				"dhcp-range=10.77.7.100,10.77.7.150,255.255.255.0,1h\n"+
				"dhcp-host="+nsKnownMAC+",10.77.7.50,node01\n"+
				"dhcp-leasefile="+filepath.Join(dir, "leases")+"\nlog-dhcp\n")
			return []string{tool, "--no-daemon", "--conf-file=" + conf, "--pid-file=" + filepath.Join(dir, "pid")}, nil
		},
		gave: "DHCPACK(uefisite1) 10.77.7.50 " + nsKnownMAC,
	},
	{
		name: "isc-dhcpd", tool: "dhcpd", pkg: "isc-dhcp-server",
		conf: func(t *testing.T, dir, tool string) ([]string, []string) {
			conf, leases := filepath.Join(dir, "dhcpd.conf"), filepath.Join(dir, "dhcpd.leases")
			writeConf(t, conf, "authoritative;\n"+
				"subnet 10.77.7.0 netmask 255.255.255.0 {\n"+
				"  range 10.77.7.100 10.77.7.150;\n"+
				"  host node01 { hardware ethernet "+nsKnownMAC+"; fixed-address 10.77.7.50; }\n"+
				"}\n")
			writeConf(t, leases, "")
			return []string{tool, "-4", "-f", "-d", "-cf", conf, "-lf", leases, "-pf", filepath.Join(dir, "pid"), "uefisite1"}, nil
		},
		gave: "DHCPACK on 10.77.7.50 to " + nsKnownMAC + " via uefisite1",
	},
	{
		name: "kea", tool: "kea-dhcp4", pkg: "kea-dhcp4-server",
		conf: func(t *testing.T, dir, tool string) ([]string, []string) {
			conf := filepath.Join(dir, "kea-dhcp4.conf")
			writeConf(t, conf, `{"Dhcp4": {
  "interfaces-config": {"interfaces": ["uefisite1"]},
  "lease-database": {"type": "memfile", "persist": false},
  "valid-lifetime": 3600,
  "subnet4": [{"subnet": "10.77.7.0/24", "pools": [{"pool": "10.77.7.100 - 10.77.7.150"}],
    "reservations": [{"hw-address": "`+nsKnownMAC+`", "ip-address": "10.77.7.50", "hostname": "node01"}]}],
  "loggers": [{"name": "kea-dhcp4", "output_options": [{"output": "stdout"}], "severity": "INFO"}]
}}
`)
			// Its PID and lock files go to the test's directory, not /run/kea.
			return []string{tool, "-c", conf}, []string{"KEA_PIDFILE_DIR=" + dir, "KEA_LOCKFILE_DIR=" + dir}
		},
		gave: "lease 10.77.7.50 has been allocated",
	},
}

func writeConf(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestUEFIProxyDHCPQEMU boots OVMF's own UEFI PXE (no option ROM) on a LAN
// whose addresses come from the site's DHCP server (dnsmasq, ISC dhcpd or
// kea, each real, on another host (namespace), with a fixed address for
// the node and no boot options), while this server runs as proxy DHCP:
// OVMF takes the site's address and our proxy offer, asks our port 4011
// for the boot file, loads snponly.efi over TFTP; that iPXE takes the
// site's address and the script from our proxy offer, and runs it; the
// script prints what it got. Needs root, qemu-system-x86, ovmf, ipxe,
// dnsmasq-base, isc-dhcp-server and kea-dhcp4-server; about 30-60 s per
// site server under TCG.
func TestUEFIProxyDHCPQEMU(t *testing.T) {
	for _, site := range siteDHCPs {
		t.Run(site.name, func(t *testing.T) { uefiProxyBoot(t, site) })
	}
}

func uefiProxyBoot(t *testing.T, sd siteDHCP) {
	qemu := needQEMU(t)
	tool := testkit.NeedTool(t, sd.tool, sd.pkg)
	testkit.NeedFile(t, "/usr/lib/ipxe/snponly.efi", "ipxe")
	// ns: the boot server on br0 (10.77.7.1) with the node's tap0; site:
	// the site's DHCP server (10.77.7.2) on a veth into the same bridge.
	ns := fmt.Sprintf("onesis-dhcp-uefi-%d", os.Getpid())
	site := ns + "-site"
	for _, n := range []string{ns, site} {
		mustRun(t, "ip", "netns", "add", n)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", n).Run() })
		mustRun(t, "ip", "-n", n, "link", "set", "lo", "up")
	}
	mustRun(t, "ip", "-n", ns, "link", "add", "br0", "type", "bridge")
	mustRun(t, "ip", "-n", ns, "addr", "add", "10.77.7.1/24", "dev", "br0")
	mustRun(t, "ip", "-n", ns, "link", "set", "br0", "up")
	mustRun(t, "ip", "-n", ns, "tuntap", "add", "dev", "tap0", "mode", "tap")
	mustRun(t, "ip", "-n", ns, "link", "set", "tap0", "master", "br0")
	mustRun(t, "ip", "-n", ns, "link", "set", "tap0", "up")
	mustRun(t, "ip", "-n", ns, "link", "add", "uefisite0", "type", "veth", "peer", "name", "uefisite1", "netns", site)
	mustRun(t, "ip", "-n", ns, "link", "set", "uefisite0", "master", "br0")
	mustRun(t, "ip", "-n", ns, "link", "set", "uefisite0", "up")
	mustRun(t, "ip", "-n", site, "addr", "add", "10.77.7.2/24", "dev", "uefisite1")
	mustRun(t, "ip", "-n", site, "link", "set", "uefisite1", "up")

	dir := t.TempDir()
	args, env := sd.conf(t, dir, tool)
	ctx, cancel := context.WithCancel(context.Background())
	dm := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", site}, args...)...)
	dm.Env = append(os.Environ(), env...)
	var dmLog testkit.Buffer
	dm.Stdout, dm.Stderr = &dmLog, &dmLog
	if err := dm.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); dm.Wait() })

	cfg := helperConfig{
		Mode: "server", Iface: "br0", ServerIP: "10.77.7.1", Proxy: true, TFTPIPXE: true,
		HTTPBootURL: "tftp://10.77.7.1/boot/${mac:hexhyp}.ipxe",
		Leases: map[string]helperLease{
			nsKnownMAC: {IP: "10.77.7.50", Mask: "255.255.255.0", Hostname: "node01"},
		},
		TFTPContent: map[string]string{
			"boot/52-54-00-12-34-56.ipxe": "#!ipxe\necho ONESIS-PROXY-OK ip=${net0/ip} file=${filename}\nsleep 600\n",
		},
	}
	h := startHelper(t, ns, cfg)
	got := bootOVMF(t, qemu, ns, "ONESIS-PROXY-OK ", "IPv6PXESupport")
	// The address from the site, the script URL from us.
	want := "ONESIS-PROXY-OK ip=10.77.7.50 file=tftp://10.77.7.1/boot/52-54-00-12-34-56.ipxe"
	if got != want {
		t.Errorf("iPXE printed %q, want %q\n%s:\n%s", got, want, sd.name, dmLog.String())
	}
	var fws, replies []string
	for _, e := range h.eventsFor(nsKnownMAC) {
		if e.Answered {
			fws = append(fws, e.Firmware)
			replies = append(replies, e.Reply+" "+e.Reason+" "+e.BootFile)
		}
	}
	// iPXE takes the script from the proxy offer itself; OVMF asks 4011.
	for _, w := range []string{"OFFER proxy offer snponly.efi", "ACK port 4011 snponly.efi", "OFFER proxy offer " + cfg.HTTPBootURL} {
		if !slices.Contains(replies, w) {
			t.Errorf("no %q among the answers %q (firmware %v)", w, replies, fws)
		}
	}
	if !strings.Contains(dmLog.String(), sd.gave) {
		t.Errorf("%s did not give the node its address (no %q in its log):\n%s", sd.name, sd.gave, dmLog.String())
	}
}
