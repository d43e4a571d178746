package probe

import (
	"context"
	"crypto/tls"
	"fmt"
	"sync"
	"time"

	"github.com/resumption-exporter/resumption_exporter/probe/internal/wire"
)

// Risk names one check, beyond whether a server resumes, of how safely it
// does so. The values are what a module's `risks:` list holds.
type Risk string

const (
	// RiskPSKWithoutDHE: the server resumes a TLS 1.3 PSK offered with
	// psk_ke alone, without (EC)DHE, so the session has no forward secrecy
	// from the ticket key. One extra offer; needs the psk check.
	RiskPSKWithoutDHE Risk = "psk_without_dhe"
	// RiskTicketbleed: CVE-2016-9244, judged from the session_ticket
	// check's own first offer when that offer is made by hand with a
	// 16-byte session ID, which it is once earlier probes met one server
	// (Sessions.oneServer) and the suite is one finish12 can finish; one
	// more offer only on a signal. Otherwise the check makes an offer of
	// its own: on a target's first probe, behind a balancer, after a
	// refused hand-built offer, and on every probe of a target that never
	// qualifies as one server: tickets without a key name (Go's), stateful
	// TLS 1.3 tickets, a server of one version, a module without both the
	// session_ticket and psk checks.
	RiskTicketbleed Risk = "ticketbleed"
	// RiskTicketWeakness: secrets in clear, an all-zero HMAC key, reused
	// keystreams, judged from the tickets the other checks obtained.
	RiskTicketWeakness Risk = "ticket_weakness"
	// RiskEarlyData: 0-RTT acceptance and replay. It sends application
	// data (Module.EarlyDataPayload) twice, so it is off by default.
	RiskEarlyData Risk = "early_data"
	// RiskTicketReuse: whether a ticket resumed once resumes again (not
	// single-use). Info only; one extra offer per version, so off by
	// default.
	RiskTicketReuse Risk = "ticket_reuse"
	// RiskTicketRenewal: whether a resumed TLS 1.2 handshake issues a
	// fresh ticket, which carries the same master secret forward. Read
	// from the session_ticket check's own first offer: no extra handshake.
	RiskTicketRenewal Risk = "ticket_renewal"
	// RiskAfterFatalAlert: whether a session whose connection ended with
	// a fatal alert still resumes (RFC 5246 §7.2 says it must not). It
	// spends a session and adds, per mechanism, one full handshake and
	// one offer, so it is off by default.
	RiskAfterFatalAlert Risk = "after_fatal_alert"
	// RiskResumptionChain: how old a chain of resumptions, each issuing
	// the ticket the next one offers, grows while the server still
	// resumes it (RFC 8446 §4.6.1 asks servers to bound it). One extra
	// resumed offer per ticket mechanism, so off by default.
	RiskResumptionChain Risk = "resumption_chain"
)

// Risks lists every risk check, in the order the exporter reports them.
var Risks = []Risk{RiskPSKWithoutDHE, RiskTicketbleed, RiskTicketWeakness, RiskEarlyData, RiskTicketReuse, RiskTicketRenewal, RiskAfterFatalAlert,
	RiskResumptionChain}

// DefaultRisks are the risk checks of a module that lists none: those that
// cost at most one extra handshake.
var DefaultRisks = []Risk{RiskPSKWithoutDHE, RiskTicketbleed, RiskTicketWeakness, RiskTicketRenewal}

// DefaultEarlyDataPayload is the 0-RTT data the early_data check sends
// unless the module says otherwise: an HTTP HEAD, a safe method (RFC 9110
// §9.2.1) that changes nothing on the server and has no response body, so
// that the replay the check provokes is harmless.
const DefaultEarlyDataPayload = "HEAD / HTTP/1.0\r\n\r\n"

func validateRisks(rs []Risk) error {
	seen := map[Risk]bool{}
	for _, r := range rs {
		switch r {
		case RiskPSKWithoutDHE, RiskTicketbleed, RiskTicketWeakness, RiskEarlyData, RiskTicketReuse, RiskTicketRenewal, RiskAfterFatalAlert,
			RiskResumptionChain:
		default:
			return fmt.Errorf("risks: unknown check %q (want psk_without_dhe, ticketbleed, ticket_weakness, early_data, ticket_reuse, ticket_renewal, after_fatal_alert or resumption_chain)", r)
		}
		if seen[r] {
			return fmt.Errorf("risks: %q listed twice", r)
		}
		seen[r] = true
	}
	return nil
}

// HasRisk reports whether the module runs the risk check r.
func (m *Module) HasRisk(r Risk) bool {
	for _, x := range m.Risks {
		if x == r {
			return true
		}
	}
	return false
}

// RiskResult holds the verdicts of the risk checks. A nil pointer means the
// check did not run or could not apply (no TLS 1.3 ticket to offer, no
// TLS 1.2 ticket resumed); it never reads as "safe".
type RiskResult struct {
	// PSKWithoutDHE: the server resumed a psk_ke-only offer (its
	// ServerHello carried pre_shared_key and no key_share).
	PSKWithoutDHE *bool
	// EarlyDataAccepted: the server's EncryptedExtensions accepted 0-RTT
	// data; EarlyDataReplayAccepted: it accepted the same first flight
	// again (no anti-replay).
	EarlyDataAccepted       *bool
	EarlyDataReplayAccepted *bool
	// Ticketbleed: a resumed hand-built TLS 1.2 ticket offer with a
	// 16-byte session ID was answered, twice, with a longer ID that starts
	// with ours.
	Ticketbleed *bool
	// TicketReuseAccepted says, per version, whether the ticket the chain
	// resumed on its first offer resumed again when offered once more.
	// A version whose first offer did not resume is absent.
	TicketReuseAccepted map[uint16]bool
	// TicketRenewed12: the session_ticket check's first offer resumed and
	// the server's resumed flight carried a NewSessionTicket: the session
	// (its master secret) lives on in the new ticket. nil when that offer
	// did not resume.
	TicketRenewed12 *bool
	// AfterFatalAlertAccepted says, per mechanism the chains resumed,
	// whether a session whose connection the probe ended with a fatal
	// alert resumed when offered on a new connection. A mechanism the
	// check could not judge is absent.
	AfterFatalAlertAccepted map[Mechanism]bool
	// ResumptionChainMaxAge says, per ticket mechanism, how long ago the
	// full handshake ran that the oldest resumption chain this probe saw
	// resumed descends from (see chain.go). A mechanism none of whose
	// offers resumed is absent.
	ResumptionChainMaxAge map[Mechanism]time.Duration
	// CrossNameAccepted says, per mechanism offered under the module's
	// cross_names, whether any of those names resumed a session obtained
	// for the target's name. A mechanism with nothing to offer, or whose
	// offers all failed, is absent.
	CrossNameAccepted map[Mechanism]bool
	// CrossNameClientAuth: a name that resumed such a session asks for a
	// client certificate in its full handshake, which resumption skips
	// (the bypass of nginx CVE-2025-23419). nil when no name resumed.
	CrossNameClientAuth *bool
	// TicketWeaknesses lists, per version and weakness, the verdicts that
	// applied to the tickets seen.
	TicketWeaknesses []TicketWeakness
}

// Weakness names one way a ticket fails to protect the session in it
// (Hebrok et al., USENIX Security 2023). The values are label values.
type Weakness string

const (
	// WeaknessSecretInClear: the session's secret appears in the ticket.
	WeaknessSecretInClear Weakness = "secret_in_clear"
	// WeaknessZeroKey: an OpenSSL-format ticket authenticates under an
	// all-zero HMAC key.
	WeaknessZeroKey Weakness = "zero_key"
	// WeaknessKeystreamReuse: two tickets were encrypted with the same
	// keystream.
	WeaknessKeystreamReuse Weakness = "keystream_reuse"
)

// TicketWeakness is one verdict of the ticket_weakness check.
type TicketWeakness struct {
	Version  uint16
	Weakness Weakness
	Found    bool
}

// riskSink gathers, while the chains run, what the risk checks need from
// them: tickets with their secrets, a TLS 1.3 session to offer with
// psk_ke, a TLS 1.2 ticket to offer by hand (Ticketbleed). It holds secrets: it lives for
// one probe and nothing of it but verdicts reaches the Result.
type riskSink struct {
	mu      sync.Mutex
	tickets []ticketSecret
	psk     *pskOffer
	// ticket12 is the first TLS 1.2 ticket obtained, with what a
	// hand-built offer of it needs.
	ticket12 *session12
	// bleed12 is the Ticketbleed signal of the session_ticket check's
	// first offer, when that hand-built offer resumed; nil otherwise.
	bleed12 *bool
	// sessionID is the session ID the session_id check obtained, for the
	// cross-name offers.
	sessionID *session12
	// resumedFresh holds, per version, the fresh ticket session a chain's
	// first offer resumed, for the ticket_reuse check.
	resumedFresh map[uint16]*stored
	// renewed12: whether the resumed flight of the session_ticket check's
	// first offer carried a NewSessionTicket; nil when it did not resume.
	renewed12 *bool
	// chainAges holds the resumption_chain check's age per mechanism.
	chainAges map[Mechanism]time.Duration
}

// ticketSecret is a ticket with the secret of the session it carries.
type ticketSecret struct {
	version uint16
	raw     []byte
	secret  []byte
}

// saw12 records the tickets of a TLS 1.2 full handshake and its master
// secret.
func (s *riskSink) saw12(fh *fullHandshake, ts []ticketSeen) {
	if s == nil || fh == nil {
		return
	}
	ms := fh.masterSecret()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range ts {
		if len(ms) > 0 {
			s.tickets = append(s.tickets, ticketSecret{version: VersionTLS12, raw: t.raw, secret: ms})
		}
	}
}

// saw13 records the tickets of a TLS 1.3 full handshake with the PSK of
// each and keeps the last one for the psk_ke offer.
func (s *riskSink) saw13(fh *fullHandshake, nsts []wire.NewSessionTicket13) {
	if s == nil || fh == nil {
		return
	}
	offers := pskOffersOf(fh, nsts)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range offers {
		s.tickets = append(s.tickets, ticketSecret{version: VersionTLS13, raw: o.secret.ticket, secret: o.secret.secret})
		s.psk = o
	}
}

// sawResumed13 records the tickets a resumed TLS 1.3 connection issued, as
// saw13 does a full handshake's: the stand-in's connection (standin.go)
// gives the probe its TLS 1.3 tickets.
func (s *riskSink) sawResumed13(a attempt) {
	if s == nil {
		return
	}
	var css []*tls.ClientSessionState
	for _, st := range a.issued {
		css = append(css, st.cs)
	}
	// The stand-in's own ticket too: a server issues one ticket after a
	// resumption, and the keystream_reuse verdict needs two of a version.
	if a.offered != nil && a.offered.cs != nil {
		if sec, err := secretOf(a.offered.cs); err == nil && sec.version == VersionTLS13 {
			s.mu.Lock()
			s.tickets = append(s.tickets, ticketSecret{version: VersionTLS13, raw: sec.ticket, secret: sec.secret})
			s.mu.Unlock()
		}
	}
	var received time.Time
	if len(a.issued) > 0 {
		received = a.issued[0].received
	}
	offers := pskOffersFrom(css, a.nsts, received, a.group)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range offers {
		s.tickets = append(s.tickets, ticketSecret{version: VersionTLS13, raw: o.secret.ticket, secret: o.secret.secret})
		s.psk = o
	}
}

// pskOffersOf pairs the sessions crypto/tls kept from a TLS 1.3 full
// handshake (PSK, ticket) with the NewSessionTickets read off the wire
// (age_add, max_early_data), in the order received. A session whose state
// cannot be read is left out.
func pskOffersOf(fh *fullHandshake, nsts []wire.NewSessionTicket13) []*pskOffer {
	return pskOffersFrom(fh.sessions, nsts, fh.received, uint16(fh.state.CurveID))
}

// pskOffersFrom is pskOffersOf for the sessions of any connection, received
// at the given time on a connection that used group.
func pskOffersFrom(sessions []*tls.ClientSessionState, nsts []wire.NewSessionTicket13, received time.Time, group uint16) []*pskOffer {
	var out []*pskOffer
	for _, cs := range sessions {
		sec, err := secretOf(cs)
		if err != nil || sec.version != VersionTLS13 {
			continue
		}
		for _, n := range nsts {
			if string(n.Ticket) == string(sec.ticket) {
				out = append(out, &pskOffer{secret: sec, ageAdd: n.AgeAdd, received: received,
					group: group, maxEarlyData: n.MaxEarlyData})
				break
			}
		}
	}
	return out
}

// pskOffers reads the NewSessionTickets of a TLS 1.3 full handshake and
// returns its sessions as offers.
func pskOffers(fh *fullHandshake) ([]*pskOffer, error) {
	nsts, err := nsts13(fh.tap.received(), fh.state.CipherSuite, fh.keyLog)
	if err != nil {
		return nil, err
	}
	return pskOffersOf(fh, nsts), nil
}

func (s *riskSink) lastPSK() *pskOffer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.psk
}

// runRisks runs the risk checks after the chains, on what they gathered.
func (h *handshaker) runRisks(ctx context.Context, r *Result) {
	if h.risks == nil {
		return // a handshaker made without a sink gathered nothing to judge
	}
	m := h.module
	// Ticketbleed first: its own offer, when it makes one, then overlaps
	// a psk_ke offer still in flight (see startPSKWithoutDHE).
	if m.HasRisk(RiskTicketbleed) {
		c, _ := r.Check(MechanismSessionTicket)
		r.Risks.Ticketbleed = h.ticketbleed(ctx, c.OffersResumed > 0)
	}
	switch {
	case h.pskKE != nil:
		<-h.pskKE.done
		r.Risks.PSKWithoutDHE = h.judgePSKKE(h.pskKE.answer)
	case m.HasRisk(RiskPSKWithoutDHE):
		r.Risks.PSKWithoutDHE = h.pskWithoutDHE(ctx)
	}
	if m.HasRisk(RiskTicketWeakness) {
		r.Risks.TicketWeaknesses = h.risks.weaknesses()
		for _, w := range r.Risks.TicketWeaknesses {
			h.log.Debug("Ticket weakness", "step", "risks", "version", VersionName(w.Version), "weakness", w.Weakness, "found", w.Found)
		}
	}
	if m.HasRisk(RiskEarlyData) && r.Versions[VersionTLS13] {
		r.Risks.EarlyDataAccepted, r.Risks.EarlyDataReplayAccepted = h.earlyData(ctx)
	}
	if m.HasRisk(RiskTicketRenewal) {
		h.risks.mu.Lock()
		r.Risks.TicketRenewed12 = h.risks.renewed12
		h.risks.mu.Unlock()
	}
	if m.HasRisk(RiskTicketReuse) {
		r.Risks.TicketReuseAccepted = h.ticketReuse(ctx)
	}
	if m.HasRisk(RiskAfterFatalAlert) {
		r.Risks.AfterFatalAlertAccepted = h.afterFatalAlert(ctx, r.Checks)
	}
	if m.HasRisk(RiskResumptionChain) {
		h.linking.Wait() // after the checks above: their offers hide the links' last round trip
		r.Risks.ResumptionChainMaxAge = h.risks.chainMaxAges()
	}
	if len(m.CrossNames) > 0 {
		// Last: a single-use TLS 1.3 ticket the other name resumes is spent.
		r.Risks.CrossNameAccepted, r.Risks.CrossNameClientAuth = h.crossNames(ctx, m.CrossNames)
	}
}

// elapsedMillis is the ticket age a client reports: milliseconds since it
// received the ticket.
func elapsedMillis(since time.Time) uint32 {
	return uint32(time.Since(since).Milliseconds())
}

// maxEarlyDataPayload bounds early_data_payload: one record, and below
// the 16384 bytes OpenSSL allows by default.
const maxEarlyDataPayload = 4096
