package probe

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// Behind a load balancer every connection may reach another backend, each
// with its own session cache and, often, its own ticket key: an offer that
// lands on a backend that did not issue the session is refused, however
// well every backend resumes its own. One offer then decides nothing. The
// wire tells the backends apart only by the key names of their tickets
// (identical backends differ in nothing else): a refused ticket offer
// becomes a full handshake whose new ticket names the key of the backend
// that answered.
//
// So, when a probe's refusals or tickets show several keys, a refused
// mechanism is offered again, each time on a new connection, with the
// fresh session or one session per backend key seen (learnt on the
// refused connections of this probe or kept from earlier ones; see
// choose), until one is resumed or maxOffers were made. A mechanism resumes when any offer
// resumed; when every offer missed, behind such a balancer, it still counts
// as resuming while it resumed within the window (Sessions' ResumedWindow).

// maxOffers bounds the offers per mechanism and probe: the first one and
// the retries. With N backends balanced at random, the chance that none of
// k offers reaches the backend of the session it carries is (1-1/N)^k:
// 0.4% for two backends, 10% for four.
const maxOffers = 8

// maxReplays bounds the earlier sessions offered per probe and mechanism.
const maxReplays = 3

// fleet is what one probe saw of the servers behind its address.
type fleet struct {
	nameLen map[uint16]int // key-name length per version, 0 when unnamed

	// recent holds the keys that issued a session kept in the store
	// within its window: backends still there, if not met in this probe.
	recent map[uint64]bool

	mu           sync.Mutex
	keys         map[uint64]bool // key names seen in this probe
	otherBackend bool            // a refused offer was answered by another backend
}

// newFleet reads the first offers of every chain: the key-name lengths the
// tickets show, the keys seen, and whether a refusal came from another
// backend. It labels every session with the key that issued it. extra holds
// tickets fetched for the key names alone (see moreTickets).
func (h *handshaker) newFleet(outs []chainOut, extra []ticketSeen) *fleet {
	store, key := h.sessions, h.key
	f := &fleet{nameLen: h.keyNameLengths(outs, extra), keys: map[uint64]bool{}, recent: map[uint64]bool{}}
	for _, m := range []Mechanism{MechanismSessionTicket, MechanismPSK} {
		for _, st := range store.perBackend(key, m) {
			if h.now().Sub(st.obtained) <= store.window {
				f.recent[st.key] = true
			}
		}
	}
	for _, t := range extra {
		f.see(t)
	}
	for i := range outs {
		o := &outs[i]
		own := []*stored{o.fresh, o.keep}
		if o.check.StandIn {
			// A stand-in came from the store, labelled in its own
			// probe, and may be shared with a concurrent probe: only
			// what this probe obtained is labelled.
			own = own[1:]
			if o.keep == o.fresh {
				own = nil
			}
		}
		for _, st := range slices.Concat(own, o.learned, o.keepers) {
			f.label(o.version, st)
		}
		for _, t := range o.tickets {
			f.see(t)
		}
		for n, a := range o.offers {
			if !a.resumed {
				h.noteRefusal(o, f, n+1, a, "offer")
			}
		}
	}
	return f
}

// keyNameLengths returns the key-name length per version that the probe's
// tickets show, compared with each other and with the kept sessions' (behind
// a balancer two tickets of one backend are needed, and the probe may have
// met each backend once), or else that earlier probes learnt.
func (h *handshaker) keyNameLengths(outs []chainOut, extra []ticketSeen) map[uint16]int {
	store, key := h.sessions, h.key
	ts := slices.Concat(chainTickets(outs), extra, store.keptTickets(key))
	byVersion, _ := summarise(ts)
	lens := map[uint16]int{}
	shown := 0
	for _, m := range []Mechanism{MechanismSessionTicket, MechanismPSK} {
		for _, st := range store.perBackend(key, m) {
			shown = max(shown, st.keyLen)
		}
	}
	for _, v := range []uint16{VersionTLS12, VersionTLS13} {
		lens[v] = byVersion[v].KeyNameBytes
		if lens[v] == 0 {
			lens[v] = store.keyNameLen(key, v)
		}
		shown = max(shown, lens[v])
	}
	// A server names the keys of both versions alike (OpenSSL uses one
	// key): a length shown at one version holds for the other.
	for _, v := range []uint16{VersionTLS12, VersionTLS13} {
		if lens[v] == 0 {
			lens[v] = shown
		}
	}
	return lens
}

// moreTickets fetches up to two more tickets at each version whose tickets,
// kept ones included, show no key-name length, when a ticket offer of this
// probe was refused: behind a balancer the fresh ticket and a refused
// offer's new ticket may come from two backends and share no prefix, and
// without the length the refusal cannot tell another backend answered.
// With two backends a third ticket is from one of the first two.
func (h *handshaker) moreTickets(ctx context.Context, outs []chainOut) []ticketSeen {
	refused := map[uint16]bool{}
	for _, o := range outs {
		for _, a := range o.offers {
			if !a.resumed && o.check.Mechanism != MechanismSessionID {
				refused[o.version] = true
			}
		}
	}
	var extra []ticketSeen
	for _, v := range []uint16{VersionTLS12, VersionTLS13} {
		for range 2 {
			if !refused[v] || h.keyNameLengths(outs, extra)[v] != 0 {
				break
			}
			more, err := h.ticketsAt(ctx, v)
			if err != nil {
				break
			}
			extra = append(extra, more...)
		}
	}
	return extra
}

func chainTickets(outs []chainOut) []ticketSeen {
	var ts []ticketSeen
	for _, o := range outs {
		ts = append(ts, o.tickets...)
	}
	return ts
}

// keyOf returns the fingerprint of the key name a ticket carries, 0 when it
// carries none (stateful handles, unnamed formats).
func (f *fleet) keyOf(version uint16, raw []byte) (uint64, int) {
	l := f.nameLen[version]
	if l == 0 || len(raw) <= maxStatefulTicket {
		return 0, 0
	}
	return Fingerprint(raw[:l]), l
}

// label sets the key of a session from its ticket, unless already known.
// It writes only a key found: a stored session may be shared with a
// concurrent probe of the target (a stand-in, a kept session), and one
// whose ticket names no key (session IDs) is never written.
func (f *fleet) label(version uint16, st *stored) {
	if st == nil || st.key != 0 {
		return
	}
	if k, l := f.keyOf(version, st.ticket()); k != 0 {
		st.key, st.keyLen = k, l
	}
}

func (f *fleet) see(t ticketSeen) {
	if k, _ := f.keyOf(t.version, t.raw); k != 0 {
		f.mu.Lock()
		f.keys[k] = true
		f.mu.Unlock()
	}
}

// balanced reports whether this probe showed several backends.
func (f *fleet) balanced() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.otherBackend || len(f.keys) >= 2
}

// alive reports whether the backend of key k was met in this probe or
// issued a kept session within the window.
func (f *fleet) alive(k uint64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.keys[k] || f.recent[k]
}

// classify says what a refused offer's connection showed of the server
// that answered it.
func (f *fleet) classify(m Mechanism, n int, a attempt) Refusal {
	r := Refusal{Attempt: n, OfferedKey: a.offered.key}
	if m == MechanismSessionID {
		r.Why = "a refused session ID names no backend: whether another one answered cannot be told"
		return r
	}
	for _, t := range a.tickets {
		if k, _ := f.keyOf(t.version, t.raw); k != 0 && r.AnsweredKey == 0 {
			r.AnsweredKey = k
		}
	}
	switch {
	case len(a.tickets) == 0:
		r.Why = "the server issued no new ticket: whether another backend answered cannot be told"
	case r.AnsweredKey == 0 || r.OfferedKey == 0:
		r.Why = "the tickets name no key: whether another backend answered cannot be told"
	case r.AnsweredKey != r.OfferedKey:
		r.OtherBackend = true
		r.Why = "the new ticket names another key than the offered one: another backend answered"
	default:
		r.Why = "the new ticket names the offered session's key: the server that issued it refused it"
	}
	return r
}

// noteRefusal classifies and logs a refused offer of o.
func (h *handshaker) noteRefusal(o *chainOut, f *fleet, n int, a attempt, step string) {
	for _, st := range a.issued {
		f.label(o.version, st)
	}
	for _, t := range a.tickets {
		f.see(t)
	}
	r := f.classify(o.check.Mechanism, n, a)
	if r.OtherBackend {
		f.mu.Lock()
		f.otherBackend = true
		f.mu.Unlock()
	}
	o.check.Refusals = append(o.check.Refusals, r)
	h.log.Debug("Offer refused", "mechanism", o.check.Mechanism, "step", step, "attempt", n, "addr", h.addr,
		"other_backend", r.OtherBackend, "offered_key", fmt.Sprintf("%012x", r.OfferedKey),
		"answered_key", fmt.Sprintf("%012x", r.AnsweredKey), "why", r.Why)
}

// followUp runs, concurrently per mechanism, what comes after the first
// offers: retries behind a balancer, replays of earlier sessions, the
// verdict, and what the store keeps.
//
// Session-ID retries wait for the ticket retries: they have no landing
// pattern to follow (a refused session ID names no backend), and a
// balancer that weighs connections in flight (leastconn) would otherwise
// send them, in step with the ticket chains' connections, to the same
// wrong backend every time.
func (h *handshaker) followUp(ctx context.Context, outs []chainOut, f *fleet) {
	var wg, tickets sync.WaitGroup
	var todo []*chainOut
	hint12 := tls12Hint(outs)
	for i := range outs {
		o := &outs[i]
		if o.fresh == nil || !o.check.Completed {
			// A chain link started beside a first offer that then
			// failed is still settled: a resumed single-use link is
			// spent, and only its successor carries the chain on.
			h.settleLinkLater(o.link, o, f)
			continue
		}
		todo = append(todo, o)
		if o.check.Mechanism != MechanismSessionID {
			tickets.Add(1) // before any goroutine waits on it
		}
	}
	for _, o := range todo {
		wg.Add(1)
		isID := o.check.Mechanism == MechanismSessionID
		go func() {
			defer wg.Done()
			if isID {
				tickets.Wait()
			}
			if !o.resumed() && f.balanced() {
				h.retry(ctx, o, f)
			}
			if !isID {
				tickets.Done()
			}
			link := o.link // resumption_chain: started beside the first offer, or now alongside the replay
			if link == nil {
				link = h.offerLink(ctx, o)
			}
			if o.resumed() {
				h.replay(ctx, o, f, link)
			}
			h.verdict(o, f)
			h.keep(o)
			h.keepStandIn(o, f, hint12)
			h.settleLinkLater(link, o, f)
		}()
	}
	wg.Wait()
}

// retry offers again, on new connections, until an offer is resumed, the
// offers are spent or a quarter of the probe's time is left.
func (h *handshaker) retry(ctx context.Context, o *chainOut, f *fleet) {
	m := o.check.Mechanism
	offer := h.offerer(m)
	h.log.Debug("Offering again: several backends answer", "mechanism", m, "step", "retry", "addr", h.addr)
	for n := len(o.offers) + 1; n <= maxOffers && !o.resumed(); n++ {
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < h.module.Timeout/4 {
			return
		}
		a, err := offer(ctx, f.choose(o, h.candidates(o)))
		switch {
		case errors.Is(err, errNotOffered) || errors.Is(err, errAlert):
			continue
		case err != nil:
			h.log.Debug("Retry failed", "mechanism", m, "step", "retry", "attempt", n, "addr", h.addr, "err", err)
			return
		}
		o.record(a)
		if !a.resumed {
			h.noteRefusal(o, f, n, a, "retry")
		}
	}
}

// choose picks what a retry offers. The refusals so far say where this
// chain's connections landed; when that sequence shows a period of at most
// the number of backends seen (a round-robin or leastconn balancer, with
// or without the other chains' connections interleaved), the candidate of
// the backend it predicts next is offered. Otherwise a candidate at
// random: where the balancer sends the next connection does not depend on
// what it carries, so every choice hits with the chance 1/backends, and no
// fixed order can fall in step with the balancer and miss on every
// connection.
func (f *fleet) choose(o *chainOut, cands []*stored) *stored {
	var landed []uint64
	for _, r := range o.check.Refusals {
		if r.AnsweredKey != 0 {
			landed = append(landed, r.AnsweredKey)
		}
	}
	f.mu.Lock()
	maxPeriod := max(2, len(f.keys))
	f.mu.Unlock()
	if k, ok := predictNext(landed, maxPeriod); ok {
		for _, c := range cands {
			if c.key == k {
				return c
			}
		}
	}
	return cands[rand.IntN(len(cands))]
}

// predictNext returns the value that continues seq if its last value
// repeats the one p steps before, for the shortest p up to maxPeriod: the
// least evidence of a period, so that a balancer's pattern is followed
// from the third connection on, and a pattern that shifts (the other
// chains' connections come and go) is followed again soon. Behind a random
// balancer a prediction is no worse than a random choice.
func predictNext(seq []uint64, maxPeriod int) (uint64, bool) {
	n := len(seq)
	for p := 1; p <= maxPeriod && p < n; p++ {
		if seq[n-1] == seq[n-1-p] {
			return seq[n-p], true
		}
	}
	return 0, false
}

// candidates lists what a retry may offer: this probe's own session first,
// then one session per other backend key, learnt in this probe or kept from
// earlier ones, newest first. Session IDs name no backend: the most recent
// kept ones stand in. The own session of PSK is the last ticket, which no
// offer spent: the first offer spent the fresh one, and a backend whose
// tickets are single-use would refuse it even when a retry reaches it. But
// not while a psk_ke offer made beside the first offers, which carries that
// last ticket, is in flight (see startPSKWithoutDHE): then the fresh one.
func (h *handshaker) candidates(o *chainOut) []*stored {
	store, key := h.sessions, h.key
	own := o.fresh
	if o.check.Mechanism == MechanismPSK && o.keep != nil && !h.pskKEPending() {
		own = o.keep
	}
	out := []*stored{own}
	if o.check.Mechanism == MechanismSessionID {
		kept := store.oldest(key, MechanismSessionID)
		for i := len(kept) - 1; i >= 0 && len(out) < 4; i-- {
			out = append(out, kept[i])
		}
		return out
	}
	seen := map[uint64]bool{own.key: true}
	learned := make([]*stored, 0, len(o.learned))
	for i := len(o.learned) - 1; i >= 0; i-- {
		learned = append(learned, o.learned[i])
	}
	for _, st := range append(learned, store.perBackend(key, o.check.Mechanism)...) {
		if o.inFlight(st) {
			continue // offered right now, beside the first offer: not twice at once
		}
		if st.key != 0 && !seen[st.key] {
			seen[st.key] = true
			out = append(out, st)
		}
	}
	return out
}

// replay offers earlier sessions, oldest first, until one is resumed or
// maxReplays were tried, and sets the age of the one resumed. A refused
// session is forgotten when the server that issued it refused it, as far as
// key names tell (see keepRefused). A session whose offer failed for
// another reason (network) is kept for the next probe. Replays measure age,
// not the fleet: their refusals do not count as showing other backends.
// The session that is also the chain's link (a chain restarts from the
// session the ladder keeps) is not offered again: its link offer's outcome
// stands for it, since a single-use ticket offered twice at once would
// have one offer refused.
func (h *handshaker) replay(ctx context.Context, o *chainOut, f *fleet, link *linkOffer) {
	store, key := h.sessions, h.key
	m := o.check.Mechanism
	offer := h.offerer(m)
	for i, st := range store.oldest(key, m) {
		if i == maxReplays {
			return
		}
		var a attempt
		var err error
		if e := o.early; i == 0 && e != nil && e.st == st {
			<-e.done
			a, err = e.a, e.err
		} else if r := o.refusedStandIn; r != nil && r.offered == st {
			a = *r
		} else if o.check.StandIn && st == o.fresh {
			// The stand-in, from the age ladder: offered already, and
			// its tickets counted then.
			if o.offers[0].resumed {
				o.maxAge, o.hasMaxAge = h.now().Sub(st.obtained), true
			}
			return
		} else if link != nil && link.link == st {
			<-link.done
			a, err = link.a, link.err
		} else {
			a, err = offer(ctx, st)
		}
		age := h.now().Sub(st.obtained)
		switch {
		case errors.Is(err, errAlert) || errors.Is(err, errNotOffered):
			store.forget(key, m, st) // refused for good, or never to be offered again
		case err != nil:
			h.log.Debug("Offer of an earlier session failed", "mechanism", m, "step", "replay", "addr", h.addr,
				"age", age.Round(time.Second), "err", err)
			return
		case a.resumed:
			o.tickets = append(o.tickets, a.tickets...)
			o.maxAge, o.hasMaxAge = age, true
			return
		default:
			o.tickets = append(o.tickets, a.tickets...)
			r := f.classify(m, 0, a)
			if f.keepRefused(st, r) {
				h.log.Debug("Earlier session refused, kept: its own backend may still resume it", "mechanism", m,
					"step", "replay", "addr", h.addr, "age", age.Round(time.Second), "why", r.Why)
				continue
			}
			store.forget(key, m, st)
		}
	}
}

// keepRefused decides whether a refused earlier session may still resume on
// its own backend. One whose key is named is kept when another key's
// backend refused it and its own key is still about (met in this probe or
// recently): a key no longer seen was rotated away, and its sessions with
// it. One no key name identifies (session IDs, unnamed tickets) is kept
// only while this probe shows several backends.
func (f *fleet) keepRefused(st *stored, r Refusal) bool {
	if st.key != 0 {
		return r.AnsweredKey != 0 && r.AnsweredKey != st.key && f.alive(st.key)
	}
	return f.balanced()
}

// verdict sets the check's figures: offers resumed and refused, the first
// offer's fate, and whether the mechanism resumes — because an offer of
// this probe was accepted or, behind a balancer whose backends every offer
// missed, because one was within the window.
func (h *handshaker) verdict(o *chainOut, f *fleet) {
	store, key := h.sessions, h.key
	c := &o.check
	for _, a := range o.offers {
		if a.resumed {
			c.OffersResumed++
			if c.ResumedHandshake == 0 {
				c.ResumedHandshake = a.firstFlight
			}
		} else {
			c.OffersRefused++
		}
	}
	if len(o.offers) == 0 {
		return
	}
	if c.ResumedHandshake == 0 {
		c.ResumedHandshake = o.offers[0].firstFlight
	}
	c.FirstOfferResumed = o.offers[0].resumed
	c.Resumed = o.resumed()
	if c.Resumed {
		store.markResumed(key, c.Mechanism)
		return
	}
	if !f.balanced() {
		return
	}
	if ago, ok := store.resumedWithin(key, c.Mechanism); ok {
		c.Resumed, c.Recent, c.RecentAge = true, true, ago
		h.log.Debug("Every offer missed its backend; resumed within the window", "mechanism", c.Mechanism,
			"step", "verdict", "addr", h.addr, "offers", len(o.offers), "last_resumed_ago", ago.Round(time.Second))
	}
}

// keep stores what later probes offer: the fresh session in the age ladder
// when the mechanism resumed (a session never resumed measures nothing),
// and the newest session of every backend key seen.
func (h *handshaker) keep(o *chainOut) {
	store, key := h.sessions, h.key
	m := o.check.Mechanism
	if o.resumed() {
		store.add(key, m, o.keep)
	}
	store.keepBackend(key, m, o.keep)
	for _, st := range o.keepers {
		store.keepBackend(key, m, st)
	}
}
