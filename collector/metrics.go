package collector

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/resumption-exporter/resumption_exporter/probe"
)

// probeDescs describes every metric a probe can produce: the "facts about a
// target" table of README.md.
type probeDescs struct {
	success, duration                      *prometheus.Desc
	versionInfo, versionSupported          *prometheus.Desc
	resumptionSupported, checkSuccess      *prometheus.Desc
	lifetimeHint, maxEarlyData             *prometheus.Desc
	ticketInfo, keyFingerprint             *prometheus.Desc
	handshakeDuration                      *prometheus.Desc
	keyFirstSeen, keyOldestActive          *prometheus.Desc
	rotationInterval, rotations            *prometheus.Desc
	keysActive, historySince               *prometheus.Desc
	ticketAcceptedMaxAge, idAcceptedMaxAge *prometheus.Desc
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
	}
}

func (d *probeDescs) all() []*prometheus.Desc {
	return []*prometheus.Desc{
		d.success, d.duration, d.versionInfo, d.versionSupported,
		d.resumptionSupported, d.checkSuccess, d.lifetimeHint, d.maxEarlyData,
		d.ticketInfo, d.keyFingerprint, d.handshakeDuration,
		d.keyFirstSeen, d.keyOldestActive, d.rotationInterval, d.rotations,
		d.keysActive, d.historySince, d.ticketAcceptedMaxAge, d.idAcceptedMaxAge,
	}
}

// probeCollector publishes one probe's result.
type probeCollector struct {
	descs  *probeDescs
	result *probe.Result
	keys   *KeyState
}

// NewProbeCollector returns a collector for one probe's registry that emits,
// as constant gauges, what r found and — when keys is not nil — the state of
// the target's ticket-key history. Metrics whose input is missing from r are
// left out rather than published as 0, so that "unknown" never reads as "no".
func NewProbeCollector(r *probe.Result, keys *KeyState) prometheus.Collector {
	return &probeCollector{descs: newProbeDescs(), result: r, keys: keys}
}

// Describe sends the descriptors of every metric the collector may emit.
func (c *probeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs.all() {
		ch <- d
	}
}

// Collect emits the metrics.
func (c *probeCollector) Collect(ch chan<- prometheus.Metric) {
	d, r := c.descs, c.result
	gauge := func(desc *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, labels...)
	}

	gauge(d.success, boolValue(r.Success))
	gauge(d.duration, r.Duration.Seconds())
	if v := r.HighestVersion(); v != 0 {
		gauge(d.versionInfo, 1, probe.VersionName(v))
	}
	for v, ok := range r.Versions {
		gauge(d.versionSupported, boolValue(ok), probe.VersionName(v))
	}

	for _, chk := range r.Checks {
		m := string(chk.Mechanism)
		gauge(d.checkSuccess, boolValue(chk.Completed), m)
		// Resumed means nothing unless the check ran to a verdict.
		if chk.Completed {
			gauge(d.resumptionSupported, boolValue(chk.Resumed), m)
		}
		if chk.FullHandshake > 0 {
			gauge(d.handshakeDuration, chk.FullHandshake.Seconds(), m, "full")
		}
		if chk.ResumedHandshake > 0 {
			gauge(d.handshakeDuration, chk.ResumedHandshake.Seconds(), m, "resumed")
		}
	}

	for v, t := range r.Tickets {
		name := probe.VersionName(v)
		gauge(d.lifetimeHint, float64(t.LifetimeHint), name)
		gauge(d.ticketInfo, 1, name, string(t.Format), strconv.Itoa(t.KeyNameBytes))
		if v == probe.VersionTLS13 {
			gauge(d.maxEarlyData, float64(t.MaxEarlyData), name)
		}
	}
	if len(r.KeyNames) > 0 {
		// A 48-bit fingerprint is exact in a float64.
		gauge(d.keyFingerprint, float64(r.KeyNames[0].Fingerprint))
	}

	for m, age := range r.AcceptedMaxAge {
		switch m {
		case probe.MechanismSessionID:
			gauge(d.idAcceptedMaxAge, age.Seconds())
		case probe.MechanismSessionTicket, probe.MechanismPSK:
			gauge(d.ticketAcceptedMaxAge, age.Seconds(), probe.VersionName(m.Version()))
		}
	}

	if k := c.keys; k != nil {
		if !k.Since.IsZero() {
			gauge(d.historySince, unixSeconds(k.Since))
		}
		if k.HasKeys {
			gauge(d.keyFirstSeen, unixSeconds(k.NewestActiveFirstSeen))
			gauge(d.keyOldestActive, unixSeconds(k.OldestActiveFirstSeen))
			gauge(d.keysActive, float64(k.ActiveKeys))
			gauge(d.rotations, float64(k.Rotations))
			if k.LastRotationInterval > 0 {
				gauge(d.rotationInterval, k.LastRotationInterval.Seconds())
			}
		}
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
