package invref

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/onesis/git-onesis/boot/inventory"
	"github.com/onesis/git-onesis/internal/git"
)

// Watcher keeps the current inventory, reloading it when Ref moves. A bad
// edit (a commit whose nodes file does not parse or validate) keeps the
// last good inventory and is logged once with the commit and file:line.
type Watcher struct {
	repo     *git.Repo
	log      *slog.Logger
	cur      atomic.Pointer[inventory.Inventory]
	mu       sync.Mutex
	head     string // last head seen, good or bad
	lastErr  error
	onChange []func(*inventory.Inventory)
}

// NewWatcher loads the inventory once. An inventory that cannot be loaded
// at start is an error: serve must not start with a broken inventory.
func NewWatcher(r *git.Repo, log *slog.Logger) (*Watcher, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	head, err := Head(r)
	if err != nil {
		return nil, err
	}
	inv, err := LoadAt(r, head)
	if err != nil {
		return nil, err
	}
	w := &Watcher{repo: r, log: log, head: head}
	w.cur.Store(inv)
	return w, nil
}

// Current returns the last good inventory. Safe for concurrent use.
func (w *Watcher) Current() *inventory.Inventory { return w.cur.Load() }

// OnChange registers f to be called with each newly loaded inventory.
func (w *Watcher) OnChange(f func(*inventory.Inventory)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.onChange = append(w.onChange, f)
}

// Err returns the error of the last reload, nil if it was good.
func (w *Watcher) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lastErr
}

// Poll checks Ref once and reloads if it moved. It reports whether a new
// inventory was installed; err is the reason a moved ref was rejected.
func (w *Watcher) Poll() (changed bool, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	head, err := Head(w.repo)
	if err != nil {
		w.log.Warn("inventory: cannot read the ref; keeping the last good inventory", "ref", Ref, "err", err)
		return false, err
	}
	if head == w.head {
		return false, w.lastErr
	}
	w.head = head
	inv, err := LoadAt(w.repo, head)
	if err != nil {
		w.lastErr = err
		w.log.Error("inventory: bad edit ignored; keeping the last good inventory",
			"ref", Ref, "commit", head, "kept", w.cur.Load().Commit, "err", err.Error())
		return false, err
	}
	w.lastErr = nil
	w.cur.Store(inv)
	w.log.Info("inventory: reloaded", "ref", Ref, "commit", head, "nodes", len(inv.Nodes))
	for _, f := range w.onChange {
		f(inv)
	}
	return true, nil
}

// Run polls every interval until ctx is done.
func (w *Watcher) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.Poll()
		}
	}
}
