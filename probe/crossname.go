package probe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"

	"github.com/resumption-exporter/resumption_exporter/probe/internal/wire"
)

// maxCrossNames bounds cross_names: each name costs up to one connection
// per mechanism.
const maxCrossNames = 8

// ValidateCrossNames checks that names are distinct host names, at most
// maxCrossNames of them.
func ValidateCrossNames(names []string) error {
	if len(names) > maxCrossNames {
		return fieldErr("cross_names", "%d names, at most %d", len(names), maxCrossNames)
	}
	seen := map[string]bool{}
	for _, n := range names {
		if err := ValidateServerName(n); err != nil {
			return &FieldError{Field: "cross_names", Err: err}
		}
		if seen[n] {
			return fieldErr("cross_names", "%q listed twice", n)
		}
		seen[n] = true
	}
	return nil
}

// ValidateServerName reports whether n can be sent as SNI: non-empty, at
// most 253 bytes, no spaces, controls or slashes.
func ValidateServerName(n string) error {
	if n == "" || len(n) > 253 || strings.ContainsFunc(n, func(r rune) bool { return r <= ' ' || r == '/' || r == 0x7f }) {
		return fmt.Errorf("%s is not a host name", Echo(n))
	}
	return nil
}

func (s *riskSink) sawSessionID(sess *session12) {
	if s == nil || sess == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sessionID == nil {
		s.sessionID = sess
	}
}

// crossNames offers each session the chains obtained for the target's
// name (the session ID, the first TLS 1.2 ticket, the last TLS 1.3 PSK)
// under each of names, on new connections to the same address, by hand:
// crypto/tls offers a session only under the name it was obtained for.
// A mechanism is true when any name resumed it, false when every offer
// was answered without resuming, absent when nothing could be offered or
// every offer failed.
func (h *handshaker) crossNames(ctx context.Context, names []string) (map[Mechanism]bool, *bool) {
	h.risks.mu.Lock()
	sid, t12, psk := h.risks.sessionID, h.risks.ticket12, h.risks.psk
	h.risks.mu.Unlock()
	out := map[Mechanism]bool{}
	var resumedBy []string
	for _, name := range names {
		resumed := false
		if sid != nil {
			resumed = h.crossVerdict(out, MechanismSessionID, name, h.cross12(ctx, sid, name)) || resumed
		}
		if t12 != nil {
			resumed = h.crossVerdict(out, MechanismSessionTicket, name, h.cross12(ctx, t12, name)) || resumed
		}
		if psk != nil {
			resumed = h.crossVerdict(out, MechanismPSK, name, h.cross13(ctx, psk, name)) || resumed
		}
		if resumed {
			resumedBy = append(resumedBy, name)
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, h.clientAuthAmong(ctx, resumedBy)
}

// clientAuthAmong makes one full handshake to each name that resumed the
// target's sessions and reports whether any asked for a client
// certificate: resuming there skips that authentication (nginx
// CVE-2025-23419's bypass). crypto/tls calls GetClientCertificate exactly
// when the server sent a CertificateRequest, which TLS 1.3 encrypts; the
// handshake skips verifying the other name's certificate (it only tells
// whether one is asked for) and offers none. nil when no name resumed, or
// a handshake failed before the CertificateRequest could come.
func (h *handshaker) clientAuthAmong(ctx context.Context, names []string) *bool {
	if len(names) == 0 {
		return nil
	}
	asked := false
	for _, name := range names {
		ok, err := h.asksClientCert(ctx, name)
		if err != nil {
			h.log.Debug("Cross-name client-auth handshake failed", "step", "risks", "cross_name", name, "addr", h.addr, "err", err)
			return nil
		}
		h.log.Debug("Cross-name client-auth handshake", "step", "risks", "cross_name", name, "addr", h.addr, "certificate_requested", ok)
		asked = asked || ok
	}
	return &asked
}

func (h *handshaker) asksClientCert(ctx context.Context, name string) (bool, error) {
	conn, err := h.dial(ctx)
	if err != nil {
		return false, fmt.Errorf("dial %s: %w", h.addr, err)
	}
	defer conn.Close()
	vs := h.module.Versions()
	cfg := h.module.tlsConfig(name, vs[len(vs)-1])
	cfg.InsecureSkipVerify, cfg.VerifyPeerCertificate, cfg.VerifyConnection = true, nil, nil
	asked := false
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		asked = true
		return &tls.Certificate{}, nil
	}
	err = tls.Client(conn, cfg).HandshakeContext(ctx)
	if asked {
		return true, nil // the server may then refuse the empty certificate
	}
	return false, err
}

// crossOutcome is one cross-name offer's answer; err set when it failed.
type crossOutcome struct {
	resumed bool
	err     error
}

// crossVerdict records o in out and reports whether the offer resumed.
func (h *handshaker) crossVerdict(out map[Mechanism]bool, m Mechanism, name string, o crossOutcome) bool {
	if errors.Is(o.err, errAlert) {
		// An alert (unrecognized_name, say) is an answer: not resumed.
		h.log.Debug("Cross-name offer refused with an alert", "step", "risks", "mechanism", m, "cross_name", name, "addr", h.addr, "err", o.err)
		o = crossOutcome{}
	}
	if o.err != nil {
		h.log.Debug("Cross-name offer failed", "step", "risks", "mechanism", m, "cross_name", name, "addr", h.addr, "err", o.err)
		return false
	}
	h.log.Debug("Cross-name offer answered", "step", "risks", "mechanism", m, "cross_name", name, "addr", h.addr, "resumed", o.resumed)
	out[m] = out[m] || o.resumed
	return o.resumed
}

func (h *handshaker) cross12(ctx context.Context, s *session12, name string) crossOutcome {
	o, err := h.offer12As(ctx, s, name)
	return crossOutcome{resumed: o.resumed, err: err}
}

// cross13 offers p with psk_dhe_ke, as any client does; resumed = the
// ServerHello selected the PSK.
func (h *handshaker) cross13(ctx context.Context, p *pskOffer, name string) crossOutcome {
	_, msg, _, _, err := p.clientHello(name, []uint8{wire.PSKModeDHE}, false)
	if err != nil {
		return crossOutcome{err: err}
	}
	sh, err := h.sendHello13(ctx, msg)
	if err != nil {
		return crossOutcome{err: err}
	}
	return crossOutcome{resumed: sh.PSKSelected}
}
