// Package inventory owns the node inventory of git onesis serve: which
// machines may boot, by MAC, with which address, ref, maintenance work tree
// and extra kernel arguments.
//
// The inventory is global across branches and auditable: it is one text
// file, "nodes", in the tree of the dedicated ref refs/onesis/inventory.
// Every change is a commit made with git plumbing under the admin's
// identity, and the ref moves with a compare-and-swap, so `git log
// refs/onesis/inventory` shows who changed which node and when. See
// Format for the file format and Load, Update and Watcher for storage.
package inventory

import (
	"bytes"
	"cmp"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/onesis/git-onesis/boot/cmdline"
)

// Node is one machine of the inventory.
type Node struct {
	// Name is the node's name and hostname: one DNS label.
	Name string
	// MACs are the node's Ethernet addresses (at least one), any of which
	// may boot it.
	MACs []net.HardwareAddr
	// IP is the node's static IPv4 address.
	IP netip.Addr
	// Ref, when set, is the revision the node boots (a branch, tag, ref or
	// commit); it overrides serve --ref and the checked-out branch.
	Ref string
	// Maintenance, when set, is the absolute path of the work tree the node
	// boots read-write (a maintenance node); "" for a normal node.
	Maintenance string
	// Args are extra kernel arguments appended to the command line.
	Args string
	// Line is the line of the nodes file the node was read from (0 when
	// built in memory).
	Line int
	// Comment holds the "# ..." lines written above the node's record,
	// kept with it (newline-separated, "" for none).
	Comment string
}

// Network gives the DHCP parameters of the nodes whose address it contains.
type Network struct {
	Prefix netip.Prefix // e.g. 10.77.0.0/24 (masked)
	Router netip.Addr   // invalid when unset
	DNS    []netip.Addr
	Domain string
	Line   int
	// Comment holds the "# ..." lines above the network's record.
	Comment string
}

// Inventory is a validated set of nodes and networks. It is immutable once
// returned by Parse or Load; mutate a Clone.
type Inventory struct {
	// Commit is the inventory commit this was loaded from; "" when the ref
	// does not exist yet or the inventory was parsed from bytes.
	Commit string
	// Comment holds the "# ..." lines after the last record.
	Comment  string
	Nodes    []*Node    // sorted by name
	Networks []*Network // sorted by prefix

	byMAC  map[string]*Node
	byIP   map[netip.Addr]*Node
	byName map[string]*Node
}

// New returns an empty inventory.
func New() *Inventory {
	inv := &Inventory{}
	inv.index()
	return inv
}

func (inv *Inventory) index() {
	inv.byMAC = make(map[string]*Node, len(inv.Nodes))
	inv.byIP = make(map[netip.Addr]*Node, len(inv.Nodes))
	inv.byName = make(map[string]*Node, len(inv.Nodes))
	for _, n := range inv.Nodes {
		inv.indexNode(n)
	}
}

func (inv *Inventory) indexNode(n *Node) {
	inv.byName[n.Name] = n
	inv.byIP[n.IP] = n
	for _, m := range n.MACs {
		inv.byMAC[string(m)] = n
	}
}

func (inv *Inventory) unindexNode(n *Node) {
	delete(inv.byName, n.Name)
	if inv.byIP[n.IP] == n {
		delete(inv.byIP, n.IP)
	}
	for _, m := range n.MACs {
		if inv.byMAC[string(m)] == n {
			delete(inv.byMAC, string(m))
		}
	}
}

// conflicting returns an error naming the node, other than except, that
// already holds one of n's MACs or its IP: a few map lookups, whatever the
// size of the inventory.
func (inv *Inventory) conflicting(n, except *Node) error {
	for _, m := range n.MACs {
		if o := inv.byMAC[string(m)]; o != nil && o != except {
			return conflict(o, n)
		}
	}
	if o := inv.byIP[n.IP]; o != nil && o != except {
		return conflict(o, n)
	}
	return nil
}

// search returns where a node called name is, or would be, in Nodes.
func (inv *Inventory) search(name string) (int, bool) {
	return slices.BinarySearchFunc(inv.Nodes, name, func(n *Node, name string) int { return strings.Compare(n.Name, name) })
}

// ByMAC returns the node owning mac, or nil.
func (inv *Inventory) ByMAC(mac net.HardwareAddr) *Node { return inv.byMAC[string(mac)] }

// ByIP returns the node with address ip, or nil. An IPv4-mapped IPv6
// address matches its IPv4 node.
func (inv *Inventory) ByIP(ip netip.Addr) *Node { return inv.byIP[ip.Unmap()] }

// ByName returns the node called name, or nil.
func (inv *Inventory) ByName(name string) *Node { return inv.byName[name] }

// NetworkFor returns the most specific network containing ip, or nil.
func (inv *Inventory) NetworkFor(ip netip.Addr) *Network {
	var best *Network
	for _, nw := range inv.Networks {
		if nw.Prefix.Contains(ip.Unmap()) && (best == nil || nw.Prefix.Bits() > best.Prefix.Bits()) {
			best = nw
		}
	}
	return best
}

// Clone returns a deep copy that can be changed with Put and Remove.
func (inv *Inventory) Clone() *Inventory {
	out := &Inventory{Commit: inv.Commit, Comment: inv.Comment}
	for _, n := range inv.Nodes {
		c := *n
		c.MACs = make([]net.HardwareAddr, len(n.MACs))
		for i, m := range n.MACs {
			c.MACs[i] = slices.Clone(m)
		}
		out.Nodes = append(out.Nodes, &c)
	}
	for _, nw := range inv.Networks {
		c := *nw
		c.DNS = slices.Clone(nw.DNS)
		out.Networks = append(out.Networks, &c)
	}
	out.index()
	return out
}

// Put adds n, or replaces the node of the same name, after validating it
// against every other node. On error the inventory is unchanged. It costs
// a few map lookups and a binary search, so an inventory of many thousands
// of nodes is built in time linear in its size.
func (inv *Inventory) Put(n *Node) error {
	c, old, err := inv.prepare(n)
	if err != nil {
		return err
	}
	i, found := inv.search(n.Name)
	if found {
		inv.Nodes[i] = c
	} else {
		inv.Nodes = slices.Insert(inv.Nodes, i, c)
	}
	inv.place(c, old)
	return nil
}

// prepare validates n against the inventory and returns the copy to store
// and the node of the same name it replaces (nil when new).
func (inv *Inventory) prepare(n *Node) (*Node, *Node, error) {
	if err := n.Validate(); err != nil {
		return nil, nil, err
	}
	old := inv.byName[n.Name]
	if err := inv.conflicting(n, old); err != nil {
		return nil, nil, err
	}
	c := *n
	c.Line = 0
	if old != nil {
		c.Line = old.Line
	}
	return &c, old, nil
}

// place moves the indexes from old (nil when none) to c.
func (inv *Inventory) place(c, old *Node) {
	if old != nil {
		inv.unindexNode(old)
	}
	inv.indexNode(c)
}

// PutAll puts each node of ns as Put would, in order, and sorts once at
// the end: an import of tens of thousands of nodes in any order costs
// O(n log n). On error, the nodes before the failing one are in; the
// error is wrapped by wrap with that node.
func (inv *Inventory) PutAll(ns []*Node, wrap func(n *Node, err error) error) error {
	dead := map[*Node]bool{}
	defer func() {
		if len(dead) > 0 {
			inv.Nodes = slices.DeleteFunc(inv.Nodes, func(x *Node) bool { return dead[x] })
		}
		sortNodes(inv.Nodes)
	}()
	for _, n := range ns {
		c, old, err := inv.prepare(n)
		if err != nil {
			return wrap(n, err)
		}
		if old != nil {
			dead[old] = true
		}
		inv.Nodes = append(inv.Nodes, c)
		inv.place(c, old)
	}
	return nil
}

// Clear removes every node and network.
func (inv *Inventory) Clear() {
	inv.Nodes, inv.Networks, inv.Comment = nil, nil, ""
	inv.index()
}

// Remove deletes the node called name; it is an error if there is none.
func (inv *Inventory) Remove(name string) error {
	i, found := inv.search(name)
	if !found {
		return fmt.Errorf("there is no node %q in the inventory", name)
	}
	inv.unindexNode(inv.Nodes[i])
	inv.Nodes = slices.Delete(inv.Nodes, i, i+1)
	return nil
}

// PutNetwork adds nw, or replaces the network with the same prefix.
func (inv *Inventory) PutNetwork(nw *Network) error {
	if err := nw.Validate(); err != nil {
		return err
	}
	c := *nw
	for i, o := range inv.Networks {
		if o.Prefix == nw.Prefix {
			inv.Networks[i] = &c
			return nil
		}
	}
	inv.Networks = append(inv.Networks, &c)
	slices.SortFunc(inv.Networks, func(a, b *Network) int {
		return cmp.Or(a.Prefix.Addr().Compare(b.Prefix.Addr()), cmp.Compare(a.Prefix.Bits(), b.Prefix.Bits()))
	})
	return nil
}

// where names a node with its line, when known, for error messages.
func (n *Node) where() string {
	if n.Line > 0 {
		return fmt.Sprintf("node %s (line %d)", n.Name, n.Line)
	}
	return "node " + n.Name
}

// conflict reports an address that o and n share, naming both nodes.
func conflict(o, n *Node) error {
	for _, m := range n.MACs {
		for _, om := range o.MACs {
			if bytes.Equal(m, om) {
				return fmt.Errorf("MAC %s of node %s is already used by %s", m, n.Name, o.where())
			}
		}
	}
	if o.IP == n.IP {
		return fmt.Errorf("IP %s of node %s is already used by %s", n.IP, n.Name, o.where())
	}
	return nil
}

// Validate checks one node on its own: a hostname, at least one Ethernet
// MAC, an IPv4 address, and safe ref, maintenance and args values.
func (n *Node) Validate() error {
	if err := CheckName(n.Name); err != nil {
		return err
	}
	if len(n.MACs) == 0 {
		return fmt.Errorf("node %s has no MAC address (give at least one mac=)", n.Name)
	}
	var seen map[string]bool // duplicates: a scan for a few MACs, a set for many
	if len(n.MACs) > 8 {
		seen = make(map[string]bool, len(n.MACs))
	}
	for i, m := range n.MACs {
		if err := checkMAC(n.Name, m); err != nil {
			return err
		}
		if dup := seen[string(m)]; dup || (seen == nil && slices.ContainsFunc(n.MACs[:i], func(o net.HardwareAddr) bool { return bytes.Equal(o, m) })) {
			return fmt.Errorf("node %s lists MAC %s twice", n.Name, m)
		}
		if seen != nil {
			seen[string(m)] = true
		}
	}
	if !n.IP.IsValid() {
		return fmt.Errorf("node %s has no IP address (give ip=)", n.Name)
	}
	if !n.IP.Is4() {
		return fmt.Errorf("node %s: IP %s is not an IPv4 address", n.Name, n.IP)
	}
	if n.IP.IsUnspecified() || n.IP.IsMulticast() || n.IP.IsLoopback() || n.IP == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return fmt.Errorf("node %s: IP %s cannot be given to a node", n.Name, n.IP)
	}
	if n.Ref != "" {
		if err := CheckRef(n.Ref); err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
	}
	if n.Maintenance != "" {
		if !strings.HasPrefix(n.Maintenance, "/") || strings.ContainsAny(n.Maintenance, "\x00\n\r\t") {
			return fmt.Errorf("node %s: maintenance work tree %q must be an absolute path", n.Name, n.Maintenance)
		}
	}
	if err := cmdline.CheckArgs(n.Args); err != nil {
		return fmt.Errorf("node %s: %w", n.Name, err)
	}
	return nil
}

// checkMAC checks that m, a MAC of node name, is a network card's.
func checkMAC(name string, m net.HardwareAddr) error {
	if len(m) != 6 {
		return fmt.Errorf("node %s: %q is not an Ethernet MAC address (6 bytes, like 52:54:00:12:34:56)", name, m)
	}
	if m[0]&1 == 1 {
		return fmt.Errorf("node %s: MAC %s is a multicast address, not a network card's", name, m)
	}
	return nil
}

// Validate checks a network's router and DNS addresses.
func (nw *Network) Validate() error {
	if !nw.Prefix.IsValid() || !nw.Prefix.Addr().Is4() {
		return fmt.Errorf("network %s: not an IPv4 prefix like 10.77.0.0/24", nw.Prefix)
	}
	if nw.Prefix.Masked() != nw.Prefix {
		return fmt.Errorf("network %s: host bits are set; did you mean %s?", nw.Prefix, nw.Prefix.Masked())
	}
	if nw.Router.IsValid() && !nw.Prefix.Contains(nw.Router) {
		return fmt.Errorf("network %s: router %s is outside the network", nw.Prefix, nw.Router)
	}
	for _, d := range nw.DNS {
		if !d.Is4() {
			return fmt.Errorf("network %s: DNS server %s is not an IPv4 address", nw.Prefix, d)
		}
	}
	if nw.Domain != "" {
		for _, l := range strings.Split(nw.Domain, ".") {
			if CheckName(l) != nil {
				return fmt.Errorf("network %s: %q is not a valid domain name", nw.Prefix, nw.Domain)
			}
		}
	}
	return nil
}

// CheckName reports whether s is a valid node name: one DNS label of 1 to
// 63 letters, digits and hyphens, not starting or ending with a hyphen.
// Node names appear in refs (refs/onesis/booted/NAME) and NFS export paths
// (/w/NAME), so nothing else is allowed.
func CheckName(s string) error {
	ok := len(s) >= 1 && len(s) <= 63 && s[0] != '-' && s[len(s)-1] != '-'
	for i := 0; ok && i < len(s); i++ {
		c := s[i]
		ok = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-'
	}
	if !ok {
		return fmt.Errorf("%q is not a valid node name: use a hostname (letters, digits and '-', at most 63, no dots)", s)
	}
	return nil
}

// CheckRef rejects revisions that cannot be a git ref or commit name.
// Existence is checked at boot time, not here.
func CheckRef(s string) error {
	bad := s == "" || strings.HasPrefix(s, "-") || strings.Contains(s, "..") || strings.Contains(s, "@{") ||
		strings.HasSuffix(s, ".lock") || strings.HasSuffix(s, "/") || strings.HasSuffix(s, ".")
	for _, c := range s {
		if c <= ' ' || c == 0x7f || strings.ContainsRune("~^:?*[\\\"", c) {
			bad = true
		}
	}
	if bad {
		return fmt.Errorf("%q is not a valid ref or commit name", s)
	}
	return nil
}

// ParseMAC parses an Ethernet address written with ':' or '-' separators
// (as ISC dhcpd and iPXE's ${mac:hexhyp} do).
func ParseMAC(s string) (net.HardwareAddr, error) {
	bad := fmt.Errorf("%q is not an Ethernet MAC address (like 52:54:00:12:34:56)", s)
	parts := strings.FieldsFunc(s, func(r rune) bool { return r == ':' || r == '-' })
	if len(parts) != 6 || strings.Count(s, ":")+strings.Count(s, "-") != 5 {
		return nil, bad
	}
	m := make(net.HardwareAddr, 6)
	for i, p := range parts {
		if len(p) < 1 || len(p) > 2 {
			return nil, bad
		}
		var v byte
		for _, c := range []byte(p) {
			switch {
			case c >= '0' && c <= '9':
				c -= '0'
			case c >= 'a' && c <= 'f':
				c -= 'a' - 10
			case c >= 'A' && c <= 'F':
				c -= 'A' - 10
			default:
				return nil, bad
			}
			v = v<<4 | c
		}
		m[i] = v
	}
	return m, nil
}
