package probe

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/resumption-exporter/resumption_exporter/probe/internal/wire"
)

// chainOut is what one chain reports: its check, whether its full handshake
// showed the version to be spoken, the tickets it saw on any of its
// connections, and the sessions it offered and obtained.
type chainOut struct {
	check   Check
	version uint16
	// versionErr is nil when the full handshake completed, wraps
	// errVersionRefused when the server declined the version, and is any
	// other error when support could not be determined.
	versionErr error
	tickets    []ticketSeen
	maxAge     time.Duration
	hasMaxAge  bool

	fresh *stored // what the full handshake gave, offered first
	// hand is the fresh TLS 1.2 ticket as a hand-built offer needs it
	// (the session_ticket check's first offer); nil for other checks.
	hand   *session12
	keep   *stored   // what later probes get (psk: the last ticket, the first being spent)
	offers []attempt // the first offer and the retries, in order
	// learned and keepers hold the sessions servers that refused an offer
	// issued on that connection: sessions of the backend that answered,
	// to offer now (learned) and to keep for later probes (keepers).
	learned, keepers []*stored
	// early is the first replay, made beside the first offer; nil when
	// it waits for the follow-ups (see startReplay).
	early *replayed
	// link is the resumption_chain check's offer of the kept link, made
	// beside the first offer when earlier probes met one server; nil when
	// it waits for the follow-ups (see offerLink).
	link *linkOffer
	// resumed13, when not nil, is called once a TLS 1.3 stand-in's
	// offer resumed, before its connection is read to the close.
	resumed13 func()
	// refusedStandIn is the refused offer of the stand-in the chain fell
	// back from: replay takes it for that session's offer.
	refusedStandIn *attempt
}

// replayed is the outcome of an earlier session's offer made beside a
// chain's first offer; done is closed once a and err are set.
type replayed struct {
	st   *stored
	a    attempt
	err  error
	done chan struct{}
}

// startReplay offers the oldest earlier session of m beside the chain's
// first offer, when earlier probes met one server: the two offers are
// independent, and side by side they cost the critical path one offer's
// round trips instead of two. replay judges the outcome as if it had made
// the offer itself, and only when the mechanism resumed, as it does now.
// Behind several backends the replay waits for the retries, as before: its
// connection would shift where a balancer sends theirs. The cost: a chain
// whose first offer is refused has made a replay it then ignores (a
// single-use ticket it spent is refused, and forgotten, next time). The
// resumption_chain link is offered once, by the chain check: when it is the
// oldest session, replay takes that offer's outcome instead; so is the
// first offer's own session (first), a stand-in from the age ladder.
func (h *handshaker) startReplay(ctx context.Context, m Mechanism, link *linkOffer, first *stored) *replayed {
	if !h.oneServer {
		return nil
	}
	old := h.sessions.oldest(h.key, m)
	if len(old) == 0 || link != nil && old[0] == link.link || old[0] == first {
		return nil
	}
	r := &replayed{st: old[0], done: make(chan struct{})}
	h.ending.Go(func() {
		defer close(r.done)
		r.a, r.err = h.offerer(m)(ctx, r.st)
	})
	return r
}

func failed(out chainOut, err error) chainOut {
	out.check.Completed = false
	out.check.Err = err.Error()
	var he *certHintError
	if errors.As(err, &he) {
		out.check.Err, out.check.Hint = he.err.Error(), he.hint
	}
	return out
}

// resumed reports whether any offer of this probe was accepted.
func (o *chainOut) resumed() bool {
	for _, a := range o.offers {
		if a.resumed {
			return true
		}
	}
	return false
}

// record adds one offer's outcome.
func (o *chainOut) record(a attempt) {
	o.offers = append(o.offers, a)
	o.tickets = append(o.tickets, a.tickets...)
	if !a.resumed && len(a.issued) > 0 {
		o.learned = append(o.learned, a.issued[0])
		o.keepers = append(o.keepers, a.issued[len(a.issued)-1])
	}
}

// inFlight reports whether st is being offered beside the chain's first
// offer (the early replay, the chain link), so that nothing offers it again
// before that offer ends: a single-use ticket offered twice at once has one
// offer refused.
func (o *chainOut) inFlight(st *stored) bool {
	return o.early != nil && o.early.st == st || o.link != nil && o.link.link == st
}

// firstOffer makes the chain's first offer of its fresh session.
func (h *handshaker) firstOffer(ctx context.Context, out chainOut) chainOut {
	if h.oneServer && out.link == nil {
		// Beside the first offer, as the early replay: off the path
		// runRisks waits on. The link is never offered twice at once:
		// the early replay and replay leave it to this offer. A stand-in
		// that fell back started both already (see standInChain).
		out.link = h.offerLink(ctx, &out)
	}
	if out.early == nil {
		out.early = h.startReplay(ctx, out.check.Mechanism, out.link, out.fresh)
	}
	var a attempt
	var err error
	switch {
	case out.check.Mechanism == MechanismSessionTicket:
		a, err = h.firstTicketOffer12(ctx, out)
	case out.check.StandIn && out.check.Mechanism == MechanismPSK:
		// Read to the close: the resumed connection's tickets are the
		// probe's TLS 1.3 tickets, and its last one the next stand-in.
		a, err = h.resumeTLSReadingThen(ctx, VersionTLS13, out.fresh, true, out.resumed13)
	default:
		a, err = h.offerer(out.check.Mechanism)(ctx, out.fresh)
	}
	if err != nil {
		return failed(out, err)
	}
	out.record(a)
	if a.resumed && out.check.Mechanism != MechanismSessionID {
		h.risks.sawResumedFresh(out.version, out.fresh)
	}
	return out
}

// firstTicketOffer12 makes the session_ticket check's first offer by hand,
// with a 16-byte session ID, so that its resumed ServerHello gives both the
// check's verdict and Ticketbleed's signal (an echo longer than our ID):
// the risk check then needs no connection of its own unless the signal
// shows. The resumed handshake is finished as crypto/tls would finish it
// (see finish12), and its flight says whether the server renewed the
// ticket.
//
// A refused hand-built offer is abandoned after its ServerHello, so it
// names no backend: behind a balancer, which one answered is unknown. The
// fresh ticket is then offered once more through crypto/tls, whose refused
// offer completes into a full handshake whose new ticket names the
// backend (see resumeTLS), and that offer alone is the first offer. So the
// extra connection is made only on a refusal, never in the common case.
// When crypto/tls's offer resumes, the server refused only the hand-built
// hello: earlier probes met one server whose tickets name one key, and the
// refusal names no other backend, so this is no balancer but a server
// that dislikes something in the hand-built hello. The store remembers
// that (Sessions.noteHandRefused) and later probes of the target offer
// through crypto/tls, Ticketbleed making its own offer, as on a first
// probe. A suite finish12 cannot finish goes to crypto/tls at once:
// dropping a resumed handshake unfinished would make OpenSSL forget the
// session.
//
// A refused hand-built offer still loses what a refused crypto/tls one
// shows: the key of the backend that refused. So the offer is hand-built
// only when earlier probes met one server (see Sessions.oneServer): the
// steady state of a single server. A target's first probe, and every probe
// of a target whose probes met several backends, offer through crypto/tls,
// and Ticketbleed then makes its own offer.
func (h *handshaker) firstTicketOffer12(ctx context.Context, out chainOut) (attempt, error) {
	s := out.hand
	if !h.oneServer || !h.sessions.handBuilds(h.key) || s == nil || s.master == nil || !wire.SupportsFinish12(s.suite) {
		return h.resumeTLS12Renewing(ctx, out.fresh)
	}
	o, err := h.offer12Echo(ctx, s)
	if err == nil && o.resumed {
		h.risks.sawTicketbleedSignal(o.bled)
		if o.finished {
			h.risks.sawRenewal12(len(o.tickets) > 0)
		}
		return attempt{offered: out.fresh, resumed: true, firstFlight: o.firstFlight, tickets: o.tickets, completed: o.finished}, nil
	}
	h.log.Debug("Hand-built ticket offer not resumed; offering the ticket through crypto/tls to learn who answered",
		"mechanism", MechanismSessionTicket, "step", "offer", "addr", h.addr, "err", err)
	a, terr := h.resumeTLS12Renewing(ctx, out.fresh)
	if terr == nil && a.resumed && err == nil {
		h.sessions.noteHandRefused(h.key)
		h.log.Debug("crypto/tls's offer of the ticket resumed: the server refuses the hand-built hello; the ticket offer goes through crypto/tls from now on",
			"mechanism", MechanismSessionTicket, "step", "offer", "addr", h.addr)
	}
	return a, terr
}

// resumeTLS12Renewing offers a TLS 1.2 ticket through crypto/tls and, when
// it resumed, notes whether the server renewed it: TLS 1.2 tickets come in
// the handshake, so a resumed flight with one renewed the session.
func (h *handshaker) resumeTLS12Renewing(ctx context.Context, st *stored) (attempt, error) {
	a, err := h.resumeTLS(ctx, VersionTLS12, st)
	if err == nil && a.resumed && a.completed {
		h.risks.sawRenewal12(len(a.tickets) > 0)
	}
	return a, err
}

// sessionIDChain: a full TLS 1.2 handshake without the ticket extension (a
// server about to issue a ticket sends an empty session ID), then an offer of
// the session ID it assigned.
func (h *handshaker) sessionIDChain(ctx context.Context) chainOut {
	out, done := h.standInChain(ctx, MechanismSessionID)
	if done {
		return out
	}
	fh, err := h.full(ctx, VersionTLS12, false)
	if err != nil {
		out.versionErr = err
		return failed(out, err)
	}
	out.check.FullHandshake, out.check.FullHandshakeAt = fh.tap.firstFlight(), h.now()
	s, err := h.issuedSessionID(fh)
	if err != nil {
		return failed(out, err)
	}
	out.check.Completed = true
	if s == nil {
		return out // nothing to resume
	}
	out.check.Issued = true
	out.fresh = &stored{obtained: h.now(), s12: s}
	out.keep = out.fresh
	h.risks.sawSessionID(s)
	return h.firstOffer(ctx, out)
}

// ticketChain12: a full TLS 1.2 handshake with the ticket extension, the
// NewSessionTicket read off the wire (crypto/tls drops its lifetime hint),
// then an offer of that ticket.
func (h *handshaker) ticketChain12(ctx context.Context) chainOut {
	out, done := h.standInChain(ctx, MechanismSessionTicket)
	if done {
		return out
	}
	return h.ticketChain12From(ctx, out)
}

// ticketChain12From runs the session_ticket chain's full handshake and first
// offer, for out as standInChain left it.
func (h *handshaker) ticketChain12From(ctx context.Context, out chainOut) chainOut {
	fh, tickets, hand, err := h.ticketHandshake12Hand(ctx)
	if err != nil {
		out.versionErr = err
		return failed(out, err)
	}
	out.check.FullHandshake, out.check.FullHandshakeAt = fh.tap.firstFlight(), h.now()
	out.tickets = tickets
	out.check.Completed = true
	if len(tickets) == 0 || len(fh.sessions) == 0 {
		return out
	}
	out.check.Issued = true
	out.fresh = &stored{obtained: h.now(), cs: fh.sessions[0]}
	out.hand = hand
	out.keep = out.fresh
	return h.firstOffer(ctx, out)
}

// ticketHandshake12 runs a full TLS 1.2 handshake that asks for a ticket and
// returns what the server issued; fh.sessions holds what crypto/tls can
// offer of it. The risk checks get the tickets with their master secret,
// and the first one as a session to offer by hand (Ticketbleed).
func (h *handshaker) ticketHandshake12(ctx context.Context) (*fullHandshake, []ticketSeen, error) {
	fh, ts, _, err := h.ticketHandshake12Hand(ctx)
	return fh, ts, err
}

// ticketHandshake12Hand is ticketHandshake12 that also returns the first
// ticket as a session to offer by hand; nil when none was issued.
func (h *handshaker) ticketHandshake12Hand(ctx context.Context) (*fullHandshake, []ticketSeen, *session12, error) {
	fh, err := h.full(ctx, VersionTLS12, true)
	if err != nil {
		return nil, nil, nil, err
	}
	f, err := flight12(fh.tap.received())
	if err != nil {
		return fh, nil, nil, fmt.Errorf("read TLS 1.2 flight of %s: %w", h.addr, err)
	}
	ts := tickets12(f)
	h.risks.saw12(fh, ts)
	hand := ticketSession12(fh, f, ts)
	h.risks.sawTicket12(hand)
	return fh, ts, hand, nil
}

// ticketSession12 returns the first ticket of a TLS 1.2 full handshake as a
// session to offer with a hand-built ClientHello; nil when none was issued.
func ticketSession12(fh *fullHandshake, f *wire.Flight12, ts []ticketSeen) *session12 {
	if len(ts) == 0 {
		return nil
	}
	return &session12{ticket: ts[0].raw, suite: fh.state.CipherSuite, ems: f.ServerHello.ExtendedMasterSecret,
		master: fh.masterSecret()}
}

// tickets12 returns the tickets of a TLS 1.2 flight; an empty ticket means
// "none this time" (RFC 5077 §3.3).
func tickets12(f *wire.Flight12) []ticketSeen {
	var ts []ticketSeen
	for _, t := range f.Tickets {
		if len(t.Ticket) > 0 {
			ts = append(ts, ticketSeen{version: VersionTLS12, raw: t.Ticket, lifetime: t.LifetimeHint})
		}
	}
	return ts
}

// flight12 reads the server's side of a completed TLS 1.2 handshake, which
// must hold a ServerHello.
func flight12(rx []byte) (*wire.Flight12, error) {
	f, err := wire.ParseFlight12(rx)
	if err == nil && f.ServerHello == nil {
		err = fmt.Errorf("no ServerHello, only alert %s", f.Alert)
	}
	return f, err
}

// pskChain13: a full TLS 1.3 handshake, every NewSessionTicket decrypted off
// the wire (so lifetimes crypto/tls would reject are seen too), then a
// resumption by crypto/tls with the first ticket.
func (h *handshaker) pskChain13(ctx context.Context) chainOut {
	out, done := h.standInChain(ctx, MechanismPSK)
	if done {
		return out
	}
	fh, tickets, err := h.ticketHandshake13(ctx)
	if err != nil {
		out.versionErr = err
		return failed(out, err)
	}
	out.check.FullHandshake, out.check.FullHandshakeAt = fh.tap.firstFlight(), h.now()
	out.tickets = tickets
	out.check.Completed = true
	if len(fh.sessions) == 0 {
		return out // no ticket crypto/tls could use
	}
	out.check.Issued = true
	out.fresh = &stored{obtained: h.now(), received: fh.received, cs: fh.sessions[0]}
	// The last ticket, when there are several, is kept: a server may make
	// tickets single-use, and the first is about to be spent.
	out.keep = &stored{obtained: h.now(), received: fh.received, cs: fh.sessions[len(fh.sessions)-1]}
	if len(fh.sessions) > 1 {
		h.startPSKWithoutDHE(ctx, true, nil)
	}
	return h.firstOffer(ctx, out)
}

func (h *handshaker) ticketHandshake13(ctx context.Context) (*fullHandshake, []ticketSeen, error) {
	fh, err := h.full(ctx, VersionTLS13, true)
	if err != nil {
		return nil, nil, err
	}
	nsts, err := nsts13(fh.tap.received(), fh.state.CipherSuite, fh.keyLog)
	if err != nil {
		return fh, nil, fmt.Errorf("read TLS 1.3 tickets of %s: %w", h.addr, err)
	}
	h.risks.saw13(fh, nsts)
	return fh, tickets13(nsts), nil
}

// nsts13 decrypts the NewSessionTickets of a TLS 1.3 connection with the
// server traffic secret crypto/tls logged.
func nsts13(rx []byte, suite uint16, keyLog []byte) ([]wire.NewSessionTicket13, error) {
	secret := wire.ParseKeyLog(keyLog)[wire.LabelServerTrafficSecret0]
	if secret == nil {
		return nil, errors.New("crypto/tls logged no SERVER_TRAFFIC_SECRET_0")
	}
	f, err := wire.ParseFlight13(rx, suite, secret)
	if err != nil {
		return nil, err
	}
	return f.Tickets, nil
}

func tickets13(nsts []wire.NewSessionTicket13) []ticketSeen {
	var ts []ticketSeen
	for _, t := range nsts {
		ts = append(ts, ticketSeen{version: VersionTLS13, raw: t.Ticket, lifetime: t.Lifetime, maxEarlyData: t.MaxEarlyData})
	}
	return ts
}

// attempt is one resumption offer, on a connection of its own, and what the
// server that answered it issued there.
type attempt struct {
	offered     *stored
	resumed     bool
	firstFlight time.Duration
	// tickets are those the answering server sent on this connection: the
	// new ticket of the full handshake a refused ticket offer became.
	tickets []ticketSeen
	// issued are the sessions crypto/tls obtained on this connection.
	issued []*stored
	// completed: crypto/tls finished the handshake, so the server's
	// flight was read to its Finished (a resumed TLS 1.2 flight that
	// stopped short says nothing of a renewal).
	completed bool
	// nsts are the TLS 1.3 NewSessionTickets read off the connection, and
	// group its key exchange group, when its tickets were read (a refused
	// offer's, or a resumed one's read to the close): what a psk_ke offer
	// and the ticket_weakness check need of them.
	nsts  []wire.NewSessionTicket13
	group uint16
}

// offerer returns how mechanism m offers a session.
func (h *handshaker) offerer(m Mechanism) func(context.Context, *stored) (attempt, error) {
	switch m {
	case MechanismSessionID:
		return func(ctx context.Context, st *stored) (attempt, error) {
			ok, ff, err := h.offer12(ctx, st.s12)
			return attempt{offered: st, resumed: ok, firstFlight: ff}, err
		}
	case MechanismSessionTicket:
		return func(ctx context.Context, st *stored) (attempt, error) { return h.resumeTLS(ctx, VersionTLS12, st) }
	default:
		return func(ctx context.Context, st *stored) (attempt, error) { return h.resumeTLS(ctx, VersionTLS13, st) }
	}
}

// errNotOffered: crypto/tls declined to offer a stored session (it checks
// the certificate the session was made with), so nothing was learnt.
var errNotOffered = errors.New("crypto/tls did not offer the session")

// resumeTLS lets crypto/tls offer st's ticket (TLS 1.2) or PSK (TLS 1.3,
// psk_dhe_ke as every browser does) and reads the verdict off the wire: a
// TLS 1.2 server accepted when its ServerHello echoes the client's session
// ID (RFC 5077 §3.4), a TLS 1.3 server when its last ServerHello (after any
// HelloRetryRequest) carries pre_shared_key. A refused offer becomes a full
// handshake, which crypto/tls completes: its new ticket names the key of
// the server that answered — behind a balancer, which backend. A completed
// handshake ends with close_notify and the server's close (see end), a
// failed one is closed without close_notify or any alert.
//
// Only a refused TLS 1.3 offer is ended before the verdict returns: its new
// tickets arrive after the handshake, and only reading to the server's
// close collects them (a.tickets, a.issued). Every other completed
// connection is ended in the background, off the probe's critical path:
// TLS 1.2 tickets come inside the handshake, so the tap and the cache
// already hold them; a resumed TLS 1.3 connection was answered by the
// backend of the key the offered session names, so its new tickets would
// tell the fleet nothing, and they are not read.
func (h *handshaker) resumeTLS(ctx context.Context, version uint16, st *stored) (attempt, error) {
	return h.resumeTLSReading(ctx, version, st, false)
}

// resumeTLSReading is resumeTLS; with readResumed a resumed TLS 1.3
// connection is ended before it returns too, and the sessions its
// NewSessionTickets gave are in a.issued: the next link of a resumption
// chain (chain.go).
func (h *handshaker) resumeTLSReading(ctx context.Context, version uint16, st *stored, readResumed bool) (attempt, error) {
	return h.resumeTLSReadingThen(ctx, version, st, readResumed, nil)
}

// resumeTLSReadingThen is resumeTLSReading that calls resumed, when not nil,
// once a TLS 1.3 offer read to the close has resumed and before that read:
// what waits for its new tickets may start meanwhile (see standInChain).
func (h *handshaker) resumeTLSReadingThen(ctx context.Context, version uint16, st *stored, readResumed bool, resumed func()) (attempt, error) {
	a := attempt{offered: st}
	conn, err := h.dial(ctx)
	if err != nil {
		return a, fmt.Errorf("dial %s: %w", h.addr, err)
	}
	t := newTap(conn)
	var keyLog bytes.Buffer
	cfg := h.module.tlsConfig(h.serverName, version)
	cfg.KeyLogWriter = &keyLog
	cache := &captureCache{offer: st.cs}
	cfg.ClientSessionCache = cache
	if version == VersionTLS13 && !st.received.IsZero() {
		// crypto/tls does not offer a ticket past the lifetime the
		// server announced; the server may well accept it, and what it
		// accepts is the measure. Seen from the client, the session is
		// fresh: the age it reports is then ~0, which a server must not
		// rely on anyway (an attacker with a stolen ticket sends any).
		start := time.Now()
		cfg.Time = func() time.Time { return st.received.Add(time.Since(start)) }
	}
	tc := tls.Client(t, cfg)
	herr := tc.HandshakeContext(ctx)
	sent, rx := t.sent(), t.received()
	a.firstFlight = t.firstFlight()
	switch {
	case herr != nil:
		t.Close()
	case version == VersionTLS13 && (readResumed || !resumed13(rx)):
		if resumed != nil && resumed13(rx) {
			resumed()
		}
		h.end(ctx, tc) // the new tickets come after the handshake
		rx = t.received()
	default:
		h.endInBackground(ctx, tc) // so the server keeps the session
	}
	ch, _ := wire.ReadClientHello(sent)
	if ch != nil && !offers(ch, version) {
		return a, fmt.Errorf("%w to %s (expired certificate?)", errNotOffered, h.addr)
	}
	if version == VersionTLS12 {
		f, _ := wire.ParseFlight12(rx)
		switch {
		case f.ServerHello == nil && f.Alert != nil && f.Alert.Fatal():
			return a, fmt.Errorf("%w %s", errAlert, f.Alert)
		case f.ServerHello == nil:
			return a, fmt.Errorf("TLS 1.2 ticket offer to %s: %w", h.addr, cmpErr(herr, "no ServerHello seen"))
		}
		a.resumed = ch != nil && len(ch.SessionID) > 0 && bytes.Equal(f.ServerHello.SessionID, ch.SessionID)
		a.tickets = tickets12(f)
	} else {
		sh := lastServerHello(rx)
		if sh == nil {
			return a, fmt.Errorf("TLS 1.3 resumption offer to %s: %w", h.addr, cmpErr(herr, "no ServerHello seen"))
		}
		a.resumed = sh.PSKSelected
		if herr == nil && (!a.resumed || readResumed) {
			state := tc.ConnectionState()
			a.nsts, _ = nsts13(rx, state.CipherSuite, keyLog.Bytes())
			a.tickets, a.group = tickets13(a.nsts), uint16(state.CurveID)
		}
	}
	a.completed = herr == nil
	if herr == nil && (version == VersionTLS12 || !a.resumed || readResumed) {
		for _, cs := range cache.all() {
			a.issued = append(a.issued, &stored{obtained: h.now(), received: time.Now(), cs: cs})
		}
	}
	return a, nil
}

// offers reports whether a ClientHello carries a session to resume.
func offers(ch *wire.ClientHello, version uint16) bool {
	if version == VersionTLS12 {
		return len(ch.SessionTicket) > 0
	}
	return len(ch.PSKIdentities) > 0
}

func cmpErr(err error, otherwise string) error {
	if err != nil {
		return err
	}
	return errors.New(otherwise)
}

// resumed13 reports whether the last ServerHello of a TLS 1.3 stream
// accepted the PSK offered.
func resumed13(rx []byte) bool {
	sh := lastServerHello(rx)
	return sh != nil && sh.PSKSelected
}

// lastServerHello returns the last plaintext ServerHello in a captured TLS
// 1.3 stream: the real one after a HelloRetryRequest.
func lastServerHello(rx []byte) *wire.ServerHello {
	events, _ := wire.NewFlightReader(len(rx)).Feed(rx)
	var last *wire.ServerHello
	for _, ev := range events {
		if ev.ServerHello != nil && !ev.ServerHello.HelloRetryRequest {
			last = ev.ServerHello
		}
	}
	return last
}
