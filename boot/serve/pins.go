package serve

import (
	"sync"

	"github.com/onesis/git-onesis/boot/booted"
	"github.com/onesis/git-onesis/boot/httpboot"
	"github.com/onesis/git-onesis/internal/git"
)

// pins tracks the commit each node was handed, mirrored in the booted
// refs (package booted), so that a restarted serve still authorises the
// NFS mounts of running nodes and serves their kernels.
type pins struct {
	refs   *booted.Writer
	mu     sync.Mutex
	byNode map[string]string
	all    map[string]bool // every commit handed out since start, plus booted refs
}

func loadPins(r *git.Repo) (*pins, error) {
	refs, err := booted.Read(r)
	if err != nil {
		return nil, err
	}
	p := &pins{refs: booted.NewWriter(r), byNode: booted.Commits(refs), all: map[string]bool{}}
	for _, c := range p.byNode {
		p.all[c] = true
	}
	return p, nil
}

// record writes the node's booted ref and remembers the pin.
func (p *pins) record(node string, res httpboot.Resolution) error {
	if err := p.refs.Record(node, res.Commit, res.From); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.byNode[node] = res.Commit
	p.all[res.Commit] = true
	return nil
}

// node returns the commit node was last handed ("" if none).
func (p *pins) node(name string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.byNode[name]
}

func (p *pins) has(commit string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.all[commit]
}

// nodes returns a copy of node -> commit.
func (p *pins) nodes() map[string]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := make(map[string]string, len(p.byNode))
	for n, c := range p.byNode {
		m[n] = c
	}
	return m
}
