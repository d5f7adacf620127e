package serve

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/onesis/git-onesis/boot/httpboot"
	"github.com/onesis/git-onesis/boot/inventory"
	"github.com/onesis/git-onesis/internal/git"
)

// BootedPrefix is where each node's last booted commit is recorded.
const BootedPrefix = "refs/onesis/booted/"

// GitResolver resolves what a node boots with the real git, at every call,
// so a moved branch or a new checkout is followed without a restart:
// the node's ref, else Ref (serve --ref), else the branch checked out in
// Repo. A maintenance node boots its work tree; its commit (for kernel and
// initramfs) is that work tree's HEAD.
//
// Concurrent calls that resolve the same thing (the default, or one node
// ref) share git processes, but no call is answered from a resolution that
// started before it was made (see fresh): a boot storm costs a few git
// processes instead of two per node, and a request made just after a
// branch moved still sees the move.
type GitResolver struct {
	Repo *git.Repo
	Ref  string

	shared fresh
}

// Resolve implements httpboot.Resolver.
func (g *GitResolver) Resolve(n *inventory.Node) (httpboot.Resolution, error) {
	switch {
	case n.Maintenance != "":
		wt, err := git.Discover(n.Maintenance)
		if err != nil {
			return httpboot.Resolution{}, fmt.Errorf("node %s: maintenance work tree %s: %w", n.Name, n.Maintenance, err)
		}
		if wt.CommonDir != g.Repo.CommonDir || wt.Top == "" {
			return httpboot.Resolution{}, fmt.Errorf("node %s: %s is not a work tree of the served repository %s", n.Name, n.Maintenance, g.Repo.CommonDir)
		}
		c, ok, err := wt.HeadCommit()
		if err != nil || !ok {
			return httpboot.Resolution{}, fmt.Errorf("node %s: maintenance work tree %s has no commit: %v", n.Name, n.Maintenance, err)
		}
		return httpboot.Resolution{Commit: c, From: "worktree " + wt.Top}, nil
	case n.Ref != "":
		ref := n.Ref
		res, err := g.shared.do("ref\x00"+ref, func() (httpboot.Resolution, error) { return g.resolveRef(ref) })
		if err != nil {
			return httpboot.Resolution{}, fmt.Errorf("node %s: ref %s: %w", n.Name, n.Ref, err)
		}
		return res, nil
	}
	return g.Default()
}

// resolveRef resolves a node's ref: the ref itself, else the one
// remote-tracking branch of that name.
func (g *GitResolver) resolveRef(name string) (httpboot.Resolution, error) {
	c, err := g.Repo.ResolveRev(name)
	if err == nil {
		return httpboot.Resolution{Commit: c, From: "node ref " + name}, nil
	}
	// A boot server that is a clone of the central repository has the
	// central branches as remote-tracking refs only (git onesis sync
	// fetches them): use the one remote that has the branch.
	if ref, ok := g.remoteBranch(name); ok {
		if c, err := g.Repo.ResolveRev(ref); err == nil {
			return httpboot.Resolution{Commit: c, From: "node ref " + name + " (" + strings.TrimPrefix(ref, "refs/remotes/") + ")"}, nil
		}
	}
	return httpboot.Resolution{}, err
}

// remoteBranch finds refs/remotes/<remote>/<name> when exactly one remote
// has a branch called name.
func (g *GitResolver) remoteBranch(name string) (string, bool) {
	if strings.ContainsAny(name, "*?[\\") || strings.HasPrefix(name, "refs/") {
		return "", false
	}
	out, err := g.Repo.Run("for-each-ref", "--format=%(refname)", "refs/remotes/*/"+name)
	if err != nil {
		return "", false
	}
	var found []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		// fnmatch's * does not cross '/': the remote is one component.
		if l != "" && strings.Count(strings.TrimPrefix(l, "refs/remotes/"), "/") == strings.Count(name, "/")+1 {
			found = append(found, l)
		}
	}
	if len(found) != 1 {
		return "", false
	}
	return found[0], true
}

// Default resolves what a node without its own ref boots: Ref, else HEAD.
func (g *GitResolver) Default() (httpboot.Resolution, error) {
	return g.shared.do("default", g.resolveDefault)
}

func (g *GitResolver) resolveDefault() (httpboot.Resolution, error) {
	if g.Ref != "" {
		c, err := g.Repo.ResolveRev(g.Ref)
		if err != nil {
			return httpboot.Resolution{}, fmt.Errorf("serve --ref %s: %w", g.Ref, err)
		}
		return httpboot.Resolution{Commit: c, From: "serve --ref " + g.Ref}, nil
	}
	c, ok, err := g.Repo.HeadCommit()
	if err != nil {
		return httpboot.Resolution{}, err
	}
	if !ok {
		return httpboot.Resolution{}, errors.New("the checked-out branch has no commit yet; commit the image first")
	}
	from := "HEAD (detached)"
	if out, err := g.Repo.Run("symbolic-ref", "-q", "--short", "HEAD"); err == nil {
		from = "branch " + strings.TrimSpace(string(out))
	}
	return httpboot.Resolution{Commit: c, From: from}, nil
}

// fresh coalesces concurrent resolutions of the same key without ever
// answering a call from a resolution that started before the call was
// made. The first caller runs the resolution; callers that arrive while it
// runs wait for it to end and then share the next run, which starts after
// all of them arrived. So a moved branch is seen by every request made
// after the move, as if each had run git itself, and N concurrent requests
// cost at most two runs. Every caller for a key must pass the same
// function: a waiter's is not called, the run's leader's is.
type fresh struct {
	mu   sync.Mutex
	keys map[string]*freshKey
}

type freshKey struct {
	running bool
	next    *freshRun // the run that starts when the current one ends
}

type freshRun struct {
	done    chan struct{}
	waiters int // callers sharing this run (for tests)
	res     httpboot.Resolution
	err     error
}

func (f *fresh) do(key string, fn func() (httpboot.Resolution, error)) (httpboot.Resolution, error) {
	f.mu.Lock()
	if f.keys == nil {
		f.keys = map[string]*freshKey{}
	}
	k := f.keys[key]
	if k == nil {
		k = &freshKey{}
		f.keys[key] = k
	}
	if !k.running {
		k.running = true
		f.mu.Unlock()
		r := &freshRun{done: make(chan struct{}), waiters: 1}
		f.run(key, k, r, fn)
		return r.res, r.err
	}
	if k.next == nil {
		k.next = &freshRun{done: make(chan struct{})}
	}
	r := k.next
	r.waiters++
	f.mu.Unlock()
	<-r.done
	return r.res, r.err
}

// run runs r, then hands the key on to the run its waiters are queued
// for, if any, in a new goroutine so that r's own caller returns now.
// A panic in fn becomes every sharer's error, so the key is never left
// running with its waiters stuck.
func (f *fresh) run(key string, k *freshKey, r *freshRun, fn func() (httpboot.Resolution, error)) {
	defer func() {
		if p := recover(); p != nil {
			r.res, r.err = httpboot.Resolution{}, fmt.Errorf("resolving what to boot failed: %v", p)
		}
		close(r.done)
		f.mu.Lock()
		next := k.next
		k.next = nil
		if next == nil {
			k.running = false
			delete(f.keys, key)
			f.mu.Unlock()
			return
		}
		f.mu.Unlock()
		go f.run(key, k, next, fn)
	}()
	r.res, r.err = fn()
}

// pins tracks the commit each node was handed, mirrored in
// refs/onesis/booted/<node>, so that a restarted serve still authorises
// the NFS mounts of running nodes and serves their kernels.
type pins struct {
	repo   *git.Repo
	refs   *refBatch
	mu     sync.Mutex
	byNode map[string]string
	all    map[string]bool // every commit handed out since start, plus booted refs
}

func loadPins(r *git.Repo) (*pins, error) {
	p := &pins{repo: r, refs: &refBatch{repo: r}, byNode: map[string]string{}, all: map[string]bool{}}
	out, err := r.Run("for-each-ref", "--format=%(objectname) %(refname)", BootedPrefix)
	if err != nil {
		return nil, fmt.Errorf("reading the booted refs: %w", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		oid, ref, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		node := strings.TrimPrefix(ref, BootedPrefix)
		p.byNode[node] = oid
		p.all[oid] = true
	}
	return p, nil
}

// record writes refs/onesis/booted/<node> and remembers the pin.
func (p *pins) record(node string, res httpboot.Resolution) error {
	if err := inventory.CheckName(node); err != nil {
		return err
	}
	// The ref names the node; the message (in the reflog, where
	// core.logAllRefUpdates=always keeps one) says what it booted from.
	if err := p.refs.update(BootedPrefix+node, res.Commit, "onesis: booted "+res.From); err != nil {
		return fmt.Errorf("recording %s%s: %w", BootedPrefix, node, err)
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
