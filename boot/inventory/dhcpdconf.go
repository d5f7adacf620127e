package inventory

import (
	"fmt"
	"net/netip"
	"strings"
)

// Imported is what ImportDHCPD found in an ISC dhcpd.conf.
type Imported struct {
	Nodes    []*Node
	Networks []*Network
	// Warnings are things the admin should know (ignored statements that
	// matter, hostnames shortened to their first label), "file:line: msg".
	Warnings []string
}

// ImportDHCPD reads the host declarations of an ISC dhcpd.conf:
//
//	host n1 { hardware ethernet 52:54:00:12:34:56; fixed-address 10.77.0.10; option host-name "n1"; }
//
// inside any nesting of group, subnet, shared-network and pool blocks.
// The node name is the host-name option if given, else the declaration's
// name (what use-host-decl-names on sends), shortened to its first label
// when it is a dotted name. Host blocks that give the same name and
// address with different MACs are merged into one node. Each subnet
// becomes a network with the routers, domain-name-servers and domain-name
// options in scope. Other statements (class, failover, key, if ...) are
// skipped. name is used in errors: "dhcpd.conf:12: ...".
func ImportDHCPD(name string, src []byte) (*Imported, error) {
	toks, err := dhcpdTokens(name, src)
	if err != nil {
		return nil, err
	}
	p := &dparser{name: name, toks: toks, out: &Imported{}, byName: map[string]*Node{}}
	if err := p.block(&dscope{opts: map[string]string{}}, 0); err != nil {
		return nil, err
	}
	if p.pos < len(p.toks) {
		return nil, p.errAt(p.toks[p.pos], "unexpected '}' with no open block")
	}
	return p.out, nil
}

type dtok struct {
	s    string
	line int
	str  bool // a quoted string
}

func dhcpdTokens(name string, b []byte) ([]dtok, error) {
	var out []dtok
	line := 1
	for i := 0; i < len(b); {
		c := b[i]
		switch {
		case c == '\n':
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '#':
			for i < len(b) && b[i] != '\n' {
				i++
			}
		case c == '"':
			start := line
			var s strings.Builder
			i++
			for {
				if i >= len(b) {
					return nil, fmt.Errorf("%s:%d: unterminated string", name, start)
				}
				if b[i] == '"' {
					i++
					break
				}
				if b[i] == '\\' && i+1 < len(b) {
					i++
				}
				if b[i] == '\n' {
					line++
				}
				s.WriteByte(b[i])
				i++
			}
			out = append(out, dtok{s: s.String(), line: start, str: true})
		case c == '{' || c == '}' || c == ';' || c == ',':
			out = append(out, dtok{s: string(c), line: line})
			i++
		default:
			j := i
			for j < len(b) && !strings.ContainsRune(" \t\r\n\f\v#\"{};,", rune(b[j])) {
				j++
			}
			out = append(out, dtok{s: string(b[i:j]), line: line})
			i = j
		}
	}
	return out, nil
}

type dscope struct {
	useDecl bool
	opts    map[string]string // option name -> raw value text
}

func (s dscope) child() dscope {
	c := dscope{useDecl: s.useDecl, opts: map[string]string{}}
	for k, v := range s.opts {
		c.opts[k] = v
	}
	return c
}

type dparser struct {
	name   string
	toks   []dtok
	pos    int
	out    *Imported
	byName map[string]*Node
}

func (p *dparser) errAt(t dtok, format string, a ...any) error {
	return fmt.Errorf("%s:%d: %s", p.name, t.line, fmt.Sprintf(format, a...))
}

func (p *dparser) warn(t dtok, format string, a ...any) {
	p.out.Warnings = append(p.out.Warnings, fmt.Sprintf("%s:%d: %s", p.name, t.line, fmt.Sprintf(format, a...)))
}

// statement reads tokens up to ';' or '{' (consumed) and returns them with
// the terminator.
func (p *dparser) statement() ([]dtok, string, error) {
	start := p.toks[p.pos]
	var st []dtok
	for p.pos < len(p.toks) {
		t := p.toks[p.pos]
		p.pos++
		if !t.str && (t.s == ";" || t.s == "{") {
			return st, t.s, nil
		}
		if !t.str && t.s == "}" {
			return nil, "", p.errAt(t, "missing ';' before '}'")
		}
		st = append(st, t)
	}
	return nil, "", p.errAt(start, "statement %q is not terminated by ';'", start.s)
}

// skipBlock skips to the '}' closing a block whose '{' was just read.
func (p *dparser) skipBlock(open dtok) error {
	depth := 1
	for p.pos < len(p.toks) {
		t := p.toks[p.pos]
		p.pos++
		if t.str {
			continue
		}
		switch t.s {
		case "{":
			depth++
		case "}":
			depth--
			if depth == 0 {
				return nil
			}
		}
	}
	return p.errAt(open, "block is not closed by '}'")
}

// block parses statements until a '}' at this depth (consumed) or the end
// of input at depth 0.
func (p *dparser) block(sc *dscope, depth int) error {
	if depth > 32 {
		return p.errAt(p.toks[p.pos-1], "blocks nested too deeply")
	}
	for p.pos < len(p.toks) {
		t := p.toks[p.pos]
		if !t.str && t.s == "}" {
			if depth == 0 {
				return nil // reported by the caller
			}
			p.pos++
			return nil
		}
		if !t.str && t.s == ";" { // empty statement
			p.pos++
			continue
		}
		st, term, err := p.statement()
		if err != nil {
			return err
		}
		if len(st) == 0 {
			return p.errAt(t, "'{' without a declaration before it")
		}
		kw := strings.ToLower(st[0].s)
		if term == "{" {
			switch kw {
			case "host":
				if len(st) != 2 {
					return p.errAt(t, "expected 'host NAME {'")
				}
				cs := sc.child()
				if err := p.host(st[1], &cs, depth+1); err != nil {
					return err
				}
			case "group", "shared-network", "pool":
				cs := sc.child()
				if err := p.block(&cs, depth+1); err != nil {
					return err
				}
			case "subnet":
				cs := sc.child()
				if err := p.subnet(st, &cs, depth+1); err != nil {
					return err
				}
			default:
				if err := p.skipBlock(t); err != nil {
					return err
				}
			}
			continue
		}
		p.simple(st, sc)
	}
	if depth > 0 {
		return p.errAt(p.toks[len(p.toks)-1], "missing '}' at the end of the file")
	}
	return nil
}

// simple handles a ';'-terminated statement in any scope.
func (p *dparser) simple(st []dtok, sc *dscope) {
	kw := strings.ToLower(st[0].s)
	switch kw {
	case "use-host-decl-names":
		if len(st) == 2 {
			v := strings.ToLower(st[1].s)
			sc.useDecl = v == "on" || v == "true"
		}
	case "option":
		if len(st) >= 3 {
			var vals []string
			for _, t := range st[2:] {
				vals = append(vals, t.s)
			}
			sc.opts[strings.ToLower(st[1].s)] = strings.Join(vals, " ")
		}
	}
}

func (p *dparser) subnet(st []dtok, sc *dscope, depth int) error {
	if len(st) != 4 || strings.ToLower(st[2].s) != "netmask" {
		return p.errAt(st[0], "expected 'subnet ADDRESS netmask MASK {'")
	}
	addr, err1 := netip.ParseAddr(st[1].s)
	mask, err2 := netip.ParseAddr(st[3].s)
	if err1 != nil || err2 != nil || !addr.Is4() || !mask.Is4() {
		return p.errAt(st[0], "subnet %s netmask %s: not IPv4 addresses", st[1].s, st[3].s)
	}
	bits, ok := maskBits(mask)
	if !ok {
		return p.errAt(st[0], "netmask %s is not a contiguous mask", mask)
	}
	if err := p.block(sc, depth); err != nil {
		return err
	}
	// sc now holds the options of the subnet's body and its parents.
	nw := &Network{Prefix: netip.PrefixFrom(addr, bits).Masked(), Line: st[0].line}
	if v := sc.opts["routers"]; v != "" {
		a, err := firstAddr(v)
		if err != nil {
			return p.errAt(st[0], "subnet %s: option routers: %v", nw.Prefix, err)
		}
		nw.Router = a
	}
	if v := sc.opts["domain-name-servers"]; v != "" {
		for _, f := range splitList(v) {
			a, err := netip.ParseAddr(f)
			if err != nil || !a.Is4() {
				p.warn(st[0], "subnet %s: DNS server %q is not an IPv4 address; skipped", nw.Prefix, f)
				continue
			}
			nw.DNS = append(nw.DNS, a)
		}
	}
	if v := sc.opts["domain-name"]; v != "" {
		nw.Domain = strings.Fields(v)[0]
	}
	if err := nw.Validate(); err != nil {
		return p.errAt(st[0], "%v", err)
	}
	p.out.Networks = append(p.out.Networks, nw)
	return nil
}

// splitList splits an option's value on commas and blanks.
func splitList(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' })
}

// firstAddr returns the first IPv4 address of a comma-separated list.
func firstAddr(v string) (netip.Addr, error) {
	for _, f := range splitList(v) {
		if a, err := netip.ParseAddr(f); err == nil && a.Is4() {
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("%q holds no IPv4 address (host names are not resolved)", v)
}

// host parses the body of a host block; its '{' has been read.
func (p *dparser) host(decl dtok, sc *dscope, depth int) error {
	var macs []dtok
	var fixed []dtok
	var hostName *dtok
	for p.pos < len(p.toks) {
		t := p.toks[p.pos]
		if !t.str && t.s == "}" {
			p.pos++
			return p.addHost(decl, sc, macs, fixed, hostName)
		}
		if !t.str && t.s == ";" {
			p.pos++
			continue
		}
		st, term, err := p.statement()
		if err != nil {
			return err
		}
		if len(st) == 0 {
			return p.errAt(t, "'{' without a declaration before it")
		}
		if term == "{" {
			if err := p.skipBlock(t); err != nil {
				return err
			}
			continue
		}
		switch kw := strings.ToLower(st[0].s); {
		case kw == "hardware":
			if len(st) != 3 {
				return p.errAt(t, "host %s: expected 'hardware ethernet MAC;'", decl.s)
			}
			if strings.ToLower(st[1].s) != "ethernet" {
				return p.errAt(t, "host %s: hardware type %q is not supported (only ethernet)", decl.s, st[1].s)
			}
			macs = append(macs, st[2])
		case kw == "fixed-address":
			fixed = append(fixed, st[1:]...)
		case kw == "option" && len(st) == 3 && strings.ToLower(st[1].s) == "host-name":
			h := st[2]
			hostName = &h
		default:
			p.simple(st, sc)
		}
	}
	return p.errAt(decl, "host %s: block is not closed by '}'", decl.s)
}

func (p *dparser) addHost(decl dtok, sc *dscope, macs, fixed []dtok, hostName *dtok) error {
	name, from := decl.s, decl
	if hostName != nil {
		name, from = hostName.s, *hostName
	} else if !sc.useDecl {
		p.warn(decl, "host %s: no option host-name and use-host-decl-names is off; naming the node %q anyway", decl.s, decl.s)
	}
	if i := strings.IndexByte(name, '.'); i > 0 {
		p.warn(from, "host %s: using the first label of %q as the node name", decl.s, name)
		name = name[:i]
	}
	if err := CheckName(name); err != nil {
		return p.errAt(from, "host %s: %v", decl.s, err)
	}
	if len(macs) == 0 {
		return p.errAt(decl, "host %s has no 'hardware ethernet' line", decl.s)
	}
	var ips []string
	for _, f := range fixed {
		if f.s != "," {
			ips = append(ips, f.s)
		}
	}
	if len(ips) == 0 {
		return p.errAt(decl, "host %s has no fixed-address; git onesis gives nodes static addresses only", decl.s)
	}
	ip, err := netip.ParseAddr(ips[0])
	if err != nil || !ip.Is4() {
		return p.errAt(fixed[0], "host %s: fixed-address %q is not an IPv4 address (host names are not resolved)", decl.s, ips[0])
	}
	if len(ips) > 1 {
		p.warn(fixed[0], "host %s: using the first of %d fixed addresses, %s", decl.s, len(ips), ip)
	}
	n := &Node{Name: name, IP: ip, Line: decl.line}
	if old := p.byName[name]; old != nil {
		if old.IP != ip {
			return p.errAt(decl, "host %s: node %s is already declared on line %d with address %s", decl.s, name, old.Line, old.IP)
		}
		n = old
	}
	for _, m := range macs {
		hw, err := ParseMAC(m.s)
		if err != nil {
			return p.errAt(m, "host %s: %v", decl.s, err)
		}
		n.MACs = append(n.MACs, hw)
	}
	if err := n.Validate(); err != nil {
		return p.errAt(decl, "host %s: %v", decl.s, err)
	}
	if p.byName[name] == nil {
		p.byName[name] = n
		p.out.Nodes = append(p.out.Nodes, n)
	}
	return nil
}

func maskBits(m netip.Addr) (int, bool) {
	b := m.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	n := 0
	for v&0x80000000 != 0 {
		n++
		v <<= 1
	}
	return n, v == 0
}

// Merge adds the imported networks and nodes to inv. A node whose name is
// already in inv is an error unless replace is set; a MAC or IP that
// another node holds is always an error. Errors name the dhcpd.conf line
// (file is the name used in them).
func (inv *Inventory) Merge(im *Imported, file string, replace bool) error {
	for _, nw := range im.Networks {
		if err := inv.PutNetwork(nw); err != nil {
			return fmt.Errorf("%s:%d: %w", file, nw.Line, err)
		}
	}
	for _, n := range im.Nodes {
		if old := inv.ByName(n.Name); old != nil && !replace {
			return fmt.Errorf("%s:%d: node %s is already in the inventory (use --replace to overwrite it)", file, n.Line, n.Name)
		}
		c := *n
		c.Line = 0
		if err := inv.Put(&c); err != nil {
			return fmt.Errorf("%s:%d: %w", file, n.Line, err)
		}
	}
	return nil
}
