package collector

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/resumption-exporter/resumption_exporter/collector/history"
	"github.com/resumption-exporter/resumption_exporter/probe"
)

// probeDescs describes every metric a probe can produce: the "facts about a
// target" table of README.md.
type probeDescs struct {
	success, duration                           *prometheus.Desc
	versionInfo, versionSupported               *prometheus.Desc
	resumptionSupported, checkSuccess           *prometheus.Desc
	lifetimeHint, maxEarlyData                  *prometheus.Desc
	ticketInfo, keyFingerprint                  *prometheus.Desc
	handshakeDuration                           *prometheus.Desc
	fullHandshakeTime                           *prometheus.Desc
	keyFirstSeen, keyOldestActive               *prometheus.Desc
	rotationInterval, rotations                 *prometheus.Desc
	keysActive, historySince                    *prometheus.Desc
	ticketAcceptedMaxAge, idAcceptedMaxAge      *prometheus.Desc
	pskWithoutDHE, ticketbleed                  *prometheus.Desc
	earlyData, earlyDataReplay                  *prometheus.Desc
	ticketWeakness, crossName                   *prometheus.Desc
	crossNameClientAuth, ticketReuse            *prometheus.Desc
	ticketRenewed, afterFatalAlert, chainMaxAge *prometheus.Desc
	offers, firstOfferResumed, keysSeen         *prometheus.Desc
	ipProtocol, ipAddrHash, dnsLookup           *prometheus.Desc
}

func newProbeDescs() *probeDescs {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &probeDescs{
		success: d("probe_success",
			"1 when the target completed a TLS handshake and every applicable check could run, else 0."),
		duration: d("probe_duration_seconds",
			"How long the whole probe took, in seconds."),
		versionInfo: d("probe_tls_version_info",
			"1, labelled with the highest TLS version the target completed a handshake with.", "version"),
		versionSupported: d("tls_version_supported",
			"1 when the target completed a handshake at this TLS version, 0 when it refused it; absent when it could not be determined.", "version"),
		resumptionSupported: d("tls_resumption_supported",
			"1 when the server resumed the session offered with this mechanism, 0 when it did not; session_id and session_ticket are TLS 1.2, psk is TLS 1.3.", "mechanism"),
		checkSuccess: d("tls_resumption_check_success",
			"1 when the resumption check for this mechanism ran to a verdict, 0 when it failed.", "mechanism"),
		lifetimeHint: d("tls_session_ticket_lifetime_hint_seconds",
			"Lifetime the server announced for its session tickets, in seconds.", "version"),
		maxEarlyData: d("tls_session_ticket_max_early_data_bytes",
			"max_early_data of the server's TLS 1.3 tickets, in bytes; 0-RTT is allowed when above 0.", "version"),
		ticketInfo: d("tls_session_ticket_info",
			"1, labelled with how the server's tickets are encoded (stateless, stateless_unnamed, stateful) and the length in bytes of their key name.", "version", "format", "key_name_bytes"),
		keyFingerprint: d("tls_session_ticket_key_fingerprint",
			"The ticket key seen in this probe: the first 48 bits of SHA-256 of its name, as an integer."),
		handshakeDuration: d("tls_resumption_handshake_duration_seconds",
			"Time from the ClientHello to the server's first flight, in seconds, for the full handshake and for the resumption offer.", "mechanism", "handshake"),
		fullHandshakeTime: d("tls_resumption_full_handshake_timestamp_seconds",
			"Unix time in seconds of the full handshake whose duration handshake=\"full\" reports: this probe's, or an earlier probe's whose session stood in for it (module full_handshake_interval).", "mechanism"),
		keyFirstSeen: d("tls_session_ticket_key_first_seen_timestamp_seconds",
			"Unix time in seconds when the newest active ticket key was first seen."),
		keyOldestActive: d("tls_session_ticket_key_oldest_active_first_seen_timestamp_seconds",
			"Unix time in seconds when the oldest ticket key still in use was first seen."),
		rotationInterval: d("tls_session_ticket_key_rotation_interval_seconds",
			"Last observed interval, in seconds, between a ticket key's first sighting and its successor's."),
		rotations: d("tls_session_ticket_key_rotations_observed",
			"Ticket key rotations observed since the history started."),
		keysActive: d("tls_session_ticket_keys_active",
			"Distinct ticket keys seen within the history's active window."),
		historySince: d("tls_session_ticket_history_since_timestamp_seconds",
			"Unix time in seconds since when the exporter has watched this target's ticket keys."),
		ticketAcceptedMaxAge: d("tls_session_ticket_accepted_max_age_seconds",
			"Age in seconds of the oldest earlier ticket the server still resumed in this probe.", "version"),
		idAcceptedMaxAge: d("tls_session_id_accepted_max_age_seconds",
			"Age in seconds of the oldest earlier session ID the server still resumed in this probe."),
		pskWithoutDHE: d("tls_resumption_psk_without_dhe_accepted",
			"1 when the server resumed a TLS 1.3 PSK offered with psk_ke alone (no (EC)DHE, no forward secrecy), 0 when it insisted on DHE or did a full handshake."),
		ticketbleed: d("tls_ticketbleed_vulnerable",
			"1 when the server, resuming a TLS 1.2 ticket, echoed a session ID longer than the client's that starts with it (CVE-2016-9244), twice; 0 when it echoed it exactly."),
		earlyData: d("tls_early_data_accepted",
			"1 when the server accepted TLS 1.3 0-RTT early data, 0 when it declined it."),
		earlyDataReplay: d("tls_early_data_replay_accepted",
			"1 when the server accepted the same 0-RTT first flight a second time (no anti-replay), 0 when it declined the replay."),
		ticketWeakness: d("tls_session_ticket_weakness",
			"1 when the server's tickets of this version show the weakness (secret_in_clear, zero_key, keystream_reuse), 0 when they do not; absent when it cannot be judged.", "version", "weakness"),
		crossName: d("tls_resumption_cross_name_accepted",
			"1 when a session obtained for the target's server name resumed under one of the module's cross_names (shared keys or cache across virtual hosts), 0 when none did.", "mechanism"),
		crossNameClientAuth: d("tls_resumption_cross_name_client_auth",
			"1 when a cross name that resumed the target's session asks for a client certificate in a full handshake, which resumption skips (the bypass of nginx CVE-2025-23419); 0 when none does; absent when no cross name resumed."),
		ticketReuse: d("tls_session_ticket_reuse_accepted",
			"1 when a ticket the server resumed once in this probe resumed again when offered once more (not single-use), 0 when it was refused the second time.", "version"),
		ticketRenewed: d("tls_session_ticket_renewed_on_resumption",
			"1 when a resumed handshake of this version issued a fresh ticket, carrying the session's master secret forward (a session prolonged without end), 0 when it issued none.", "version"),
		afterFatalAlert: d("tls_resumption_after_fatal_alert_accepted",
			"1 when a session whose connection the probe ended with a fatal alert resumed on a new connection (RFC 5246 section 7.2 says it must not; stateless tickets cannot be invalidated), 0 when it was refused.", "mechanism"),
		chainMaxAge: d("tls_resumption_chain_max_age_seconds",
			"Seconds since the full handshake of the oldest resumption chain (each resumption's new ticket offered by the next probe) the server still resumed in this probe; absent when nothing resumed.", "mechanism"),
		offers: d("tls_resumption_offers",
			"Resumption offers made in this probe, the first one and the retries on new connections, by whether the server resumed them.", "mechanism", "result"),
		firstOfferResumed: d("tls_resumption_first_offer_resumed",
			"1 when the server resumed the first offer of the session just obtained, as a client reconnecting would make it, else 0.", "mechanism"),
		keysSeen: d("tls_session_ticket_keys_seen",
			"Distinct ticket key names this version's tickets carried in this probe: behind a balancer, the backends with their own keys that answered.", "version"),
		ipProtocol: d("probe_ip_protocol",
			"Specifies whether probe ip protocol is IP4 or IP6"),
		ipAddrHash: d("probe_ip_addr_hash",
			"Specifies the hash of IP address. It's useful to detect if the IP address changes."),
		dnsLookup: d("probe_dns_lookup_time_seconds",
			"Returns the time taken for probe dns lookup in seconds"),
	}
}

// descs is built once: a Desc is immutable, and building one (hashing,
// sorting and checking its labels) costs more than the metric it describes.
var descs = newProbeDescs()

// allDescs lists descs, for Describe.
var allDescs = []*prometheus.Desc{
	descs.success, descs.duration, descs.versionInfo, descs.versionSupported,
	descs.resumptionSupported, descs.checkSuccess, descs.lifetimeHint, descs.maxEarlyData,
	descs.ticketInfo, descs.keyFingerprint, descs.handshakeDuration, descs.fullHandshakeTime,
	descs.keyFirstSeen, descs.keyOldestActive, descs.rotationInterval, descs.rotations,
	descs.keysActive, descs.historySince, descs.ticketAcceptedMaxAge, descs.idAcceptedMaxAge,
	descs.pskWithoutDHE, descs.ticketbleed, descs.earlyData, descs.earlyDataReplay, descs.ticketWeakness,
	descs.crossName, descs.crossNameClientAuth, descs.ticketReuse, descs.ticketRenewed, descs.afterFatalAlert, descs.chainMaxAge, descs.offers, descs.firstOfferResumed, descs.keysSeen,
	descs.ipProtocol, descs.ipAddrHash, descs.dnsLookup,
}

// probeCollector publishes one probe's result.
type probeCollector struct {
	result *probe.Result
	keys   *history.KeyState
}

// NewProbeCollector returns a collector for one probe's registry that emits,
// as constant gauges, what r found and — when keys is not nil — the state of
// the target's ticket-key history. Metrics whose input is missing from r are
// left out rather than published as 0, so that "unknown" never reads as "no".
func NewProbeCollector(r *probe.Result, keys *history.KeyState) prometheus.Collector {
	return &probeCollector{result: r, keys: keys}
}

// Describe sends the descriptors of every metric the collector may emit.
func (c *probeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

// Collect emits the metrics, one group of the README's table at a time.
func (c *probeCollector) Collect(ch chan<- prometheus.Metric) {
	g := gauges(ch)
	g.probe(c.result)
	g.address(c.result)
	g.versions(c.result)
	g.mechanisms(c.result.Checks)
	g.tickets(c.result)
	g.acceptedAges(c.result.AcceptedMaxAge)
	g.risks(&c.result.Risks)
	if c.keys != nil {
		g.keyHistory(c.keys)
	}
}

// gauges emits constant gauges.
type gauges chan<- prometheus.Metric

func (g gauges) emit(desc *prometheus.Desc, v float64, labels ...string) {
	g <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, labels...)
}

// probe emits probe_success and probe_duration_seconds, as blackbox does.
func (g gauges) probe(r *probe.Result) {
	g.emit(descs.success, boolValue(r.Success))
	g.emit(descs.duration, r.Duration.Seconds())
}

// address emits what blackbox_exporter says of the address dialed.
func (g gauges) address(r *probe.Result) {
	g.emit(descs.dnsLookup, r.DNSLookup.Seconds())
	if r.IPProtocol != 0 {
		g.emit(descs.ipProtocol, float64(r.IPProtocol))
		g.emit(descs.ipAddrHash, float64(r.IPAddrHash))
	}
}

// versions emits the highest version completed and, per version probed,
// whether the target completed a handshake with it.
func (g gauges) versions(r *probe.Result) {
	if v := r.HighestVersion(); v != 0 {
		g.emit(descs.versionInfo, 1, probe.VersionName(v))
	}
	for v, ok := range r.Versions {
		g.emit(descs.versionSupported, boolValue(ok), probe.VersionName(v))
	}
}

// mechanisms emits, per resumption check, whether it ran to a verdict, the
// verdict, the handshake durations it measured and the offers it made.
func (g gauges) mechanisms(checks []probe.Check) {
	for _, chk := range checks {
		m := string(chk.Mechanism)
		g.emit(descs.checkSuccess, boolValue(chk.Completed), m)
		// Resumed means nothing unless the check ran to a verdict.
		if chk.Completed {
			g.emit(descs.resumptionSupported, boolValue(chk.Resumed), m)
		}
		if chk.FullHandshake > 0 {
			g.emit(descs.handshakeDuration, chk.FullHandshake.Seconds(), m, "full")
			if !chk.FullHandshakeAt.IsZero() {
				g.emit(descs.fullHandshakeTime, float64(chk.FullHandshakeAt.UnixNano())/1e9, m)
			}
		}
		if chk.ResumedHandshake > 0 {
			g.emit(descs.handshakeDuration, chk.ResumedHandshake.Seconds(), m, "resumed")
		}
		if chk.OffersResumed+chk.OffersRefused > 0 {
			g.emit(descs.offers, float64(chk.OffersResumed), m, "resumed")
			g.emit(descs.offers, float64(chk.OffersRefused), m, "refused")
			g.emit(descs.firstOfferResumed, boolValue(chk.FirstOfferResumed), m)
		}
	}
}

// tickets emits what the tickets of each version said, and the fingerprint
// of the key most tickets of this probe named.
func (g gauges) tickets(r *probe.Result) {
	for v, t := range r.Tickets {
		name := probe.VersionName(v)
		g.emit(descs.lifetimeHint, float64(t.LifetimeHint), name)
		g.emit(descs.ticketInfo, 1, name, string(t.Format), strconv.Itoa(t.KeyNameBytes))
		g.emit(descs.keysSeen, float64(t.KeysSeen), name)
		if v == probe.VersionTLS13 {
			g.emit(descs.maxEarlyData, float64(t.MaxEarlyData), name)
		}
	}
	if len(r.KeyNames) > 0 {
		// A 48-bit fingerprint is exact in a float64.
		g.emit(descs.keyFingerprint, float64(r.KeyNames[0].Fingerprint))
	}
}

// acceptedAges emits the age of the oldest earlier session each mechanism
// still resumed.
func (g gauges) acceptedAges(ages map[probe.Mechanism]time.Duration) {
	for m, age := range ages {
		switch m {
		case probe.MechanismSessionID:
			g.emit(descs.idAcceptedMaxAge, age.Seconds())
		case probe.MechanismSessionTicket, probe.MechanismPSK:
			g.emit(descs.ticketAcceptedMaxAge, age.Seconds(), probe.VersionName(m.Version()))
		}
	}
}

// risks emits the verdicts of the risk checks that ran and applied.
func (g gauges) risks(r *probe.RiskResult) {
	for _, v := range []struct {
		desc    *prometheus.Desc
		verdict *bool
	}{
		{descs.pskWithoutDHE, r.PSKWithoutDHE},
		{descs.ticketbleed, r.Ticketbleed},
		{descs.earlyData, r.EarlyDataAccepted},
		{descs.earlyDataReplay, r.EarlyDataReplayAccepted},
		{descs.crossNameClientAuth, r.CrossNameClientAuth},
	} {
		if v.verdict != nil {
			g.emit(v.desc, boolValue(*v.verdict))
		}
	}
	for _, w := range r.TicketWeaknesses {
		g.emit(descs.ticketWeakness, boolValue(w.Found), probe.VersionName(w.Version), string(w.Weakness))
	}
	if r.TicketRenewed12 != nil {
		g.emit(descs.ticketRenewed, boolValue(*r.TicketRenewed12), probe.VersionName(probe.VersionTLS12))
	}
	for v, ok := range r.TicketReuseAccepted {
		g.emit(descs.ticketReuse, boolValue(ok), probe.VersionName(v))
	}
	for m, age := range r.ResumptionChainMaxAge {
		g.emit(descs.chainMaxAge, age.Seconds(), string(m))
	}
	for m, ok := range r.CrossNameAccepted {
		g.emit(descs.crossName, boolValue(ok), string(m))
	}
	for m, ok := range r.AfterFatalAlertAccepted {
		g.emit(descs.afterFatalAlert, boolValue(ok), string(m))
	}
}

// keyHistory emits the state of the target's ticket-key history.
func (g gauges) keyHistory(k *history.KeyState) {
	if !k.Since.IsZero() {
		g.emit(descs.historySince, unixSeconds(k.Since))
	}
	if !k.HasKeys {
		return
	}
	g.emit(descs.keyFirstSeen, unixSeconds(k.NewestActiveFirstSeen))
	g.emit(descs.keyOldestActive, unixSeconds(k.OldestActiveFirstSeen))
	g.emit(descs.keysActive, float64(k.ActiveKeys))
	g.emit(descs.rotations, float64(k.Rotations))
	if k.LastRotationInterval > 0 {
		g.emit(descs.rotationInterval, k.LastRotationInterval.Seconds())
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// unixSeconds is t as a Prometheus timestamp value: seconds since the epoch.
func unixSeconds(t time.Time) float64 {
	return float64(t.UnixNano()) / 1e9
}
