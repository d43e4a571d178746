package main

import (
	"time"

	"github.com/resumption-exporter/resumption_exporter/collector/findings"
	"github.com/resumption-exporter/resumption_exporter/probe"
)

// checkReport is what `check` reports, and with --format json exactly what it
// prints: the field names are an interface, documented in README.md.
type checkReport struct {
	Targets []targetReport `json:"targets"`
	Summary checkSummary   `json:"summary"`
}

type checkSummary struct {
	Targets int `json:"targets"`
	// NotChecked counts targets no probe of which succeeded.
	NotChecked int `json:"not_checked"`
	// Failing counts targets with a finding at or above FailOn.
	Failing int `json:"failing"`
	// Passing counts checked targets without one.
	Passing int `json:"passing"`
	// Findings counts findings by severity; every severity is present.
	Findings map[string]int `json:"findings"`
	FailOn   string         `json:"fail_on"`
	ExitCode int            `json:"exit_code"`
}

type targetReport struct {
	Target     string `json:"target"`
	Module     string `json:"module"`
	ServerName string `json:"server_name"`
	// Checked is true when at least one probe succeeded; when false the
	// check exits 2 and Error says why.
	Checked      bool      `json:"checked"`
	Error        string    `json:"error,omitempty"`
	Probes       int       `json:"probes"`
	ProbesFailed int       `json:"probes_failed"`
	Start        time.Time `json:"start"`
	// DurationSeconds spans all probes of the target.
	DurationSeconds float64           `json:"duration_seconds"`
	Versions        map[string]bool   `json:"versions"`
	Mechanisms      []mechanismReport `json:"mechanisms"`
	Tickets         []ticketReport    `json:"tickets"`
	KeyFingerprints []uint64          `json:"key_fingerprints"`
	Rotation        rotationReport    `json:"rotation"`
	Findings        []findingReport   `json:"findings"`
	HighestSeverity string            `json:"highest_severity"`
	Failing         bool              `json:"failing"`
}

// Statuses of a mechanism.
const (
	statusResumed       = "resumed"
	statusNotResumed    = "not_resumed"
	statusNotApplicable = "not_applicable"
	statusError         = "error"
)

type mechanismReport struct {
	Mechanism string `json:"mechanism"`
	Version   string `json:"version"`
	Status    string `json:"status"`
	Resumed   bool   `json:"resumed"`
	// Issued: the full handshake gave something to offer.
	Issued bool `json:"issued"`
	// Reason says how the verdict was reached (or why there is none).
	Reason                  string   `json:"reason"`
	FullHandshakeSeconds    float64  `json:"full_handshake_seconds,omitempty"`
	ResumedHandshakeSeconds float64  `json:"resumed_handshake_seconds,omitempty"`
	AcceptedMaxAgeSeconds   *float64 `json:"accepted_max_age_seconds"`
	// StandIn: a session of an earlier probe stood in for the full
	// handshake, whose duration is that probe's (check runs once, so
	// only a --watch run shows it).
	StandIn bool `json:"stand_in,omitempty"`
}

type ticketReport struct {
	Version           string `json:"version"`
	Count             int    `json:"count"`
	LifetimeSeconds   uint32 `json:"lifetime_seconds"`
	Format            string `json:"format"`
	KeyNameBytes      int    `json:"key_name_bytes"`
	MaxEarlyDataBytes uint32 `json:"max_early_data_bytes"`
}

type rotationReport struct {
	// Known is true when a key history covers the target and its
	// tickets name their key.
	Known bool `json:"known"`
	// Source is "none", "history_file" or "watch".
	Source string `json:"source"`
	// Reason says why rotation is unknown.
	Reason string `json:"reason,omitempty"`
	// ActiveWindowSeconds: a key seen within it is in use.
	ActiveWindowSeconds float64    `json:"active_window_seconds,omitempty"`
	Since               *time.Time `json:"since,omitempty"`
	// WatchedSeconds is how long the history has watched the target.
	WatchedSeconds              float64     `json:"watched_seconds"`
	ActiveKeys                  int         `json:"active_keys"`
	KeyFirstSeen                *time.Time  `json:"key_first_seen,omitempty"`
	OldestActiveKeyFirstSeen    *time.Time  `json:"oldest_active_key_first_seen,omitempty"`
	Rotations                   int         `json:"rotations"`
	LastRotationIntervalSeconds float64     `json:"last_rotation_interval_seconds,omitempty"`
	Keys                        []keyReport `json:"keys"`
}

// keyReport is one ticket key the check's own probes saw.
type keyReport struct {
	Fingerprint uint64    `json:"fingerprint"`
	FirstSeen   time.Time `json:"first_seen"`
	LastSeen    time.Time `json:"last_seen"`
	Probes      int       `json:"probes"`
}

type findingReport struct {
	ID         string            `json:"id"`
	Subject    string            `json:"subject,omitempty"`
	Severity   findings.Severity `json:"severity"`
	Summary    string            `json:"summary"`
	Alert      string            `json:"alert,omitempty"`
	RunbookURL string            `json:"runbook_url"`
}

// report assembles the report of all runs and its exit status.
func (p *checkPlan) report(runs []*targetRun) checkReport {
	rep := checkReport{Summary: checkSummary{
		Targets:  len(runs),
		Findings: map[string]int{},
		FailOn:   p.failOn.String(),
	}}
	for _, s := range []findings.Severity{findings.Info, findings.Warning, findings.Critical} {
		rep.Summary.Findings[s.String()] = 0
	}
	for _, tr := range runs {
		t := p.targetReport(tr)
		rep.Targets = append(rep.Targets, t)
		for _, f := range t.Findings {
			rep.Summary.Findings[f.Severity.String()]++
		}
		if !t.Checked {
			rep.Summary.NotChecked++
		}
		if t.Failing {
			rep.Summary.Failing++
		} else if t.Checked {
			rep.Summary.Passing++
		}
	}
	switch {
	case rep.Summary.NotChecked > 0:
		rep.Summary.ExitCode = checkCannotRun
	case rep.Summary.Failing > 0:
		rep.Summary.ExitCode = checkFindings
	default:
		rep.Summary.ExitCode = checkPassed
	}
	return rep
}

func (p *checkPlan) targetReport(tr *targetRun) targetReport {
	r := &tr.last
	t := targetReport{
		Target: tr.target, Module: p.moduleName, ServerName: p.serverName(tr.target),
		Checked: tr.succeeded, Probes: tr.probes, ProbesFailed: tr.failed,
		Start: tr.start.UTC(), DurationSeconds: tr.end.Sub(tr.start).Seconds(),
		Versions:        map[string]bool{},
		Mechanisms:      []mechanismReport{},
		Tickets:         []ticketReport{},
		KeyFingerprints: []uint64{},
		Findings:        []findingReport{},
		Rotation:        p.rotationReport(tr),
	}
	if tr.failed > 0 {
		t.Error = tr.failure
	}
	for v, ok := range r.Versions {
		t.Versions[probe.VersionName(v)] = ok
	}
	for _, m := range p.module.Checks {
		t.Mechanisms = append(t.Mechanisms, mechanismOf(r, m))
	}
	for _, v := range []uint16{probe.VersionTLS12, probe.VersionTLS13} {
		if tk, ok := r.Tickets[v]; ok {
			t.Tickets = append(t.Tickets, ticketReport{
				Version: probe.VersionName(v), Count: tk.Count, LifetimeSeconds: tk.LifetimeHint,
				Format: string(tk.Format), KeyNameBytes: tk.KeyNameBytes, MaxEarlyDataBytes: tk.MaxEarlyData,
			})
		}
	}
	for _, kn := range r.KeyNames {
		t.KeyFingerprints = append(t.KeyFingerprints, kn.Fingerprint)
	}
	fs := tr.findings()
	for _, f := range fs {
		t.Findings = append(t.Findings, findingReport{
			ID: f.ID, Subject: f.Subject, Severity: f.Severity, Summary: f.Summary, Alert: f.Alert, RunbookURL: f.RunbookURL(),
		})
	}
	if h := findings.Highest(fs); h != 0 {
		t.HighestSeverity = h.String()
		t.Failing = h >= p.failOn
	}
	return t
}

// serverName is the SNI a probe of target sends.
func (p *checkPlan) serverName(target string) string {
	if n := p.module.TLSConfig.ServerName; n != "" {
		return n
	}
	t, _ := probe.ParseTarget(target)
	return t.Host
}

// mechanismOf reports one mechanism of the module from a probe result.
func mechanismOf(r *probe.Result, m probe.Mechanism) mechanismReport {
	mr := mechanismReport{Mechanism: string(m), Version: probe.VersionName(m.Version())}
	c, ok := r.Check(m)
	spoken, known := r.Versions[m.Version()]
	switch {
	case !ok && known && !spoken:
		mr.Status, mr.Reason = statusNotApplicable, "the server refuses "+mr.Version
	case !ok:
		mr.Status, mr.Reason = statusError, "not checked: "+orUnknown(r.Failure)
	case !c.Completed:
		mr.Status, mr.Reason = statusError, "could not check: "+c.Err
	default:
		mr.Issued, mr.Resumed = c.Issued, c.Resumed
		mr.Status = statusNotResumed
		if c.Resumed {
			mr.Status = statusResumed
		}
		mr.Reason = verdictReason(c)
	}
	if ok {
		mr.FullHandshakeSeconds = c.FullHandshake.Seconds()
		mr.ResumedHandshakeSeconds = c.ResumedHandshake.Seconds()
		mr.StandIn = c.StandIn
	}
	if age, ok := r.AcceptedMaxAge[m]; ok {
		s := age.Seconds()
		mr.AcceptedMaxAgeSeconds = &s
	}
	return mr
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown reason"
	}
	return s
}

// verdictReason says what on the wire decided a completed check.
func verdictReason(c probe.Check) string {
	switch c.Mechanism {
	case probe.MechanismSessionID:
		switch {
		case !c.Issued:
			return "the server assigned no session ID"
		case c.Resumed:
			return "the server echoed the session ID we offered"
		default:
			return "the server answered our session ID with a new one (full handshake)"
		}
	case probe.MechanismSessionTicket:
		switch {
		case !c.Issued:
			return "the server issued no ticket"
		case c.Resumed:
			return "the server echoed our session ID on a ticket offer"
		default:
			return "the server did not echo our session ID on a ticket offer (full handshake)"
		}
	case probe.MechanismPSK:
		switch {
		case !c.Issued:
			return "the server sent no ticket a client could use"
		case c.Resumed:
			return "the ServerHello selected our pre_shared_key"
		default:
			return "the ServerHello carried no pre_shared_key (full handshake)"
		}
	}
	return ""
}

// rotationReport says what the key history knows of the target's rotation.
func (p *checkPlan) rotationReport(tr *targetRun) rotationReport {
	rr := rotationReport{Source: p.historySource, Keys: []keyReport{}}
	if p.watch > 0 {
		for _, s := range tr.sightings {
			rr.Keys = append(rr.Keys, keyReport{Fingerprint: s.fingerprint, FirstSeen: s.firstSeen.UTC(), LastSeen: s.lastSeen.UTC(), Probes: s.probes})
		}
	}
	k := tr.keys
	if k == nil {
		rr.Reason = "one probe cannot tell whether the key rotates: use --watch DURATION or --history.path"
		return rr
	}
	rr.ActiveWindowSeconds = p.historyWindow.Seconds()
	if !k.HasKeys {
		// The history keeps a zero KeyState for such a target: it has no
		// Since to report, and watched_seconds from year 1 would be absurd.
		rr.Reason = "the server's tickets name no key (none issued, stateful or unnamed)"
		return rr
	}
	since := k.Since.UTC()
	rr.Since = &since
	rr.WatchedSeconds = tr.end.Sub(k.Since).Seconds()
	fromFile := p.historySource == historyFile && k.Since.Before(tr.start)
	switch {
	case !fromFile && p.watch == 0:
		rr.Reason = "the history file holds nothing of this target and module"
	case !fromFile && tr.probes < 2:
		rr.Reason = "only one probe ran"
	default:
		rr.Known = true
	}
	newest, oldest := k.NewestActiveFirstSeen.UTC(), k.OldestActiveFirstSeen.UTC()
	rr.KeyFirstSeen, rr.OldestActiveKeyFirstSeen = &newest, &oldest
	rr.ActiveKeys, rr.Rotations = k.ActiveKeys, k.Rotations
	rr.LastRotationIntervalSeconds = k.LastRotationInterval.Seconds()
	return rr
}
