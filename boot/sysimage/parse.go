package sysimage

import (
	"fmt"
	"math"
	"net"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Limits of one parse: the configuration with all its INCLUDEs. onesis-init
// parses it at every boot, so whatever is committed must parse in time
// linear in its text, whatever its INCLUDE graph (docs/sysimage.md,
// "Limits").
const (
	// MaxIncludeDepth bounds INCLUDE nesting, a guard beyond loop
	// detection.
	MaxIncludeDepth = 16
	// MaxIncludes bounds the INCLUDE lines acted on in one parse, counted
	// over the whole graph: a file included from many places counts each
	// time, so a few small files that include each other many times over
	// cannot multiply into an exponential parse.
	MaxIncludes = 256
	// MaxBytes bounds the text read in one parse, the main file and every
	// INCLUDE together.
	MaxBytes = 16 << 20
	// MaxLineBytes bounds one line.
	MaxLineBytes = 256 << 10
)

// unsupported directives: parsed, kept in Config.Unsupported and warned
// about once per keyword, with the reason.
var unsupported = map[string]string{
	"DISKMOUNT":   "local disk partitioning and mounts are not managed by git-onesis",
	"DISKSWAP":    "local disk partitioning and swap are not managed by git-onesis",
	"DEPLOYMOUNT": "deploying the image to local disk (mk-diskful) is not part of git-onesis",
	"DEPLOYSWAP":  "deploying the image to local disk (mk-diskful) is not part of git-onesis",
	"BOOTLOADER":  "deploying the image to local disk (mk-diskful) is not part of git-onesis",
	"SYNCDIR":     "deploying the image to local disk (mk-diskful) is not part of git-onesis",
	"EXCLUDESYNC": "deploying the image to local disk (mk-diskful) is not part of git-onesis",
	"CONSOLECMD":  "cluster console wrappers are outside an image tool",
	"POWERCMD":    "cluster power wrappers are outside an image tool",
	"SPECFORMAT":  "cluster power and console wrappers are outside an image tool",
}

// directives lists the keywords that are acted on.
var directives = map[string]bool{
	"DISTRO": true, "INCLUDE": true, "MATCH_DNS_HOSTS": true,
	"NODECLASS_MAP": true, "NODECLASS_REGEXP": true, "NODECLASS_REGEX": true, "NODECLASS_RANGE": true,
	"PROPERTY": true, "SERVICE": true, "RAMSIZE": true,
	"RAMDIR": true, "RAMFILE": true, "LINKDIR": true, "LINKFILE": true, "LINKBACK": true,
	"ETH_PRELOAD": true, "MAC_ADDR": true,
}

// Parse reads the configuration at path (usually "/etc/sysimage.conf")
// through open, with its INCLUDEs. INCLUDE loops are errors.
func Parse(open Opener, path string) (*Config, error) {
	if open == nil {
		return nil, fmt.Errorf("reading %s: no way to open files in the image", path)
	}
	b, err := open(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return ParseBytes(path, b, open)
}

// ParseBytes parses b as the configuration file name. open serves its
// INCLUDEs; with a nil open an INCLUDE is an error.
func ParseBytes(name string, b []byte, open Opener) (*Config, error) {
	p := &parser{
		cfg:      &Config{MacAddrs: map[string]string{}},
		open:     open,
		warnedAt: map[string]int{},
		unsup:    map[string]int{},
	}
	if len(b) > MaxBytes {
		return nil, &Error{Pos: Pos{File: name, Line: 1}, Msg: fmt.Sprintf("the file is %d bytes; a configuration with its INCLUDEs may hold at most %d", len(b), MaxBytes), Err: ErrTooLarge}
	}
	p.bytes = len(b)
	if err := p.file(name, b, nil); err != nil {
		return nil, err
	}
	p.cfg.index()
	return p.cfg, nil
}

type parser struct {
	cfg       *Config
	open      Opener
	warnedAt  map[string]int // unsupported keyword -> index in cfg.Warnings
	unsup     map[string]int // unsupported keyword -> lines seen
	includes  int            // INCLUDE lines acted on so far
	bytes     int            // bytes read so far, every file
	distroPos Pos
	macPos    map[string]Pos
}

func (p *parser) warn(at Pos, format string, a ...any) {
	p.cfg.Warnings = append(p.cfg.Warnings, Warning{Pos: at, Msg: fmt.Sprintf(format, a...)})
}

func errAt(at Pos, format string, a ...any) error {
	return &Error{Pos: at, Msg: fmt.Sprintf(format, a...)}
}

// file parses one file; stack is the INCLUDE chain that led to it.
func (p *parser) file(name string, b []byte, stack []string) error {
	stack = append(stack, name)
	p.cfg.Files = append(p.cfg.Files, name)
	for i, line := range strings.Split(string(b), "\n") {
		at := Pos{File: name, Line: i + 1}
		if len(line) > MaxLineBytes {
			return &Error{Pos: at, Msg: fmt.Sprintf("the line is %d bytes long; a line may hold at most %d", len(line), MaxLineBytes), Err: ErrTooLarge}
		}
		if c := strings.IndexByte(line, '#'); c >= 0 {
			line = line[:c]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		kw, args := f[0], f[1:]
		if k, rest, ok := strings.Cut(kw, ":"); ok {
			kw = k
			if rest != "" {
				args = append([]string{rest}, args...)
			}
		} else if len(args) > 0 && strings.HasPrefix(args[0], ":") {
			// "DISTRO : x" or "DISTRO :x"
			if args[0] == ":" {
				args = args[1:]
			} else {
				args = append([]string{args[0][1:]}, args[1:]...)
			}
		}
		if err := p.directive(at, kw, args, stack); err != nil {
			return err
		}
	}
	return nil
}

func (p *parser) directive(at Pos, kw string, args []string, stack []string) error {
	if why, ok := unsupported[kw]; ok {
		p.cfg.Unsupported = append(p.cfg.Unsupported, Directive{Keyword: kw, Args: args, Pos: at})
		p.unsup[kw]++
		if i, ok := p.warnedAt[kw]; ok {
			n := p.unsup[kw]
			p.cfg.Warnings[i].Msg = fmt.Sprintf("%s is not supported by git-onesis and is ignored (%d lines; this is the first): %s", kw, n, why)
			return nil
		}
		p.warnedAt[kw] = len(p.cfg.Warnings)
		p.warn(at, "%s is not supported by git-onesis and is ignored: %s", kw, why)
		return nil
	}
	if !directives[kw] {
		up := strings.ToUpper(kw)
		if directives[up] || unsupported[up] != "" {
			return &Error{Pos: at, Msg: fmt.Sprintf("%q: directives are written in upper case; expected %s", kw, up), Err: ErrUnknownDirective}
		}
		return &Error{Pos: at, Msg: fmt.Sprintf("%q; expected a sysimage.conf directive such as NODECLASS_RANGE, PROPERTY, RAMDIR or LINKBACK (see docs/sysimage.md)", kw), Err: ErrUnknownDirective}
	}
	switch kw {
	case "DISTRO":
		return p.distro(at, args)
	case "INCLUDE":
		return p.include(at, args, stack)
	case "MATCH_DNS_HOSTS":
		if len(args) != 0 {
			return errAt(at, "MATCH_DNS_HOSTS takes no arguments, got %q", strings.Join(args, " "))
		}
		p.cfg.MatchDNSHosts = true
		p.warn(at, "MATCH_DNS_HOSTS: git-onesis does not look hosts up in DNS; ranges and regexps are matched against hostnames exactly as given")
		return nil
	case "NODECLASS_MAP", "NODECLASS_REGEXP", "NODECLASS_REGEX", "NODECLASS_RANGE":
		return p.nodeclass(at, kw, args)
	case "PROPERTY":
		return p.property(at, args)
	case "SERVICE":
		return p.service(at, args)
	case "RAMSIZE":
		return p.ramsize(at, args)
	case "RAMDIR", "RAMFILE", "LINKDIR", "LINKFILE":
		return p.ram(at, kw, args)
	case "LINKBACK":
		return p.linkback(at, args)
	case "ETH_PRELOAD":
		return p.ethPreload(at, args)
	case "MAC_ADDR":
		return p.macAddr(at, args)
	}
	return nil
}

// Flag kinds.
const (
	fBool    = iota // -d
	fList           // -c a,b (repeatable, lists join)
	fValue          // -m 0755 (once)
	fMulti          // -r RANGE, -re REGEXP (repeatable, no comma split)
	fOptList        // -p on RAM*/LINK*: a list, or bare (old "protect")
)

type flagSpec map[string]int

var filterFlags = flagSpec{"-c": fList, "-n": fList, "-p": fList}

func (s flagSpec) with(more flagSpec) flagSpec {
	out := flagSpec{}
	for k, v := range s {
		out[k] = v
	}
	for k, v := range more {
		out[k] = v
	}
	return out
}

func (s flagSpec) names() string {
	var n []string
	for k := range s {
		n = append(n, k)
	}
	sort.Strings(n)
	return strings.Join(n, " ")
}

type flags struct {
	pos    []string
	bools  map[string]bool
	lists  map[string][]string
	values map[string]string
	bareP  bool
}

// parseFlags splits args into positionals and the flags spec allows.
func parseFlags(at Pos, kw string, args []string, spec flagSpec) (*flags, error) {
	fl := &flags{bools: map[string]bool{}, lists: map[string][]string{}, values: map[string]string{}}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			fl.pos = append(fl.pos, a)
			continue
		}
		kind, ok := spec[a]
		if !ok {
			if len(spec) == 0 {
				return nil, errAt(at, "%s takes no options, got %q", kw, a)
			}
			return nil, errAt(at, "%s does not take option %q; expected one of: %s", kw, a, spec.names())
		}
		if kind == fBool {
			fl.bools[a] = true
			continue
		}
		hasValue := i+1 < len(args) && !strings.HasPrefix(args[i+1], "-")
		if !hasValue {
			if kind == fOptList {
				fl.bareP = true
				continue
			}
			return nil, errAt(at, "%s option %s needs a value after it; expected %s", kw, a, flagWants(a))
		}
		i++
		v := args[i]
		switch kind {
		case fValue:
			if _, dup := fl.values[a]; dup {
				return nil, errAt(at, "%s option %s is given twice; give it once", kw, a)
			}
			fl.values[a] = v
		case fMulti:
			fl.lists[a] = append(fl.lists[a], v)
		default:
			var items []string
			for _, it := range strings.Split(v, ",") {
				if it != "" {
					items = append(items, it)
				}
			}
			if len(items) == 0 {
				return nil, errAt(at, "%s option %s %q is an empty list; expected %s", kw, a, v, flagWants(a))
			}
			fl.lists[a] = append(fl.lists[a], items...)
		}
	}
	return fl, nil
}

func flagWants(f string) string {
	switch f {
	case "-c":
		return "a comma-separated list of classes"
	case "-n":
		return "a comma-separated list of hostnames"
	case "-p":
		return "a comma-separated list of properties"
	case "-r":
		return "a host range such as node[1-5,7]"
	case "-re":
		return "a regular expression"
	case "-m":
		return "an octal mode such as 0755"
	case "-u":
		return "a user name or number"
	case "-g":
		return "a group name or number"
	}
	return "a value"
}

// filter builds and checks a Filter from -c/-n/-p.
func (fl *flags) filter(at Pos, kw string) (Filter, error) {
	f := Filter{Classes: fl.lists["-c"], Nodes: fl.lists["-n"], Props: fl.lists["-p"]}
	for _, c := range f.Classes {
		if err := checkClass(c); err != nil {
			return f, errAt(at, "%s -c %q: %v", kw, c, err)
		}
	}
	for _, h := range f.Nodes {
		if err := checkHost(h); err != nil {
			return f, errAt(at, "%s -n %q: %v", kw, h, err)
		}
	}
	for _, pr := range f.Props {
		if err := checkName(pr); err != nil {
			return f, errAt(at, "%s -p %q: %v", kw, pr, err)
		}
	}
	return f, nil
}

// positionals checks the number of positional arguments.
func (fl *flags) positionals(at Pos, kw string, n int, want string) error {
	if len(fl.pos) < n {
		return errAt(at, "%s needs %s", kw, want)
	}
	if len(fl.pos) > n {
		return errAt(at, "%s: unexpected %q; expected %s followed only by options", kw, strings.Join(fl.pos[n:], " "), want)
	}
	return nil
}

func (p *parser) distro(at Pos, args []string) error {
	fl, err := parseFlags(at, "DISTRO", args, flagSpec{"-sp": fBool, "-kn": fBool})
	if err != nil {
		return err
	}
	if len(fl.pos) == 0 || len(fl.pos) > 2 {
		return errAt(at, "DISTRO needs a distribution name and an optional version, e.g. DISTRO RedHat-EL 6.2")
	}
	if p.cfg.Distro != "" {
		p.warn(at, "DISTRO given again; this one replaces the one at %s", p.distroPos)
	}
	p.distroPos = at
	p.cfg.Distro, p.cfg.DistroVersion = fl.pos[0], ""
	if len(fl.pos) == 2 {
		p.cfg.DistroVersion = fl.pos[1]
	}
	p.cfg.DistroSkipPatch, p.cfg.DistroKeepNet = fl.bools["-sp"], fl.bools["-kn"]
	return nil
}

func (p *parser) include(at Pos, args []string, stack []string) error {
	if len(args) != 1 {
		return errAt(at, "INCLUDE needs exactly one absolute path inside the image, e.g. INCLUDE /etc/sysimage.conf.d/disks")
	}
	name := args[0]
	if err := checkPath(name); err != nil {
		return errAt(at, "INCLUDE %q: %v", name, err)
	}
	if HasGlob(name) {
		return errAt(at, "INCLUDE %q: globs are not expanded in INCLUDE; name one file", name)
	}
	for _, s := range stack {
		if s == name {
			return &Error{Pos: at, Msg: fmt.Sprintf("INCLUDE %s: the file is already being read (%s)", name, strings.Join(append(stack, name), " -> ")), Err: ErrIncludeLoop}
		}
	}
	if len(stack) >= MaxIncludeDepth {
		return errAt(at, "INCLUDE %s: more than %d nested INCLUDEs", name, MaxIncludeDepth)
	}
	if p.includes++; p.includes > MaxIncludes {
		return &Error{Pos: at, Msg: fmt.Sprintf("INCLUDE %s: more than %d INCLUDEs in one configuration, counting each time a file is included (files that include each other many times over multiply)", name, MaxIncludes), Err: ErrTooLarge}
	}
	if p.open == nil {
		return errAt(at, "INCLUDE %s: no image to read it from", name)
	}
	b, err := p.open(name)
	if err != nil {
		return &Error{Pos: at, Msg: fmt.Sprintf("INCLUDE %s: cannot read the file", name), Err: err}
	}
	if p.bytes += len(b); p.bytes > MaxBytes {
		return &Error{Pos: at, Msg: fmt.Sprintf("INCLUDE %s: the configuration with its INCLUDEs is more than %d bytes", name, MaxBytes), Err: ErrTooLarge}
	}
	return p.file(name, b, stack)
}

func (p *parser) nodeclass(at Pos, kw string, args []string) error {
	what := map[string]string{
		"NODECLASS_MAP":    "a hostname and a class, e.g. NODECLASS_MAP node1 cluster.compute",
		"NODECLASS_REGEXP": "a regular expression and a class, e.g. NODECLASS_REGEXP ^n\\d+$ cluster.compute",
		"NODECLASS_REGEX":  "a regular expression and a class, e.g. NODECLASS_REGEXP ^n\\d+$ cluster.compute",
		"NODECLASS_RANGE":  "a host range and a class, e.g. NODECLASS_RANGE node[1-5] cluster.compute",
	}[kw]
	if len(args) != 2 {
		return errAt(at, "%s needs exactly %s", kw, what)
	}
	r := classRule{kind: kw, class: args[1], pos: at}
	if err := checkClass(r.class); err != nil {
		return errAt(at, "%s class %q: %v", kw, r.class, err)
	}
	switch kw {
	case "NODECLASS_MAP":
		r.host = args[0]
		if err := checkHost(r.host); err != nil {
			return errAt(at, "%s host %q: %v", kw, r.host, err)
		}
	case "NODECLASS_REGEX", "NODECLASS_REGEXP":
		if kw == "NODECLASS_REGEX" {
			p.warn(at, "NODECLASS_REGEX is a misspelling kept for old configs; write NODECLASS_REGEXP")
			r.kind = "NODECLASS_REGEXP"
		}
		re, err := compileRegexp(at, kw, args[0])
		if err != nil {
			return err
		}
		r.re = re
	case "NODECLASS_RANGE":
		rng, err := ParseRange(args[0])
		if err != nil {
			return &Error{Pos: at, Msg: kw + ": bad host range", Err: err}
		}
		r.rng = rng
	}
	p.cfg.classRules = append(p.cfg.classRules, r)
	return nil
}

// compileRegexp compiles a host regexp (Go RE2 syntax, unanchored).
func compileRegexp(at Pos, kw, expr string) (*regexp.Regexp, error) {
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, &Error{Pos: at, Msg: fmt.Sprintf("%s %q: not a valid regular expression (git-onesis uses Go RE2 syntax: no backreferences, lookahead or lookbehind)", kw, expr), Err: err}
	}
	return re, nil
}

func (p *parser) property(at Pos, args []string) error {
	fl, err := parseFlags(at, "PROPERTY", args, flagSpec{"-c": fList, "-n": fList, "-r": fMulti, "-re": fMulti})
	if err != nil {
		return err
	}
	if err := fl.positionals(at, "PROPERTY", 1, "a property name, e.g. PROPERTY gpu -r node[1-4]"); err != nil {
		return err
	}
	r := propRule{name: fl.pos[0], classes: fl.lists["-c"], nodes: fl.lists["-n"], pos: at}
	if err := checkName(r.name); err != nil {
		return errAt(at, "PROPERTY %q: %v", r.name, err)
	}
	if _, err := fl.filter(at, "PROPERTY"); err != nil { // validates -c and -n
		return err
	}
	for _, s := range fl.lists["-r"] {
		rng, err := ParseRange(s)
		if err != nil {
			return &Error{Pos: at, Msg: "PROPERTY " + r.name + " -r: bad host range", Err: err}
		}
		r.ranges = append(r.ranges, rng)
	}
	for _, s := range fl.lists["-re"] {
		re, err := compileRegexp(at, "PROPERTY "+r.name+" -re", s)
		if err != nil {
			return err
		}
		r.res = append(r.res, re)
	}
	if len(r.classes) == 0 && len(r.nodes) == 0 && len(r.ranges) == 0 && len(r.res) == 0 {
		p.warn(at, "PROPERTY %s has no -c, -n, -r or -re, so every node gets it", r.name)
	}
	p.cfg.propRules = append(p.cfg.propRules, r)
	return nil
}

func (p *parser) service(at Pos, args []string) error {
	fl, err := parseFlags(at, "SERVICE", args, filterFlags)
	if err != nil {
		return err
	}
	if err := fl.positionals(at, "SERVICE", 1, "the name of a script in /etc/init.d, e.g. SERVICE smartd -c cluster.compute"); err != nil {
		return err
	}
	name := fl.pos[0]
	if err := checkName(name); err != nil {
		return errAt(at, "SERVICE %q: %v", name, err)
	}
	f, err := fl.filter(at, "SERVICE")
	if err != nil {
		return err
	}
	p.cfg.Services = append(p.cfg.Services, Service{Name: name, Filter: f, Pos: at})
	return nil
}

func (p *parser) ramsize(at Pos, args []string) error {
	fl, err := parseFlags(at, "RAMSIZE", args, filterFlags)
	if err != nil {
		return err
	}
	if err := fl.positionals(at, "RAMSIZE", 1, "a size such as 500m (k, m or g)"); err != nil {
		return err
	}
	n, err := ParseSize(fl.pos[0])
	if err != nil {
		return errAt(at, "RAMSIZE %q: %v", fl.pos[0], err)
	}
	f, err := fl.filter(at, "RAMSIZE")
	if err != nil {
		return err
	}
	p.cfg.RamSizes = append(p.cfg.RamSizes, RamSize{Size: fl.pos[0], Bytes: n, Filter: f, Pos: at})
	return nil
}

// ParseSize parses a RAMSIZE value: a decimal number of bytes with an
// optional k, m or g suffix (either case, powers of 1024).
func ParseSize(s string) (int64, error) {
	num, mul := s, int64(1)
	if s != "" {
		switch s[len(s)-1] {
		case 'k', 'K':
			mul = 1 << 10
		case 'm', 'M':
			mul = 1 << 20
		case 'g', 'G':
			mul = 1 << 30
		}
		if mul != 1 {
			num = s[:len(s)-1]
		}
	}
	if num == "" || strings.TrimLeft(num, "0123456789") != "" {
		return 0, fmt.Errorf("expected a whole number with an optional k, m or g suffix, e.g. 500m")
	}
	v, err := strconv.ParseInt(num, 10, 64)
	if err != nil || v > math.MaxInt64/mul {
		return 0, fmt.Errorf("size is too large")
	}
	return v * mul, nil
}

var ramFlags = flagSpec{"-d": fBool, "-cl": fBool, "-c": fList, "-n": fList, "-p": fOptList, "-m": fValue, "-u": fValue, "-g": fValue}

func (p *parser) ram(at Pos, kw string, args []string) error {
	fl, err := parseFlags(at, kw, args, ramFlags)
	if err != nil {
		return err
	}
	if err := fl.positionals(at, kw, 1, "an absolute path in the image, e.g. "+kw+" /var/run"); err != nil {
		return err
	}
	e := RamEntry{Kind: kw, Path: fl.pos[0], Copy: fl.bools["-d"], Clean: fl.bools["-cl"], Pos: at}
	if err := checkGlobPath(e.Path); err != nil {
		return errAt(at, "%s %q: %v", kw, e.Path, err)
	}
	if e.Link() && IsNotLinkable(e.Path) {
		return errAt(at, "%s %s: this path can never be a link (the node needs it before /ram exists); use RAMFILE or leave it in the image", kw, e.Path)
	}
	if fl.bareP {
		if e.Clean {
			return errAt(at, "%s %s: -cl (cleanable) contradicts the bare -p (the oneSIS 2.0rc10 'protect' flag); drop one", kw, e.Path)
		}
		p.warn(at, "%s %s: -p without a property list is the oneSIS 2.0rc10 'protect' flag; since 2.0.5 -p takes properties and entries are protected unless -cl is given. Treated as protected; remove the bare -p", kw, e.Path)
	}
	if m, ok := fl.values["-m"]; ok {
		v, err := strconv.ParseUint(m, 8, 32)
		if err != nil || v > 0o7777 {
			return errAt(at, "%s %s -m %q: expected an octal mode from 0 to 7777, e.g. 0755", kw, e.Path, m)
		}
		mode := uint32(v)
		e.Mode = &mode
	}
	e.User, e.Group = fl.values["-u"], fl.values["-g"]
	for _, o := range []struct{ flag, v string }{{"-u", e.User}, {"-g", e.Group}} {
		if strings.ContainsAny(o.v, ":/") {
			return errAt(at, "%s %s %s %q: expected %s", kw, e.Path, o.flag, o.v, flagWants(o.flag))
		}
	}
	if e.Filter, err = fl.filter(at, kw); err != nil {
		return err
	}
	p.cfg.Ram = append(p.cfg.Ram, e)
	return nil
}

func (p *parser) linkback(at Pos, args []string) error {
	fl, err := parseFlags(at, "LINKBACK", args, filterFlags.with(flagSpec{"-h": fBool, "-f": fBool}))
	if err != nil {
		return err
	}
	if err := fl.positionals(at, "LINKBACK", 2, "a path and a target (CLASS, NODE, PROPERTY or a path), e.g. LINKBACK /etc/fstab CLASS"); err != nil {
		return err
	}
	l := Linkback{Path: fl.pos[0], Target: fl.pos[1], Hidden: fl.bools["-h"], Force: fl.bools["-f"], Pos: at}
	if err := checkPath(l.Path); err != nil {
		return errAt(at, "LINKBACK %q: %v", l.Path, err)
	}
	if HasGlob(l.Path) {
		return errAt(at, "LINKBACK %q: globs are not allowed in LINKBACK paths; write one LINKBACK per path", l.Path)
	}
	if IsNotLinkable(l.Path) {
		return errAt(at, "LINKBACK %s: this path can never be a link (the node needs it before /ram exists)", l.Path)
	}
	switch l.Target {
	case TargetClass, TargetNode:
	case TargetProperty:
		if l.Force {
			return errAt(at, "LINKBACK %s PROPERTY: -f is not allowed with PROPERTY (there is no single target to force); drop -f", l.Path)
		}
	default:
		if l.Hidden {
			return errAt(at, "LINKBACK %s %s: -h is only allowed with CLASS, NODE or PROPERTY targets", l.Path, l.Target)
		}
		if strings.ContainsRune(l.Target, 0) {
			return errAt(at, "LINKBACK %s: the target contains a NUL byte", l.Path)
		}
	}
	if l.Filter, err = fl.filter(at, "LINKBACK"); err != nil {
		return err
	}
	p.cfg.Linkbacks = append(p.cfg.Linkbacks, l)
	return nil
}

func (p *parser) ethPreload(at Pos, args []string) error {
	var drv []string
	for _, a := range args {
		for _, d := range strings.Split(a, ",") {
			if d == "" {
				continue
			}
			if strings.HasPrefix(d, "-") || strings.ContainsRune(d, '/') {
				return errAt(at, "ETH_PRELOAD %q: expected kernel module names separated by commas, e.g. ETH_PRELOAD e1000e,igb", d)
			}
			drv = append(drv, d)
		}
	}
	if len(drv) == 0 {
		return errAt(at, "ETH_PRELOAD needs kernel module names separated by commas, e.g. ETH_PRELOAD e1000e,igb")
	}
	p.cfg.EthPreload = append(p.cfg.EthPreload, drv...)
	return nil
}

func (p *parser) macAddr(at Pos, args []string) error {
	if len(args) != 2 {
		return errAt(at, "MAC_ADDR needs a hostname and a MAC address, e.g. MAC_ADDR node1 00:11:22:33:44:55")
	}
	host := args[0]
	if err := checkHost(host); err != nil {
		return errAt(at, "MAC_ADDR host %q: %v", host, err)
	}
	hw, err := net.ParseMAC(args[1])
	if err != nil {
		return errAt(at, "MAC_ADDR %s %q: expected a MAC address such as 00:11:22:33:44:55", host, args[1])
	}
	mac := strings.ToLower(hw.String())
	if old, ok := p.cfg.MacAddrs[mac]; ok && old != host {
		p.warn(at, "MAC_ADDR %s is already given to %s at %s; %s replaces it", mac, old, p.macPos[mac], host)
	}
	if p.macPos == nil {
		p.macPos = map[string]Pos{}
	}
	p.macPos[mac] = at
	p.cfg.MacAddrs[mac] = host
	return nil
}

// checkHost checks a hostname is usable as a NODE variant suffix.
func checkHost(h string) error {
	switch {
	case h == "":
		return fmt.Errorf("expected a hostname, got an empty one")
	case h == "." || h == "..":
		return fmt.Errorf("expected a hostname")
	case strings.ContainsAny(h, "/ \t\n\r\x00"):
		return fmt.Errorf("a hostname cannot contain '/', whitespace or NUL")
	case strings.HasPrefix(h, "-"):
		return fmt.Errorf("a hostname cannot start with '-'")
	}
	return nil
}

// checkClass checks a class name: dot-separated, non-empty parts, usable
// as a file-name suffix.
func checkClass(c string) error {
	if c == "" {
		return fmt.Errorf("expected a class name, got an empty one")
	}
	if strings.ContainsAny(c, "/ \t\n\r\x00,") || strings.HasPrefix(c, "-") {
		return fmt.Errorf("a class name cannot contain '/', ',', whitespace or NUL, or start with '-'")
	}
	for _, part := range strings.Split(c, ".") {
		if part == "" {
			return fmt.Errorf("expected dot-separated names such as cluster.compute (no empty part, leading or trailing dot)")
		}
	}
	return nil
}

// checkName checks a property or service name.
func checkName(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("expected a name, got an empty one")
	case s == "." || s == "..":
		return fmt.Errorf("expected a name")
	case strings.ContainsAny(s, "/ \t\n\r\x00,"), strings.HasPrefix(s, "-"):
		return fmt.Errorf("a name cannot contain '/', ',', whitespace or NUL, or start with '-'")
	}
	return nil
}

// checkPath checks an absolute, clean image path that is not the root.
func checkPath(p string) error {
	switch {
	case !strings.HasPrefix(p, "/"):
		return fmt.Errorf("expected an absolute path inside the image, starting with '/'")
	case p == "/":
		return fmt.Errorf("expected a path below the image root, not '/' itself")
	case strings.ContainsRune(p, 0):
		return fmt.Errorf("the path contains a NUL byte")
	case path.Clean(p) != p:
		return fmt.Errorf("expected a clean path (no '.', '..', '//' or trailing '/'); write %s", path.Clean(p))
	}
	return nil
}

// checkGlobPath checks a RAM*/LINK* path, which may be a glob.
func checkGlobPath(p string) error {
	if err := checkPath(p); err != nil {
		return err
	}
	if !HasGlob(p) {
		return nil
	}
	alts, err := ExpandBraces(p)
	if err != nil {
		return err
	}
	for _, a := range alts {
		if _, err := path.Match(a, ""); err != nil {
			return fmt.Errorf("bad glob pattern: %w", err)
		}
		if path.Clean(a) != a || strings.Contains(a, "/../") || strings.HasSuffix(a, "/..") {
			return fmt.Errorf("the alternative %q is not a clean absolute path", a)
		}
	}
	return nil
}
