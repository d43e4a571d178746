// Package findings judges one target's resumption posture the way the
// alerting rules do, for reports that have no Prometheus behind them
// (`resumption_exporter check`). Every finding that has an alert with the
// same meaning carries that alert's severity and threshold, and points to the
// same runbook section; tests keep both equal to the mixin's _config and to
// alerts/resumption-alerts.yml.
package findings

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/resumption-exporter/resumption_exporter/collector/history"
	"github.com/resumption-exporter/resumption_exporter/probe"
)

// RunbookBase is the runbook the alerts link to (the mixin's
// _config.runbookBase); a finding's runbook URL is this plus its anchor.
const RunbookBase = "https://github.com/resumption-exporter/resumption_exporter/blob/main/alerts/runbook.md"

// Thresholds are the limits the findings apply. DefaultThresholds equals the
// mixin's _config, field by field (see the *Seconds names there).
type Thresholds struct {
	// KeyMaxAge (keyMaxAgeSeconds): a ticket key in use for longer was not
	// rotated within a day; a ticket lifetime above it is too long.
	KeyMaxAge time.Duration
	// ActiveWindow (activeWindowSeconds): added to KeyMaxAge so that a key
	// replaced on time but seen once more does not count as unrotated.
	ActiveWindow time.Duration
	// AcceptedMaxAge (acceptedMaxAgeSeconds): a server that still resumes a
	// session this old keeps its secrets too long.
	AcceptedMaxAge time.Duration
	// TLS13MaxTicketLifetime (tls13MaxTicketLifetimeSeconds): RFC 8446
	// section 4.6.1's upper bound.
	TLS13MaxTicketLifetime time.Duration
	// ResumptionChainMaxAge (resumptionChainMaxAgeSeconds): a resumption
	// chain still resumed this long after its full handshake is unbounded
	// (RFC 8446 section 4.6.1's 7 days, which a bounded chain would not
	// outlive).
	ResumptionChainMaxAge time.Duration
}

// DefaultThresholds are the mixin's defaults.
var DefaultThresholds = Thresholds{
	KeyMaxAge:              86400 * time.Second,
	ActiveWindow:           900 * time.Second,
	AcceptedMaxAge:         86400 * time.Second,
	TLS13MaxTicketLifetime: 604800 * time.Second,
	ResumptionChainMaxAge:  604800 * time.Second,
}

// Definition is one kind of finding.
type Definition struct {
	// ID names the finding in reports; stable, part of the JSON interface.
	ID       string
	Severity Severity
	// Alert is the alert with the same meaning, "" when only checks
	// report it (a one-shot fact Prometheus has no rule for).
	Alert string
	// Section is the heading of alerts/runbook.md that fixes it: the
	// alert's own section when there is one.
	Section string
}

// Anchor is GitHub's fragment for the runbook section.
func (d Definition) Anchor() string { return GitHubAnchor(d.Section) }

// GitHubAnchor is the fragment GitHub gives a Markdown heading: lower case,
// spaces as '-', punctuation other than '-' and '_' dropped.
func GitHubAnchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || ('a' <= r && r <= 'z') || ('0' <= r && r <= '9'):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// RunbookURL is where the runbook says how to fix it.
func (d Definition) RunbookURL() string { return RunbookBase + "#" + d.Anchor() }

// resumptionSection is the runbook section for resumption itself, which no
// alert covers: supporting it is the scanners' "SSL Session Resume
// Supported" finding, informational on its own.
const resumptionSection = "Session resumption supported"

func alerted(id string, s Severity, alert string) Definition {
	return Definition{ID: id, Severity: s, Alert: alert, Section: alert}
}

// The definitions, most severe first within each group.
var (
	// The risk checks' findings (probe.RiskResult), one alert each.
	ResumptionWithoutDHE      = alerted("psk_without_dhe_accepted", Critical, "TLSResumptionWithoutForwardSecrecy")
	Ticketbleed               = alerted("ticketbleed_vulnerable", Critical, "TLSTicketbleedVulnerable")
	TicketWeakProtection      = alerted("ticket_weak_protection", Critical, "TLSSessionTicketWeakProtection")
	EarlyDataReplayAccepted   = alerted("early_data_replay_accepted", Warning, "TLSEarlyDataReplayAccepted")
	TicketRenewedOnResumption = alerted("ticket_renewed_on_resumption", Warning, "TLSSessionTicketRenewedOnResumption")
	// Session IDs only: tickets that survive a fatal alert do so by
	// design (the runbook's "Tickets after a fatal alert"), no alert.
	SessionIDAfterFatalAlert = alerted("session_id_resumed_after_fatal_alert", Warning, "TLSSessionIDResumableAfterFatalAlert")
	ResumptionChainUnbounded = alerted("resumption_chain_unbounded", Warning, "TLSResumptionChainUnbounded")
	// The cross-name check's: critical when a name that resumed asks for a
	// client certificate, else the warning, as the two alerts split it.
	ClientAuthBypassAcrossNames = alerted("cross_name_client_auth_bypass", Critical, "TLSClientAuthBypassAcrossNames")
	SessionsSharedAcrossNames   = alerted("sessions_shared_across_names", Warning, "TLSSessionsSharedAcrossNames")

	KeyNotRotated = alerted("ticket_key_not_rotated", Warning, "TLSSessionTicketKeyNotRotated")
	// LifetimeAboveOneDay and TLS13LifetimeAboveMaximum are judged per
	// protocol version, as the alerts are per series.
	LifetimeAboveOneDay         = alerted("ticket_lifetime_above_one_day", Warning, "TLSSessionTicketLifetimeAboveOneDay")
	TLS13LifetimeAboveMaximum   = alerted("tls13_ticket_lifetime_above_maximum", Critical, "TLS13SessionTicketLifetimeAboveMaximum")
	TicketResumableAfterOneDay  = alerted("ticket_resumable_after_one_day", Warning, "TLSSessionTicketResumableAfterOneDay")
	SessionIDResumableAfterDay  = alerted("session_id_resumable_after_one_day", Warning, "TLSSessionIDResumableAfterOneDay")
	LifetimeAboveRotationPeriod = alerted("ticket_lifetime_above_rotation_interval", Info, "TLSSessionTicketLifetimeAboveRotationInterval")

	SessionIDResumption     = Definition{ID: "session_id_resumption", Severity: Info, Section: resumptionSection}
	SessionTicketResumption = Definition{ID: "session_ticket_resumption", Severity: Info, Section: resumptionSection}
	PSKResumption           = Definition{ID: "psk_resumption", Severity: Info, Section: resumptionSection}
)

// Definitions lists every kind of finding, in report order.
var Definitions = []Definition{
	ResumptionWithoutDHE, Ticketbleed, TicketWeakProtection, EarlyDataReplayAccepted,
	ClientAuthBypassAcrossNames, SessionsSharedAcrossNames, TicketRenewedOnResumption, SessionIDAfterFatalAlert, ResumptionChainUnbounded,
	KeyNotRotated, LifetimeAboveOneDay, TLS13LifetimeAboveMaximum,
	TicketResumableAfterOneDay, SessionIDResumableAfterDay, LifetimeAboveRotationPeriod,
	SessionIDResumption, SessionTicketResumption, PSKResumption,
}

// order is a definition's place in Definitions.
func order(d Definition) int {
	return slices.IndexFunc(Definitions, func(e Definition) bool { return e.ID == d.ID })
}

// resumptionFindings maps each mechanism to its "supported" finding.
var resumptionFindings = map[probe.Mechanism]Definition{
	probe.MechanismSessionID:     SessionIDResumption,
	probe.MechanismSessionTicket: SessionTicketResumption,
	probe.MechanismPSK:           PSKResumption,
}

// Finding is one definition that applies to a target, with a one-line
// summary naming the figure.
type Finding struct {
	Definition
	// Subject is what the finding is about, for definitions judged per
	// protocol version ("TLS 1.2") or mechanism ("psk"); empty when about
	// the target as a whole. ID and Subject together name a finding.
	Subject string
	Summary string
}

// Evaluate returns what applies to one probe's result r at now, most severe
// first (see Sort). keys is the target's ticket-key history after that probe; nil when
// there is none (a single probe cannot tell rotation), which leaves out the
// findings that need one.
func Evaluate(r *probe.Result, keys *history.KeyState, now time.Time, th Thresholds) []Finding {
	var out []Finding
	add := func(d Definition, subject, format string, args ...any) {
		out = append(out, Finding{Definition: d, Subject: subject, Summary: fmt.Sprintf(format, args...)})
	}
	if keys != nil {
		keyFindings(keys, now, th, add)
	}
	for _, v := range versionsOf(r.Tickets) {
		t, name := r.Tickets[v], probe.VersionName(v)
		hint := time.Duration(t.LifetimeHint) * time.Second
		if hint > th.KeyMaxAge {
			add(LifetimeAboveOneDay, name, "%s tickets announce a lifetime of %s (%d s), above %s",
				name, hint, t.LifetimeHint, th.KeyMaxAge)
		}
		if v == probe.VersionTLS13 && hint > th.TLS13MaxTicketLifetime {
			add(TLS13LifetimeAboveMaximum, name, "TLS 1.3 ticket lifetime %d s exceeds RFC 8446's maximum of %d s; strict clients abort",
				t.LifetimeHint, int64(th.TLS13MaxTicketLifetime.Seconds()))
		}
		if keys != nil && keys.HasKeys && keys.LastRotationInterval > 0 && hint > keys.LastRotationInterval {
			add(LifetimeAboveRotationPeriod, name, "%s ticket lifetime %s is longer than the last key rotation interval %s",
				name, hint, keys.LastRotationInterval.Round(time.Second))
		}
	}
	for _, m := range probe.Mechanisms {
		age, ok := r.AcceptedMaxAge[m]
		if !ok || age <= th.AcceptedMaxAge {
			continue
		}
		if m == probe.MechanismSessionID {
			add(SessionIDResumableAfterDay, string(m), "resumed a session ID obtained %s earlier, above %s", age.Round(time.Second), th.AcceptedMaxAge)
		} else {
			add(TicketResumableAfterOneDay, string(m), "resumed a %s ticket obtained %s earlier, above %s",
				probe.VersionName(m.Version()), age.Round(time.Second), th.AcceptedMaxAge)
		}
	}
	riskFindings(&r.Risks, th, add)
	for _, c := range r.Checks {
		if c.Completed && c.Resumed {
			add(resumptionFindings[c.Mechanism], string(c.Mechanism), "%s resumption supported", mechanismTitle(c.Mechanism))
		}
	}
	Sort(out)
	return out
}

// riskFindings mirrors the risk checks' alerts: each fires on a verdict of
// 1, the resumption chain's on an age above th.ResumptionChainMaxAge.
func riskFindings(r *probe.RiskResult, th Thresholds, add func(Definition, string, string, ...any)) {
	if found(r.PSKWithoutDHE) {
		add(ResumptionWithoutDHE, "psk", "resumed a TLS 1.3 PSK offered with psk_ke alone: no forward secrecy")
	}
	if found(r.Ticketbleed) {
		add(Ticketbleed, "session_ticket", "echoed a longer session ID than the 16 bytes offered, twice (CVE-2016-9244)")
	}
	for _, w := range r.TicketWeaknesses {
		if w.Found {
			name := probe.VersionName(w.Version)
			add(TicketWeakProtection, name+" "+string(w.Weakness), "%s tickets show %s", name, w.Weakness)
		}
	}
	if found(r.EarlyDataReplayAccepted) {
		add(EarlyDataReplayAccepted, "psk", "accepted the same 0-RTT first flight twice: no anti-replay")
	}
	if found(r.TicketRenewed12) {
		add(TicketRenewedOnResumption, probe.VersionName(probe.VersionTLS12), "a resumed TLS 1.2 handshake issued a fresh ticket with the same master secret")
	}
	if r.AfterFatalAlertAccepted[probe.MechanismSessionID] {
		add(SessionIDAfterFatalAlert, string(probe.MechanismSessionID), "resumed a session ID whose connection ended with a fatal alert (RFC 5246 section 7.2: it must not)")
	}
	for _, m := range probe.Mechanisms {
		if age, ok := r.ResumptionChainMaxAge[m]; ok && age > th.ResumptionChainMaxAge {
			add(ResumptionChainUnbounded, string(m), "resumed a %s resumption chain whose full handshake was %s earlier, above %s",
				probe.VersionName(m.Version()), age.Round(time.Second), th.ResumptionChainMaxAge)
		}
	}
	crossNameFindings(r, add)
}

// crossNameFindings mirrors TLSClientAuthBypassAcrossNames (one finding)
// and, without it, TLSSessionsSharedAcrossNames (one per mechanism).
func crossNameFindings(r *probe.RiskResult, add func(Definition, string, string, ...any)) {
	if found(r.CrossNameClientAuth) {
		add(ClientAuthBypassAcrossNames, "", "a name that demands a client certificate resumed a session of the target's name: resumption skips the authentication")
		return
	}
	for _, m := range probe.Mechanisms {
		if r.CrossNameAccepted[m] {
			add(SessionsSharedAcrossNames, string(m), "a %s session of the target's name resumed under another name", m)
		}
	}
}

func found(b *bool) bool { return b != nil && *b }

// Sort orders findings most severe first, then in the order of
// Definitions, then by subject.
func Sort(fs []Finding) {
	slices.SortStableFunc(fs, func(a, b Finding) int {
		if a.Severity != b.Severity {
			return int(b.Severity) - int(a.Severity)
		}
		if d := order(a.Definition) - order(b.Definition); d != 0 {
			return d
		}
		return strings.Compare(a.Subject, b.Subject)
	})
}

// keyFindings mirrors TLSSessionTicketKeyNotRotated: the oldest active key
// and the history itself are both older than the limit plus the window.
func keyFindings(k *history.KeyState, now time.Time, th Thresholds, add func(Definition, string, string, ...any)) {
	limit := th.KeyMaxAge + th.ActiveWindow
	if !k.HasKeys || now.Sub(k.Since) <= limit {
		return
	}
	if age := now.Sub(k.OldestActiveFirstSeen); age > limit {
		add(KeyNotRotated, "", "ticket key in use since %s (%s ago), above %s plus the %s active-key window",
			k.OldestActiveFirstSeen.UTC().Format(time.RFC3339), age.Round(time.Second), th.KeyMaxAge, th.ActiveWindow)
	}
}

func versionsOf(m map[uint16]probe.Tickets) []uint16 {
	var vs []uint16
	for v := range m {
		vs = append(vs, v)
	}
	slices.Sort(vs)
	return vs
}

// mechanismTitle names a mechanism for people.
func mechanismTitle(m probe.Mechanism) string {
	switch m {
	case probe.MechanismSessionID:
		return "TLS 1.2 session-ID"
	case probe.MechanismSessionTicket:
		return "TLS 1.2 session-ticket"
	case probe.MechanismPSK:
		return "TLS 1.3 PSK"
	}
	return string(m)
}

// Highest returns the most severe severity among fs, 0 when fs is empty.
func Highest(fs []Finding) Severity {
	var s Severity
	for _, f := range fs {
		s = max(s, f.Severity)
	}
	return s
}
