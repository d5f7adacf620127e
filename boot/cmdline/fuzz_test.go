package cmdline

import (
	"strings"
	"testing"
)

// FuzzParse: any command line parses or fails cleanly, and what
// parses keeps its invariants (absolute init and export, sane retries).
func FuzzParse(f *testing.F) {
	f.Add("ip=dhcp BOOTIF=01-52-54-00-12-34-56 nfsroot=10.77.0.1:/c/abc,port=2049 ro onesis.node=n1")
	f.Add(`hostname="a b" -- single`)
	f.Add("ip=1.2.3.4::1.2.3.1:255.255.255.0:h:eth0:off onesis.root=/w/x rw onesis.retries=7")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := Parse(s)
		if c == nil {
			t.Fatal("nil config")
		}
		if err != nil {
			return
		}
		if !strings.HasPrefix(c.Init, "/") || c.Retries < 1 || c.Retries > 100 {
			t.Errorf("invariants broken: %+v", c)
		}
		if c.Root != nil && !strings.HasPrefix(c.Root.Path, "/") {
			t.Errorf("relative export %q", c.Root.Path)
		}
		if c.Root != nil {
			_ = c.Root.MountOptions("10.0.0.1")
		}
	})
}
