package integrity

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Memo remembers which file identities were verified, by name, and makes
// concurrent verifications of one name hash once (single flight).
type Memo[K comparable] struct {
	mu      sync.Mutex
	ok      map[K]Identity
	flights map[K]*flight
}

type flight struct {
	done chan struct{}
	id   Identity
	err  error
}

// NewMemo returns an empty memo.
func NewMemo[K comparable]() *Memo[K] {
	return &Memo[K]{ok: map[K]Identity{}, flights: map[K]*flight{}}
}

// racyWindow: a file whose ctime is this close to the start of its hash
// could change again within the same timestamp tick without its ctime
// moving (git's "racy clean" problem); it is not remembered, so its next
// open hashes it again.
const racyWindow = time.Second

// Verified reports whether k was verified with identity id.
func (m *Memo[K]) Verified(k K, id Identity) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.ok[k]
	return ok && v == id
}

// Known reports whether k has a remembered identity, and which.
func (m *Memo[K]) Known(k K) (Identity, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.ok[k]
	return v, ok
}

// Forget drops what is remembered of k.
func (m *Memo[K]) Forget(k K) {
	m.mu.Lock()
	delete(m.ok, k)
	m.mu.Unlock()
}

// Verify returns nil when the file of identity id was verified as k,
// else runs check (hashing the caller's descriptor; at most one check
// per k at a time: a concurrent caller with the same identity waits for
// the running one and shares its result) and remembers id when it
// succeeds.
func (m *Memo[K]) Verify(k K, id Identity, check func() error) error {
	for {
		m.mu.Lock()
		if v, ok := m.ok[k]; ok && v == id {
			m.mu.Unlock()
			return nil
		}
		if f := m.flights[k]; f != nil {
			m.mu.Unlock()
			<-f.done
			if f.id == id {
				return f.err
			}
			continue // another identity was checked: check ours
		}
		f := &flight{done: make(chan struct{}), id: id}
		m.flights[k] = f
		m.mu.Unlock()
		start := time.Now()
		f.err = check()
		m.mu.Lock()
		delete(m.flights, k)
		m.rememberLocked(k, id, start, f.err == nil)
		m.mu.Unlock()
		close(f.done)
		return f.err
	}
}

// Remember records the outcome of a hash of k's file of identity id
// begun at start, made outside Verify (the background verifier, which
// must never make a read wait for its paced hash).
func (m *Memo[K]) Remember(k K, id Identity, start time.Time, ok bool) {
	m.mu.Lock()
	m.rememberLocked(k, id, start, ok)
	m.mu.Unlock()
}

func (m *Memo[K]) rememberLocked(k K, id Identity, start time.Time, ok bool) {
	switch {
	case ok && time.Unix(0, id.Ctime).Before(start.Add(-racyWindow)):
		m.ok[k] = id
	case !ok:
		delete(m.ok, k)
	}
}

// Limiter paces reads to a rate in bytes per second (a token bucket
// holding up to a second's worth). A nil Limiter does not limit.
type Limiter struct {
	mu     sync.Mutex
	rate   float64
	tokens float64
	last   time.Time
}

// NewLimiter returns a limiter of rate bytes per second; nil for rate <= 0.
func NewLimiter(rate int64) *Limiter {
	if rate <= 0 {
		return nil
	}
	return &Limiter{rate: float64(rate), last: time.Now()}
}

// Wait blocks until n more bytes may be read, or ctx is done.
func (l *Limiter) Wait(ctx context.Context, n int) error {
	if l == nil {
		return ctx.Err()
	}
	l.mu.Lock()
	now := time.Now()
	l.tokens = min(l.tokens+now.Sub(l.last).Seconds()*l.rate, l.rate)
	l.last = now
	l.tokens -= float64(n)
	var d time.Duration
	if l.tokens < 0 {
		d = time.Duration(-l.tokens / l.rate * float64(time.Second))
	}
	l.mu.Unlock()
	if d == 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ParseRate reads a byte rate as git reads an integer: digits with an
// optional k, m or g suffix (case-insensitive, powers of 1024). "0"
// means off.
func ParseRate(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	if t != "" {
		switch t[len(t)-1] {
		case 'k', 'K':
			mult, t = 1<<10, t[:len(t)-1]
		case 'm', 'M':
			mult, t = 1<<20, t[:len(t)-1]
		case 'g', 'G':
			mult, t = 1<<30, t[:len(t)-1]
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is not a rate in bytes per second (digits with an optional k, m or g suffix; 0 = off)", s)
	}
	return n * mult, nil
}

// DefaultRate is the background re-verification rate when none is set:
// 32 MiB/s re-reads a 100 GiB store in under an hour while leaving most
// of a disk's bandwidth to the nodes.
const DefaultRate = 32 << 20
