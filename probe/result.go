package probe

import (
	"crypto/sha256"
	"encoding/binary"
	"time"
)

// Mechanism names one way a client can resume a TLS session. The values are
// the label values the exporter publishes, so they are part of its interface.
type Mechanism string

const (
	// MechanismSessionID is TLS ≤ 1.2 resumption from the server's session cache.
	MechanismSessionID Mechanism = "session_id"
	// MechanismSessionTicket is TLS 1.2 resumption from an RFC 5077 ticket.
	MechanismSessionTicket Mechanism = "session_ticket"
	// MechanismPSK is TLS 1.3 resumption from a NewSessionTicket PSK.
	MechanismPSK Mechanism = "psk"
)

// Mechanisms lists every mechanism in the order the exporter reports them.
var Mechanisms = []Mechanism{MechanismSessionID, MechanismSessionTicket, MechanismPSK}

// Version returns the protocol version a mechanism belongs to.
func (m Mechanism) Version() uint16 {
	if m == MechanismPSK {
		return VersionTLS13
	}
	return VersionTLS12
}

// TicketFormat tells how a server encodes its session tickets, as far as the
// client can see it.
type TicketFormat string

const (
	// FormatStateless: the ticket carries the encrypted session and starts
	// with the name of the key that encrypted it (OpenSSL, GnuTLS, Go ≤ 1.20).
	FormatStateless TicketFormat = "stateless"
	// FormatStatelessUnnamed: an encrypted session with no key name in clear
	// (Go ≥ 1.21). Rotation can only be measured by replaying old tickets.
	FormatStatelessUnnamed TicketFormat = "stateless_unnamed"
	// FormatStateful: a short random identifier of a session kept on the server.
	FormatStateful TicketFormat = "stateful"
)

// Result is what one probe learned about a target. It is plain data and holds
// no secrets: tickets, session IDs and raw key names never leave the probe.
type Result struct {
	Target   string
	Module   string
	Start    time.Time
	Duration time.Duration
	// Success is true when the target completed a TLS handshake and every
	// check that applies to the versions it speaks could run.
	Success bool
	// Failure says why Success is false, naming the step that failed.
	Failure string
	// Refused is set when the allow-list refused the probe: it sent
	// nothing, so the result says nothing about the target, and the
	// exporter answers 403 rather than probe_success 0.
	Refused *RefusedError

	// Addr is the address every connection of the probe dialed (ip:port);
	// empty when the target's name did not resolve.
	Addr string
	// ServerName is the name the probe sent as SNI and checked the
	// certificate against: the module's tls_config.server_name (which a
	// per-probe server_name parameter overrides), else the target's host;
	// empty when the target did not parse.
	ServerName string
	// IPProtocol is 4 or 6, the family of the dialed address; 0 when none.
	IPProtocol int
	// IPAddrHash is FNV-32a of the dialed IP's bytes, 4 for IPv4 (also an
	// IPv4-mapped IPv6 address, which resolve unmaps) and 16 for IPv6, as
	// current blackbox_exporter's probe_ip_addr_hash (To4, else To16). It
	// changes when the name points elsewhere.
	IPAddrHash uint32
	// DNSLookup is how long resolving the target's name took (0 for an IP).
	DNSLookup time.Duration

	// Versions holds, for every version the module probes, whether the server
	// completed a handshake at that version. A version whose support could not
	// be determined (network error) is absent.
	Versions map[uint16]bool
	// Checks holds one entry per mechanism that the module asked for and
	// whose protocol version the server speaks (or whose support is unknown).
	Checks []Check
	// Tickets describes, per protocol version, the tickets the server issued
	// during full handshakes. Absent when it issued none at that version.
	Tickets map[uint16]Tickets
	// KeyNames lists the distinct ticket-key names seen in this probe, the
	// one that issued the most tickets first.
	KeyNames []KeyName
	// AcceptedMaxAge holds, per mechanism, the age of the oldest earlier
	// session the server still resumed in this probe (see Sessions). Absent
	// when no earlier session was offered or none was accepted.
	AcceptedMaxAge map[Mechanism]time.Duration
	// Risks holds the verdicts of the module's risk checks.
	Risks RiskResult
}

// HighestVersion returns the highest version the server completed a
// handshake with, or 0 if none.
func (r *Result) HighestVersion() uint16 {
	var best uint16
	for v, ok := range r.Versions {
		if ok && v > best {
			best = v
		}
	}
	return best
}

// Check returns the result of one mechanism's check, if it ran.
func (r *Result) Check(m Mechanism) (Check, bool) {
	for _, c := range r.Checks {
		if c.Mechanism == m {
			return c, true
		}
	}
	return Check{}, false
}

// Check is the outcome of one resumption chain: a full handshake that obtains
// a session, then an offer of that session.
type Check struct {
	Mechanism Mechanism
	// Completed is true when the chain ran to a verdict. When false, Err says
	// why, and Resumed means nothing.
	Completed bool
	Err       string
	// Hint, when the chain failed for a reason configuration fixes (a
	// certificate the exporter cannot verify), says how; every chain
	// fails alike then, and the probe's failure says it once.
	Hint string
	// Issued is true when the full handshake gave the client something to
	// offer: a session ID, a ticket, a TLS 1.3 PSK.
	Issued bool
	// Resumed is the verdict: the server accepted an offer of this probe,
	// or — behind a balancer, see Recent — did so within the window.
	Resumed bool
	// FirstOfferResumed: the server accepted the first offer of the
	// session just obtained, as a client reconnecting would make it.
	FirstOfferResumed bool
	// OffersResumed and OffersRefused count this probe's offers: the first
	// one and the retries on new connections (not the replays of old
	// sessions that measure the accepted age).
	OffersResumed, OffersRefused int
	// Recent is true when Resumed rests on an earlier probe: every offer
	// of this one was refused, the refusals showed other backends
	// answering, and the mechanism resumed RecentAge ago, within the
	// window (SessionsOptions.ResumedWindow).
	Recent    bool
	RecentAge time.Duration
	// Refusals says, per refused offer, what the connection told of the
	// server that answered.
	Refusals []Refusal
	// FullHandshake and ResumedHandshake are the times from sending the
	// ClientHello to receiving the first byte of the server's answer, for
	// the full handshake and for the resumption offer. Zero when not measured.
	FullHandshake    time.Duration
	ResumedHandshake time.Duration
	// FullHandshakeAt is when, on the store's clock, the full handshake
	// FullHandshake measured ran: this probe's, or, when StandIn, the
	// earlier probe's whose chain of sessions stood in for it. Zero when
	// no full handshake was measured.
	FullHandshakeAt time.Time
	// StandIn: a session from an earlier probe stood in for the check's
	// full handshake (see Module.FullHandshakeInterval). Its first offer
	// is that session's, and FullHandshake is the earlier probe's.
	StandIn bool
}

// Tickets summarises the tickets one protocol version produced.
type Tickets struct {
	Version uint16
	Count   int
	// LifetimeHint is the lifetime the server announced, in seconds, of the
	// first ticket: ticket_lifetime_hint (TLS 1.2) or ticket_lifetime (TLS 1.3).
	LifetimeHint uint32
	Format       TicketFormat
	// KeyNameBytes is the length of the key name in clear (0 when unnamed).
	KeyNameBytes int
	// MaxEarlyData is the early_data extension's limit of a TLS 1.3 ticket;
	// zero when the server offered no 0-RTT.
	MaxEarlyData uint32
	// KeysSeen is how many distinct key names this version's tickets
	// carried in this probe: behind a balancer, the backends (with their
	// own keys) that answered; 0 when the tickets name no key.
	KeysSeen int
}

// Refusal is what one refused offer showed about the server that answered
// it. Only tickets can tell: a full handshake whose new ticket carries
// another key name than the offered one was answered by another backend.
type Refusal struct {
	// Attempt is the offer's number in this probe, from 1.
	Attempt int
	// OfferedKey and AnsweredKey are the fingerprints of the offered
	// session's ticket key and of the new ticket's, 0 when unknown.
	OfferedKey, AnsweredKey uint64
	// OtherBackend is true when the keys differ.
	OtherBackend bool
	// Why says in words what the connection showed.
	Why string
}

// KeyName identifies one session-ticket encryption key by a fingerprint of its
// name: the first 48 bits of SHA-256 of the name, which fits a float64
// exactly and does not reveal the name.
type KeyName struct {
	Fingerprint uint64
	Tickets     int
}

// Fingerprint returns the published identity of a raw key name.
func Fingerprint(name []byte) uint64 {
	sum := sha256.Sum256(name)
	var b [8]byte
	copy(b[2:], sum[:6])
	return binary.BigEndian.Uint64(b[:])
}
