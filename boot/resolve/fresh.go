package resolve

import (
	"fmt"
	"sync"

	"github.com/onesis/git-onesis/boot/httpboot"
)

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
