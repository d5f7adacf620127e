package inventory

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Format documents the nodes file, one record per line:
//
//	# comment (whole lines only); blank lines are ignored
//	network 10.77.0.0/24 router=10.77.0.1 dns=10.77.0.1,10.77.0.2 domain=cluster.example
//	node n1 mac=52:54:00:12:34:56 mac=52:54:00:12:34:57 ip=10.77.0.10 ref=testing maintenance=/srv/image-update args="quiet loglevel=3"
//
// A node has a name (a hostname label), one or more mac= (Ethernet, ':' or
// '-' separated), exactly one ip= (IPv4), and optionally ref=, maintenance=
// (an absolute work-tree path: the node boots it read-write) and args=
// (extra kernel arguments). A network gives the mask (its prefix length),
// router, DNS servers and domain handed by DHCP to the nodes inside it.
// Values are bare words, or double-quoted Go strings when they hold
// spaces. Unknown keywords and keys, a repeated key other than mac, and
// duplicate names, MACs, IPs or prefixes are errors naming the line.
// Comment lines belong to the record below them and move with it (lines
// after the last record stay at the end); Marshal writes the canonical
// form: networks then nodes, sorted, each after its comments, one record
// per line, so each change is a one-line diff.
const Format = "network PREFIX [router=IP] [dns=IP,...] [domain=NAME]\nnode NAME mac=MAC [mac=MAC...] ip=IP [ref=REV] [maintenance=DIR] [args=\"...\"]"

// ParseError is an error in a nodes file at a line.
type ParseError struct {
	File string // name of the file, e.g. "nodes"
	Line int
	Msg  string
}

// Error implements error: "FILE:LINE: message".
func (e *ParseError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// Parse reads a nodes file. name is used in error messages ("nodes:3:
// ..."). The result is fully validated: every node and network is valid
// and no two nodes share a name, MAC or IP.
func Parse(name string, b []byte) (*Inventory, error) {
	inv := New()
	nets := map[netip.Prefix]int{}
	var notes []string // comment lines waiting for their record
	for i, line := range strings.Split(string(b), "\n") {
		ln := i + 1
		errf := func(format string, a ...any) error {
			return &ParseError{File: name, Line: ln, Msg: fmt.Sprintf(format, a...)}
		}
		line = strings.TrimSuffix(line, "\r")
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "#") && t != header {
			notes = append(notes, t)
		}
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		toks, err := tokenize(t)
		if err != nil {
			return nil, errf("%v", err)
		}
		switch toks[0].key {
		case "node":
			n, err := parseNode(toks[1:])
			if err != nil {
				return nil, errf("%v", err)
			}
			n.Line, n.Comment, notes = ln, strings.Join(notes, "\n"), nil
			if old := inv.byName[n.Name]; old != nil {
				return nil, errf("node %s is already defined on line %d", n.Name, old.Line)
			}
			if err := inv.conflicting(n, nil); err != nil {
				return nil, errf("%v", err)
			}
			inv.Nodes = append(inv.Nodes, n)
			inv.indexNode(n)
		case "network":
			nw, err := parseNetwork(toks[1:])
			if err != nil {
				return nil, errf("%v", err)
			}
			nw.Line, nw.Comment, notes = ln, strings.Join(notes, "\n"), nil
			if l, dup := nets[nw.Prefix]; dup {
				return nil, errf("network %s is already defined on line %d", nw.Prefix, l)
			}
			nets[nw.Prefix] = ln
			if err := inv.PutNetwork(nw); err != nil {
				return nil, errf("%v", err)
			}
		default:
			return nil, errf("unknown record %q; expected 'node' or 'network'", toks[0].key)
		}
	}
	inv.Comment = strings.Join(notes, "\n")
	// Sort for a canonical Marshal; nodes keep their line numbers.
	sortNodes(inv.Nodes)
	return inv, nil
}

// header is the first line Marshal writes; Parse does not keep it as a
// comment of the first record.
const header = "# git-onesis node inventory: edit with 'git onesis node'; history: git log -p refs/onesis/inventory"

// writeComment writes a record's comment lines.
func writeComment(b *bytes.Buffer, c string) {
	if c != "" {
		b.WriteString(c)
		b.WriteByte('\n')
	}
}

func sortNodes(ns []*Node) {
	slices.SortFunc(ns, func(a, b *Node) int { return strings.Compare(a.Name, b.Name) })
}

// token is one word of a record: a bare keyword (val == "" and !kv) or a
// key=value pair.
type token struct {
	key, val string
	kv       bool
}

// tokenize splits a record into words. A value may be a double-quoted Go
// string; a bare word may not contain '"' or '#'.
func tokenize(s string) ([]token, error) {
	var out []token
	for i := 0; i < len(s); {
		if s[i] == ' ' || s[i] == '\t' {
			i++
			continue
		}
		j := i
		for j < len(s) && s[j] != ' ' && s[j] != '\t' && s[j] != '=' && s[j] != '"' {
			j++
		}
		key := s[i:j]
		if key == "" {
			return nil, fmt.Errorf("unexpected %q at column %d", s[i], i+1)
		}
		if strings.HasPrefix(key, "#") {
			return nil, errors.New("comments must be on a line of their own")
		}
		if j == len(s) || s[j] != '=' {
			if j < len(s) && s[j] == '"' {
				return nil, fmt.Errorf("unexpected '\"' after %q; quote only values, as in key=\"...\"", key)
			}
			out = append(out, token{key: key})
			i = j
			continue
		}
		j++ // '='
		if j < len(s) && s[j] == '"' {
			q, err := strconv.QuotedPrefix(s[j:])
			if err != nil {
				return nil, fmt.Errorf("%s=: unterminated or malformed quoted value", key)
			}
			v, _ := strconv.Unquote(q)
			j += len(q)
			if j < len(s) && s[j] != ' ' && s[j] != '\t' {
				return nil, fmt.Errorf("%s=: text right after the closing quote", key)
			}
			out = append(out, token{key: key, val: v, kv: true})
			i = j
			continue
		}
		k := j
		for k < len(s) && s[k] != ' ' && s[k] != '\t' {
			if s[k] == '"' || s[k] == '#' {
				return nil, fmt.Errorf("%s=: a value containing '\"' or '#' must be quoted", key)
			}
			k++
		}
		out = append(out, token{key: key, val: s[j:k], kv: true})
		i = k
	}
	if len(out) == 0 || out[0].kv {
		return nil, errors.New("a record starts with 'node' or 'network'")
	}
	return out, nil
}

func parseNode(toks []token) (*Node, error) {
	if len(toks) == 0 || toks[0].kv {
		return nil, errors.New("'node' needs a name: node NAME mac=MAC ip=IP")
	}
	n := &Node{Name: toks[0].key}
	if err := CheckName(n.Name); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, t := range toks[1:] {
		if !t.kv {
			return nil, fmt.Errorf("node %s: %q is not key=value", n.Name, t.key)
		}
		if t.key != "mac" && seen[t.key] {
			return nil, fmt.Errorf("node %s: %s= given twice", n.Name, t.key)
		}
		seen[t.key] = true
		switch t.key {
		case "mac":
			m, err := ParseMAC(t.val)
			if err != nil {
				return nil, fmt.Errorf("node %s: %w", n.Name, err)
			}
			n.MACs = append(n.MACs, m)
		case "ip":
			ip, err := netip.ParseAddr(t.val)
			if err != nil {
				return nil, fmt.Errorf("node %s: %q is not an IP address", n.Name, t.val)
			}
			n.IP = ip
		case "ref":
			n.Ref = t.val
		case "maintenance":
			n.Maintenance = t.val
		case "args":
			n.Args = t.val
		default:
			return nil, fmt.Errorf("node %s: unknown key %q (known: mac, ip, ref, maintenance, args)", n.Name, t.key)
		}
	}
	if err := n.Validate(); err != nil {
		return nil, err
	}
	return n, nil
}

func parseNetwork(toks []token) (*Network, error) {
	if len(toks) == 0 || toks[0].kv {
		return nil, errors.New("'network' needs a prefix: network 10.77.0.0/24 router=IP")
	}
	p, err := netip.ParsePrefix(toks[0].key)
	if err != nil {
		return nil, fmt.Errorf("%q is not a network prefix like 10.77.0.0/24", toks[0].key)
	}
	nw := &Network{Prefix: p}
	seen := map[string]bool{}
	for _, t := range toks[1:] {
		if !t.kv {
			return nil, fmt.Errorf("network %s: %q is not key=value", p, t.key)
		}
		if seen[t.key] {
			return nil, fmt.Errorf("network %s: %s= given twice", p, t.key)
		}
		seen[t.key] = true
		switch t.key {
		case "router":
			if nw.Router, err = netip.ParseAddr(t.val); err != nil {
				return nil, fmt.Errorf("network %s: router %q is not an IP address", p, t.val)
			}
		case "dns":
			for _, d := range strings.Split(t.val, ",") {
				a, err := netip.ParseAddr(d)
				if err != nil {
					return nil, fmt.Errorf("network %s: DNS server %q is not an IP address", p, d)
				}
				nw.DNS = append(nw.DNS, a)
			}
		case "domain":
			nw.Domain = t.val
		default:
			return nil, fmt.Errorf("network %s: unknown key %q (known: router, dns, domain)", p, t.key)
		}
	}
	return nw, nw.Validate()
}

// quote returns v as a bare word when that parses back, else quoted.
func quote(v string) string {
	if v == "" || strings.ContainsAny(v, " \t\"#\\=") || strings.ContainsFunc(v, func(r rune) bool { return r < ' ' || r >= 0x7f }) {
		return strconv.Quote(v)
	}
	return v
}

// Marshal writes the inventory in canonical form (see Format).
func (inv *Inventory) Marshal() []byte {
	var b bytes.Buffer
	b.WriteString(header + "\n")
	for _, nw := range inv.Networks {
		writeComment(&b, nw.Comment)
		b.WriteString("network " + nw.Prefix.String())
		if nw.Router.IsValid() {
			b.WriteString(" router=" + nw.Router.String())
		}
		if len(nw.DNS) > 0 {
			var ds []string
			for _, d := range nw.DNS {
				ds = append(ds, d.String())
			}
			b.WriteString(" dns=" + strings.Join(ds, ","))
		}
		if nw.Domain != "" {
			b.WriteString(" domain=" + quote(nw.Domain))
		}
		b.WriteByte('\n')
	}
	for _, n := range inv.Nodes {
		writeComment(&b, n.Comment)
		b.WriteString(n.Record())
		b.WriteByte('\n')
	}
	writeComment(&b, inv.Comment)
	return b.Bytes()
}

// Record returns the node's line in the nodes file.
func (n *Node) Record() string {
	var b strings.Builder
	b.WriteString("node " + n.Name)
	for _, m := range n.MACs {
		b.WriteString(" mac=" + m.String())
	}
	b.WriteString(" ip=" + n.IP.String())
	if n.Ref != "" {
		b.WriteString(" ref=" + quote(n.Ref))
	}
	if n.Maintenance != "" {
		b.WriteString(" maintenance=" + quote(n.Maintenance))
	}
	if n.Args != "" {
		b.WriteString(" args=" + quote(n.Args))
	}
	return b.String()
}

// MACString formats mac as iPXE's ${mac:hexhyp} does: 52-54-00-12-34-56.
func MACString(mac net.HardwareAddr) string { return strings.ReplaceAll(mac.String(), ":", "-") }
