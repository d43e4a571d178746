package probe

import (
	"context"
	"errors"
	"maps"
	"time"
)

// The resumption_chain check follows a resumption chain: a session from a
// full handshake, resumed, the resumed connection's new ticket resumed in
// turn, and so on. Each resumption carries the original authentication
// (the certificate check) forward, and in TLS 1.2 the master secret too, so
// a server that resumes every link prolongs one session without end. RFC
// 8446 §4.6.1 asks TLS 1.3 servers to bound the chain's total age since
// the full handshake; OpenSSL and stock Go do not.
//
// The store keeps per target and ticket mechanism one link: the newest
// session of the chain, with the chain's origin (the full handshake's time
// on the store's clock). Each probe offers it alongside the replay of
// earlier sessions; when it resumes, the session the resumed connection
// issued becomes the next link (TLS 1.2 without a renewed ticket: the
// link stays) and the chain's age is now minus its origin. When it is
// refused, or there is none, a new chain starts from a session of this
// probe's own full handshakes. The check reports the age of the oldest
// chain the probe saw resumed: the kept one's, else the fresh session's
// (about 0), so a server that bounds chains shows a sawtooth whose top is
// the bound.

// linkOffer is the resumption_chain check's offer of a mechanism's kept
// link, made concurrently with the replay; link is nil when none was kept.
type linkOffer struct {
	link *stored
	done chan struct{}
	a    attempt
	err  error
}

// offerLink starts offering the kept chain link of o's mechanism, when the
// module runs the check and the mechanism is a ticket one; nil otherwise.
// A TLS 1.3 link's connection is read to the server's close, for the new
// tickets of the resumption.
func (h *handshaker) offerLink(ctx context.Context, o *chainOut) *linkOffer {
	store, key := h.sessions, h.key
	m := o.check.Mechanism
	if store == nil || !h.module.HasRisk(RiskResumptionChain) || (m != MechanismSessionTicket && m != MechanismPSK) {
		return nil
	}
	l := &linkOffer{link: store.chainLink(key, m), done: make(chan struct{})}
	if l.link == nil {
		close(l.done)
		return l
	}
	v := o.version
	h.ending.Go(func() { // Run waits for it: no connection outlives the probe
		defer close(l.done)
		l.a, l.err = h.resumeTLSReading(ctx, v, l.link, v == VersionTLS13)
	})
	return l
}

// settleLinkLater settles l in the background: a TLS 1.3 link's offer
// reads to the server's close, a round trip after its verdict, which the
// risk checks' offers before runRisks reads the ages (and Run's wait for
// background work) hide instead of the follow-ups waiting for it.
func (h *handshaker) settleLinkLater(l *linkOffer, o *chainOut, f *fleet) {
	if l == nil {
		return
	}
	h.linking.Add(1)
	h.ending.Go(func() {
		defer h.linking.Done()
		h.settleLink(l, o, f)
	})
}

// settleLink waits for the link offer and decides what the chain is now:
// extended by the resumed connection's newest session, kept (refused by
// another backend than its own, see keepRefused; or lost to the network),
// or restarted. It records the age of the oldest chain seen resumed.
func (h *handshaker) settleLink(l *linkOffer, o *chainOut, f *fleet) {
	store, key := h.sessions, h.key
	if l == nil {
		return
	}
	<-l.done
	m := o.check.Mechanism
	now := h.now()
	age, saw := time.Duration(0), o.resumed()
	if saw {
		age = now.Sub(o.fresh.chainOrigin())
	}
	restart, start := false, o.keep
	switch {
	case l.link == nil:
		restart = true
	case errors.Is(l.err, errAlert) || errors.Is(l.err, errNotOffered):
		restart = true
		h.log.Debug("Resumption chain link refused for good", "mechanism", m, "step", "chain", "addr", h.addr, "err", l.err)
	case l.err != nil:
		h.log.Debug("Offer of the resumption chain link failed; kept", "mechanism", m, "step", "chain", "addr", h.addr, "err", l.err)
	case l.a.resumed:
		origin := l.link.chainOrigin()
		age, saw = max(age, now.Sub(origin)), true
		if next := newestIssued(l.a); next != nil {
			next.origin = origin
			f.label(o.version, next)
			store.setChainLink(key, m, next)
		} else {
			store.linkResumed(key, m)
		}
		h.log.Debug("Resumption chain resumed", "mechanism", m, "step", "chain", "addr", h.addr,
			"chain_age", now.Sub(origin).Round(time.Second), "extended", len(l.a.issued) > 0)
	default:
		r := f.classify(m, 0, l.a)
		if f.keepRefused(l.link, r) {
			h.log.Debug("Resumption chain link refused, kept: its own backend may still resume it", "mechanism", m,
				"step", "chain", "addr", h.addr, "why", r.Why)
			break
		}
		restart = true
		// The refused offer became a full handshake: its session is
		// fresh and, unlike o.keep, offered by nothing else.
		if st := newestIssued(l.a); st != nil {
			f.label(o.version, st)
			start = st
		}
		h.log.Debug("Resumption chain link refused: a new chain starts", "mechanism", m, "step", "chain", "addr", h.addr,
			"chain_age", now.Sub(l.link.chainOrigin()).Round(time.Second), "why", r.Why)
	}
	if restart {
		if !o.resumed() {
			start = nil // a mechanism that resumed nothing starts no chain
		}
		store.setChainLink(key, m, start)
	}
	if saw {
		h.risks.sawChainAge(m, age)
	}
}

// newestIssued returns the last session a connection gave, nil for none.
func newestIssued(a attempt) *stored {
	if len(a.issued) == 0 {
		return nil
	}
	return a.issued[len(a.issued)-1]
}

// chainOrigin returns when the full handshake st descends from ran.
func (st *stored) chainOrigin() time.Time {
	if st.origin.IsZero() {
		return st.obtained
	}
	return st.origin
}

// chainLink returns the kept chain link of key and m, nil when there is
// none or it is past MaxAge: issued, or last resumed, longer ago than that
// (its ticket's age, not its chain's: a link is as old as the resumption
// that issued it, or that last showed it alive).
func (s *Sessions) chainLink(key string, m Mechanism) *stored {
	s.mu.Lock()
	defer s.mu.Unlock()
	ts := s.lookup(key)
	if ts == nil {
		return nil
	}
	st := ts.links[m]
	if st == nil {
		return nil
	}
	alive := st.obtained
	if t := ts.linkResumed[m]; t.After(alive) {
		alive = t
	}
	if !alive.After(s.now().Add(-s.maxAge)) {
		delete(ts.links, m)
		delete(ts.linkResumed, m)
		return nil
	}
	return st
}

// linkResumed notes that the chain link of key and m resumed now without
// a new session to take its place.
func (s *Sessions) linkResumed(key string, m Mechanism) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ts := s.lookup(key); ts != nil && ts.links[m] != nil {
		ts.linkResumed[m] = s.now()
	}
}

// setChainLink keeps st as the chain link of key and m; nil drops it.
func (s *Sessions) setChainLink(key string, m Mechanism, st *stored) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st == nil {
		if ts := s.lookup(key); ts != nil {
			delete(ts.links, m)
			delete(ts.linkResumed, m)
		}
		return
	}
	ts := s.target(key)
	ts.links[m] = st
	delete(ts.linkResumed, m)
}

func (s *riskSink) sawChainAge(m Mechanism, age time.Duration) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.chainAges == nil {
		s.chainAges = map[Mechanism]time.Duration{}
	}
	s.chainAges[m] = age
}

func (s *riskSink) chainMaxAges() map[Mechanism]time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.chainAges)
}
