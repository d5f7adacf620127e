// Package booted is the store of what each node booted:
// refs/onesis/booted/<node>, written by serve when a node fetches its boot
// script and read by node list, exports, images, upgrade and rollback. A
// ref keeps its commit (and so the image a running node reads) from
// garbage collection; its reflog message says where the commit came from.
package booted

import (
	"bytes"
	"fmt"
	"strings"
	"sync"

	"github.com/onesis/git-onesis/boot/inventory"
	"github.com/onesis/git-onesis/internal/git"
)

// Prefix is where each node's last booted commit is recorded.
const Prefix = "refs/onesis/booted/"

// Ref is what a node booted: the commit and its tree.
type Ref struct{ Commit, Tree string }

// Read returns node -> what it booted, in one git call whatever the node
// count.
func Read(r *git.Repo) (map[string]Ref, error) {
	out, err := r.Run("for-each-ref", "--format=%(refname) %(objectname) %(tree)", Prefix)
	if err != nil {
		return nil, fmt.Errorf("reading the booted refs: %w", err)
	}
	m := map[string]Ref{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		b := Ref{Commit: f[1]}
		if len(f) == 3 {
			b.Tree = f[2]
		}
		m[strings.TrimPrefix(f[0], Prefix)] = b
	}
	return m, nil
}

// Commits returns node -> commit of refs.
func Commits(refs map[string]Ref) map[string]string {
	m := make(map[string]string, len(refs))
	for n, b := range refs {
		m[n] = b.Commit
	}
	return m
}

// Writer records boots; concurrent calls share git processes (see
// refBatch).
type Writer struct{ b refBatch }

// NewWriter returns a Writer for r.
func NewWriter(r *git.Repo) *Writer { return &Writer{b: refBatch{repo: r}} }

// Record points refs/onesis/booted/<node> at commit; from (the reflog
// message, where core.logAllRefUpdates=always keeps one) says what it
// booted from ("node ref testing", "branch main").
func (w *Writer) Record(node, commit, from string) error {
	if err := inventory.CheckName(node); err != nil {
		return err
	}
	if err := w.b.update(Prefix+node, commit, "onesis: booted "+from); err != nil {
		return fmt.Errorf("recording %s%s: %w", Prefix, node, err)
	}
	return nil
}

// refBatch writes refs for a boot storm in a few git processes instead of
// one per node: the first caller starts a writer, which runs one
// 'git update-ref --stdin' transaction for everything queued (per reflog
// message); callers arriving meanwhile go into the next transaction. Every
// caller waits until its own ref is written and gets its own error: a
// transaction that fails is retried one ref at a time, so one bad update
// does not fail the others.
type refBatch struct {
	repo    *git.Repo
	mu      sync.Mutex
	queue   []*refUpdate
	running bool
}

type refUpdate struct {
	ref, commit, msg string
	done             chan error
}

func (b *refBatch) update(ref, commit, msg string) error {
	u := &refUpdate{ref: ref, commit: commit, msg: msg, done: make(chan error, 1)}
	b.mu.Lock()
	b.queue = append(b.queue, u)
	if !b.running {
		b.running = true
		go b.write()
	}
	b.mu.Unlock()
	return <-u.done
}

func (b *refBatch) write() {
	for {
		b.mu.Lock()
		q := b.queue
		b.queue = nil
		if len(q) == 0 {
			b.running = false
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		// One transaction per message; within one, a ref queued twice
		// (a node booting twice) keeps its last commit, as sequential
		// updates would.
		var msgs []string
		byMsg := map[string][]*refUpdate{}
		for _, u := range q {
			if byMsg[u.msg] == nil {
				msgs = append(msgs, u.msg)
			}
			byMsg[u.msg] = append(byMsg[u.msg], u)
		}
		for _, msg := range msgs {
			us := byMsg[msg]
			last := map[string]*refUpdate{}
			var order []string
			for _, u := range us {
				if last[u.ref] == nil {
					order = append(order, u.ref)
				}
				last[u.ref] = u
			}
			var in bytes.Buffer
			for _, ref := range order {
				fmt.Fprintf(&in, "update %s\x00%s\x00\x00", ref, last[ref].commit)
			}
			_, err := b.repo.RunInput(in.Bytes(), "update-ref", "-z", "--stdin", "-m", msg)
			if err != nil && len(order) > 1 {
				errs := map[string]error{}
				for _, ref := range order {
					_, errs[ref] = b.repo.Run("update-ref", "-m", msg, ref, last[ref].commit)
				}
				for _, u := range us {
					u.done <- errs[u.ref]
				}
				continue
			}
			for _, u := range us {
				u.done <- err
			}
		}
	}
}
