package inventory

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

const seedConf = `# the seed's dhcpd.conf
ddns-update-style none;
authoritative;
option domain-name "cluster.example";
use-host-decl-names on;

subnet 10.77.0.0 netmask 255.255.255.0 {
  option routers 10.77.0.1;
  option domain-name-servers 10.77.0.1, 10.77.0.2;
  filename "pxelinux.0";
  next-server 10.77.0.1;

  group {
    host node1 { hardware ethernet 52:54:00:00:00:01; fixed-address 10.77.0.11; }
    host node2.cluster.example {
      hardware ethernet 52:54:0:0:0:2;   # single hex digits, as dhcpd allows
      fixed-address 10.77.0.12;
    }
  }
  host gpu-eth0 { hardware ethernet 52:54:00:00:00:03; fixed-address 10.77.0.13; option host-name "gpu1"; }
  host gpu-eth1 { hardware ethernet 52:54:00:00:01:03; fixed-address 10.77.0.13; option host-name "gpu1"; }
}
class "pxe" { match if substring (option vendor-class-identifier, 0, 9) = "PXEClient"; }
if exists user-class { filename "x"; } else { filename "y"; }
`

func TestImportDHCPD(t *testing.T) {
	im, err := ImportDHCPD("dhcpd.conf", []byte(seedConf))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range im.Nodes {
		got = append(got, n.Record())
	}
	want := []string{
		"node node1 mac=52:54:00:00:00:01 ip=10.77.0.11",
		"node node2 mac=52:54:00:00:00:02 ip=10.77.0.12",
		"node gpu1 mac=52:54:00:00:00:03 mac=52:54:00:00:01:03 ip=10.77.0.13",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("nodes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(im.Networks) != 1 || im.Networks[0].Prefix.String() != "10.77.0.0/24" ||
		im.Networks[0].Router.String() != "10.77.0.1" || len(im.Networks[0].DNS) != 2 || im.Networks[0].Domain != "cluster.example" {
		t.Errorf("networks: %+v", im.Networks)
	}
	if len(im.Warnings) != 1 || !strings.Contains(im.Warnings[0], "dhcpd.conf:15: host node2.cluster.example: using the first label") {
		t.Errorf("warnings: %q", im.Warnings)
	}
	inv := New()
	if err := inv.Merge(im, "dhcpd.conf", false); err != nil {
		t.Fatal(err)
	}
	if err := inv.Merge(im, "dhcpd.conf", false); err == nil || !strings.Contains(err.Error(), "dhcpd.conf:14: node node1 is already in the inventory") {
		t.Errorf("second merge: %v", err)
	}
}

func TestImportDHCPDNoDeclNames(t *testing.T) {
	im, err := ImportDHCPD("c", []byte("host n1 { hardware ethernet 52:54:00:00:00:01; fixed-address 10.0.0.1; }"))
	if err != nil || len(im.Nodes) != 1 || len(im.Warnings) != 1 || !strings.Contains(im.Warnings[0], "use-host-decl-names is off") {
		t.Errorf("err=%v warnings=%q", err, im.Warnings)
	}
}

func TestImportDHCPDErrors(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"no mac", "host n1 { fixed-address 10.0.0.1; }", "c:1: host n1 has no 'hardware ethernet' line"},
		{"no ip", "host n1 {\n hardware ethernet 52:54:00:00:00:01;\n}", "c:1: host n1 has no fixed-address"},
		{"hostname ip", "host n1 {\n hardware ethernet 52:54:00:00:00:01;\n fixed-address n1.example;\n}", "c:3: host n1: fixed-address \"n1.example\" is not an IPv4 address"},
		{"token ring", "host n1 { hardware token-ring 52:54:00:00:00:01; fixed-address 10.0.0.1; }", "not supported (only ethernet)"},
		{"bad mac", "host n1 {\n hardware ethernet 52:54:00:00:00:zz; fixed-address 10.0.0.1; }", "c:2: host n1: \"52:54:00:00:00:zz\" is not an Ethernet MAC"},
		{"unclosed", "group {\n host n1 { hardware ethernet 52:54:00:00:00:01; fixed-address 10.0.0.1; }\n", "missing '}'"},
		{"stray close", "}\n", "unexpected '}'"},
		{"no semicolon", "host n1 { hardware ethernet 52:54:00:00:00:01 }", "missing ';'"},
		{"unterminated string", "option domain-name \"x;\n", "c:1: unterminated string"},
		{"bad name", "host n_1 { hardware ethernet 52:54:00:00:00:01; fixed-address 10.0.0.1; }", "not a valid node name"},
		{"same name two ips", "host a { hardware ethernet 52:54:00:00:00:01; fixed-address 10.0.0.1; option host-name \"x\"; }\nhost b { hardware ethernet 52:54:00:00:00:02; fixed-address 10.0.0.2; option host-name \"x\"; }", "c:2: host b: node x is already declared on line 1"},
		{"bad netmask", "subnet 10.0.0.0 netmask 255.0.255.0 { }", "not a contiguous mask"},
		{"subnet syntax", "subnet 10.0.0.0 { }", "expected 'subnet ADDRESS netmask MASK {'"},
		{"deep", strings.Repeat("group {", 40), "nested too deeply"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ImportDHCPD("c", []byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want %q", err, tc.want)
			}
		})
	}
}

func FuzzImportDHCPD(f *testing.F) {
	f.Add([]byte(seedConf))
	f.Add([]byte("host n1 { hardware ethernet 52:54:00:00:00:01; fixed-address 10.0.0.1; }"))
	f.Add([]byte("group { group { } } }"))
	// Repeated blocks of one host, and options over nested groups.
	f.Add([]byte(strings.Repeat("host g { hardware ethernet 52:54:00:00:00:01; fixed-address 10.0.0.1; }\nhost g { hardware ethernet 52:54:00:00:00:02; fixed-address 10.0.0.1; }\n", 3)))
	f.Add([]byte("option routers 10.0.0.254;\nsubnet 10.0.0.0 netmask 255.255.255.0 { group { option routers 10.0.0.1; group { } } }\n" + strings.Repeat(";", 100)))
	f.Fuzz(func(t *testing.T, b []byte) {
		im, err := ImportDHCPD("f", b)
		if err != nil {
			return
		}
		inv := New()
		if err := inv.Merge(im, "f", true); err != nil {
			return
		}
		checkIndexes(t, inv)
		if _, err := Parse("nodes", inv.Marshal()); err != nil {
			t.Fatalf("imported inventory does not load back: %v\n%s", err, inv.Marshal())
		}
	})
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("network 10.77.0.0/24 router=10.77.0.1 dns=10.77.0.1 domain=c.example\nnode n1 mac=52:54:00:00:00:01 ip=10.77.0.11 ref=main maintenance=\"/srv/a b\" args=\"quiet x=1\"\n"))
	f.Add([]byte("node n1 mac=52:54:00:00:00:01 ip=10.77.0.11\nnode n2 mac=52:54:00:00:00:01 ip=10.77.0.12\n"))
	f.Add([]byte("# c\n\n node x args=\"\\u00e9\"\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		inv, err := Parse("nodes", b)
		if err != nil {
			return
		}
		out := inv.Marshal()
		again, err := Parse("nodes", out)
		if err != nil {
			t.Fatalf("canonical form does not parse: %v\n%s", err, out)
		}
		if string(again.Marshal()) != string(out) {
			t.Fatalf("canonical form not stable:\n%s\n---\n%s", out, again.Marshal())
		}
	})
}

// checkIndexes checks that inv's nodes are sorted and unique and that its
// indexes find exactly them.
func checkIndexes(t *testing.T, inv *Inventory) {
	t.Helper()
	macs, ips := 0, map[netip.Addr]bool{}
	for i, n := range inv.Nodes {
		if i > 0 && inv.Nodes[i-1].Name >= n.Name {
			t.Fatalf("nodes not sorted and unique at %s", n.Name)
		}
		if inv.ByName(n.Name) != n || inv.ByIP(n.IP) != n {
			t.Fatalf("index does not find node %s by name or IP", n.Name)
		}
		for _, m := range n.MACs {
			if inv.ByMAC(m) != n {
				t.Fatalf("index does not find node %s by MAC %s", n.Name, m)
			}
		}
		macs += len(n.MACs)
		ips[n.IP] = true
	}
	if len(inv.byName) != len(inv.Nodes) || len(inv.byMAC) != macs || len(inv.byIP) != len(ips) || len(ips) != len(inv.Nodes) {
		t.Fatalf("indexes hold %d names, %d MACs, %d IPs for %d nodes with %d MACs", len(inv.byName), len(inv.byMAC), len(inv.byIP), len(inv.Nodes), macs)
	}
}

// FuzzPutRemove drives Put, PutAll and Remove over a small space of names,
// MACs and addresses, so that collisions are common, and checks after each
// step that the indexes agree with the nodes and that Put refuses exactly
// what a scan of every node would.
func FuzzPutRemove(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 0, 1, 2, 4, 1, 1, 0, 0, 2, 5, 6, 7})
	f.Add([]byte{0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		inv := New()
		for len(ops) >= 4 {
			op, name, mac, ip := ops[0]%3, fmt.Sprint("n", ops[1]%6), ops[2]%8, ops[3]%8
			ops = ops[4:]
			n := &Node{Name: name, MACs: []net.HardwareAddr{{0x52, 0x54, 0, 0, 0, mac}}, IP: netip.AddrFrom4([4]byte{10, 0, 0, 1 + ip})}
			if mac%3 == 0 {
				n.MACs = append(n.MACs, net.HardwareAddr{0x52, 0x54, 0, 0, 1, mac})
			}
			clash := false
			for _, o := range inv.Nodes {
				if o.Name != n.Name && (o.IP == n.IP || slices.ContainsFunc(o.MACs, func(m net.HardwareAddr) bool {
					return slices.ContainsFunc(n.MACs, func(x net.HardwareAddr) bool { return bytes.Equal(m, x) })
				})) {
					clash = true
				}
			}
			var err error
			switch op {
			case 0:
				err = inv.Put(n)
			case 1:
				err = inv.PutAll([]*Node{n}, func(_ *Node, err error) error { return err })
			case 2:
				had := inv.ByName(name) != nil
				if err := inv.Remove(name); (err == nil) != had {
					t.Fatalf("Remove(%s): %v, though the node was there: %v", name, err, had)
				}
				checkIndexes(t, inv)
				continue
			}
			if (err != nil) != clash {
				t.Fatalf("Put(%s %v %s): %v; a scan of every node says clash=%v", name, n.MACs, n.IP, err, clash)
			}
			checkIndexes(t, inv)
		}
	})
}
