package resolve

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/onesis/git-onesis/boot/httpboot"
)

// waitWaiters blocks until n callers are queued for key's next run.
func waitWaiters(t *testing.T, f *fresh, key string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		f.mu.Lock()
		got := 0
		if k := f.keys[key]; k != nil && k.next != nil {
			got = k.next.waiters
		}
		f.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d callers queued for the next run, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestFreshCoalesces: callers that arrive while a resolution runs share
// one further run, started after they all arrived, and see what it saw,
// not what the run in progress saw.
func TestFreshCoalesces(t *testing.T) {
	var f fresh
	var calls, state atomic.Int64
	state.Store(1)
	release := make(chan struct{})
	fn := func() (httpboot.Resolution, error) {
		n := calls.Add(1)
		v := state.Load() // read "the branch" first, as git would
		if n == 1 {
			<-release // the first run is slow
		}
		return httpboot.Resolution{Commit: fmt.Sprint(v)}, nil
	}
	first := make(chan httpboot.Resolution)
	go func() { r, _ := f.do("default", fn); first <- r }()
	for calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	state.Store(2) // the branch moves while the first run is in progress
	const n = 50
	var wg sync.WaitGroup
	got := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() { defer wg.Done(); r, _ := f.do("default", fn); got[i] = r.Commit }()
	}
	waitWaiters(t, &f, "default", n)
	close(release)
	wg.Wait()
	if r := <-first; r.Commit != "1" {
		t.Errorf("first caller got %q, want 1 (what its own run saw)", r.Commit)
	}
	for i, c := range got {
		if c != "2" {
			t.Fatalf("caller %d made after the move got %q, want 2: it was answered from a run that started before it asked", i, c)
		}
	}
	if c := calls.Load(); c != 2 {
		t.Errorf("%d runs for 1+%d callers, want 2", c, n)
	}
	f.mu.Lock()
	left := len(f.keys)
	f.mu.Unlock()
	if left != 0 {
		t.Errorf("%d keys left after every run ended, want 0", left)
	}
}

// TestFreshKeysAndErrors: different keys never share a run, errors go to
// every caller of their run, and the next call runs again.
func TestFreshKeysAndErrors(t *testing.T) {
	var f fresh
	boom := errors.New("boom")
	tests := []struct {
		key  string
		res  string
		err  error
		want string
	}{
		{"default", "a", nil, "a"},
		{"ref\x00main", "b", nil, "b"},
		{"ref\x00main", "", boom, ""},
		{"ref\x00main", "c", nil, "c"},
		{"panics", "panic", nil, ""},
		{"panics", "d", nil, "d"}, // the key is not left running
	}
	for _, tc := range tests {
		r, err := f.do(tc.key, func() (httpboot.Resolution, error) {
			if tc.res == "panic" {
				panic("boom")
			}
			return httpboot.Resolution{Commit: tc.res}, tc.err
		})
		if tc.res == "panic" {
			if err == nil || !strings.Contains(err.Error(), "boom") {
				t.Errorf("do(%q) with a panic: %v; want an error saying so", tc.key, err)
			}
			continue
		}
		if !errors.Is(err, tc.err) || r.Commit != tc.want {
			t.Errorf("do(%q) = %q, %v; want %q, %v", tc.key, r.Commit, err, tc.want, tc.err)
		}
	}
}
