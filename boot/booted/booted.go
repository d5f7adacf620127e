// Package booted is the store of what each node booted:
// refs/onesis/booted/<node>, written by serve when a node fetches its boot
// script and read by node list, exports, images, upgrade and rollback. A
// ref keeps its commit (and so the image a running node reads) from
// garbage collection; its reflog message says where the commit came from.
package booted

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

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

// reflogPrefix starts the reflog message of every boot Record writes.
const reflogPrefix = "onesis: booted "

// Boot is one entry of a node's boot history: the node was handed Commit
// at Time, resolved from From ("branch main", "node ref testing"). The
// history has an entry each time the node's booted commit changed; a
// reboot onto the same commit is not one (git logs ref changes only).
type Boot struct {
	Node   string    `json:"node"`
	Time   time.Time `json:"time"`
	Commit string    `json:"commit"`
	From   string    `json:"from,omitempty"`
}

// History returns the boot history of nodes (every node with a booted
// ref when nodes is empty) from the booted refs' reflogs, oldest first
// per node, nodes in name order. A node without a reflog (a ref written
// before reflogs were kept) has its current booted commit, with a zero
// time. Reflog entries expire as git's gc.reflogExpire and
// gc.reflogExpireUnreachable say (see KeepHistory).
func History(r *git.Repo, nodes []string) ([]Boot, error) {
	refs, err := Read(r)
	if err != nil {
		return nil, err
	}
	if len(nodes) == 0 {
		for n := range refs {
			nodes = append(nodes, n)
		}
	}
	sort.Strings(nodes)
	var out []Boot
	for _, n := range nodes {
		if err := inventory.CheckName(n); err != nil {
			return nil, err
		}
		entries, err := readReflog(filepath.Join(r.CommonDir, "logs", Prefix+n), n)
		if err != nil {
			return nil, err
		}
		if len(entries) == 0 {
			if b, ok := refs[n]; ok {
				entries = []Boot{{Node: n, Commit: b.Commit}}
			}
		}
		out = append(out, entries...)
	}
	return out, nil
}

// readReflog parses a reflog file of git's files ref backend, the only
// one git 2.39 has (one entry per line: old and new object names, the
// committer identity, its Unix time and zone, a tab and the message). A
// missing file is an empty history. A repository on the reftable backend
// (git 2.45 and later) would need 'git reflog show' instead.
func readReflog(path, node string) ([]Boot, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the boot history of %s: %w", node, err)
	}
	defer f.Close()
	var out []Boot
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		head, msg, _ := strings.Cut(line, "\t")
		fields := strings.Fields(head)
		// old new name... <email> time zone
		if len(fields) < 5 || !git.IsOID(fields[1]) {
			continue
		}
		secs, err := strconv.ParseInt(fields[len(fields)-2], 10, 64)
		if err != nil || strings.Trim(fields[1], "0") == "" {
			continue // a deletion, or not an entry
		}
		out = append(out, Boot{Node: node, Time: time.Unix(secs, 0).UTC(), Commit: fields[1], From: strings.TrimPrefix(msg, reflogPrefix)})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading the boot history of %s: %w", node, err)
	}
	return out, nil
}

// Expiry settings KeepHistory writes when unset: a booted ref's old
// commits are not reachable from its new one, so git's default would drop
// their entries after 30 days.
var historyExpiry = [][2]string{
	{"gc." + Prefix + "*.reflogExpire", "1.year.ago"},
	{"gc." + Prefix + "*.reflogExpireUnreachable", "1.year.ago"},
}

// KeepHistory sets how long git keeps the boot history, where the site has
// not set it: a year, for audits (the reflog also keeps those commits
// from gc for as long). It returns the keys it set.
func KeepHistory(r *git.Repo) ([]string, error) {
	var set []string
	for _, kv := range historyExpiry {
		if _, ok, err := r.Config(kv[0]); err != nil || ok {
			if err != nil {
				return set, err
			}
			continue
		}
		if err := r.SetConfig(kv[0], kv[1]); err != nil {
			return set, err
		}
		set = append(set, kv[0]+"="+kv[1])
	}
	return set, nil
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
	// Every update creates the ref's reflog (not only under
	// core.logAllRefUpdates=always): History, and 'git onesis audit',
	// read it.
	if err := inventory.CheckName(node); err != nil {
		return err
	}
	if err := w.b.update(Prefix+node, commit, reflogPrefix+from); err != nil {
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
			_, err := b.repo.RunInput(in.Bytes(), "update-ref", "--create-reflog", "-z", "--stdin", "-m", msg)
			if err != nil && len(order) > 1 {
				errs := map[string]error{}
				for _, ref := range order {
					_, errs[ref] = b.repo.Run("update-ref", "--create-reflog", "-m", msg, ref, last[ref].commit)
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
