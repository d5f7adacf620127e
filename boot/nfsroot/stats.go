package nfsroot

import "sync/atomic"

// Stats are counters for /status and /metrics, since the server started.
type Stats struct {
	MountsGranted  uint64 // MOUNT calls answered with an export
	MountsRefused  uint64 // MOUNT calls refused (not authorized, bad path, missing commit)
	Denied         uint64 // replies the interposer cut down or turned into NFS3ERR_ACCES
	HandlesRefused uint64 // handles of exports the connection's client may not use
	Connections    int64  // client connections open now
	ConnsRefused   uint64 // connections closed because their client was over its limit
	Commits        int    // commit indexes in memory
	// IntegrityFailures counts stored blobs found not to be what their
	// name says (each moved aside and rebuilt, or its reads failed).
	IntegrityFailures uint64
}

type counters struct {
	mountsGranted, mountsRefused, denied, handlesRefused, refusedConns atomic.Uint64
	conns                                                              atomic.Int64
}

// Stats returns the current counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	commits := len(s.indexes)
	s.mu.Unlock()
	return Stats{
		MountsGranted:  s.stats.mountsGranted.Load(),
		MountsRefused:  s.stats.mountsRefused.Load(),
		Denied:         s.stats.denied.Load(),
		HandlesRefused: s.stats.handlesRefused.Load(),
		Connections:    s.stats.conns.Load(),
		ConnsRefused:   s.stats.refusedConns.Load(),
		Commits:        commits,

		IntegrityFailures: s.store.check.failures.Load(),
	}
}
