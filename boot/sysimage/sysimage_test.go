package sysimage

import (
	"errors"
	"io/fs"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// files is an Opener over an in-memory image.
type files map[string]string

func (m files) open(p string) ([]byte, error) {
	s, ok := m[p]
	if !ok {
		return nil, fs.ErrNotExist
	}
	return []byte(s), nil
}

func parse(t *testing.T, conf string) *Config {
	t.Helper()
	c, err := ParseBytes("/etc/sysimage.conf", []byte(conf), nil)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return c
}

func resolve(t *testing.T, c *Config, host, override string) *Node {
	t.Helper()
	n, err := c.Resolve(host, override)
	if err != nil {
		t.Fatalf("Resolve(%q, %q): %v", host, override, err)
	}
	return n
}

// sans is the oneSIS example config the SANS slides show, with the
// slides' NODECLASS_REGEX spelling.
const sans = `# oneSIS example configuration
DISTRO: RedHat-EL 6
NODECLASS_REGEX: node\d+ cluster.compute
NODECLASS_RANGE: node[1-5] cluster.compute
NODECLASS_MAP: web1 cluster.web
RAMSIZE: 500m
LINKBACK: /etc/fstab CLASS
LINKDIR: /var/log
RAMDIR: /var/run -d
`

func TestSANSSample(t *testing.T) {
	c := parse(t, sans)
	n := resolve(t, c, "node1", "")
	if n.Class != "cluster.compute" || !reflect.DeepEqual(n.Classes, []string{"cluster.compute", "cluster"}) {
		t.Errorf("node1 = %+v, want class cluster.compute with parent cluster", n)
	}
	if n.ClassFrom != (Pos{"/etc/sysimage.conf", 4}) {
		t.Errorf("node1 class from %v, want the RANGE line 4 (the later directive)", n.ClassFrom)
	}
	if n := resolve(t, c, "node42", ""); n.Class != "cluster.compute" || n.ClassFrom.Line != 3 {
		t.Errorf("node42 = %+v, want cluster.compute from the regexp on line 3", n)
	}
	if n := resolve(t, c, "web1", ""); n.Class != "cluster.web" {
		t.Errorf("web1 = %+v, want cluster.web", n)
	}
	if n := resolve(t, c, "login", ""); n.Class != "" || n.Classes != nil {
		t.Errorf("login = %+v, want no class", n)
	}
	if c.Distro != "RedHat-EL" || c.DistroVersion != "6" {
		t.Errorf("DISTRO = %q %q", c.Distro, c.DistroVersion)
	}
	if rs, ok := c.RamSizeFor(n); !ok || rs.Bytes != 500<<20 || rs.Size != "500m" {
		t.Errorf("RamSizeFor = %+v %v", rs, ok)
	}
	if got := c.AllLinkPaths(); !reflect.DeepEqual(got, []string{"/etc/fstab", "/var/log"}) {
		t.Errorf("AllLinkPaths = %q", got)
	}
	if len(c.Warnings) != 1 || c.Warnings[0].Pos.Line != 3 || !strings.Contains(c.Warnings[0].Msg, "NODECLASS_REGEXP") {
		t.Errorf("warnings = %v, want one deprecation warning for NODECLASS_REGEX on line 3", c.Warnings)
	}
}

// rjh follows the production configs of the RJH fork of oneSIS.
const rjh = `DISTRO: RedHat-EL-6.2-rjh
NODECLASS_REGEXP v\d+ vu.compute.internal
NODECLASS_RANGE: v[1433-1484] vu.compute.external
NODECLASS_REGEXP r\d+(|gige) r.compute
NODECLASS_RANGE hamster[1-2]gige xe.compute.gige
NODECLASS_MAP: xe1 xe.compute
NODECLASS_MAP d43 dcc.login
PROPERTY: gpu -r x[1-2,6,11-16] -n d43
PROPERTY: fc -r v[1409-1440,1465-1488]
PROPERTY: ib -c vu,xe
PROPERTY: big -re ^r1\d\d$
SERVICE smartd -c vu.compute.external,xe.compute # -p fc
SERVICE gpud -p gpu
RAMSIZE: 20m
RAMSIZE: 10m -c vu.compute.internal
LINKDIR /var/log
LINKFILE /etc/ssh/ssh_host_*key* -d
RAMDIR /var/lib/nfs -d -cl -c vu,xe,dcc,r -m 0755 -u rpcuser -g 29
LINKBACK /etc/fstab CLASS
LINKBACK /etc/sysconfig/network-scripts/ifcfg-ib0 NODE -h
LINKBACK /etc/fstab PROPERTY -p fc # want properties to trump classes
`

func TestResolve(t *testing.T) {
	c := parse(t, rjh)
	tests := []struct {
		host, override string
		class          string
		props          []string
	}{
		{"v1000", "", "vu.compute.internal", []string{"ib"}},
		{"v1433", "", "vu.compute.external", []string{"fc", "ib"}}, // RANGE is later than the regexp
		{"v1485", "", "vu.compute.internal", []string{"fc", "ib"}},
		{"r12", "", "r.compute", nil},
		{"r12gige", "", "r.compute", nil},
		{"r123", "", "r.compute", []string{"big"}},
		{"hamster1gige", "", "xe.compute.gige", []string{"ib"}},
		{"xe1", "", "xe.compute", []string{"ib"}},
		{"x6", "", "", []string{"gpu"}},
		{"x7", "", "", nil},
		{"d43", "", "dcc.login", []string{"gpu"}},
		// Unanchored regexps: v\d+ matches inside "dev12" and "v12x".
		{"dev12", "", "vu.compute.internal", []string{"ib"}},
		// classname= overrides every directive and feeds -c matching.
		{"v1000", "xe.io", "xe.io", []string{"ib"}},
		{"x6", "vu", "vu", []string{"gpu", "ib"}},
		{"d43", "other", "other", []string{"gpu"}},
	}
	for _, tt := range tests {
		n := resolve(t, c, tt.host, tt.override)
		if n.Class != tt.class || !reflect.DeepEqual(n.Props, tt.props) {
			t.Errorf("Resolve(%q, %q) = class %q props %q, want %q %q", tt.host, tt.override, n.Class, n.Props, tt.class, tt.props)
		}
		if n.Overridden != (tt.override != "") {
			t.Errorf("Resolve(%q, %q).Overridden = %v", tt.host, tt.override, n.Overridden)
		}
	}
}

func TestResolveBadNames(t *testing.T) {
	c := parse(t, rjh)
	for _, tt := range []struct{ host, override string }{
		{"", ""}, {"a/b", ""}, {"..", ""}, {"a b", ""},
		{"n1", "a..b"}, {"n1", ".a"}, {"n1", "a/b"}, {"n1", "a."},
	} {
		if _, err := c.Resolve(tt.host, tt.override); err == nil {
			t.Errorf("Resolve(%q, %q) accepted", tt.host, tt.override)
		}
	}
}

func TestPrecedenceLaterWins(t *testing.T) {
	c := parse(t, `NODECLASS_RANGE node[1-10] a
NODECLASS_REGEXP ^node1 b
NODECLASS_MAP node10 c
NODECLASS_RANGE node[1-3] d
`)
	for host, want := range map[string]string{
		"node1": "d", "node2": "d", "node4": "a", "node10": "c", "node12": "b",
	} {
		if n := resolve(t, c, host, ""); n.Class != want {
			t.Errorf("%s = %q, want %q", host, n.Class, want)
		}
	}
}

func TestClassChain(t *testing.T) {
	for in, want := range map[string][]string{
		"":                     nil,
		"cluster":              {"cluster"},
		"cluster.compute.gige": {"cluster.compute.gige", "cluster.compute", "cluster"},
	} {
		if got := ClassChain(in); !reflect.DeepEqual(got, want) {
			t.Errorf("ClassChain(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFilterMatch(t *testing.T) {
	n := &Node{Host: "v1", Class: "vu.compute.gige", Classes: ClassChain("vu.compute.gige"), Props: []string{"fc", "ib"}}
	none := &Node{Host: "x1"}
	tests := []struct {
		f    Filter
		n    *Node
		want bool
	}{
		{Filter{}, n, true},
		{Filter{}, none, true},
		{Filter{Classes: []string{"vu"}}, n, true}, // -c parent matches subclasses
		{Filter{Classes: []string{"vu.compute"}}, n, true},
		{Filter{Classes: []string{"vu.compute.gige"}}, n, true},
		{Filter{Classes: []string{"vu.compute.gige.x"}}, n, false}, // not a child's parent
		{Filter{Classes: []string{"v"}}, n, false},                 // a prefix of the name is not a parent
		{Filter{Classes: []string{"compute"}}, n, false},           // only from the top
		{Filter{Classes: []string{"vu"}}, none, false},
		{Filter{Nodes: []string{"v1"}}, n, true},
		{Filter{Nodes: []string{"V1"}}, n, false},
		{Filter{Props: []string{"ib"}}, n, true},
		{Filter{Props: []string{"gpu"}}, n, false},
		{Filter{Classes: []string{"xe"}, Nodes: []string{"x9"}, Props: []string{"fc"}}, n, true}, // ORed
		{Filter{Classes: []string{"xe"}}, nil, false},
	}
	for i, tt := range tests {
		if got := tt.f.Match(tt.n); got != tt.want {
			t.Errorf("%d: %+v.Match(%+v) = %v, want %v", i, tt.f, tt.n, got, tt.want)
		}
	}
}

func TestSelection(t *testing.T) {
	c := parse(t, rjh)
	internal := resolve(t, c, "v1000", "")
	external := resolve(t, c, "v1433", "")
	other := resolve(t, c, "x7", "")

	if rs, _ := c.RamSizeFor(internal); rs.Size != "10m" || rs.Bytes != 10<<20 {
		t.Errorf("internal RAMSIZE = %+v, want the later 10m", rs)
	}
	if rs, _ := c.RamSizeFor(external); rs.Size != "20m" {
		t.Errorf("external RAMSIZE = %+v, want 20m", rs)
	}

	var names []string
	for _, s := range c.ServicesFor(external) {
		names = append(names, s.Name)
	}
	if !reflect.DeepEqual(names, []string{"smartd"}) {
		t.Errorf("external services = %q (the '# -p fc' is a comment)", names)
	}
	if s := c.ServicesFor(resolve(t, c, "x6", "")); len(s) != 1 || s[0].Name != "gpud" {
		t.Errorf("x6 services = %+v, want gpud via -p gpu", s)
	}

	ram := c.RamFor(internal)
	var kinds []string
	for _, e := range ram {
		kinds = append(kinds, e.Kind+" "+e.Path)
	}
	if want := []string{"LINKDIR /var/log", "LINKFILE /etc/ssh/ssh_host_*key*", "RAMDIR /var/lib/nfs"}; !reflect.DeepEqual(kinds, want) {
		t.Errorf("RamFor(internal) = %q, want %q", kinds, want)
	}
	nfs := ram[2]
	if !nfs.Copy || !nfs.Clean || nfs.Mode == nil || *nfs.Mode != 0o755 || nfs.User != "rpcuser" || nfs.Group != "29" || nfs.Pos.Line != 18 {
		t.Errorf("RAMDIR /var/lib/nfs = %+v", nfs)
	}
	if len(c.RamFor(other)) != 2 {
		t.Errorf("x7 (no class) RamFor = %+v, want the two unfiltered entries", c.RamFor(other))
	}

	lb := c.LinkbacksFor(external) // has fc: PROPERTY (later) trumps CLASS
	if len(lb) != 2 || lb[0].Path != "/etc/sysconfig/network-scripts/ifcfg-ib0" || !lb[0].Hidden ||
		lb[1].Path != "/etc/fstab" || lb[1].Target != TargetProperty || lb[1].Pos.Line != 21 {
		t.Errorf("LinkbacksFor(external) = %+v", lb)
	}
	lb = c.LinkbacksFor(resolve(t, c, "r12", "")) // no fc: CLASS
	if len(lb) != 2 || lb[0].Path != "/etc/fstab" || lb[0].Target != TargetClass {
		t.Errorf("LinkbacksFor(r12) = %+v", lb)
	}

	want := []string{"/etc/fstab", "/etc/ssh/ssh_host_*key*", "/etc/sysconfig/network-scripts/ifcfg-ib0", "/var/log"}
	if got := c.AllLinkPaths(); !reflect.DeepEqual(got, want) {
		t.Errorf("AllLinkPaths = %q, want %q", got, want)
	}
	if got := c.ClassesNamed(); len(got) != 6 {
		t.Errorf("ClassesNamed = %q", got)
	}
}

func TestSyntax(t *testing.T) {
	c := parse(t, "DISTRO:RedHat 6 -sp -kn\r\n"+
		"  RAMSIZE :  1g   # trailing comment\n"+
		"\t\n#RAMDIR /commented\n"+
		"ETH_PRELOAD e1000e,igb bnx2\n"+
		"ETH_PRELOAD: mlx4_en\n"+
		"MAC_ADDR node1 00:11:22:AA:BB:CC\n"+
		"MAC_ADDR: node2 00-11-22-aa-bb-cd\n"+
		"RAMFILE /etc/{hosts,resolv.conf}\n"+
		"RAMFILE: /etc/motd -c a -c b -p x,y,\n")
	if c.Distro != "RedHat" || c.DistroVersion != "6" || !c.DistroSkipPatch || !c.DistroKeepNet {
		t.Errorf("DISTRO = %+v", c)
	}
	if len(c.RamSizes) != 1 || c.RamSizes[0].Bytes != 1<<30 {
		t.Errorf("RamSizes = %+v", c.RamSizes)
	}
	if !reflect.DeepEqual(c.EthPreload, []string{"e1000e", "igb", "bnx2", "mlx4_en"}) {
		t.Errorf("EthPreload = %q", c.EthPreload)
	}
	if !reflect.DeepEqual(c.MacAddrs, map[string]string{"00:11:22:aa:bb:cc": "node1", "00:11:22:aa:bb:cd": "node2"}) {
		t.Errorf("MacAddrs = %v", c.MacAddrs)
	}
	if len(c.Ram) != 2 || c.Ram[0].Path != "/etc/{hosts,resolv.conf}" || c.Ram[0].Pos.Line != 9 {
		t.Errorf("Ram = %+v", c.Ram)
	}
	if f := c.Ram[1].Filter; !reflect.DeepEqual(f, Filter{Classes: []string{"a", "b"}, Props: []string{"x", "y"}}) {
		t.Errorf("RAMFILE filter = %+v", f)
	}
	if len(c.Warnings) != 0 {
		t.Errorf("warnings: %v", c.Warnings)
	}
}

func TestWarnings(t *testing.T) {
	tests := []struct {
		conf  string
		lines []int
		want  []string
	}{
		{"NODECLASS_REGEX n\\d+ a\n", []int{1}, []string{"write NODECLASS_REGEXP"}},
		{"MATCH_DNS_HOSTS\n", []int{1}, []string{"does not look hosts up in DNS"}},
		{"RAMDIR /var/lib/x -p\n", []int{1}, []string{"2.0rc10 'protect'"}},
		{"LINKDIR /var/lib/x -p -c a\n", []int{1}, []string{"2.0rc10 'protect'"}},
		{"PROPERTY everyone\n", []int{1}, []string{"every node gets it"}},
		{"DISTRO a\nDISTRO b\n", []int{2}, []string{"replaces the one at /etc/sysimage.conf:1"}},
		{"MAC_ADDR a 00:11:22:33:44:55\nMAC_ADDR b 00:11:22:33:44:55\n", []int{2}, []string{"already given to a"}},
		// One warning per unsupported keyword, at its first line.
		{"DISKMOUNT sda 10% /scratch -c a\nDISKMOUNT sdb 100% /tmp\nPOWERCMD ON ipmitool x\n",
			[]int{1, 3}, []string{"DISKMOUNT is not supported by git-onesis and is ignored (2 lines", "POWERCMD is not supported by git-onesis"}},
		{"DISKSWAP sda 1g\nDEPLOYMOUNT sda1 /\nDEPLOYSWAP sda2\nBOOTLOADER grub\nSYNCDIR /usr\nEXCLUDESYNC /usr/tmp\nCONSOLECMD conman %h\nSPECFORMAT 1 hostname\n",
			[]int{1, 2, 3, 4, 5, 6, 7, 8}, []string{"DISKSWAP is not supported", "DEPLOYMOUNT is not supported", "DEPLOYSWAP is not supported", "BOOTLOADER is not supported", "SYNCDIR is not supported", "EXCLUDESYNC is not supported", "CONSOLECMD is not supported", "SPECFORMAT is not supported"}},
	}
	for _, tt := range tests {
		c := parse(t, tt.conf)
		if len(c.Warnings) != len(tt.want) {
			t.Errorf("%q: warnings %v, want %d", tt.conf, c.Warnings, len(tt.want))
			continue
		}
		for i, w := range c.Warnings {
			if w.Pos.Line != tt.lines[i] || w.Pos.File != "/etc/sysimage.conf" || !strings.Contains(w.Msg, tt.want[i]) {
				t.Errorf("%q: warning %d = %v, want line %d containing %q", tt.conf, i, w, tt.lines[i], tt.want[i])
			}
		}
	}
	c := parse(t, "DISKMOUNT sda 10% /scratch\nDISKMOUNT sdb 1g /tmp\n")
	if len(c.Unsupported) != 2 || c.Unsupported[1].Keyword != "DISKMOUNT" || c.Unsupported[1].Pos.Line != 2 ||
		!reflect.DeepEqual(c.Unsupported[1].Args, []string{"sdb", "1g", "/tmp"}) {
		t.Errorf("Unsupported = %+v", c.Unsupported)
	}
	c = parse(t, "RAMDIR /var/lib/x -p\n")
	if c.Ram[0].Clean || !c.Ram[0].Filter.Empty() {
		t.Errorf("bare -p: %+v, want protected and unfiltered", c.Ram[0])
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		conf string
		line int
		want string
	}{
		{"FOO bar", 1, `"FOO"; expected a sysimage.conf directive`},
		{"\n\nramdir /x", 3, "written in upper case; expected RAMDIR"},
		{"DISTRO", 1, "DISTRO needs a distribution name"},
		{"DISTRO a b c", 1, "DISTRO needs"},
		{"DISTRO a -x", 1, `does not take option "-x"; expected one of: -kn -sp`},
		{"MATCH_DNS_HOSTS yes", 1, "takes no arguments"},
		{"NODECLASS_MAP n1", 1, "NODECLASS_MAP needs exactly a hostname and a class"},
		{"NODECLASS_MAP n1 a..b", 1, "dot-separated names"},
		{"NODECLASS_MAP n/1 a", 1, "cannot contain '/'"},
		{"NODECLASS_REGEXP n.*", 1, "NODECLASS_REGEXP needs exactly a regular expression and a class"},
		{"NODECLASS_REGEXP (a cls", 1, "not a valid regular expression"},
		{`NODECLASS_REGEXP (\w)\1 cls`, 1, "no backreferences"},
		{"NODECLASS_RANGE n[1-5 cls", 1, "bad host range"},
		{"PROPERTY", 1, "PROPERTY needs a property name"},
		{"PROPERTY gpu -r", 1, "-r needs a value after it; expected a host range"},
		{"PROPERTY gpu -r n[2-1]", 1, "runs backwards"},
		{"PROPERTY gpu -re [", 1, "not a valid regular expression"},
		{"PROPERTY gpu -p x", 1, `does not take option "-p"`},
		{"PROPERTY gpu extra -n a", 1, `unexpected "extra"`},
		{"PROPERTY g/pu -n a", 1, "cannot contain '/'"},
		{"SERVICE", 1, "SERVICE needs the name of a script"},
		{"SERVICE smartd -c", 1, "-c needs a value after it; expected a comma-separated list of classes"},
		{"SERVICE smartd -p", 1, "-p needs a value"},
		{"SERVICE smartd -c ,", 1, "empty list"},
		{"SERVICE smartd -c .a", 1, "dot-separated"},
		{"RAMSIZE", 1, "RAMSIZE needs a size"},
		{"RAMSIZE 10x", 1, "optional k, m or g suffix"},
		{"RAMSIZE 10%", 1, "optional k, m or g suffix"},
		{"RAMSIZE 99999999999999999g", 1, "too large"},
		{"RAMDIR", 1, "RAMDIR needs an absolute path"},
		{"RAMDIR var/run", 1, "expected an absolute path"},
		{"RAMDIR /var/../etc", 1, "expected a clean path"},
		{"RAMDIR /var/run/", 1, "write /var/run"},
		{"RAMDIR /", 1, "not '/' itself"},
		{"RAMDIR /var/[run", 1, "bad glob pattern"},
		{"RAMDIR /var/{run", 1, "without a matching '}'"},
		{"RAMDIR /var/{run,..}", 1, "not a clean absolute path"},
		{"RAMDIR /x -m 999", 1, "expected an octal mode"},
		{"RAMDIR /x -m 17777", 1, "expected an octal mode"},
		{"RAMDIR /x -m 0755 -m 0700", 1, "given twice"},
		{"RAMDIR /x -u", 1, "-u needs a value"},
		{"RAMDIR /x -u a:b", 1, "expected a user name"},
		{"RAMDIR /x -cl -p", 1, "contradicts the bare -p"},
		{"RAMDIR /x -h", 1, `does not take option "-h"`},
		{"LINKFILE /etc/inittab", 1, "can never be a link"},
		{"LINKDIR /etc/mtab", 1, "can never be a link"},
		{"LINKBACK /etc/fstab", 1, "LINKBACK needs a path and a target"},
		{"LINKBACK etc/fstab CLASS", 1, "expected an absolute path"},
		{"LINKBACK /etc/fs* CLASS", 1, "globs are not allowed"},
		{"LINKBACK /boot/grub/menu.lst CLASS", 1, "can never be a link"},
		{"LINKBACK /etc/sysimage.conf NODE", 1, "can never be a link"},
		{"LINKBACK /etc/fstab PROPERTY -f", 1, "-f is not allowed with PROPERTY"},
		{"LINKBACK /etc/fstab /x/fstab.$NODE -h", 1, "-h is only allowed with CLASS, NODE or PROPERTY"},
		{"LINKBACK /etc/fstab CLASS -d", 1, `does not take option "-d"`},
		{"ETH_PRELOAD", 1, "ETH_PRELOAD needs kernel module names"},
		{"ETH_PRELOAD -x", 1, "expected kernel module names"},
		{"MAC_ADDR node1", 1, "MAC_ADDR needs a hostname and a MAC address"},
		{"MAC_ADDR 00:11:22:33:44:55 node1", 1, "expected a MAC address"},
		{"INCLUDE", 1, "INCLUDE needs exactly one absolute path"},
		{"INCLUDE etc/x", 1, "expected an absolute path"},
		{"INCLUDE /etc/*.conf", 1, "globs are not expanded"},
		{"INCLUDE /etc/x", 1, "no image to read it from"},
	}
	for _, tt := range tests {
		_, err := ParseBytes("/etc/sysimage.conf", []byte(tt.conf), nil)
		var pe *Error
		if !errors.As(err, &pe) {
			t.Errorf("%q: error %v, want a *Error", tt.conf, err)
			continue
		}
		prefix := "/etc/sysimage.conf:" + strconv.Itoa(tt.line) + ": "
		if !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q:\n got %v\nwant %s...%s", tt.conf, err, prefix, tt.want)
		}
	}
}

func TestUnknownDirectiveIs(t *testing.T) {
	_, err := ParseBytes("x", []byte("NOPE"), nil)
	if !errors.Is(err, ErrUnknownDirective) {
		t.Errorf("err = %v, want ErrUnknownDirective", err)
	}
}

func TestInclude(t *testing.T) {
	img := files{
		"/etc/sysimage.conf":  "RAMDIR /a\nINCLUDE /etc/sysimage.d/one\nRAMDIR /d\nINCLUDE: /etc/sysimage.d/one # twice is not a loop\n",
		"/etc/sysimage.d/one": "RAMDIR /b\n\nINCLUDE /etc/sysimage.d/two\n",
		"/etc/sysimage.d/two": "RAMDIR /c\n",
	}
	c, err := Parse(img.open, "/etc/sysimage.conf")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range c.Ram {
		got = append(got, e.Path+"@"+e.Pos.String())
	}
	want := []string{
		"/a@/etc/sysimage.conf:1",
		"/b@/etc/sysimage.d/one:1",
		"/c@/etc/sysimage.d/two:1",
		"/d@/etc/sysimage.conf:3",
		"/b@/etc/sysimage.d/one:1",
		"/c@/etc/sysimage.d/two:1",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("splice order:\n got %q\nwant %q", got, want)
	}
	if len(c.Files) != 5 || c.Files[0] != "/etc/sysimage.conf" {
		t.Errorf("Files = %q", c.Files)
	}

	// Later wins across files: the included RANGE is earlier than the MAP.
	img = files{
		"/etc/sysimage.conf": "INCLUDE /etc/classes\nNODECLASS_MAP n1 special\n",
		"/etc/classes":       "NODECLASS_RANGE n[1-9] compute\n",
	}
	c, err = Parse(img.open, "/etc/sysimage.conf")
	if err != nil {
		t.Fatal(err)
	}
	if n := resolve(t, c, "n1", ""); n.Class != "special" {
		t.Errorf("n1 = %q, want special", n.Class)
	}
	if n := resolve(t, c, "n2", ""); n.Class != "compute" || n.ClassFrom.File != "/etc/classes" {
		t.Errorf("n2 = %+v", n)
	}
}

func TestIncludeErrors(t *testing.T) {
	tests := []struct {
		img  files
		want string
		is   error
	}{
		{files{"/etc/sysimage.conf": "INCLUDE /etc/sysimage.conf"},
			"/etc/sysimage.conf:1: INCLUDE /etc/sysimage.conf: the file is already being read (/etc/sysimage.conf -> /etc/sysimage.conf)", ErrIncludeLoop},
		{files{"/etc/sysimage.conf": "\nINCLUDE /a", "/a": "INCLUDE /b", "/b": "RAMDIR /x\nINCLUDE /a"},
			"/b:2: INCLUDE /a: the file is already being read (/etc/sysimage.conf -> /a -> /b -> /a)", ErrIncludeLoop},
		{files{"/etc/sysimage.conf": "INCLUDE /missing"},
			"/etc/sysimage.conf:1: INCLUDE /missing: cannot read the file: file does not exist", fs.ErrNotExist},
		{files{"/etc/sysimage.conf": "INCLUDE /a", "/a": "RAMDIR /x\nBOGUS"},
			`/a:2: "BOGUS"; expected`, ErrUnknownDirective},
		{files{}, "reading /etc/sysimage.conf: file does not exist", fs.ErrNotExist},
	}
	for _, tt := range tests {
		_, err := Parse(tt.img.open, "/etc/sysimage.conf")
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) || !errors.Is(err, tt.is) {
			t.Errorf("got %v\nwant %s (is %v)", err, tt.want, tt.is)
		}
	}
	// Deep nesting without a loop stops at the depth limit.
	img := files{"/etc/sysimage.conf": "INCLUDE /f0"}
	for i := 0; i < 20; i++ {
		img["/f"+strconv.Itoa(i)] = "INCLUDE /f" + strconv.Itoa(i+1)
	}
	if _, err := Parse(img.open, "/etc/sysimage.conf"); err == nil || !strings.Contains(err.Error(), "nested INCLUDEs") {
		t.Errorf("deep nesting: %v", err)
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true}, {"4096", 4096, true}, {"10k", 10 << 10, true}, {"10K", 10 << 10, true},
		{"500m", 500 << 20, true}, {"2G", 2 << 30, true},
		{"", 0, false}, {"m", 0, false}, {"1.5g", 0, false}, {"-1", 0, false}, {"10t", 0, false}, {"10mb", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestExpandBraces(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"/etc/hosts", []string{"/etc/hosts"}},
		{"/etc/{a,b}.conf", []string{"/etc/a.conf", "/etc/b.conf"}},
		{"/{x}", []string{"/x"}},
		{"/{a,b{1,2}}/{c,d}", []string{"/a/c", "/a/d", "/b1/c", "/b1/d", "/b2/c", "/b2/d"}},
		{"/etc/ssh/*key*", []string{"/etc/ssh/*key*"}},
		{"/{a,}", []string{"/a", "/"}},
	}
	for _, tt := range tests {
		got, err := ExpandBraces(tt.in)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ExpandBraces(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"/{a", "/a}", "/}{", strings.Repeat("{a,b}", 11)} {
		if _, err := ExpandBraces(bad); err == nil {
			t.Errorf("ExpandBraces(%q) accepted", bad)
		}
	}
}

func TestNotLinkable(t *testing.T) {
	for p, want := range map[string]bool{
		"/etc/inittab": true, "etc/inittab": true, "boot/grub/menu.lst": true, "/etc/sysimage.conf": true,
		"/etc/mtab": true, "/etc/fstab": false, "/etc": false,
	} {
		if IsNotLinkable(p) != want {
			t.Errorf("IsNotLinkable(%q) = %v", p, !want)
		}
	}
}
