package probe

import (
	"container/list"
	"crypto/tls"
	"slices"
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
	window     time.Duration
	// lru holds the targets, the one that last obtained a session first.
	// Only what keeps something of a probe that obtained a session (add,
	// keepBackend, setChainLink, learnKeyNames, and markResumed, which
	// follows an offer resumed) inserts or moves one, through target:
	// looking up a target (every probe does, failed ones too; markBalanced
	// and noteHandRefused) never evicts another.
	lru   *list.List // of *targetSessions
	byKey map[string]*list.Element
}

// SessionsOptions bound a Sessions store.
type SessionsOptions struct {
	MaxTargets int           // bound on targets, the least recently added to go first (default 10000)
	MaxAge     time.Duration // sessions older than this are dropped (default 8 days)
	PerKind    int           // sessions kept per target and mechanism (default 8)
	// ResumedWindow is how long a mechanism that resumed counts as
	// resuming behind a balancer whose backends the probe's offers missed
	// (default 15m: the key history's active window).
	ResumedWindow time.Duration
	Now           func() time.Time
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
	if o.ResumedWindow <= 0 {
		o.ResumedWindow = 15 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Sessions{now: o.Now, maxTargets: o.MaxTargets, maxAge: o.MaxAge, perKind: o.PerKind,
		window: o.ResumedWindow, lru: list.New(), byKey: map[string]*list.Element{}}
}

// stored is one earlier session: a TLS 1.2 session ID, or a TLS 1.2 ticket
// or TLS 1.3 session crypto/tls can resume.
type stored struct {
	obtained time.Time // on the store's clock: ages are measured with it
	received time.Time // wall time crypto/tls received a TLS 1.3 session
	s12      *session12
	cs       *tls.ClientSessionState
	// key is the fingerprint of the ticket key that issued the session,
	// 0 when its ticket names none (session IDs, stateful or unnamed
	// tickets): behind a balancer, the backend it belongs to.
	key    uint64
	keyLen int // the key name's length in the ticket
	// origin is, on the store's clock, when the full handshake this
	// session descends from through resumptions ran (see chain.go); zero
	// for a session of a full handshake, whose origin is obtained.
	origin time.Time
	// confirmed is when a probe last saw the session's key still issuing:
	// a TLS 1.2 ticket stand-in resumed without renewal (standin.go).
	// Written and read under the store's lock only (Sessions.oneServer).
	confirmed time.Time
}

// ticket returns the ticket a session is resumed with, nil for a session ID.
func (st *stored) ticket() []byte {
	if st.cs == nil {
		return nil
	}
	t, _, err := st.cs.ResumptionState()
	if err != nil {
		return nil
	}
	return t
}

// maxBackends bounds the backends whose newest session is kept per target
// and mechanism.
const maxBackends = 16

type targetSessions struct {
	key   string
	kinds map[Mechanism][]*stored // oldest first
	// backends holds, per mechanism, the newest session of every ticket
	// key seen: behind a balancer, one session per backend, so that the
	// backend a connection lands on finds one of its own.
	backends map[Mechanism]map[uint64]*stored
	// resumed is when each mechanism last resumed an offer.
	resumed map[Mechanism]time.Time
	// nameLen is the key-name length earlier probes learnt per version.
	// Behind a balancer a probe may see no two tickets of one backend, and
	// so no name; without the length its sessions are labeled with no key
	// and nothing else would carry it to the next probe.
	nameLen map[uint16]int
	// links holds, per mechanism, the newest link of the resumption
	// chain the resumption_chain check extends (see chain.go).
	links map[Mechanism]*stored
	// linkResumed is when each mechanism's link last resumed: a TLS 1.2
	// ticket resumed without renewal stays the link, and it is kept for
	// as long as the server keeps resuming it, not MaxAge after it was
	// issued.
	linkResumed map[Mechanism]time.Time
	// standIns holds, per mechanism, the session the next probe offers
	// instead of a full handshake (see standin.go).
	standIns map[Mechanism]*standIn
	// standInRenewed is when a TLS 1.2 ticket stand-in was last renewed.
	standInRenewed time.Time
	// balanced is when a probe last showed several backends.
	balanced time.Time
	// handRefused is when a probe last saw the server refuse the
	// hand-built ticket offer and resume crypto/tls's of the same ticket.
	handRefused time.Time
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
	ts := &targetSessions{key: key, kinds: map[Mechanism][]*stored{},
		backends: map[Mechanism]map[uint64]*stored{}, resumed: map[Mechanism]time.Time{},
		nameLen: map[uint16]int{}, links: map[Mechanism]*stored{},
		linkResumed: map[Mechanism]time.Time{}, standIns: map[Mechanism]*standIn{}}
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

// forget removes a session the server no longer resumes: once refused by
// the server that issued it, a session is not accepted again.
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
	if ts.backends[m][st.key] == st {
		delete(ts.backends[m], st.key)
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
	if slices.Contains(ts.kinds[m], st) {
		return // a stand-in resumed again: kept already, at its own age
	}
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

// perBackend returns the newest kept session of each ticket key for key and
// m, newest first, after dropping those past MaxAge.
func (s *Sessions) perBackend(key string, m Mechanism) []*stored {
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
	var out []*stored
	for k, st := range ts.backends[m] {
		if !st.obtained.After(cutoff) {
			delete(ts.backends[m], k)
			continue
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b *stored) int { return b.obtained.Compare(a.obtained) })
	return out
}

// keepBackend keeps st as the newest session of its ticket key. Sessions
// whose ticket names no key are not kept here: nothing tells their backend.
func (s *Sessions) keepBackend(key string, m Mechanism, st *stored) {
	if s == nil || st == nil || st.key == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ts := s.target(key)
	bs := ts.backends[m]
	if bs == nil {
		bs = map[uint64]*stored{}
		ts.backends[m] = bs
	}
	if old, ok := bs[st.key]; ok && old.obtained.After(st.obtained) {
		return
	}
	bs[st.key] = st
	for len(bs) > maxBackends {
		var oldest uint64
		for k, x := range bs {
			if o, ok := bs[oldest]; !ok || x.obtained.Before(o.obtained) {
				oldest = k
			}
		}
		delete(bs, oldest)
	}
}

// markResumed notes that m resumed an offer now.
func (s *Sessions) markResumed(key string, m Mechanism) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.target(key).resumed[m] = s.now()
}

// resumedWithin returns how long ago m last resumed an offer for key, and
// whether that is within the store's ResumedWindow.
func (s *Sessions) resumedWithin(key string, m Mechanism) (time.Duration, bool) {
	if s == nil {
		return 0, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ts := s.lookup(key)
	if ts == nil {
		return 0, false
	}
	at, ok := ts.resumed[m]
	if !ok {
		return 0, false
	}
	ago := s.now().Sub(at)
	return ago, ago <= s.window
}

// oneServer reports whether earlier probes of key, as far as they tell,
// met one server (or backends sharing one key and cache): a mechanism
// resumed within the window, no probe within it showed several backends,
// and the sessions obtained within the window for both ticket mechanisms
// (TLS 1.2 tickets and TLS 1.3 PSKs, whose full handshakes are connections
// of their own) name one and the same backend key: the key issuing now,
// not one a rotation left behind (nginx's previous key, HAProxy's ring). Less tells too little: tickets without a
// key name (Go servers) name no backend, and a balancer that spreads
// connections in turn can send one chain's full handshakes to the same
// backend on every probe, in step with the other chains; a probe taken for
// one server's replays beside its first offers, which shifts that step.
func (s *Sessions) oneServer(key string) bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ts := s.lookup(key)
	if ts == nil || s.now().Sub(ts.balanced) <= s.window {
		return false
	}
	recent := false
	for _, at := range ts.resumed {
		recent = recent || s.now().Sub(at) <= s.window
	}
	keys := map[uint64]bool{}
	for _, m := range []Mechanism{MechanismSessionTicket, MechanismPSK} {
		issuing := 0
		for k, st := range ts.backends[m] {
			// Only the keys issuing now: after a rotation the old key's
			// sessions stay kept (and may still resume) for MaxAge.
			if s.now().Sub(st.obtained) <= s.window || s.now().Sub(st.confirmed) <= s.window {
				keys[k] = true
				issuing++
			}
		}
		if issuing == 0 {
			return false
		}
	}
	return recent && len(keys) == 1
}

// markBalanced notes that a probe of key showed several backends now. It
// neither adds nor moves a target (see lru): without kept sessions there
// is no one-server verdict to withhold.
func (s *Sessions) markBalanced(key string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ts := s.lookup(key); ts != nil {
		ts.balanced = s.now()
	}
}

// noteHandRefused notes that the server of key refused the hand-built
// ticket offer and resumed crypto/tls's of the same ticket. Like
// markBalanced it neither adds nor moves a target.
func (s *Sessions) noteHandRefused(key string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ts := s.lookup(key); ts != nil {
		ts.handRefused = s.now()
	}
}

// handBuilds reports whether the ticket offer to key may be hand-built:
// not while a refusal of it is remembered (see noteHandRefused), for
// MaxAge, after which the server may have changed.
func (s *Sessions) handBuilds(key string) bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ts := s.lookup(key)
	return ts == nil || ts.handRefused.IsZero() || s.now().Sub(ts.handRefused) > s.maxAge
}

// keyNameLen returns the key-name length earlier probes of key learnt for
// version, 0 when none did.
func (s *Sessions) keyNameLen(key string, version uint16) int {
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ts := s.lookup(key); ts != nil {
		return ts.nameLen[version]
	}
	return 0
}

// learnKeyNames keeps the key-name lengths a probe's tickets showed.
func (s *Sessions) learnKeyNames(key string, tickets map[uint16]Tickets) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for v, t := range tickets {
		if t.KeyNameBytes > 0 {
			s.target(key).nameLen[v] = t.KeyNameBytes
		}
	}
}

// keptTickets returns the tickets of the sessions kept for key: compared
// with a probe's own, they show the key-name length when the probe met no
// backend twice.
func (s *Sessions) keptTickets(key string) []ticketSeen {
	var ts []ticketSeen
	for m, v := range map[Mechanism]uint16{MechanismSessionTicket: VersionTLS12, MechanismPSK: VersionTLS13} {
		for _, st := range slices.Concat(s.oldest(key, m), s.perBackend(key, m)) {
			if raw := st.ticket(); raw != nil {
				ts = append(ts, ticketSeen{version: v, raw: raw})
			}
		}
	}
	return ts
}
