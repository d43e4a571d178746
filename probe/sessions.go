package probe

import (
	"container/list"
	"crypto/tls"
	"sync"
	"time"
)

// Sessions keeps a few of the exporter's own earlier sessions per target, at
// spread-out ages, so that each probe can offer an old one and measure how
// long the server keeps resuming: the forward-secrecy exposure window, for
// every server, whether or not its tickets name their key.
//
// Sessions hold resumption secrets. They stay in memory, are never written
// anywhere, and nothing of them reaches a Result, a log line or a metric.
type Sessions struct {
	mu         sync.Mutex
	now        func() time.Time
	maxTargets int
	maxAge     time.Duration
	perKind    int
	// lru holds the targets, the one that last obtained a session first.
	// Only add inserts or moves one: looking up a target (every probe
	// does, failed ones too) never evicts another.
	lru   *list.List // of *targetSessions
	byKey map[string]*list.Element
}

// SessionsOptions bound a Sessions store.
type SessionsOptions struct {
	MaxTargets int           // bound on targets, the least recently added to go first (default 10000)
	MaxAge     time.Duration // sessions older than this are dropped (default 8 days)
	PerKind    int           // sessions kept per target and mechanism (default 8)
	Now        func() time.Time
}

// NewSessions returns an empty store.
func NewSessions(o SessionsOptions) *Sessions {
	if o.MaxTargets <= 0 {
		o.MaxTargets = 10000
	}
	if o.MaxAge <= 0 {
		o.MaxAge = 8 * 24 * time.Hour
	}
	if o.PerKind < 2 {
		o.PerKind = 8
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Sessions{now: o.Now, maxTargets: o.MaxTargets, maxAge: o.MaxAge, perKind: o.PerKind,
		lru: list.New(), byKey: map[string]*list.Element{}}
}

// stored is one earlier session: a TLS 1.2 session ID or ticket, or a TLS
// 1.3 session crypto/tls can resume.
type stored struct {
	obtained time.Time // on the store's clock: ages are measured with it
	received time.Time // wall time crypto/tls received a TLS 1.3 session
	s12      *session12
	s13      *tls.ClientSessionState
}

type targetSessions struct {
	key   string
	kinds map[Mechanism][]*stored // oldest first
}

// clock returns the time source ages are measured with.
func (s *Sessions) clock() func() time.Time {
	if s == nil {
		return time.Now
	}
	return s.now
}

// Len returns how many targets the store holds sessions for.
func (s *Sessions) Len() int {
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lru.Len()
}

// lookup returns the sessions kept for key, nil when there are none.
func (s *Sessions) lookup(key string) *targetSessions {
	if e, ok := s.byKey[key]; ok {
		return e.Value.(*targetSessions)
	}
	return nil
}

// target returns the sessions kept for key, creating them, and makes key
// the most recent, evicting the least recent target beyond MaxTargets.
func (s *Sessions) target(key string) *targetSessions {
	if e, ok := s.byKey[key]; ok {
		s.lru.MoveToFront(e)
		return e.Value.(*targetSessions)
	}
	ts := &targetSessions{key: key, kinds: map[Mechanism][]*stored{}}
	s.byKey[key] = s.lru.PushFront(ts)
	for s.lru.Len() > s.maxTargets {
		old := s.lru.Back()
		s.lru.Remove(old)
		delete(s.byKey, old.Value.(*targetSessions).key)
	}
	return ts
}

// oldest returns the earlier sessions for key and m, oldest first, after
// dropping those past MaxAge.
func (s *Sessions) oldest(key string, m Mechanism) []*stored {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ts := s.lookup(key)
	if ts == nil {
		return nil
	}
	cutoff := s.now().Add(-s.maxAge)
	kept := ts.kinds[m][:0]
	for _, st := range ts.kinds[m] {
		if st.obtained.After(cutoff) {
			kept = append(kept, st)
		}
	}
	ts.kinds[m] = kept
	return append([]*stored(nil), kept...)
}

// forget removes a session the server no longer resumes: once refused, a
// session is not accepted again.
func (s *Sessions) forget(key string, m Mechanism, st *stored) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ts := s.lookup(key)
	if ts == nil {
		return
	}
	for i, x := range ts.kinds[m] {
		if x == st {
			ts.kinds[m] = append(ts.kinds[m][:i:i], ts.kinds[m][i+1:]...)
			return
		}
	}
}

// add keeps a fresh session. When the store is full it drops the middle
// session whose removal leaves the smallest gap relative to its age, so the
// kept ages stay roughly geometric: minutes, hours, days.
func (s *Sessions) add(key string, m Mechanism, st *stored) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ts := s.target(key)
	list := append(ts.kinds[m], st)
	if len(list) > s.perKind {
		now := s.now()
		drop, best := -1, 0.0
		for i := 1; i < len(list)-1; i++ {
			older := now.Sub(list[i-1].obtained)
			gap := list[i+1].obtained.Sub(list[i-1].obtained)
			if r := float64(gap) / float64(max(older, time.Nanosecond)); drop < 0 || r < best {
				drop, best = i, r
			}
		}
		list = append(list[:drop:drop], list[drop+1:]...)
	}
	ts.kinds[m] = list
}
