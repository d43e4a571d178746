package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/resumption-exporter/resumption_exporter/probe/internal/wire"
)

// pskOffer is a TLS 1.3 session to offer in a hand-built ClientHello: the
// PSK and ticket, the NewSessionTicket's age_add, when the ticket came,
// and the group the full handshake used. It holds a secret.
type pskOffer struct {
	secret       *sessionSecret
	ageAdd       uint32
	received     time.Time
	group        uint16
	maxEarlyData uint32
}

// shareGroup is the group to send a key share for: the full handshake's,
// when it is one the probe can make, else X25519 (a hybrid group of the
// full handshake, X25519MLKEM768, contains X25519). A share of the group
// the server already chose spares a HelloRetryRequest.
func (p *pskOffer) shareGroup() uint16 {
	if slices.Contains(wire.ShareableGroups, p.group) {
		return p.group
	}
	return wire.ShareableGroups[0]
}

// clientHello builds a ClientHello offering p with the given PSK modes,
// bound, and returns it with the private half of its key share and the
// key schedule of the PSK.
func (p *pskOffer) clientHello(serverName string, modes []uint8, earlyData bool) (*wire.ClientHello, []byte, *wire.KeyShareKey, *wire.Schedule13, error) {
	priv, share, err := wire.NewKeyShare(p.shareGroup())
	if err != nil {
		return nil, nil, nil, nil, err
	}
	hello, err := wire.NewClientHello13(serverName, p.secret.suite, share)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	hello.PSKModes = modes
	hello.EarlyData = earlyData
	hello.PSKIdentities = []wire.PSKIdentity{{Identity: p.secret.ticket, ObfuscatedTicketAge: elapsedMillis(p.received) + p.ageAdd}}
	ks, err := wire.NewSchedule13(p.secret.suite, p.secret.secret)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	msg, err := ks.Bind(hello)
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("build ClientHello: %w", err)
	}
	return hello, msg, priv, ks, nil
}

// pskKEAnswer is what the server said to the psk_ke offer: its first
// ServerHello, or the error the offer ended with; none when there was no
// TLS 1.3 session to offer.
type pskKEAnswer struct {
	sh   *wire.ServerHello
	err  error
	none bool
}

// pskWithoutDHE offers the last TLS 1.3 ticket of the probe with
// psk_key_exchange_modes = [psk_ke] alone. The hello still carries
// supported_groups and a key share for the full handshake's group, so that
// a server refusing psk_ke can fall back to a full handshake rather than
// fail, and a server that looks for a key share before it weighs the PSK
// cannot mistake the offer for one it must retry; OpenSSL ignores the share
// under psk_ke. judgePSKKE reads the answer.
func (h *handshaker) pskWithoutDHE(ctx context.Context) *bool {
	return h.judgePSKKE(h.offerPSKKE(ctx, h.risks.lastPSK(), nil))
}

// offerPSKKE makes the psk_ke offer of p. The offer is abandoned by
// closing the socket, never with an alert (OpenSSL drops sessions on fatal
// alerts).
func (h *handshaker) offerPSKKE(ctx context.Context, p *pskOffer, pre *preDialed) pskKEAnswer {
	if p == nil {
		h.discard(pre)
		return pskKEAnswer{none: true}
	}
	_, msg, _, _, err := p.clientHello(h.serverName, []uint8{wire.PSKModePlain}, false)
	if err != nil {
		h.discard(pre)
		return pskKEAnswer{err: err}
	}
	sh, err := h.sendHello13On(ctx, msg, pre)
	return pskKEAnswer{sh: sh, err: err}
}

// judgePSKKE reads the answer to the psk_ke offer, once the fleet is
// known. Resumed without DHE = pre_shared_key and no key_share in the
// ServerHello; a ServerHello without pre_shared_key is a refusal. nil: no
// TLS 1.3 session to offer, the offer failed, it was answered with a
// HelloRetryRequest (the hello carries a share of the full handshake's
// group, so the server asks for a cookie or another group, after which it
// may still accept psk_ke: the probe does not answer it), or it was refused
// while the probe shows several backends (another one may have answered).
func (h *handshaker) judgePSKKE(a pskKEAnswer) *bool {
	switch {
	case a.none:
		h.log.Debug("No TLS 1.3 session for the psk_ke offer", "step", "risks", "risk", RiskPSKWithoutDHE)
		return nil
	case a.err == nil:
		sh := a.sh
		got := sh.PSKSelected && sh.KeyShareGroup == 0
		h.log.Debug("psk_ke offer answered", "step", "risks", "risk", RiskPSKWithoutDHE, "addr", h.addr,
			"psk_selected", sh.PSKSelected, "key_share_group", sh.KeyShareGroup, "hello_retry", sh.HelloRetryRequest)
		if sh.HelloRetryRequest {
			h.log.Debug("psk_ke offer answered with a HelloRetryRequest: the server may accept psk_ke after the retry; not judged",
				"step", "risks", "risk", RiskPSKWithoutDHE, "addr", h.addr, "key_share_group", sh.KeyShareGroup)
			return nil
		}
		if !sh.PSKSelected && h.severalBackends() {
			h.log.Debug("psk_ke offer refused behind several backends: another one may have answered; not judged",
				"step", "risks", "risk", RiskPSKWithoutDHE, "addr", h.addr)
			return nil
		}
		return &got
	case errors.Is(a.err, errAlert):
		// A server refusing psk_ke with an alert does not resume without DHE.
		h.log.Debug("psk_ke offer refused", "step", "risks", "risk", RiskPSKWithoutDHE, "addr", h.addr, "err", a.err)
		no := false
		return &no
	}
	h.log.Debug("psk_ke offer failed", "step", "risks", "risk", RiskPSKWithoutDHE, "addr", h.addr, "err", a.err)
	return nil
}

// startPSKWithoutDHE makes the psk_ke offer beside the rest of the probe,
// off its critical path; runRisks judges the answer once the fleet is
// known. It starts at the earliest point the offer cannot disturb another:
//
//   - beside the PSK chain's first offer (early), when earlier probes met
//     one server and the full handshake gave several tickets: the psk_ke
//     offer then carries the last one, the first offer the first, so that
//     a single-use ticket is never offered twice at once (should the probe
//     show several backends after all, the PSK retries leave the last
//     ticket alone until the psk_ke offer is answered, see candidates);
//   - else beside the follow-ups, once the first offers show one server;
//   - else, behind several backends, with the other risk checks: the PSK
//     retries offer the same last ticket, and a single-use one that a
//     psk_ke offer spent on the way would make a retry fail that reached
//     its backend.
//
// It does nothing when the check is off or the offer was started already.
//
// pre, when not nil, is a connection dialled for the offer ahead of time
// (see preDial); it is closed when the offer is not made.
func (h *handshaker) startPSKWithoutDHE(ctx context.Context, early bool, pre *preDialed) {
	if h.risks == nil || !h.module.HasRisk(RiskPSKWithoutDHE) || h.pskKE != nil ||
		early && !h.oneServer || !early && h.severalBackends() {
		h.discard(pre)
		return
	}
	k := &pskKEOffer{done: make(chan struct{})}
	p := h.risks.lastPSK() // now: the ticket is fixed before anything else may offer it
	h.pskKE = k
	h.ending.Go(func() { // Run waits for it
		defer close(k.done)
		k.answer = h.offerPSKKE(ctx, p, pre)
	})
}

// pskKEOffer is a psk_ke offer made beside the chains: done is closed once
// answer is set.
type pskKEOffer struct {
	done   chan struct{}
	answer pskKEAnswer
}

// pskKEPending reports whether a psk_ke offer made beside the chains is
// still waiting for its answer.
func (h *handshaker) pskKEPending() bool {
	if h.pskKE == nil {
		return false
	}
	select {
	case <-h.pskKE.done:
		return false
	default:
		return true
	}
}

// severalBackends reports whether this probe showed several backends behind
// its address: a refused offer may then have reached one that never issued
// the session, and says nothing of the server's policy.
func (h *handshaker) severalBackends() bool {
	return h.fleet != nil && h.fleet.balanced()
}

// sendHello13 sends one hand-built TLS 1.3 ClientHello on a new connection
// and returns the server's first ServerHello (perhaps a HelloRetryRequest);
// the connection is then closed without an alert.
func (h *handshaker) sendHello13(ctx context.Context, msg []byte) (*wire.ServerHello, error) {
	return h.sendHello13On(ctx, msg, nil)
}

// sendHello13On is sendHello13 on pre's connection, when not nil.
func (h *handshaker) sendHello13On(ctx context.Context, msg []byte, pre *preDialed) (*wire.ServerHello, error) {
	conn, err := pre.take()
	if pre == nil {
		conn, err = h.dial(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", h.addr, err)
	}
	t := newTap(conn)
	defer t.Close()
	if _, err := t.Write(wire.AppendRecords(nil, wire.RecordHandshake, wire.VersionTLS10, msg)); err != nil {
		return nil, fmt.Errorf("send ClientHello to %s: %w", h.addr, err)
	}
	sh, err := newServerFlight(t).serverHello()
	if err != nil {
		return nil, fmt.Errorf("offer to %s: %w", h.addr, err)
	}
	return sh, nil
}

// preDialed is a connection dialled ahead of the offer it will carry, so
// that its TCP handshake (and any STARTTLS preamble) overlaps what the
// offer waits for: the psk_ke offer needs the TLS 1.3 stand-in's new
// ticket, which comes a round trip after the stand-in resumed.
type preDialed struct {
	done chan struct{}
	conn net.Conn
	err  error
}

// preDial starts dialling a connection for a later offer; Run waits for
// the dial. Exactly one of take (through sendHello13On) and discard must
// follow.
func (h *handshaker) preDial(ctx context.Context) *preDialed {
	p := &preDialed{done: make(chan struct{})}
	h.ending.Go(func() {
		defer close(p.done)
		p.conn, p.err = h.dial(ctx)
	})
	return p
}

// take waits for the dial and returns its connection, which the caller
// then owns; nil, nil for a nil p.
func (p *preDialed) take() (net.Conn, error) {
	if p == nil {
		return nil, nil
	}
	<-p.done
	return p.conn, p.err
}

// discard closes p's connection, once dialled, without sending anything.
func (h *handshaker) discard(p *preDialed) {
	if p == nil {
		return
	}
	h.ending.Go(func() {
		<-p.done
		if p.conn != nil {
			p.conn.Close()
		}
	})
}
