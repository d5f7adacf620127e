package integrity

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// A Walkable is a store the background verifier walks.
type Walkable interface {
	// List returns the names of the store's entries now.
	List() ([]string, error)
	// Verify checks one entry. full re-hashes it, through lim; otherwise
	// only an entry verified before whose identity changed since is
	// hashed. A mismatch is handled (moved aside, rebuilt, reported) by
	// the store; the error is for what could not be done.
	Verify(ctx context.Context, name string, full bool, lim *Limiter) error
}

// Background re-verifies stores until ctx is done: a cheap sweep (a
// stat per file, a hash only for a verified file whose identity changed)
// every Sweep, and between sweeps a full re-hash of every file, read at
// Rate bytes per second; a full pass starts at most every MinPass.
type Background struct {
	Rate    int64 // bytes per second; <= 0: Run returns at once
	Sweep   time.Duration
	MinPass time.Duration
	Stores  []Walkable
	Log     *slog.Logger
}

// Run walks until ctx is done. It holds no lock of the stores between
// files, so reads never wait for it.
func (b *Background) Run(ctx context.Context) {
	if b.Rate <= 0 || len(b.Stores) == 0 {
		return
	}
	sweep, minPass := b.Sweep, b.MinPass
	if sweep <= 0 {
		sweep = 30 * time.Second
	}
	if minPass <= 0 {
		minPass = 10 * time.Minute
	}
	lim := NewLimiter(b.Rate)
	lastSweep := time.Time{}
	maybeSweep := func() {
		if time.Since(lastSweep) < sweep {
			return
		}
		b.walk(ctx, false, lim, nil)
		lastSweep = time.Now()
	}
	for ctx.Err() == nil {
		start := time.Now()
		maybeSweep()
		b.walk(ctx, true, lim, maybeSweep)
		for ctx.Err() == nil && time.Since(start) < minPass {
			wait := min(sweep-time.Since(lastSweep), minPass-time.Since(start))
			if wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-ctx.Done():
				case <-t.C:
				}
				t.Stop()
			}
			maybeSweep()
		}
	}
}

// walk visits every entry of every store once; between entries of a full
// walk it calls between (the cheap sweeps).
func (b *Background) walk(ctx context.Context, full bool, lim *Limiter, between func()) {
	for _, s := range b.Stores {
		names, err := s.List()
		if err != nil {
			b.Log.Warn("integrity: cannot list a store to re-verify it", "err", err)
			continue
		}
		for _, n := range names {
			if ctx.Err() != nil {
				return
			}
			if between != nil {
				between()
			}
			if err := s.Verify(ctx, n, full, lim); err != nil && !errors.Is(err, context.Canceled) {
				b.Log.Warn("integrity: re-verifying a served file failed", "name", n, "err", err)
			}
		}
	}
}
