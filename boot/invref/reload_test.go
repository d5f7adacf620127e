package invref

import (
	"fmt"
	"testing"

	"github.com/onesis/git-onesis/boot/inventory"
	"github.com/onesis/git-onesis/internal/testkit"
)

// BenchmarkWatcherReload is serve's reload when the inventory ref moves:
// Poll sees the new commit, reads the nodes file and parses it. make bench
// (internal/bench/scalebench.sh) reports it at 1k, 10k and 50k nodes.
func BenchmarkWatcherReload(b *testing.B) {
	for _, n := range []int{1000, 10000, 50000} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			r := newRepo(b)
			seed, err := inventory.Parse("nodes", testkit.NodesFile(n))
			if err != nil {
				b.Fatal(err)
			}
			var commits [2]string
			for i := range commits {
				inv, err := Update(r, fmt.Sprint("state ", i), func(inv *inventory.Inventory) error {
					inv.Clear()
					nodes := seed.Nodes
					if i == 1 {
						nodes = nodes[1:] // the second state lacks one node
					}
					return inv.PutAll(nodes, func(_ *inventory.Node, err error) error { return err })
				})
				if err != nil {
					b.Fatal(err)
				}
				commits[i] = inv.Commit
			}
			w, err := NewWatcher(r, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				run(b, r, "update-ref", Ref, commits[i%2])
				b.StartTimer()
				if changed, err := w.Poll(); err != nil || !changed {
					b.Fatalf("Poll: %v, %v", changed, err)
				}
			}
		})
	}
}
