package testkit

import (
	"fmt"
	"strings"
)

// NodesFile returns a node inventory (package inventory's format) of n
// nodes n00000... with distinct MACs and addresses in 10.64.0.0/10, in
// reverse order so that every insert lands first: the scale tests' and
// benchmarks' input.
func NodesFile(n int) []byte {
	var b strings.Builder
	b.WriteString("network 10.64.0.0/10 router=10.64.0.1\n")
	for i := n - 1; i >= 0; i-- { // reverse order: every insert lands first
		fmt.Fprintf(&b, "node n%05d mac=52:54:00:%02x:%02x:%02x ip=10.%d.%d.%d\n", i, byte(i>>16), byte(i>>8), byte(i), 64+i>>16, byte(i>>8), byte(i))
	}
	return []byte(b.String())
}
