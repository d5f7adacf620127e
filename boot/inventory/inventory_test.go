package inventory

import (
	"net"
	"net/netip"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	good := `# comment
network 10.77.0.0/24 router=10.77.0.1 dns=10.77.0.1,10.77.0.2 domain=cluster.example

node n2 mac=52-54-00-00-00-02 ip=10.77.0.12 ref=testing args="quiet loglevel=3"
  node n1 mac=52:54:00:00:00:01 mac=52:54:00:00:01:01 ip=10.77.0.11 maintenance=/srv/update
`
	inv, err := Parse("nodes", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Nodes) != 2 || inv.Nodes[0].Name != "n1" || inv.Nodes[0].Line != 5 {
		t.Fatalf("nodes not sorted with lines: %+v", inv.Nodes)
	}
	m, _ := ParseMAC("52:54:00:00:01:01")
	if n := inv.ByMAC(m); n == nil || n.Name != "n1" {
		t.Errorf("ByMAC(second mac) = %v", n)
	}
	if n := inv.ByIP(netip.MustParseAddr("10.77.0.12")); n == nil || n.Ref != "testing" || n.Args != "quiet loglevel=3" {
		t.Errorf("ByIP = %+v", n)
	}
	if n := inv.ByName("n1"); n == nil || n.Maintenance != "/srv/update" {
		t.Errorf("ByName = %+v", n)
	}
	nw := inv.NetworkFor(netip.MustParseAddr("10.77.0.12"))
	if nw == nil || nw.Router != netip.MustParseAddr("10.77.0.1") || len(nw.DNS) != 2 || nw.Domain != "cluster.example" {
		t.Errorf("NetworkFor = %+v", nw)
	}
	// Canonical form round-trips and is stable.
	out := inv.Marshal()
	again, err := Parse("nodes", out)
	if err != nil {
		t.Fatalf("canonical form does not parse: %v\n%s", err, out)
	}
	if string(again.Marshal()) != string(out) {
		t.Errorf("Marshal not stable:\n%s\n---\n%s", out, again.Marshal())
	}
	if !strings.Contains(string(out), `node n2 mac=52:54:00:00:00:02 ip=10.77.0.12 ref=testing args="quiet loglevel=3"`) {
		t.Errorf("canonical record missing:\n%s", out)
	}
}

func TestParseErrors(t *testing.T) {
	const a = "node n1 mac=52:54:00:00:00:01 ip=10.77.0.11\n"
	for _, tc := range []struct{ name, in, want string }{
		{"dup mac", a + "node n2 mac=52:54:00:00:00:01 ip=10.77.0.12\n", "nodes:2: MAC 52:54:00:00:00:01 of node n2 is already used by node n1 (line 1)"},
		{"dup ip", a + "node n2 mac=52:54:00:00:00:02 ip=10.77.0.11\n", "nodes:2: IP 10.77.0.11 of node n2 is already used by node n1 (line 1)"},
		{"dup name", a + "node n1 mac=52:54:00:00:00:02 ip=10.77.0.12\n", "nodes:2: node n1 is already defined on line 1"},
		{"bad name", "node n_1 mac=52:54:00:00:00:01 ip=10.77.0.11\n", "nodes:1: \"n_1\" is not a valid node name"},
		{"dotted name", "node n1.x mac=52:54:00:00:00:01 ip=10.77.0.11\n", "not a valid node name"},
		{"no mac", "node n1 ip=10.77.0.11\n", "has no MAC"},
		{"no ip", "node n1 mac=52:54:00:00:00:01\n", "has no IP"},
		{"bad mac", "node n1 mac=52:54:00:00:00 ip=10.77.0.11\n", "not an Ethernet MAC"},
		{"multicast mac", "node n1 mac=01:00:5e:00:00:01 ip=10.77.0.11\n", "multicast"},
		{"ipv6", "node n1 mac=52:54:00:00:00:01 ip=fd00::1\n", "not an IPv4"},
		{"unknown key", "node n1 mac=52:54:00:00:00:01 ip=10.77.0.11 colour=red\n", "unknown key \"colour\""},
		{"twice", "node n1 mac=52:54:00:00:00:01 ip=10.77.0.11 ip=10.77.0.12\n", "ip= given twice"},
		{"reserved arg", "node n1 mac=52:54:00:00:00:01 ip=10.77.0.11 args=\"nfsroot=evil:/x\"\n", "set by serve"},
		{"quote in arg", "node n1 mac=52:54:00:00:00:01 ip=10.77.0.11 args=\"a\\\"b\"\n", "quote"},
		{"unterminated", "node n1 mac=52:54:00:00:00:01 ip=10.77.0.11 args=\"abc\n", "unterminated"},
		{"relative maint", "node n1 mac=52:54:00:00:00:01 ip=10.77.0.11 maintenance=srv\n", "absolute path"},
		{"bad ref", "node n1 mac=52:54:00:00:00:01 ip=10.77.0.11 ref=a..b\n", "not a valid ref"},
		{"trailing comment", "node n1 mac=52:54:00:00:00:01 ip=10.77.0.11 # x\n", "own"},
		{"unknown record", "host n1\n", "nodes:1: unknown record \"host\""},
		{"network host bits", "network 10.77.0.1/24\n", "host bits"},
		{"router outside", "network 10.77.0.0/24 router=10.78.0.1\n", "outside"},
		{"dup network", "network 10.77.0.0/24\nnetwork 10.77.0.0/24\n", "nodes:2: network 10.77.0.0/24 is already defined on line 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("nodes", []byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse(%q) error = %v, want it to contain %q", tc.in, err, tc.want)
			}
		})
	}
}

func TestPutRemove(t *testing.T) {
	inv, err := Parse("nodes", []byte("node n1 mac=52:54:00:00:00:01 ip=10.77.0.11\n"))
	if err != nil {
		t.Fatal(err)
	}
	c := inv.Clone()
	mac, _ := ParseMAC("52:54:00:00:00:01")
	err = c.Put(&Node{Name: "n2", MACs: []net.HardwareAddr{mac}, IP: netip.MustParseAddr("10.77.0.12")})
	if err == nil || !strings.Contains(err.Error(), "already used by node n1 (line 1)") {
		t.Errorf("Put duplicate MAC: %v", err)
	}
	mac2, _ := ParseMAC("52:54:00:00:00:02")
	if err := c.Put(&Node{Name: "n2", MACs: []net.HardwareAddr{mac2}, IP: netip.MustParseAddr("10.77.0.12")}); err != nil {
		t.Fatal(err)
	}
	// Replacing n1 with n1's own MAC is fine.
	if err := c.Put(&Node{Name: "n1", MACs: []net.HardwareAddr{mac}, IP: netip.MustParseAddr("10.77.0.21")}); err != nil {
		t.Fatal(err)
	}
	if inv.ByName("n1").IP.String() != "10.77.0.11" || inv.ByName("n2") != nil {
		t.Error("Clone shares state with the original")
	}
	if err := c.Remove("n3"); err == nil {
		t.Error("Remove of a missing node succeeded")
	}
	if err := c.Remove("n1"); err != nil || c.ByMAC(mac) != nil || len(c.Nodes) != 1 {
		t.Errorf("Remove: %v, %v", err, c.Nodes)
	}
}

// TestComments: the format documents comments, so they survive a parse and
// Marshal, each with the record below it (records are sorted), and the
// header Marshal writes is not taken for a comment.
func TestComments(t *testing.T) {
	in := `# git-onesis node inventory: edit with 'git onesis node'; history: git log -p refs/onesis/inventory
# n2: bad DIMM, ticket 4711
node n2 mac=52:54:00:00:00:02 ip=10.77.0.12
# rack 3
network 10.77.0.0/24 router=10.77.0.1
node n1 mac=52:54:00:00:00:01 ip=10.77.0.11
# end of file
`
	inv, err := Parse("nodes", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if n := inv.ByName("n2"); n.Comment != "# n2: bad DIMM, ticket 4711" {
		t.Errorf("n2 comment = %q", n.Comment)
	}
	want := `# git-onesis node inventory: edit with 'git onesis node'; history: git log -p refs/onesis/inventory
# rack 3
network 10.77.0.0/24 router=10.77.0.1
node n1 mac=52:54:00:00:00:01 ip=10.77.0.11
# n2: bad DIMM, ticket 4711
node n2 mac=52:54:00:00:00:02 ip=10.77.0.12
# end of file
`
	if got := string(inv.Marshal()); got != want {
		t.Errorf("Marshal:\n%s\nwant:\n%s", got, want)
	}
	// A change to the node keeps its comment; the file round-trips.
	c := inv.Clone()
	n := *c.ByName("n2")
	n.Args = "quiet"
	if err := c.Put(&n); err != nil {
		t.Fatal(err)
	}
	again, err := Parse("nodes", c.Marshal())
	if err != nil || again.ByName("n2").Comment != "# n2: bad DIMM, ticket 4711" || again.Comment != "# end of file" {
		t.Errorf("after Put: %v\n%s", err, c.Marshal())
	}
}
