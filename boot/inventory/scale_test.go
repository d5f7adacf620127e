package inventory

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/onesis/git-onesis/internal/testkit"
)

// allocated returns the bytes f allocates: a measure of work that, unlike
// time, does not depend on how busy the machine is. Quadratic code (an
// index rebuilt per node, options copied per block, a token per byte)
// shows as gigabytes here.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// dhcpdConf gives n hosts named <prefix>NNNNN, MACs 52:55:..., addresses
// in 10.96.0.0/11, in reverse order.
func dhcpdConf(n int, prefix string) []byte {
	var b strings.Builder
	b.WriteString("use-host-decl-names on;\nsubnet 10.64.0.0 netmask 255.192.0.0 {\n")
	for i := n - 1; i >= 0; i-- {
		fmt.Fprintf(&b, "  host %s%05d { hardware ethernet 52:55:00:%02x:%02x:%02x; fixed-address 10.%d.%d.%d; }\n", prefix, i, byte(i>>16), byte(i>>8), byte(i), 96+i>>16, byte(i>>8), byte(i))
	}
	b.WriteString("}\n")
	return []byte(b.String())
}

// TestInventoryScale: a 20,000-node inventory loads, takes a node, and
// takes a 20,000-host dhcpd.conf in work linear in its size. Before,
// every node rebuilt every index: 8k nodes took 15.9 s to load.
func TestInventoryScale(t *testing.T) {
	const n = 20000
	src := testkit.NodesFile(n)
	var inv *Inventory
	var err error
	t0 := time.Now()
	a := allocated(func() { inv, err = Parse("nodes", src) })
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Parse %d nodes: %v, %d MB allocated", n, time.Since(t0), a>>20)
	if len(inv.Nodes) != n || inv.Nodes[0].Name != "n00000" || inv.ByName("n12345") == nil {
		t.Fatalf("parsed %d nodes, first %s", len(inv.Nodes), inv.Nodes[0].Name)
	}
	if limit := uint64(40 * len(src)); a > limit {
		t.Errorf("Parse of %d nodes (%d kB) allocated %d MB; more than %d MB means work that grows faster than the file", n, len(src)>>10, a>>20, limit>>20)
	}

	// Importing as many hosts again (new names, new addresses) into it.
	im, err := ImportDHCPD("dhcpd.conf", dhcpdConf(n, "m"))
	if err != nil {
		t.Fatal(err)
	}
	next := inv.Clone()
	t0 = time.Now()
	a = allocated(func() { err = next.Merge(im, "dhcpd.conf", false) })
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Merge %d hosts into %d nodes: %v, %d MB allocated", n, n, time.Since(t0), a>>20)
	if len(next.Nodes) != 2*n || next.Nodes[0].Name != "m00000" || next.Nodes[2*n-1].Name != "n19999" {
		t.Fatalf("merged: %d nodes", len(next.Nodes))
	}
	if a > 64<<20 {
		t.Errorf("Merge of %d hosts allocated %d MB", n, a>>20)
	}
	// Conflicts are still found, by index.
	dup := *next.ByName("n00007")
	dup.Name = "x"
	if err := next.Put(&dup); err == nil || !strings.Contains(err.Error(), "already used by node n00007") {
		t.Errorf("a node with n00007's MAC and IP: %v", err)
	}
	if err := next.Remove("m00003"); err != nil || next.ByName("m00003") != nil || len(next.Nodes) != 2*n-1 {
		t.Errorf("Remove: %v", err)
	}
	again, err := Parse("nodes", next.Marshal())
	if err != nil || len(again.Nodes) != 2*n-1 {
		t.Fatalf("round trip: %v", err)
	}
}

// TestImportDHCPDHostile: shapes that were cubic, quadratic or a token per
// byte (1.3 GB for 10 MB of ';') import in work linear in the file.
func TestImportDHCPDHostile(t *testing.T) {
	var opts strings.Builder
	for i := 0; i < 4000; i++ {
		fmt.Fprintf(&opts, "option opt%d \"value %d\";\n", i, i)
	}
	var rep strings.Builder
	rep.WriteString("use-host-decl-names on;\n")
	for i := 0; i < 4000; i++ {
		fmt.Fprintf(&rep, "host gpu1 { hardware ethernet 52:54:00:00:%02x:%02x; fixed-address 10.77.0.13; }\n", byte(i>>8), byte(i))
	}
	tests := []struct {
		name  string
		src   string
		limit uint64 // bytes allocated, at most
		check func(*Imported, error) error
	}{
		{"10 MB of ';'", strings.Repeat(";", 10<<20), 1 << 20, func(im *Imported, err error) error {
			if err != nil || len(im.Nodes) != 0 {
				return fmt.Errorf("%v, %d nodes", err, len(im.Nodes))
			}
			return nil
		}},
		{"4,000 options over 40,000 groups", opts.String() + "subnet 10.77.0.0 netmask 255.255.255.0 { option routers 10.77.0.1; }\n" +
			strings.Repeat("group { }\n", 40000) + "group { host n1 { hardware ethernet 52:54:00:00:00:01; fixed-address 10.77.0.11; } }\n", 32 << 20,
			func(im *Imported, err error) error {
				if err != nil || len(im.Nodes) != 1 || len(im.Networks) != 1 || im.Networks[0].Router.String() != "10.77.0.1" {
					return fmt.Errorf("%v: %+v", err, im)
				}
				return nil
			}},
		{"4,000 blocks of one node", rep.String(), 16 << 20, func(im *Imported, err error) error {
			if err != nil || len(im.Nodes) != 1 || len(im.Nodes[0].MACs) != 4000 {
				return fmt.Errorf("%v: %+v", err, im)
			}
			return nil
		}},
		{"a statement without end", "option x" + strings.Repeat(" a,", 1<<20), 8 << 20, func(im *Imported, err error) error {
			if err == nil || !strings.Contains(err.Error(), "dhcpd.conf:1: statement \"option\" has more than") {
				return fmt.Errorf("got %v; want the statement limit at line 1", err)
			}
			return nil
		}},
	}
	for _, tt := range tests {
		var im *Imported
		var err error
		t0 := time.Now()
		src := []byte(tt.src)
		a := allocated(func() { im, err = ImportDHCPD("dhcpd.conf", src) })
		t.Logf("%s: %v, %d kB allocated", tt.name, time.Since(t0), a>>10)
		if cerr := tt.check(im, err); cerr != nil {
			t.Errorf("%s: %v", tt.name, cerr)
		}
		if a > tt.limit {
			t.Errorf("%s: %d kB allocated, more than %d kB: work that grows faster than the file", tt.name, a>>10, tt.limit>>10)
		}
	}
	// A MAC repeated in a later block of the same node is still caught.
	_, err := ImportDHCPD("dhcpd.conf", []byte("host a { hardware ethernet 52:54:00:00:00:01; fixed-address 10.0.0.1; }\nhost a { hardware ethernet 52:54:00:00:00:01; fixed-address 10.0.0.1; }\n"))
	if err == nil || !strings.Contains(err.Error(), "dhcpd.conf:2:") || !strings.Contains(err.Error(), "twice") {
		t.Errorf("a MAC given twice: %v", err)
	}
}
