package probe

import (
	"bytes"
	"context"
	"time"
)

// A stand-in is a session kept from an earlier probe that a later probe
// offers in place of a full handshake. Its offer measures resumption as a
// reconnecting client makes it, and, for TLS 1.3, its resumed connection
// issues the tickets the probe reports and the next stand-in: steady state
// costs the server one resumed handshake per check instead of a full and a
// resumed one.
//
// A TLS 1.2 ticket stands in only while the server resumes it without
// renewing it: OpenSSL renews a ticket of a key that no longer issues, so
// an unrenewed resumption says the ticket's key, lifetime hint and the
// secrets ticket_weakness judges are still what a full handshake would
// show. A session ID and an unrenewed ticket grow no younger, so they
// stand in for at most half the TLS 1.2 lifetime hint (the session
// timeout of OpenSSL-based servers), keeping a second session in the age
// ladder within the server's lifetime.
//
// What a stand-in probe reports, per fact:
//   - the verdict, ResumedHandshake: its own offer, as on any probe;
//   - TLS 1.3 lifetime hint, max_early_data, format and key name: the
//     NewSessionTickets of the resumed connection, read afresh (servers
//     send them after a resumption too; the key that issues them is the
//     key issuing now);
//   - TLS 1.2 lifetime hint, format and key name: the stand-in ticket's,
//     as its full handshake showed them (see above);
//   - FullHandshake: the earlier probe's, with FullHandshakeAt saying when
//     it ran (tls_resumption_full_handshake_timestamp_seconds), so that
//     nothing stale passes unseen. Module.FullHandshakeInterval bounds it:
//     a chain of stand-ins older than that makes a full handshake again;
//   - version support: the resumed handshake completed at the version.
//
// A stand-in is used only when earlier probes met one server
// (Sessions.oneServer): behind a balancer the full handshake is what names
// the backend that answered. A stand-in the server refuses, fails to
// offer, or resumes without issuing a ticket (psk) is dropped, and the
// check runs as on a first probe: a full handshake and an offer of its
// session. The refusal costs that probe one connection more than before;
// a refusal of a session known to have expired is not made at all.
type standIn struct {
	st *stored
	// full is when the full handshake the session descends from ran (the
	// store's clock), flight its first-flight time.
	full   time.Time
	flight time.Duration
	// lifetime bounds the stand-in's age (see keepStandIn); 0 when
	// nothing but the interval does.
	lifetime time.Duration
	// hand and tickets: a TLS 1.2 ticket's session as a hand-built offer
	// needs it (Ticketbleed, ticket_weakness), and the ticket as its full
	// handshake showed it.
	hand    *session12
	tickets []ticketSeen
}

// standInChain makes the check's first offer with its stand-in, when there
// is one to use. done: the offer resumed and out is the check's outcome.
// Otherwise out carries the replay and chain-link offers started beside it
// (to be waited for by the follow-ups) and the check runs its full
// handshake.
func (h *handshaker) standInChain(ctx context.Context, m Mechanism) (out chainOut, done bool) {
	out = chainOut{check: Check{Mechanism: m}, version: m.Version()}
	si := h.usableStandIn(m)
	if si == nil {
		return out, false
	}
	out.check.StandIn, out.check.Issued, out.check.Completed = true, true, true
	out.check.FullHandshake, out.check.FullHandshakeAt = si.flight, si.full
	out.fresh, out.keep, out.hand = si.st, si.st, si.hand
	var pre *preDialed
	if m == MechanismPSK && h.risks != nil && h.module.HasRisk(RiskPSKWithoutDHE) {
		// The psk_ke offer carries the new ticket the stand-in's
		// connection brings a round trip after it resumed; the offer's
		// TCP handshake runs meanwhile. Not before: a server that
		// serves one connection at a time (openssl s_server) would
		// take the idle one first and wait on it.
		out.resumed13 = func() { pre = h.preDial(ctx) }
	}
	defer func() { h.discard(pre) }()
	tried := h.firstOffer(ctx, out)
	a := attempt{}
	if len(tried.offers) > 0 {
		a = tried.offers[0]
	}
	if a.resumed {
		switch m {
		case MechanismPSK:
			a.resumed = h.carryPSK(ctx, si, a, &tried, pre)
			if a.resumed {
				pre = nil // the psk_ke offer owns it now
			}
		case MechanismSessionTicket:
			a.resumed = h.carryTicket12(si, a, &tried)
		}
	}
	tried.resumed13 = nil
	if tried.check.Completed && a.resumed {
		if m == MechanismSessionID {
			h.risks.sawSessionID(si.st.s12)
		}
		h.log.Debug("An earlier session stood in for the full handshake", "mechanism", m, "step", "stand_in",
			"addr", h.addr, "full_handshake_age", h.now().Sub(si.full).Round(time.Second))
		return tried, true
	}
	// The session stays in the age ladder: whether its own server still
	// resumes it (behind a balancer after all, another may have refused
	// it) is for the replays to judge, as for any earlier session.
	h.sessions.dropStandIn(h.key, m)
	h.log.Debug("The stand-in did not resume; making a full handshake", "mechanism", m, "step", "stand_in",
		"addr", h.addr, "err", tried.check.Err)
	out = chainOut{check: Check{Mechanism: m}, version: m.Version(), early: tried.early, link: tried.link}
	if tried.check.Completed && len(tried.offers) > 0 && !tried.offers[0].resumed {
		// The stand-in is a kept session, which the replays may offer:
		// its refusal stands for that offer, judged there as any refused
		// earlier session (kept while its own backend may resume it,
		// else forgotten), not offered again.
		refused := tried.offers[0]
		out.refusedStandIn = &refused
	}
	return out, false
}

// carryPSK reports whether a resumed TLS 1.3 stand-in carries the check
// on, and then makes its connection's new tickets the probe's TLS 1.3
// tickets and the next stand-in, and starts the psk_ke offer with the new
// ticket on pre. Without tickets read off the wire the probe would report
// no TLS 1.3 ticket facts: a full handshake gives them (or fails saying
// why).
func (h *handshaker) carryPSK(ctx context.Context, si *standIn, a attempt, tried *chainOut, pre *preDialed) bool {
	next := newestIssued(a)
	if next == nil || len(a.nsts) == 0 {
		return false
	}
	// The new ticket carries the stand-in's chain on: it descends from
	// the same full handshake.
	next.origin = si.st.chainOrigin()
	tried.keep = next
	tried.tickets = a.tickets
	h.risks.sawResumed13(a)
	// Now, beside the rest of the probe, as after a full handshake with
	// several tickets: the offer carries the new ticket, which nothing
	// else offers in this probe.
	h.startPSKWithoutDHE(ctx, true, pre)
	return true
}

// carryTicket12 reports whether a resumed TLS 1.2 ticket stand-in carries
// the check on: only when its flight, read to the end, held no renewal.
func (h *handshaker) carryTicket12(si *standIn, a attempt, tried *chainOut) bool {
	switch {
	case !a.completed:
		// The flight was not read to its end (a Ticketbleed echo is
		// never finished): a renewal may be in what was left.
		return false
	case len(a.tickets) > 0 || si.hand == nil:
		// Renewed: OpenSSL renews a ticket of a key that no longer
		// issues (after a rotation), and leaves a renewal's lifetime
		// hint unspecified (0); only a full handshake shows the
		// ticket's facts now, so the check makes one, as after a
		// refusal. A server that renews every ticket (Go's) would pay
		// that on every probe: the store remembers it for an interval
		// (see usableStandIn).
		h.sessions.noteStandInRenewed(h.key)
		return false
	}
	// Not renewed: resumed under the key issuing now, so the ticket's
	// facts are still the server's, as its full handshake showed them.
	tried.tickets = append(tried.tickets, si.tickets...)
	h.risks.sawStandIn12(si.hand)
	return true
}

// recheckStandIn12 redoes the session_ticket check with its full handshake
// when its unrenewed stand-in names another key than this probe's TLS 1.3
// tickets. OpenSSL uses one key for both versions and renews a ticket of a
// key that no longer issues, so there the two agree; but a server that
// resumes an older key's ticket without renewing it (GnuTLS, after a
// rotation) would have the probe report a key it no longer issues, and the
// two keys read as two backends.
func (h *handshaker) recheckStandIn12(ctx context.Context, outs []chainOut) {
	var t12, p13 *chainOut
	for i := range outs {
		switch outs[i].check.Mechanism {
		case MechanismSessionTicket:
			t12 = &outs[i]
		case MechanismPSK:
			p13 = &outs[i]
		}
	}
	if t12 == nil || p13 == nil || !t12.check.StandIn || !p13.check.Completed || t12.fresh == nil {
		return
	}
	k, l := t12.fresh.key, t12.fresh.keyLen
	if k == 0 || l == 0 {
		return
	}
	other := false
	for _, t := range p13.tickets {
		if t.version != VersionTLS13 || len(t.raw) <= max(l, maxStatefulTicket) {
			continue
		}
		if Fingerprint(t.raw[:l]) == k {
			return
		}
		other = true
	}
	if !other {
		return
	}
	h.log.Debug("The TLS 1.2 stand-in names another key than this probe's TLS 1.3 tickets; making the full handshake",
		"mechanism", MechanismSessionTicket, "step", "stand_in", "addr", h.addr)
	h.sessions.dropStandIn(h.key, MechanismSessionTicket)
	h.risks.forgetTicket12() // the full handshake's ticket is the one to offer now
	*t12 = h.ticketChain12From(ctx, chainOut{check: Check{Mechanism: MechanismSessionTicket}, version: VersionTLS12,
		early: t12.early, link: t12.link})
}

// usableStandIn returns the stand-in kept for m, nil when none may be
// used: the module makes full handshakes on every probe, earlier probes
// did not meet one server, the chain of sessions is older than
// FullHandshakeInterval, the session is past its lifetime bound (see
// keepStandIn), a TLS 1.2 ticket stand-in was renewed within the interval,
// or the session is the resumption_chain check's link (which is offered
// beside the first offer, and never twice at once).
func (h *handshaker) usableStandIn(m Mechanism) *standIn {
	if h.module.FullHandshakeInterval <= 0 || !h.oneServer {
		return nil
	}
	si := h.sessions.standIn(h.key, m)
	if si == nil || h.now().Sub(si.full) >= h.module.FullHandshakeInterval {
		return nil
	}
	if h.module.HasRisk(RiskResumptionChain) && h.sessions.chainLink(h.key, m) == si.st {
		return nil
	}
	if si.lifetime > 0 && h.now().Sub(si.st.obtained) >= si.lifetime {
		return nil // expired: its offer would be a full handshake refused
	}
	if m == MechanismSessionTicket && h.sessions.standInRenewedWithin(h.key, h.module.FullHandshakeInterval) {
		return nil // renewed last time: its offer would be a connection more
	}
	return si
}

// standIn returns the stand-in kept for key and m, nil when there is none
// or its session is past MaxAge.
func (s *Sessions) standIn(key string, m Mechanism) *standIn {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ts := s.lookup(key)
	if ts == nil {
		return nil
	}
	si := ts.standIns[m]
	if si != nil && s.now().Sub(si.st.obtained) > s.maxAge {
		delete(ts.standIns, m)
		return nil
	}
	return si
}

// setStandIn keeps si as the stand-in of key and m.
func (s *Sessions) setStandIn(key string, m Mechanism, si *standIn) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.target(key).standIns[m] = si
}

// dropStandIn forgets the stand-in of key and m. Like markBalanced it
// neither adds nor moves a target.
func (s *Sessions) dropStandIn(key string, m Mechanism) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ts := s.lookup(key); ts != nil {
		delete(ts.standIns, m)
	}
}

// confirmIssuing notes that st's key was seen issuing now: Sessions.oneServer
// asks for a session of the key issued within the window, and an unrenewed
// TLS 1.2 stand-in is as old as its full handshake.
func (s *Sessions) confirmIssuing(st *stored) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st.confirmed = s.now()
}

// noteStandInRenewed notes that a TLS 1.2 ticket stand-in of key was
// renewed now. Like markBalanced it neither adds nor moves a target.
func (s *Sessions) noteStandInRenewed(key string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ts := s.lookup(key); ts != nil {
		ts.standInRenewed = s.now()
	}
}

// standInRenewedWithin reports whether a TLS 1.2 ticket stand-in of key
// was renewed less than d ago.
func (s *Sessions) standInRenewedWithin(key string, d time.Duration) bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ts := s.lookup(key)
	return ts != nil && !ts.standInRenewed.IsZero() && s.now().Sub(ts.standInRenewed) < d
}

// keepStandIn keeps what the next probe of a session_id or psk check may
// offer instead of a full handshake: the session the store keeps (o.keep),
// when the check resumed on one server; else no stand-in.
func (h *handshaker) keepStandIn(o *chainOut, f *fleet, hint12 time.Duration) {
	m := o.check.Mechanism
	c := o.check
	if !c.Completed || !o.resumed() || c.Recent || f.balanced() || o.keep == nil || c.FullHandshakeAt.IsZero() ||
		m == MechanismSessionTicket && o.hand == nil || h.module.FullHandshakeInterval <= 0 {
		h.sessions.dropStandIn(h.key, m)
		return
	}
	if m == MechanismSessionTicket && c.StandIn {
		// Resumed unrenewed, and not replaced (recheckStandIn12): its
		// key is the one issuing.
		h.sessions.confirmIssuing(o.keep)
	}
	si := &standIn{st: o.keep, full: c.FullHandshakeAt, flight: c.FullHandshake, hand: o.hand}
	if raw := o.keep.ticket(); raw != nil {
		for _, t := range o.tickets {
			if bytes.Equal(t.raw, raw) {
				si.lifetime = time.Duration(t.lifetime) * time.Second
				si.tickets = []ticketSeen{t}
			}
		}
		if m == MechanismSessionTicket {
			// Half, as for a session ID: an unrenewed ticket grows no
			// younger either.
			si.lifetime /= 2
		}
	} else if hint12 > 0 {
		// A session ID's lifetime is the server's session timeout, which
		// OpenSSL-based servers (nginx, Apache, HAProxy) also announce as
		// the TLS 1.2 ticket lifetime hint. Half of it: a session ID
		// resumed again does not grow younger (no new one is issued), so
		// the age ladder gains a session only at each full handshake, and
		// two of them within the lifetime keep the accepted age near it.
		si.lifetime = hint12 / 2
	}
	h.sessions.setStandIn(h.key, m, si)
}

// tls12Hint returns the lifetime hint of the first TLS 1.2 ticket the
// chains saw, 0 when they saw none. Read before the follow-ups start,
// which append to the chains' tickets.
func tls12Hint(outs []chainOut) time.Duration {
	for _, t := range chainTickets(outs) {
		if t.version == VersionTLS12 {
			return time.Duration(t.lifetime) * time.Second
		}
	}
	return 0
}
