package inventory

import (
	"fmt"
	"net"
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
	p := &dparser{lex: dlexer{name: name, b: src, line: 1}, out: &Imported{}, byName: map[string]*Node{}, macs: map[string]*Node{}}
	if err := p.block(&dscope{}, 0); err != nil {
		return nil, err
	}
	if t, ok := p.next(); ok {
		return nil, p.errAt(t, "unexpected '}' with no open block")
	}
	if p.lex.err != nil {
		return nil, p.lex.err
	}
	return p.out, nil
}

// maxStatementTokens bounds the words of one statement, so that holding a
// statement is bounded whatever the file; real ones have a handful.
const maxStatementTokens = 4096

type dtok struct {
	s    string
	line int
	str  bool // a quoted string
}

// dlexer reads the tokens of a dhcpd.conf one at a time: the parser holds
// at most one statement, so memory does not grow with the file.
type dlexer struct {
	name    string
	b       []byte
	i, line int
	ahead   dtok
	peeked  bool  // ahead holds the next token
	last    dtok  // the last token read, for errors at the end of the file
	err     error // an unterminated string; reading stops there
}

// punct reports whether c ends a bare word.
func punct(c byte) bool {
	switch c {
	case ' ', '\t', '\r', '\n', '\f', '\v', '#', '"', '{', '}', ';', ',':
		return true
	}
	return false
}

func (l *dlexer) peek() (dtok, bool) {
	if !l.peeked {
		t, ok := l.scan()
		if !ok {
			return dtok{}, false
		}
		l.ahead, l.peeked = t, true
	}
	return l.ahead, true
}

func (l *dlexer) next() (dtok, bool) {
	t, ok := l.peek()
	if ok {
		l.peeked = false
		l.last = t
	}
	return t, ok
}

func (l *dlexer) scan() (dtok, bool) {
	b := l.b
	for l.i < len(b) && l.err == nil {
		c := b[l.i]
		switch {
		case c == '\n':
			l.line++
			l.i++
		case c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v':
			l.i++
		case c == '#':
			for l.i < len(b) && b[l.i] != '\n' {
				l.i++
			}
		case c == '"':
			start := l.line
			var s strings.Builder
			l.i++
			for {
				if l.i >= len(b) {
					l.err = fmt.Errorf("%s:%d: unterminated string", l.name, start)
					return dtok{}, false
				}
				if b[l.i] == '"' {
					l.i++
					break
				}
				if b[l.i] == '\\' && l.i+1 < len(b) {
					l.i++
				}
				if b[l.i] == '\n' {
					l.line++
				}
				s.WriteByte(b[l.i])
				l.i++
			}
			return dtok{s: s.String(), line: start, str: true}, true
		case c == '{' || c == '}' || c == ';' || c == ',':
			l.i++
			return dtok{s: string(b[l.i-1 : l.i]), line: l.line}, true // one byte: no allocation
		default:
			j := l.i
			for j < len(b) && !punct(b[j]) {
				j++
			}
			t := dtok{s: string(b[l.i:j]), line: l.line}
			l.i = j
			return t, true
		}
	}
	return dtok{}, false
}

// dscope is the options in force in a block: its own, then its parents'.
// A child block does not copy them, so thousands of options over tens of
// thousands of blocks cost what the text costs.
type dscope struct {
	useDecl bool
	opts    map[string]string // option name -> raw value text, this block only
	parent  *dscope
}

func (s *dscope) child() *dscope { return &dscope{useDecl: s.useDecl, parent: s} }

// opt returns the value of option k in force in this block.
func (s *dscope) opt(k string) string {
	for ; s != nil; s = s.parent {
		if v, ok := s.opts[k]; ok {
			return v
		}
	}
	return ""
}

func (s *dscope) setOpt(k, v string) {
	if s.opts == nil {
		s.opts = map[string]string{}
	}
	s.opts[k] = v
}

type dparser struct {
	name   string
	lex    dlexer
	out    *Imported
	byName map[string]*Node
	macs   map[string]*Node // MAC -> the node a host block gave it to
}

func (p *dparser) peek() (dtok, bool) { return p.lex.peek() }
func (p *dparser) next() (dtok, bool) { return p.lex.next() }

// atEOF is the error for input that ended early: the lexer's, if it
// stopped on an unterminated string, else err.
func (p *dparser) atEOF(err error) error {
	if p.lex.err != nil {
		return p.lex.err
	}
	return err
}

func (p *dparser) errAt(t dtok, format string, a ...any) error {
	return fmt.Errorf("%s:%d: %s", p.lex.name, t.line, fmt.Sprintf(format, a...))
}

func (p *dparser) warn(t dtok, format string, a ...any) {
	p.out.Warnings = append(p.out.Warnings, fmt.Sprintf("%s:%d: %s", p.lex.name, t.line, fmt.Sprintf(format, a...)))
}

// statement reads tokens up to ';' or '{' (consumed) and returns them with
// the terminator.
func (p *dparser) statement() ([]dtok, string, error) {
	start, _ := p.peek()
	var st []dtok
	for {
		t, ok := p.next()
		if !ok {
			break
		}
		if !t.str && (t.s == ";" || t.s == "{") {
			return st, t.s, nil
		}
		if !t.str && t.s == "}" {
			return nil, "", p.errAt(t, "missing ';' before '}'")
		}
		if len(st) >= maxStatementTokens {
			return nil, "", p.errAt(start, "statement %q has more than %d words; is a ';' missing?", start.s, maxStatementTokens)
		}
		st = append(st, t)
	}
	return nil, "", p.atEOF(p.errAt(start, "statement %q is not terminated by ';'", start.s))
}

// skipBlock skips to the '}' closing a block whose '{' was just read.
func (p *dparser) skipBlock(open dtok) error {
	depth := 1
	for {
		t, ok := p.next()
		if !ok {
			break
		}
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
	return p.atEOF(p.errAt(open, "block is not closed by '}'"))
}

// block parses statements until a '}' at this depth (consumed) or the end
// of input at depth 0.
func (p *dparser) block(sc *dscope, depth int) error {
	if depth > 32 {
		return p.errAt(p.lex.last, "blocks nested too deeply")
	}
	for {
		t, ok := p.peek()
		if !ok {
			break
		}
		if !t.str && t.s == "}" {
			if depth == 0 {
				return nil // reported by the caller
			}
			p.next()
			return nil
		}
		if !t.str && t.s == ";" { // empty statement
			p.next()
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
				if err := p.host(st[1], sc.child(), depth+1); err != nil {
					return err
				}
			case "group", "shared-network", "pool":
				if err := p.block(sc.child(), depth+1); err != nil {
					return err
				}
			case "subnet":
				if err := p.subnet(st, sc.child(), depth+1); err != nil {
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
		return p.atEOF(p.errAt(p.lex.last, "missing '}' at the end of the file"))
	}
	return p.lex.err
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
			sc.setOpt(strings.ToLower(st[1].s), strings.Join(vals, " "))
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
	if v := sc.opt("routers"); v != "" {
		a, err := firstAddr(v)
		if err != nil {
			return p.errAt(st[0], "subnet %s: option routers: %v", nw.Prefix, err)
		}
		nw.Router = a
	}
	if v := sc.opt("domain-name-servers"); v != "" {
		for _, f := range splitList(v) {
			a, err := netip.ParseAddr(f)
			if err != nil || !a.Is4() {
				p.warn(st[0], "subnet %s: DNS server %q is not an IPv4 address; skipped", nw.Prefix, f)
				continue
			}
			nw.DNS = append(nw.DNS, a)
		}
	}
	if v := sc.opt("domain-name"); v != "" {
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
	for {
		t, ok := p.peek()
		if !ok {
			break
		}
		if !t.str && t.s == "}" {
			p.next()
			return p.addHost(decl, sc, macs, fixed, hostName)
		}
		if !t.str && t.s == ";" {
			p.next()
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
	return p.atEOF(p.errAt(decl, "host %s: block is not closed by '}'", decl.s))
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
	n := p.byName[name]
	if n != nil && n.IP != ip {
		return p.errAt(decl, "host %s: node %s is already declared on line %d with address %s", decl.s, name, n.Line, n.IP)
	}
	hws := make([]net.HardwareAddr, len(macs))
	for i, m := range macs {
		if hws[i], err = ParseMAC(m.s); err != nil {
			return p.errAt(m, "host %s: %v", decl.s, err)
		}
	}
	if n == nil {
		n = &Node{Name: name, IP: ip, Line: decl.line, MACs: hws}
		if err := n.Validate(); err != nil {
			return p.errAt(decl, "host %s: %v", decl.s, err)
		}
		p.byName[name] = n
		p.out.Nodes = append(p.out.Nodes, n)
	} else {
		// Another block for the same node adds its MACs: each is checked
		// on its own (the node was validated with its first block), so a
		// node declared in many blocks costs what its blocks cost.
		for _, hw := range hws {
			if err := checkMAC(n.Name, hw); err != nil {
				return p.errAt(decl, "host %s: %v", decl.s, err)
			}
			if p.macs[string(hw)] == n {
				return p.errAt(decl, "host %s: node %s lists MAC %s twice", decl.s, n.Name, hw)
			}
			n.MACs = append(n.MACs, hw)
			p.ownMAC(hw, n)
		}
		return nil
	}
	for _, hw := range hws {
		p.ownMAC(hw, n)
	}
	return nil
}

// ownMAC records that hw was first given to n.
func (p *dparser) ownMAC(hw net.HardwareAddr, n *Node) {
	if p.macs[string(hw)] == nil {
		p.macs[string(hw)] = n
	}
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
	if !replace {
		for _, n := range im.Nodes {
			if inv.ByName(n.Name) != nil {
				return fmt.Errorf("%s:%d: node %s is already in the inventory (use --replace to overwrite it)", file, n.Line, n.Name)
			}
		}
	}
	return inv.PutAll(im.Nodes, func(n *Node, err error) error {
		return fmt.Errorf("%s:%d: %w", file, n.Line, err)
	})
}
