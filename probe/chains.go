package probe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/resumption-exporter/resumption_exporter/probe/internal/wire"
)

// chainOut is what one chain reports: its check, whether its full handshake
// showed the version to be spoken, and the tickets it saw.
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
}

func failed(out chainOut, err error) chainOut {
	out.check.Completed = false
	out.check.Err = err.Error()
	return out
}

// sessionIDChain: a full TLS 1.2 handshake without the ticket extension (a
// server about to issue a ticket sends an empty session ID), then an offer of
// the session ID it assigned.
func (h *handshaker) sessionIDChain(ctx context.Context, store *Sessions, key string) chainOut {
	out := chainOut{check: Check{Mechanism: MechanismSessionID}, version: VersionTLS12}
	fh, err := h.full(ctx, VersionTLS12, false)
	if err != nil {
		out.versionErr = err
		return failed(out, err)
	}
	out.check.FullHandshake = fh.tap.firstFlight()
	f, err := flight12(fh.tap.received())
	if err != nil {
		return failed(out, fmt.Errorf("read ServerHello of %s: %w", h.addr, err))
	}
	out.check.Completed = true
	if len(f.ServerHello.SessionID) == 0 {
		return out // nothing to resume
	}
	out.check.Issued = true
	s := &session12{sessionID: f.ServerHello.SessionID, suite: fh.state.CipherSuite,
		ems: f.ServerHello.ExtendedMasterSecret, master: fh.masterSecret()}
	return h.offerFresh12(ctx, out, s, store, key)
}

// ticketChain12: a full TLS 1.2 handshake with the ticket extension, the
// NewSessionTicket read off the wire (crypto/tls drops its lifetime hint),
// then an offer of that ticket.
func (h *handshaker) ticketChain12(ctx context.Context, store *Sessions, key string) chainOut {
	out := chainOut{check: Check{Mechanism: MechanismSessionTicket}, version: VersionTLS12}
	fh, tickets, s, err := h.ticketHandshake12(ctx)
	if err != nil {
		out.versionErr = err
		return failed(out, err)
	}
	out.check.FullHandshake = fh.tap.firstFlight()
	out.tickets = tickets
	out.check.Completed = true
	if s == nil {
		return out
	}
	out.check.Issued = true
	return h.offerFresh12(ctx, out, s, store, key)
}

// ticketHandshake12 runs a full TLS 1.2 handshake that asks for a ticket and
// returns what the server issued; s is nil when it issued no usable ticket.
func (h *handshaker) ticketHandshake12(ctx context.Context) (fh *fullHandshake, ts []ticketSeen, s *session12, err error) {
	fh, err = h.full(ctx, VersionTLS12, true)
	if err != nil {
		return nil, nil, nil, err
	}
	f, err := flight12(fh.tap.received())
	if err != nil {
		return fh, nil, nil, fmt.Errorf("read TLS 1.2 flight of %s: %w", h.addr, err)
	}
	for _, t := range f.Tickets {
		if len(t.Ticket) > 0 { // an empty ticket means "none this time" (RFC 5077 §3.3)
			ts = append(ts, ticketSeen{version: VersionTLS12, raw: t.Ticket, lifetime: t.LifetimeHint})
		}
	}
	h.risks.saw12(fh, ts)
	if len(ts) > 0 {
		s = &session12{ticket: ts[0].raw, suite: fh.state.CipherSuite, ems: f.ServerHello.ExtendedMasterSecret,
			master: fh.masterSecret()}
	}
	return fh, ts, s, nil
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

// offerFresh12 offers the session just obtained, then the oldest earlier one
// the store still holds, and keeps the fresh one for later probes.
func (h *handshaker) offerFresh12(ctx context.Context, out chainOut, s *session12, store *Sessions, key string) chainOut {
	resumed, ff, err := h.offer12(ctx, s)
	if err != nil {
		return failed(out, err)
	}
	out.check.Resumed, out.check.ResumedHandshake = resumed, ff
	if !resumed {
		return out
	}
	m := out.check.Mechanism
	out.maxAge, out.hasMaxAge = h.replay(store, key, m, func(st *stored) (bool, error) {
		ok, _, err := h.offer12(ctx, st.s12)
		return ok, err
	})
	store.add(key, m, &stored{obtained: h.now(), s12: s})
	return out
}

// maxReplays bounds the earlier sessions offered per probe and mechanism.
const maxReplays = 3

// replay offers earlier sessions, oldest first, forgetting each one the
// server refuses, until one is resumed or maxReplays were tried. It returns
// the age of the one resumed. A session whose offer failed for another
// reason (network) is kept for the next probe.
func (h *handshaker) replay(store *Sessions, key string, m Mechanism, offer func(*stored) (bool, error)) (time.Duration, bool) {
	for i, st := range store.oldest(key, m) {
		if i == maxReplays {
			break
		}
		ok, err := offer(st)
		switch {
		case errors.Is(err, errAlert) || errors.Is(err, errNotOffered):
			store.forget(key, m, st) // refused for good, or never to be offered again
		case err != nil:
			h.log.Debug("Offer of an earlier session failed", "mechanism", m, "step", "replay", "addr", h.addr,
				"age", h.now().Sub(st.obtained).Round(time.Second), "err", err)
			return 0, false
		case ok:
			return h.now().Sub(st.obtained), true
		default:
			store.forget(key, m, st)
		}
	}
	return 0, false
}

// pskChain13: a full TLS 1.3 handshake, every NewSessionTicket decrypted off
// the wire (so lifetimes crypto/tls would reject are seen too), then a
// resumption by crypto/tls with the first ticket.
func (h *handshaker) pskChain13(ctx context.Context, store *Sessions, key string) chainOut {
	out := chainOut{check: Check{Mechanism: MechanismPSK}, version: VersionTLS13}
	fh, tickets, err := h.ticketHandshake13(ctx)
	if err != nil {
		out.versionErr = err
		return failed(out, err)
	}
	out.check.FullHandshake = fh.tap.firstFlight()
	out.tickets = tickets
	out.check.Completed = true
	if len(fh.sessions) == 0 {
		return out // no ticket crypto/tls could use
	}
	out.check.Issued = true
	resumed, ff, err := h.resume13(ctx, fh.sessions[0], time.Time{})
	if err != nil {
		return failed(out, err)
	}
	out.check.Resumed, out.check.ResumedHandshake = resumed, ff
	if !resumed {
		return out
	}
	out.maxAge, out.hasMaxAge = h.replay(store, key, MechanismPSK, func(st *stored) (bool, error) {
		ok, _, err := h.resume13(ctx, st.s13, st.received)
		return ok, err
	})
	// The second ticket, when there is one, is kept: a server may make
	// tickets single-use, and the first was just spent.
	keep := fh.sessions[len(fh.sessions)-1]
	store.add(key, MechanismPSK, &stored{obtained: h.now(), received: fh.received, s13: keep})
	return out
}

func (h *handshaker) ticketHandshake13(ctx context.Context) (*fullHandshake, []ticketSeen, error) {
	fh, err := h.full(ctx, VersionTLS13, true)
	if err != nil {
		return nil, nil, err
	}
	secret := wire.ParseKeyLog(fh.keyLog)[wire.LabelServerTrafficSecret0]
	if secret == nil {
		return fh, nil, errors.New("crypto/tls logged no SERVER_TRAFFIC_SECRET_0")
	}
	f, err := wire.ParseFlight13(fh.tap.received(), fh.state.CipherSuite, secret)
	if err != nil {
		return fh, nil, fmt.Errorf("read TLS 1.3 tickets of %s: %w", h.addr, err)
	}
	var ts []ticketSeen
	for _, t := range f.Tickets {
		ts = append(ts, ticketSeen{version: VersionTLS13, raw: t.Ticket, lifetime: t.Lifetime, maxEarlyData: t.MaxEarlyData})
	}
	h.risks.saw13(fh, f.Tickets)
	return fh, ts, nil
}

// errNotOffered: crypto/tls declined to offer a stored TLS 1.3 session (it
// checks the certificate the session was made with), so nothing was learnt.
var errNotOffered = errors.New("crypto/tls did not offer the session")

// resume13 lets crypto/tls offer cs, psk_dhe_ke as every browser does, and
// reads the verdict off the wire: the server accepted when its (last, after
// any HelloRetryRequest) ServerHello carries pre_shared_key. A completed
// handshake is then ended in the background (see endInBackground): the
// verdict is in, and the server's close is only awaited so that it keeps
// the session. A failed one is closed without close_notify or any alert.
func (h *handshaker) resume13(ctx context.Context, cs *tls.ClientSessionState, receivedAt time.Time) (bool, time.Duration, error) {
	conn, err := h.dial(ctx)
	if err != nil {
		return false, 0, fmt.Errorf("dial %s: %w", h.addr, err)
	}
	t := newTap(conn)
	cfg := h.module.tlsConfig(h.serverName, VersionTLS13)
	cfg.ClientSessionCache = &captureCache{offer: cs}
	if !receivedAt.IsZero() {
		// crypto/tls does not offer a ticket past the lifetime the
		// server announced; the server may well accept it, and what it
		// accepts is the measure. Seen from the client, the session is
		// fresh: the age it reports is then ~0, which a server must not
		// rely on anyway (an attacker with a stolen ticket sends any).
		start := time.Now()
		cfg.Time = func() time.Time { return receivedAt.Add(time.Since(start)) }
	}
	tc := tls.Client(t, cfg)
	herr := tc.HandshakeContext(ctx)
	sent, rx := t.sent(), t.received()
	if herr == nil {
		h.endInBackground(ctx, tc) // so the server keeps the session
	} else {
		t.Close()
	}
	if ch, err := wire.ReadClientHello(sent); err == nil && len(ch.PSKIdentities) == 0 {
		return false, 0, fmt.Errorf("%w to %s (expired certificate?)", errNotOffered, h.addr)
	}
	sh := lastServerHello(rx)
	if sh == nil {
		if herr == nil {
			herr = errors.New("no ServerHello seen")
		}
		return false, 0, fmt.Errorf("TLS 1.3 resumption offer to %s: %w", h.addr, herr)
	}
	return sh.PSKSelected, t.firstFlight(), nil
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
