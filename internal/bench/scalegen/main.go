// Command scalegen writes the cluster-scale inputs of `make bench`
// (internal/bench/scalebench.sh): a node inventory, an ISC dhcpd.conf and
// a sysimage.conf for N nodes, shaped as a large site writes them by hand
// and by script.
//
//	scalegen nodes N      # the nodes file of refs/onesis/inventory
//	scalegen dhcpd N      # subnets of 240 hosts, one host block per node
//	scalegen sysimage N   # ranges per rack plus one NODECLASS_MAP and MAC_ADDR per node
//
// Node i is n<i> (zero-padded to 5 digits), MAC 52:54:xx:xx:xx:xx from i,
// address .10 to .249 of the /24 10.<64+s/250>.<s%250>.0, s = i/240.
package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
)

// perSubnet is the nodes of one /24, from .10 up.
const perSubnet = 240

func name(i int) string { return fmt.Sprintf("n%05d", i) }

func mac(i int) string {
	return fmt.Sprintf("52:54:%02x:%02x:%02x:%02x", byte(i>>24), byte(i>>16), byte(i>>8), byte(i))
}

func ip(i int) string {
	s := i / perSubnet
	return fmt.Sprintf("10.%d.%d.%d", 64+s/250, s%250, 10+i%perSubnet)
}

func subnet(s int) string { return fmt.Sprintf("10.%d.%d.0", 64+s/250, s%250) }

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: scalegen nodes|dhcpd|sysimage N")
		os.Exit(129)
	}
	n, err := strconv.Atoi(os.Args[2])
	if err != nil || n < 1 {
		fmt.Fprintln(os.Stderr, "scalegen: N must be a positive number")
		os.Exit(129)
	}
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	subnets := (n + perSubnet - 1) / perSubnet
	switch os.Args[1] {
	case "nodes":
		fmt.Fprintln(w, "# git-onesis node inventory (scalegen)")
		for s := 0; s < subnets; s++ {
			fmt.Fprintf(w, "network %s/24 router=%s dns=10.64.0.1 domain=cluster.example\n", subnet(s), subnet(s)[:len(subnet(s))-1]+"1")
		}
		for i := 0; i < n; i++ {
			fmt.Fprintf(w, "node %s mac=%s ip=%s\n", name(i), mac(i), ip(i))
		}
	case "dhcpd":
		fmt.Fprintln(w, "# scalegen: one subnet per 240 nodes\nddns-update-style none;\nauthoritative;\nuse-host-decl-names on;\noption domain-name \"cluster.example\";")
		for s := 0; s < subnets; s++ {
			net := subnet(s)
			fmt.Fprintf(w, "subnet %s netmask 255.255.255.0 {\n  option routers %s1;\n  option domain-name-servers 10.64.0.1;\n  filename \"pxelinux.0\";\n  group {\n", net, net[:len(net)-1])
			for i := s * perSubnet; i < n && i < (s+1)*perSubnet; i++ {
				fmt.Fprintf(w, "    host %s.cluster.example { hardware ethernet %s; fixed-address %s; option host-name \"%s\"; }\n", name(i), mac(i), ip(i), name(i))
			}
			fmt.Fprintln(w, "  }\n}")
		}
	case "sysimage":
		fmt.Fprintln(w, "# scalegen: racks of 40 by range, then a script's one line per node")
		for r := 0; r*40 < n; r++ {
			fmt.Fprintf(w, "NODECLASS_RANGE n[%05d-%05d] cluster.compute.rack%d\n", r*40, min(n, (r+1)*40)-1, r)
		}
		fmt.Fprintln(w, "PROPERTY ib -c cluster.compute\nRAMDIR /var/run\nRAMDIR /tmp\nLINKBACK /etc/hostname NODE")
		for i := 0; i < n; i++ {
			if i%10 == 0 {
				fmt.Fprintf(w, "NODECLASS_MAP %s cluster.compute.gpu\n", name(i))
			}
			fmt.Fprintf(w, "MAC_ADDR %s %s\n", name(i), mac(i))
		}
	default:
		fmt.Fprintln(os.Stderr, "usage: scalegen nodes|dhcpd|sysimage N")
		os.Exit(129)
	}
}
