package httpboot

import (
	"fmt"
	"strings"
	"sync"
	"time"
)

// IntegrityEvent is a served file found not to be the object git names
// (see docs/serve.md, "Integrity of served files"): /status lists the
// latest, /metrics counts them by store.
type IntegrityEvent struct {
	Time       time.Time `json:"time"`
	Store      string    `json:"store"` // "nfs", "kernel", "initrd"
	Name       string    `json:"name"`  // blob id or cache key
	Path       string    `json:"path"`
	Problem    string    `json:"problem"`
	Quarantine string    `json:"quarantine,omitempty"` // where the bad file went
	Repaired   bool      `json:"repaired"`
	Error      string    `json:"error,omitempty"` // why it was not repaired
}

// IntegrityStores are the stores integrity failures are counted for
// (each appears in /metrics, 0 until one fails).
var IntegrityStores = []string{"initrd", "kernel", "nfs"}

// maxIntegrityEvents is how many events /status keeps (the newest).
const maxIntegrityEvents = 50

type integrityLog struct {
	mu     sync.Mutex
	events []IntegrityEvent
	counts map[string]uint64
}

// RecordIntegrity counts ev and keeps it for /status.
func (s *Status) RecordIntegrity(ev IntegrityEvent) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	l := &s.integrity
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.counts == nil {
		l.counts = map[string]uint64{}
	}
	l.counts[label(ev.Store)]++
	l.events = append(l.events, ev)
	if len(l.events) > maxIntegrityEvents {
		l.events = append(l.events[:0], l.events[len(l.events)-maxIntegrityEvents:]...)
	}
}

// Integrity returns the newest integrity events, oldest first.
func (s *Status) Integrity() []IntegrityEvent {
	s.integrity.mu.Lock()
	defer s.integrity.mu.Unlock()
	return append([]IntegrityEvent(nil), s.integrity.events...)
}

// IntegrityFailures returns how many integrity events store had.
func (s *Status) IntegrityFailures(store string) uint64 {
	s.integrity.mu.Lock()
	defer s.integrity.mu.Unlock()
	return s.integrity.counts[label(store)]
}

// writeIntegrityMetrics appends onesis_served_integrity_failures_total.
func (s *Status) writeIntegrityMetrics(b *strings.Builder) {
	s.integrity.mu.Lock()
	defer s.integrity.mu.Unlock()
	b.WriteString("# HELP onesis_served_integrity_failures_total Served files found not to be the object git names, by store.\n")
	b.WriteString("# TYPE onesis_served_integrity_failures_total counter\n")
	stores := IntegrityStores
	for st := range s.integrity.counts {
		if !strings.Contains(" "+strings.Join(IntegrityStores, " ")+" ", " "+st+" ") {
			stores = append(append([]string(nil), stores...), st)
		}
	}
	for _, st := range stores {
		fmt.Fprintf(b, "onesis_served_integrity_failures_total{store=%q} %d\n", st, s.integrity.counts[st])
	}
}
