// Package sysimage reads oneSIS's etc/sysimage.conf, the file that gives
// every node of a diskless cluster its personality, and resolves a host's
// class and properties from it.
//
// Parse reads the configuration as oneSIS 2.0.5 documents it, accepting the
// real-world spellings (an optional ':' after the keyword, '#' comments
// anywhere on a line, INCLUDE spliced in place, globs in RAM* and LINK*
// paths). Directives that git-onesis does not act on (local disks, deploy,
// power and console commands) are kept in Config.Unsupported and reported
// once each as a Warning, never silently dropped. Every error names the
// file and line and says what was expected.
//
// Config.Resolve turns a hostname (and an optional classname= override)
// into a Node, and the ...For methods select the directives that apply to
// that node. docs/sysimage.md is the reference for every directive and for
// the choices this package makes where oneSIS's own documentation is
// silent (regexp anchoring, range zero-padding, precedence).
package sysimage

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"
)

// Opener reads a file by its absolute path inside the image
// ("/etc/sysimage.conf"); it must never reach outside the image. INCLUDE
// uses it.
type Opener func(path string) ([]byte, error)

// Pos is where a directive came from.
type Pos struct {
	File string
	Line int
}

// String formats the position as FILE:LINE.
func (p Pos) String() string { return fmt.Sprintf("%s:%d", p.File, p.Line) }

// Filter is a directive's -c/-n/-p lists (ORed); all empty = every node.
type Filter struct{ Classes, Nodes, Props []string }

// Empty reports whether the filter has no lists, so it applies to every
// node.
func (f Filter) Empty() bool {
	return len(f.Classes) == 0 && len(f.Nodes) == 0 && len(f.Props) == 0
}

// Match reports whether the filter selects n: an empty filter selects
// every node; otherwise n must be in one of the classes (-c parent matches
// parent.* subclasses), be one of the nodes (exact hostname), or have one
// of the properties.
func (f Filter) Match(n *Node) bool {
	if f.Empty() {
		return true
	}
	if n == nil {
		return false
	}
	for _, c := range f.Classes {
		if InClass(n.Class, c) {
			return true
		}
	}
	for _, h := range f.Nodes {
		if h == n.Host {
			return true
		}
	}
	for _, p := range f.Props {
		for _, q := range n.Props {
			if p == q {
				return true
			}
		}
	}
	return false
}

// InClass reports whether class is cls or one of its subclasses:
// InClass("vu.compute.gige", "vu") is true, InClass("vux", "vu") is false.
func InClass(class, cls string) bool {
	return class != "" && (class == cls || strings.HasPrefix(class, cls+"."))
}

// Warning is a non-fatal finding (unsupported directive, deprecated
// spelling, old -p meaning).
type Warning struct {
	Pos Pos
	Msg string
}

// String formats the warning as "FILE:LINE: message".
func (w Warning) String() string { return w.Pos.String() + ": " + w.Msg }

// Error is a parse error at a position of the configuration. Err, when
// set, is the underlying cause (a failed INCLUDE read, ErrIncludeLoop,
// ErrUnknownDirective, a regexp syntax error).
type Error struct {
	Pos Pos
	Msg string
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Pos, e.Msg, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Pos, e.Msg)
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

var (
	// ErrIncludeLoop is wrapped by the error for an INCLUDE that would
	// read a file already being read.
	ErrIncludeLoop = errors.New("INCLUDE loop")
	// ErrUnknownDirective is wrapped by the error for a line whose
	// keyword is not a sysimage.conf directive.
	ErrUnknownDirective = errors.New("unknown directive")
	// ErrTooLarge is wrapped by the error for a configuration beyond the
	// limits of one parse (MaxIncludes, MaxBytes, MaxLineBytes).
	ErrTooLarge = errors.New("configuration too large")
)

// RamEntry is a RAMDIR, RAMFILE, LINKDIR or LINKFILE directive.
type RamEntry struct {
	Kind  string  // "RAMDIR", "RAMFILE", "LINKDIR", "LINKFILE"
	Path  string  // absolute image path, may contain globs (* ? [ ] { })
	Copy  bool    // -d: copy the image's file or directory into /ram
	Clean bool    // -cl: removable by a clean run; false = protected
	Mode  *uint32 // -m (octal); nil = mirror the image
	// User and Group are -u and -g (name or number, as written); "" =
	// mirror the image.
	User, Group string
	Filter      Filter
	Pos         Pos
}

// Link reports whether the entry is a LINKDIR or LINKFILE, which also
// turns the image path into a link to /ram.
func (e RamEntry) Link() bool { return e.Kind == "LINKDIR" || e.Kind == "LINKFILE" }

// Dir reports whether the entry is a RAMDIR or LINKDIR.
func (e RamEntry) Dir() bool { return e.Kind == "RAMDIR" || e.Kind == "LINKDIR" }

// Linkback targets with a fixed meaning.
const (
	TargetClass    = "CLASS"
	TargetNode     = "NODE"
	TargetProperty = "PROPERTY"
)

// Linkback is a LINKBACK directive.
type Linkback struct {
	Path string // absolute image path (no globs)
	// Target is "CLASS", "NODE", "PROPERTY", or an arbitrary target
	// possibly containing $CLASS / $NODE, as written.
	Target string
	Hidden bool // -h: variants are dot-prefixed (.P.default)
	Force  bool // -f: link even when the target does not exist
	Filter Filter
	Pos    Pos
}

// Service is a SERVICE directive: the init script /etc/init.d/Name runs
// only on the nodes the filter selects.
type Service struct {
	Name   string
	Filter Filter
	Pos    Pos
}

// RamSize is a RAMSIZE directive: Size as written ("500m"), Bytes its
// value (0 = no limit given, tmpfs's default).
type RamSize struct {
	Size   string
	Bytes  int64
	Filter Filter
	Pos    Pos
}

// Directive is a directive git-onesis parses but does not act on, kept so
// that nothing is silently dropped.
type Directive struct {
	Keyword string
	Args    []string
	Pos     Pos
}

// Config is a parsed sysimage.conf with its INCLUDEs.
type Config struct {
	Distro, DistroVersion string
	DistroSkipPatch       bool // -sp
	DistroKeepNet         bool // -kn
	MatchDNSHosts         bool
	RamSizes              []RamSize
	Ram                   []RamEntry // in file order (INCLUDE spliced in place)
	Linkbacks             []Linkback // in file order
	Services              []Service
	EthPreload            []string
	MacAddrs              map[string]string // lower-case MAC -> hostname (MAC_ADDR)
	Warnings              []Warning
	// Unsupported holds the directives outside git-onesis's scope
	// (DISKMOUNT, POWERCMD, ...), in file order.
	Unsupported []Directive
	// Files lists the files read: the main file, then each INCLUDE in the
	// order it was read.
	Files []string

	classRules []classRule
	propRules  []propRule

	// Indexes built once after parsing, so resolving every node of a
	// large site against a configuration with one line per node costs a
	// map lookup per node, not a scan of every line.
	mapRule     map[string]int // host -> index of its last NODECLASS_MAP in classRules
	otherRules  []int          // indexes of the other class rules, in order
	propsByHost map[string][]int
	otherProps  []int // PROPERTY rules that are not -n only
}

// index builds the lookup tables Resolve uses.
func (c *Config) index() {
	c.mapRule = map[string]int{}
	c.otherRules = nil
	for i, r := range c.classRules {
		if r.re == nil && r.rng == nil {
			c.mapRule[r.host] = i
		} else {
			c.otherRules = append(c.otherRules, i)
		}
	}
	c.propsByHost = map[string][]int{}
	c.otherProps = nil
	for i, p := range c.propRules {
		if len(p.nodes) > 0 && len(p.classes) == 0 && len(p.ranges) == 0 && len(p.res) == 0 {
			for _, h := range p.nodes {
				c.propsByHost[h] = append(c.propsByHost[h], i)
			}
		} else {
			c.otherProps = append(c.otherProps, i)
		}
	}
}

// classRule is one NODECLASS_MAP, NODECLASS_REGEXP or NODECLASS_RANGE.
type classRule struct {
	kind  string
	host  string         // MAP
	re    *regexp.Regexp // REGEXP
	rng   *Range         // RANGE
	class string
	pos   Pos
}

func (r *classRule) match(host string) bool {
	switch {
	case r.re != nil:
		return r.re.MatchString(host)
	case r.rng != nil:
		return r.rng.Match(host)
	default:
		return r.host == host
	}
}

// propRule is one PROPERTY directive.
type propRule struct {
	name    string
	classes []string
	nodes   []string
	ranges  []*Range
	res     []*regexp.Regexp
	pos     Pos
}

func (p *propRule) match(n *Node) bool {
	if len(p.classes) == 0 && len(p.nodes) == 0 && len(p.ranges) == 0 && len(p.res) == 0 {
		return true
	}
	for _, c := range p.classes {
		if InClass(n.Class, c) {
			return true
		}
	}
	for _, h := range p.nodes {
		if h == n.Host {
			return true
		}
	}
	for _, r := range p.ranges {
		if r.Match(n.Host) {
			return true
		}
	}
	for _, re := range p.res {
		if re.MatchString(n.Host) {
			return true
		}
	}
	return false
}

// NotLinkable is the set of paths that can never be links (etc/inittab,
// boot/grub/menu.lst, etc/sysimage.conf, etc/mtab), relative to the image
// root — the transform refuses them, and the parser rejects a LINKDIR,
// LINKFILE or LINKBACK naming one exactly.
var NotLinkable = []string{"etc/inittab", "boot/grub/menu.lst", "etc/sysimage.conf", "etc/mtab"}

// IsNotLinkable reports whether p, absolute ("/etc/inittab") or relative
// to the image root ("etc/inittab"), is in NotLinkable.
func IsNotLinkable(p string) bool {
	p = strings.TrimPrefix(path.Clean("/"+p), "/")
	for _, q := range NotLinkable {
		if p == q {
			return true
		}
	}
	return false
}

// Node is a host's resolved personality.
type Node struct {
	Host    string
	Class   string   // "" when no class matched
	Classes []string // most specific first: "cluster.compute.gige", "cluster.compute", "cluster"
	Props   []string // sorted alphanumerically (byte order)
	// ClassFrom is the NODECLASS_* directive that set Class; the zero Pos
	// when Class came from the classname= override or nothing matched.
	ClassFrom Pos
	// Overridden reports that Class came from the classname= override.
	Overridden bool
}

// Parents returns the node's parent classes, most specific first
// (Classes without the class itself).
func (n *Node) Parents() []string {
	if len(n.Classes) < 2 {
		return nil
	}
	return n.Classes[1:]
}

// ClassChain returns class and its ancestors, most specific first:
// "a.b.c" -> ["a.b.c", "a.b", "a"]; "" -> nil.
func ClassChain(class string) []string {
	if class == "" {
		return nil
	}
	var out []string
	for c := class; ; {
		out = append(out, c)
		i := strings.LastIndexByte(c, '.')
		if i < 0 {
			return out
		}
		c = c[:i]
	}
}

// Resolve computes a host's class and properties. classOverride is the
// classname= kernel argument ("" = none). Among matching NODECLASS_MAP,
// NODECLASS_REGEXP and NODECLASS_RANGE directives the later one wins; the
// override beats them all. Properties are computed against the final
// class. The error reports an unusable host or class name.
func (c *Config) Resolve(host, classOverride string) (*Node, error) {
	if err := checkHost(host); err != nil {
		return nil, fmt.Errorf("host %q: %w", host, err)
	}
	n := &Node{Host: host}
	// The last matching rule wins: the host's last NODECLASS_MAP, unless a
	// later regexp or range matches.
	best := -1
	if i, ok := c.mapRule[host]; ok {
		best = i
	}
	for j := len(c.otherRules) - 1; j >= 0 && c.otherRules[j] > best; j-- {
		if c.classRules[c.otherRules[j]].match(host) {
			best = c.otherRules[j]
			break
		}
	}
	if best >= 0 {
		r := &c.classRules[best]
		n.Class, n.ClassFrom = r.class, r.pos
	}
	if classOverride != "" {
		if err := checkClass(classOverride); err != nil {
			return nil, fmt.Errorf("classname=%s: %w", classOverride, err)
		}
		n.Class, n.ClassFrom, n.Overridden = classOverride, Pos{}, true
	}
	n.Classes = ClassChain(n.Class)
	seen := map[string]bool{}
	for _, i := range c.propsByHost[host] {
		if p := &c.propRules[i]; !seen[p.name] {
			seen[p.name] = true
			n.Props = append(n.Props, p.name)
		}
	}
	for _, i := range c.otherProps {
		if p := &c.propRules[i]; !seen[p.name] && p.match(n) {
			seen[p.name] = true
			n.Props = append(n.Props, p.name)
		}
	}
	sort.Strings(n.Props)
	return n, nil
}

// RamSizeFor returns the last RAMSIZE that matches n.
func (c *Config) RamSizeFor(n *Node) (RamSize, bool) {
	for i := len(c.RamSizes) - 1; i >= 0; i-- {
		if c.RamSizes[i].Filter.Match(n) {
			return c.RamSizes[i], true
		}
	}
	return RamSize{}, false
}

// RamFor returns the RAMDIR, RAMFILE, LINKDIR and LINKFILE entries that
// match n, in file order.
func (c *Config) RamFor(n *Node) []RamEntry {
	var out []RamEntry
	for _, e := range c.Ram {
		if e.Filter.Match(n) {
			out = append(out, e)
		}
	}
	return out
}

// LinkbacksFor returns the LINKBACKs that match n; for the same path the
// later one wins. The result is in file order of the winners.
func (c *Config) LinkbacksFor(n *Node) []Linkback {
	seen := map[string]bool{}
	var rev []Linkback
	for i := len(c.Linkbacks) - 1; i >= 0; i-- {
		l := c.Linkbacks[i]
		if seen[l.Path] || !l.Filter.Match(n) {
			continue
		}
		seen[l.Path] = true
		rev = append(rev, l)
	}
	out := make([]Linkback, 0, len(rev))
	for i := len(rev) - 1; i >= 0; i-- {
		out = append(out, rev[i])
	}
	return out
}

// ServicesFor returns the SERVICEs that match n, in file order.
func (c *Config) ServicesFor(n *Node) []Service {
	var out []Service
	for _, s := range c.Services {
		if s.Filter.Match(n) {
			out = append(out, s)
		}
	}
	return out
}

// AllLinkPaths returns every LINKFILE/LINKDIR/LINKBACK path regardless of
// filters (the transform needs these), sorted and without duplicates.
// LINKFILE and LINKDIR paths may be globs.
func (c *Config) AllLinkPaths() []string {
	set := map[string]bool{}
	for _, e := range c.Ram {
		if e.Link() {
			set[e.Path] = true
		}
	}
	for _, l := range c.Linkbacks {
		set[l.Path] = true
	}
	out := make([]string, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// ClassesNamed returns every class a NODECLASS_* directive can assign, in
// file order without duplicates (parents are not added).
func (c *Config) ClassesNamed() []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range c.classRules {
		if !seen[r.class] {
			seen[r.class] = true
			out = append(out, r.class)
		}
	}
	return out
}
