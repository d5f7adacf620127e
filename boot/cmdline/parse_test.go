package cmdline

import (
	"fmt"
	"net"
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	sha := strings.Repeat("ab", 20)
	tests := []struct {
		name string
		in   string
		want Config
	}{
		{
			name: "contract",
			in: "initrd=initrd ip=dhcp BOOTIF=01-52-54-00-12-34-56 nfsroot=10.77.0.1:/c/" + sha + ",port=2049,mountport=2049,vers=3,proto=tcp,nolock ro onesis.commit=" + sha +
				" onesis.node=node7 hostname=n7 classname=cluster.web init=/lib/systemd/systemd onesis.retries=3 onesis.debug onesis.panic=halt console=ttyS0 quiet -- single",
			want: Config{
				BootIF: net.HardwareAddr{0x52, 0x54, 0, 0x12, 0x34, 0x56}, IP: "dhcp",
				Root:     &NFSRoot{Server: "10.77.0.1", Path: "/c/" + sha, Options: []string{"port=2049", "mountport=2049", "vers=3", "proto=tcp", "nolock"}},
				Hostname: "n7", Node: "node7", Class: "cluster.web", Commit: sha, Init: "/lib/systemd/systemd",
				Retries: 3, Debug: true, Panic: "halt",
			},
		},
		{
			name: "defaults",
			in:   "console=ttyS0 root=/dev/nfs",
			want: Config{IP: "dhcp", Init: "/sbin/init", Retries: DefaultRetries, Panic: "reboot"},
		},
		{
			name: "alias, rw, no server, quoted, modules",
			in:   `onesis.root=/w/node3 rw onesis.modules=mlx5_core,,bnxt_en hostname="node3"`,
			want: Config{IP: "dhcp", Init: "/sbin/init", Retries: DefaultRetries, Panic: "reboot", ReadWrite: true,
				Root: &NFSRoot{Path: "/w/node3"}, Hostname: "node3", Modules: []string{"mlx5_core", "bnxt_en"}},
		},
		{
			name: "static ip",
			in:   "ip=10.77.0.9:10.77.0.1:10.77.0.254:255.255.255.0:n9:eth1:off",
			want: Config{IP: "10.77.0.9:10.77.0.1:10.77.0.254:255.255.255.0:n9:eth1:off", Init: "/sbin/init", Retries: DefaultRetries, Panic: "reboot",
				Static: &StaticIP{Client: net.IPv4(10, 77, 0, 9).To4(), Server: net.IPv4(10, 77, 0, 1).To4(), Gateway: net.IPv4(10, 77, 0, 254).To4(),
					Mask: net.IPv4Mask(255, 255, 255, 0), Hostname: "n9", Device: "eth1"}},
		},
		{
			name: "ip with dhcp autoconf and bare BOOTIF mac",
			in:   "ip=:::::eth0:dhcp BOOTIF=aa:bb:cc:dd:ee:ff",
			want: Config{IP: ":::::eth0:dhcp", BootIF: net.HardwareAddr{0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}, Init: "/sbin/init", Retries: DefaultRetries, Panic: "reboot"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", *got, tc.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"BOOTIF=06-aa-bb-cc-dd-ee-ff", "not Ethernet"},
		{"BOOTIF=01-aa-bb", "01-aa-bb-cc-dd-ee-ff"},
		{"nfsroot=server.example:/c/x", "not an IPv4 address"},
		{"nfsroot=10.0.0.1:relative", "not an absolute path"},
		{"nfsroot=10.0.0.1:/c/../../etc", "not an absolute path"},
		{"hostname=bad_name", "not a valid host name"},
		{"hostname=-x", "not a valid host name"},
		{"onesis.retries=0", "1 to 100"},
		{"onesis.retries=lots", "1 to 100"},
		{"onesis.panic=explode", "reboot or halt"},
		{"init=sbin/init", "absolute"},
		{"ip=off", "needs the network"},
		{"ip=10.0.0.1:::0.0.0.0", "not a netmask"},
		{"ip=1.2.3", "want dhcp"},
		{"onesis.modules=../evil", "not a module name"},
	} {
		_, err := Parse(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) error %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestMountOptions(t *testing.T) {
	tests := []struct {
		opts []string
		want string
	}{
		{nil, "vers=3,proto=tcp,nolock,addr=10.77.0.1"},
		{[]string{"port=2049", "mountport=2049", "vers=3", "proto=tcp", "nolock"}, "port=2049,mountport=2049,vers=3,proto=tcp,nolock,addr=10.77.0.1"},
		{[]string{"tcp", "v3", "ro", "rsize=65536"}, "tcp,v3,rsize=65536,nolock,addr=10.77.0.1"},
		{[]string{"nfsvers=3", "udp", "lock", "addr=10.0.0.9"}, "nfsvers=3,udp,lock,addr=10.0.0.9"},
	}
	for _, tc := range tests {
		r := &NFSRoot{Path: "/c/x", Options: tc.opts}
		if got := r.MountOptions("10.77.0.1"); got != tc.want {
			t.Errorf("MountOptions(%v) = %s, want %s", tc.opts, got, tc.want)
		}
	}
}

// TestParseLinear: a megabyte of malformed arguments parses in one
// pass and reports the first ten and a count, not a megabyte of errors.
func TestParseLinear(t *testing.T) {
	s := strings.Repeat("onesis.retries=0 ", 64<<10)
	_, err := Parse(s)
	if err == nil {
		t.Fatal("accepted")
	}
	msg := err.Error()
	if n := strings.Count(msg, "\n") + 1; n != maxCmdlineErrors+1 || !strings.Contains(msg, fmt.Sprintf("and %d more", 64<<10-maxCmdlineErrors)) {
		t.Errorf("%d error lines, last %q; want %d and a count", n, msg[strings.LastIndexByte(msg, '\n')+1:], maxCmdlineErrors+1)
	}
}
