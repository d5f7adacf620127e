// Package cmdline is the kernel command-line contract between git onesis
// serve, which writes a node's command line into its iPXE script or
// PXELINUX config (Build), and onesis-init, which reads it at boot
// (Parse). Reserved lists the arguments serve owns, which a node's own
// arguments (the inventory's args=) may not set; CheckArgs enforces it.
// One package, standard library only (onesis-init is a static PID 1), so
// the writer, the reader and the reserved list cannot drift apart; a
// round-trip test guards it.
package cmdline

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"path"
	"strconv"
	"strings"
)

// Config is what onesis-init takes from the kernel command line (see
// docs/initramfs.md for the contract with git onesis serve): what Parse
// returns.
type Config struct {
	// BootIF is the MAC of the boot NIC (BOOTIF=01-aa-bb-..., as PXELINUX
	// and our iPXE script pass it); nil when absent.
	BootIF net.HardwareAddr
	// IP is the ip= value: "dhcp" (default), or a static
	// client:server:gw:netmask:hostname:device:autoconf.
	IP     string
	Static *StaticIP
	// Root is nfsroot= (or its alias onesis.root=); nil means DHCP
	// option 17 (root path).
	Root *NFSRoot
	// Hostname (hostname=) wins over DHCP option 12, which wins over
	// onesis.node=.
	Hostname, Node string
	// Class is classname=, which overrides etc/sysimage.conf.
	Class string
	// Commit is onesis.commit=, printed for the record.
	Commit string
	// Secrets is onesis.secrets=: the URL of this node's secrets archive
	// on the boot server, fetched from a privileged port into /ram and
	// bind-mounted over the image's placeholders; "" for none.
	Secrets string
	// Init is what to exec on the new root (init=, default /sbin/init).
	Init string
	// ReadWrite mounts the root read-write (rw on the command line, for
	// /w/<node> maintenance exports).
	ReadWrite bool
	// Retries bounds each retried step (onesis.retries=, default 5).
	Retries int
	// Debug prints more (onesis.debug).
	Debug bool
	// Panic is what to do when the boot fails: "reboot" (default) or
	// "halt" (onesis.panic=).
	Panic string
	// Modules are extra modules to load (onesis.modules=a,b).
	Modules []string
}

// StaticIP is a static ip= configuration.
type StaticIP struct {
	Client, Server, Gateway net.IP
	Mask                    net.IPMask
	Hostname, Device        string
}

// NFSRoot is a parsed nfsroot= value.
type NFSRoot struct {
	Server  string   // an IP address; "" = the DHCP server
	Path    string   // the export, absolute
	Options []string // NFS text options as given
}

// DefaultRetries bounds retried steps when onesis.retries= is not given.
const DefaultRetries = 5

// Split splits a kernel command line into words, honouring double
// quotes as the kernel does (`a="b c"` is one word, quotes removed). Words
// after "--" belong to init and are dropped.
func Split(s string) []string {
	var words []string
	var b strings.Builder
	inQuote, have := false, false
	for _, r := range s {
		switch {
		case r == '"':
			inQuote = !inQuote
			have = true
		case !inQuote && (r == ' ' || r == '\t' || r == '\n'):
			if have {
				words = append(words, b.String())
				b.Reset()
				have = false
			}
		default:
			b.WriteRune(r)
			have = true
		}
	}
	if have {
		words = append(words, b.String())
	}
	for i, w := range words {
		if w == "--" {
			return words[:i]
		}
	}
	return words
}

// Parse parses the kernel command line. Unknown words are ignored
// (they belong to the kernel or the image's init); malformed values of
// ours are errors naming the word.
func Parse(s string) (*Config, error) {
	c := &Config{IP: "dhcp", Init: "/sbin/init", Retries: DefaultRetries, Panic: "reboot"}
	var errs []error
	more := 0
	bad := func(w string, f string, a ...any) {
		if len(errs) == maxCmdlineErrors {
			more++ // a hostile command line gets a bounded report
			return
		}
		errs = append(errs, fmt.Errorf("kernel argument %q: %s", w, fmt.Sprintf(f, a...)))
	}
	for _, w := range Split(s) {
		k, v, hasVal := strings.Cut(w, "=")
		switch k {
		case "BOOTIF":
			mac, err := parseBootIF(v)
			if err != nil {
				bad(w, "%v", err)
				continue
			}
			c.BootIF = mac
		case "ip":
			c.IP = v
			c.Static = nil
			if st, ok, err := parseStaticIP(v); err != nil {
				bad(w, "%v", err)
			} else if ok {
				c.Static = st
			}
		case "nfsroot", "onesis.root":
			r, err := ParseNFSRoot(v)
			if err != nil {
				bad(w, "%v", err)
				continue
			}
			c.Root = r
		case "hostname":
			if err := CheckHostname(v); err != nil {
				bad(w, "%v", err)
				continue
			}
			c.Hostname = v
		case "onesis.node":
			if err := CheckHostname(v); err != nil {
				bad(w, "%v", err)
				continue
			}
			c.Node = v
		case "classname":
			c.Class = v
		case "onesis.commit":
			c.Commit = v
		case "onesis.secrets":
			u, err := url.Parse(v)
			if err != nil || u.Scheme != "http" || u.Host == "" || u.User != nil {
				bad(w, "want an http:// URL of the node's secrets on the boot server")
				continue
			}
			c.Secrets = v
		case "init":
			if !path.IsAbs(v) {
				bad(w, "init must be an absolute path")
				continue
			}
			c.Init = path.Clean(v)
		case "ro":
			if !hasVal {
				c.ReadWrite = false
			}
		case "rw":
			if !hasVal {
				c.ReadWrite = true
			}
		case "onesis.retries":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 100 {
				bad(w, "want a number of attempts from 1 to 100")
				continue
			}
			c.Retries = n
		case "onesis.debug":
			c.Debug = !hasVal || v == "1" || v == "true" || v == "yes"
		case "onesis.panic":
			if v != "reboot" && v != "halt" {
				bad(w, "want reboot or halt")
				continue
			}
			c.Panic = v
		case "onesis.modules":
			for _, m := range strings.Split(v, ",") {
				if m = strings.TrimSpace(m); m != "" {
					if strings.ContainsAny(m, "/") {
						bad(w, "module %q is not a module name", m)
						continue
					}
					c.Modules = append(c.Modules, m)
				}
			}
		}
	}
	if more > 0 {
		errs = append(errs, fmt.Errorf("and %d more malformed kernel arguments", more))
	}
	return c, errors.Join(errs...)
}

// maxCmdlineErrors bounds the malformed arguments reported one by one.
const maxCmdlineErrors = 10

// parseBootIF reads "01-aa-bb-cc-dd-ee-ff" (ARP type 1, Ethernet); a bare
// MAC with '-' or ':' is accepted too.
func parseBootIF(v string) (net.HardwareAddr, error) {
	v = strings.ToLower(strings.TrimSpace(v))
	parts := strings.FieldsFunc(v, func(r rune) bool { return r == '-' || r == ':' })
	if len(parts) == 7 {
		if parts[0] != "01" {
			return nil, fmt.Errorf("hardware type %s is not Ethernet (01)", parts[0])
		}
		parts = parts[1:]
	}
	if len(parts) != 6 {
		return nil, errors.New("want 01-aa-bb-cc-dd-ee-ff")
	}
	mac, err := net.ParseMAC(strings.Join(parts, ":"))
	if err != nil {
		return nil, errors.New("want 01-aa-bb-cc-dd-ee-ff")
	}
	return mac, nil
}

// parseStaticIP reads the kernel's static form
// client:server:gw:netmask:hostname:device:autoconf. ok is false for the
// automatic forms (dhcp, on, any, bootp, empty).
func parseStaticIP(v string) (*StaticIP, bool, error) {
	switch v {
	case "", "dhcp", "on", "any", "bootp", "both":
		return nil, false, nil
	case "off", "none":
		return nil, false, errors.New("onesis-init needs the network: ip=off cannot boot from NFS")
	}
	f := strings.Split(v, ":")
	if len(f) < 4 {
		return nil, false, errors.New("want dhcp or client-ip:server-ip:gateway:netmask[:hostname[:device[:autoconf]]]")
	}
	for len(f) < 7 {
		f = append(f, "")
	}
	if auto := f[6]; auto != "" && auto != "off" && auto != "none" {
		// client:...:dhcp means DHCP on that device
		return nil, false, nil
	}
	st := &StaticIP{Hostname: f[4], Device: f[5]}
	ip := func(s, what string, need bool) (net.IP, error) {
		if s == "" {
			if need {
				return nil, fmt.Errorf("no %s", what)
			}
			return nil, nil
		}
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is4() {
			return nil, fmt.Errorf("%s %q is not an IPv4 address", what, s)
		}
		return net.IP(a.AsSlice()), nil
	}
	var err error
	if st.Client, err = ip(f[0], "client address", true); err != nil {
		return nil, false, err
	}
	if st.Server, err = ip(f[1], "server address", false); err != nil {
		return nil, false, err
	}
	if st.Gateway, err = ip(f[2], "gateway", false); err != nil {
		return nil, false, err
	}
	m, err := ip(f[3], "netmask", true)
	if err != nil {
		return nil, false, err
	}
	st.Mask = net.IPMask(m.To4())
	if ones, bits := st.Mask.Size(); bits == 0 || ones == 0 {
		return nil, false, fmt.Errorf("netmask %s is not a netmask", f[3])
	}
	if st.Hostname != "" {
		if err := CheckHostname(st.Hostname); err != nil {
			return nil, false, err
		}
	}
	return st, true, nil
}

// ParseNFSRoot reads "[<server-ip>:]<export>[,opt=val,...]".
func ParseNFSRoot(v string) (*NFSRoot, error) {
	spec, opts, _ := strings.Cut(v, ",")
	r := &NFSRoot{Path: spec}
	if i := strings.LastIndex(spec, ":"); i >= 0 {
		r.Server, r.Path = spec[:i], spec[i+1:]
		a, err := netip.ParseAddr(r.Server)
		if err != nil || !a.Is4() {
			return nil, fmt.Errorf("server %q is not an IPv4 address (the initramfs has no DNS)", r.Server)
		}
	}
	if !path.IsAbs(r.Path) || strings.Contains(r.Path, "/../") || strings.HasSuffix(r.Path, "/..") {
		return nil, fmt.Errorf("export %q is not an absolute path", r.Path)
	}
	for _, o := range strings.Split(opts, ",") {
		if o = strings.TrimSpace(o); o != "" {
			r.Options = append(r.Options, o)
		}
	}
	return r, nil
}

// MountOptions are the text options for mount(2) of r from server: the
// given ones, plus vers=3, proto=tcp, nolock and addr= where missing
// (ro/rw are mount flags and are dropped here).
func (r *NFSRoot) MountOptions(server string) string {
	has := map[string]bool{}
	var out []string
	for _, o := range r.Options {
		k, _, _ := strings.Cut(o, "=")
		switch k {
		case "ro", "rw":
			continue
		case "nfsvers", "v2", "v3", "v4":
			k = "vers"
		case "tcp", "udp":
			k = "proto"
		case "lock":
			k = "nolock"
		}
		has[k] = true
		out = append(out, o)
	}
	add := func(k, o string) {
		if !has[k] {
			out = append(out, o)
		}
	}
	add("vers", "vers=3")
	add("proto", "proto=tcp")
	add("nolock", "nolock")
	add("addr", "addr="+server)
	return strings.Join(out, ",")
}

// CheckHostname accepts an RFC 1123 host name (a label or a dotted name).
func CheckHostname(h string) error {
	if h == "" || len(h) > 64 {
		return fmt.Errorf("hostname %q must be 1 to 64 characters", h)
	}
	for _, l := range strings.Split(h, ".") {
		if l == "" || l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("hostname %q is not a valid host name", h)
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return fmt.Errorf("hostname %q is not a valid host name", h)
			}
		}
	}
	return nil
}
