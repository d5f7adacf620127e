package main

import (
	"net"
	"os"
	"strings"
	"testing"

	"github.com/onesis/git-onesis/boot/cmdline"
)

func TestPickNIC(t *testing.T) {
	mac := func(s string) net.HardwareAddr { m, _ := net.ParseMAC(s); return m }
	nics := []nic{
		{Name: "eno1", MAC: mac("aa:00:00:00:00:01")},
		{Name: "eno2", MAC: mac("aa:00:00:00:00:02"), Carrier: true},
		{Name: "eno3", MAC: mac("aa:00:00:00:00:03"), Carrier: true},
	}
	tests := []struct {
		nics   []nic
		bootif net.HardwareAddr
		want   string
		err    string
	}{
		{nics, mac("AA:00:00:00:00:03"), "eno3", ""},
		{nics, nil, "eno2", ""},
		{nics[:1], nil, "eno1", ""},
		{nics, mac("bb:00:00:00:00:00"), "", "no interface has the BOOTIF address"},
		{nil, nil, "", "no Ethernet interface"},
	}
	for _, tc := range tests {
		n, _, err := pickNIC(tc.nics, tc.bootif)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("pickNIC(%v) error %v, want %q", tc.bootif, err, tc.err)
			}
			continue
		}
		if err != nil || n.Name != tc.want {
			t.Errorf("pickNIC(%v) = %s %v, want %s", tc.bootif, n.Name, err, tc.want)
		}
	}
}

func TestNextNIC(t *testing.T) {
	a, b, c := nic{Name: "a", Carrier: true}, nic{Name: "b"}, nic{Name: "c", Carrier: true}
	tests := []struct {
		nics []nic
		i    int
		want string
	}{
		{[]nic{a, b, c}, 0, "a"},
		{[]nic{a, b, c}, 1, "c"},
		{[]nic{a, b, c}, 2, "a"},
		{[]nic{b, {Name: "d"}}, 1, "d"},
	}
	for _, tc := range tests {
		if n, ok := nextNIC(tc.nics, tc.i); !ok || n.Name != tc.want {
			t.Errorf("nextNIC(%v, %d) = %s, want %s", tc.nics, tc.i, n.Name, tc.want)
		}
	}
	if _, ok := nextNIC(nil, 0); ok {
		t.Error("nextNIC of no interfaces")
	}
}

// TestNetConf: /run/net-<dev>.conf is what klibc ipconfig writes, and
// --personality-only reads the hostname back from it.
func TestNetConf(t *testing.T) {
	dir := t.TempDir()
	l := &lease{Proto: "dhcp", IP: net.IPv4(10, 77, 0, 5), Mask: net.CIDRMask(24, 32), Server: net.IPv4(10, 77, 0, 1), RootPath: "10.77.0.1:/c/x"}
	if err := writeNetConf(dir, "eth0", l, "node5"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(dir + "/net-eth0.conf")
	for _, want := range []string{"DEVICE='eth0'\n", "IPV4ADDR='10.77.0.5'\n", "IPV4BROADCAST='10.77.0.255'\n", "IPV4NETMASK='255.255.255.0'\n", "IPV4GATEWAY='0.0.0.0'\n", "HOSTNAME='node5'\n", "ROOTPATH='10.77.0.1:/c/x'\n"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("net-eth0.conf lacks %q:\n%s", want, b)
		}
	}
	if h := personalityHost(&cmdline.Config{}, dir); h != "node5" {
		t.Errorf("personalityHost read %q", h)
	}
}
