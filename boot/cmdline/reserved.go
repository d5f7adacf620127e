package cmdline

import (
	"fmt"
	"slices"
	"strings"
)

// Reserved are the arguments serve sets (Build) or that would redirect
// what Build sets (onesis.root= is nfsroot='s alias): a node's own
// arguments may not override them. hostname= and onesis.secrets= were
// missing from the list inventory kept before this package, so a node's
// args could rename it or point it at another secrets URL.
//
// Two words Build writes are not reserved, on purpose: console=, because
// Linux takes every console= (output goes to each, the last is
// /dev/console), so a node's own console adds a port rather than undoing
// serve's; and ro/rw, which sites habitually put in args ("ro quiet") and
// which cannot widen access: the NFS server exports /c/<commit> read-only
// whatever the node asks.
var Reserved = []string{"initrd", "BOOTIF", "ip", "nfsroot", "onesis.root", "onesis.commit", "onesis.node", "hostname", "onesis.secrets"}

// Additive are the arguments Build writes that a node's own may add to
// (see Reserved).
var Additive = []string{"console", "ro", "rw"}

// CheckArgs validates a node's extra kernel arguments: printable, one
// line, nothing a boot script cannot carry, and none of Reserved.
func CheckArgs(s string) error {
	for _, c := range s {
		if c < ' ' || c == 0x7f {
			return fmt.Errorf("kernel arguments %q contain a control character", s)
		}
	}
	if strings.ContainsAny(s, "\"$`\\") {
		return fmt.Errorf("kernel arguments %q contain a quote, '$', '`' or '\\', which the boot script cannot carry", s)
	}
	for _, a := range strings.Fields(s) {
		k, _, _ := strings.Cut(a, "=")
		if slices.Contains(Reserved, k) {
			return fmt.Errorf("kernel argument %q is set by serve and cannot be overridden per node", a)
		}
	}
	return nil
}
