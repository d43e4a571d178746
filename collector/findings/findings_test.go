package findings

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/resumption-exporter/resumption_exporter/collector/history"
	"github.com/resumption-exporter/resumption_exporter/probe"
)

var now = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func resumed(ms ...probe.Mechanism) []probe.Check {
	var cs []probe.Check
	for _, m := range ms {
		cs = append(cs, probe.Check{Mechanism: m, Completed: true, Issued: true, Resumed: true})
	}
	return cs
}

func ids(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.ID)
	}
	return out
}

func TestEvaluate(t *testing.T) {
	day := 24 * time.Hour
	limit := DefaultThresholds.KeyMaxAge + DefaultThresholds.ActiveWindow
	tickets := func(v uint16, lifetime uint32) map[uint16]probe.Tickets {
		return map[uint16]probe.Tickets{v: {Version: v, Count: 1, LifetimeHint: lifetime, Format: probe.FormatStateless, KeyNameBytes: 16}}
	}
	keys := func(since, oldest time.Time, interval time.Duration) *history.KeyState {
		return &history.KeyState{Since: since, HasKeys: true, OldestActiveFirstSeen: oldest, NewestActiveFirstSeen: oldest,
			ActiveKeys: 1, LastRotationInterval: interval}
	}
	tests := []struct {
		name string
		r    probe.Result
		keys *history.KeyState
		want []string
	}{
		{name: "nothing resumes", r: probe.Result{Checks: []probe.Check{
			{Mechanism: probe.MechanismSessionID, Completed: true, Issued: true},
			{Mechanism: probe.MechanismSessionTicket, Completed: true},
			{Mechanism: probe.MechanismPSK, Completed: false, Resumed: true}, // Resumed means nothing here
		}}},
		{name: "every mechanism resumes", r: probe.Result{Checks: resumed(probe.Mechanisms...)},
			want: []string{"session_id_resumption", "session_ticket_resumption", "psk_resumption"}},
		{name: "lifetime exactly a day", r: probe.Result{Tickets: tickets(probe.VersionTLS12, 86400)}},
		{name: "lifetime above a day", r: probe.Result{Tickets: tickets(probe.VersionTLS12, 86401)},
			want: []string{"ticket_lifetime_above_one_day"}},
		{name: "TLS 1.3 at the RFC maximum", r: probe.Result{Tickets: tickets(probe.VersionTLS13, 604800)},
			want: []string{"ticket_lifetime_above_one_day"}},
		{name: "TLS 1.3 above the RFC maximum", r: probe.Result{Tickets: tickets(probe.VersionTLS13, 604801)},
			want: []string{"tls13_ticket_lifetime_above_maximum", "ticket_lifetime_above_one_day"}},
		{name: "TLS 1.2 above 7 days is not an RFC 8446 matter", r: probe.Result{Tickets: tickets(probe.VersionTLS12, 604801)},
			want: []string{"ticket_lifetime_above_one_day"}},
		{name: "old sessions resumed", r: probe.Result{AcceptedMaxAge: map[probe.Mechanism]time.Duration{
			probe.MechanismSessionID: day + time.Second, probe.MechanismPSK: day + time.Second, probe.MechanismSessionTicket: day,
		}}, want: []string{"ticket_resumable_after_one_day", "session_id_resumable_after_one_day"}},
		{name: "rotation unknown: no key findings", r: probe.Result{Tickets: tickets(probe.VersionTLS12, 300)}},
		{name: "key older than the limit, history as old",
			r:    probe.Result{Tickets: tickets(probe.VersionTLS12, 300)},
			keys: keys(now.Add(-limit-time.Minute), now.Add(-limit-time.Second), 0),
			want: []string{"ticket_key_not_rotated"}},
		{name: "key at the limit", r: probe.Result{},
			keys: keys(now.Add(-limit-time.Minute), now.Add(-limit), 0)},
		{name: "history younger than the limit", r: probe.Result{},
			keys: keys(now.Add(-limit), now.Add(-limit), 0)},
		{name: "no named keys", r: probe.Result{},
			keys: &history.KeyState{Since: now.Add(-10 * day)}},
		{name: "lifetime above the rotation interval, resumption info last",
			r:    probe.Result{Tickets: tickets(probe.VersionTLS12, 300), Checks: resumed(probe.MechanismSessionTicket)},
			keys: keys(now.Add(-time.Hour), now.Add(-time.Minute), 299*time.Second),
			want: []string{"ticket_lifetime_above_rotation_interval", "session_ticket_resumption"}},
		{name: "lifetime equal to the rotation interval",
			r:    probe.Result{Tickets: tickets(probe.VersionTLS12, 300)},
			keys: keys(now.Add(-time.Hour), now.Add(-time.Minute), 300*time.Second)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Evaluate(&tt.r, tt.keys, now, DefaultThresholds)
			if !slices.Equal(ids(got), tt.want) {
				t.Errorf("findings %q, want %q", ids(got), tt.want)
			}
			for i, f := range got {
				if f.Summary == "" {
					t.Errorf("%s has no summary", f.ID)
				}
				if i > 0 && got[i-1].Severity < f.Severity {
					t.Errorf("%s (%s) after %s (%s): not most severe first", f.ID, f.Severity, got[i-1].ID, got[i-1].Severity)
				}
			}
		})
	}
}

func TestSummariesNameTheFigures(t *testing.T) {
	r := probe.Result{
		Tickets:        map[uint16]probe.Tickets{probe.VersionTLS13: {LifetimeHint: 700000}},
		AcceptedMaxAge: map[probe.Mechanism]time.Duration{probe.MechanismSessionID: 30 * time.Hour},
	}
	want := map[string]string{
		"ticket_lifetime_above_one_day":       "TLS 1.3 tickets announce a lifetime of 194h26m40s (700000 s), above 24h0m0s",
		"tls13_ticket_lifetime_above_maximum": "TLS 1.3 ticket lifetime 700000 s exceeds RFC 8446's maximum of 604800 s; strict clients abort",
		"session_id_resumable_after_one_day":  "resumed a session ID obtained 30h0m0s earlier, above 24h0m0s",
	}
	got := Evaluate(&r, nil, now, DefaultThresholds)
	if len(got) != len(want) {
		t.Fatalf("findings %q, want %d", ids(got), len(want))
	}
	subjects := map[string]string{
		"ticket_lifetime_above_one_day": "TLS 1.3", "tls13_ticket_lifetime_above_maximum": "TLS 1.3",
		"session_id_resumable_after_one_day": "session_id",
	}
	for _, f := range got {
		if f.Summary != want[f.ID] {
			t.Errorf("%s: summary %q, want %q", f.ID, f.Summary, want[f.ID])
		}
		if f.Subject != subjects[f.ID] {
			t.Errorf("%s: subject %q, want %q", f.ID, f.Subject, subjects[f.ID])
		}
	}
}

func TestDefinitions(t *testing.T) {
	seen := map[string]bool{}
	for _, d := range Definitions {
		if seen[d.ID] {
			t.Errorf("finding %s defined twice", d.ID)
		}
		seen[d.ID] = true
		if d.Severity < Info || d.Severity > Critical {
			t.Errorf("%s: severity %v", d.ID, d.Severity)
		}
		if d.Section == "" {
			t.Errorf("%s: no runbook section", d.ID)
		}
	}
	for _, m := range probe.Mechanisms {
		if _, ok := resumptionFindings[m]; !ok {
			t.Errorf("mechanism %s has no resumption finding", m)
		}
	}
}

func TestSeverityText(t *testing.T) {
	for _, s := range []Severity{Info, Warning, Critical} {
		b, err := s.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back Severity
		if err := back.UnmarshalText(b); err != nil || back != s {
			t.Errorf("%s: round trip gave %v, %v", s, back, err)
		}
	}
	if _, err := ParseSeverity("error"); err == nil {
		t.Error("ParseSeverity(error) succeeded")
	}
	if _, err := Severity(0).MarshalText(); err == nil {
		t.Error("severity 0 marshalled")
	}
}

// The risk checks' verdicts of 1 are findings with their alerts'
// severities; 0 and absent verdicts are not.
func TestRiskFindings(t *testing.T) {
	yes, no := true, false
	r := &probe.Result{Risks: probe.RiskResult{
		PSKWithoutDHE: &yes, Ticketbleed: &no, EarlyDataReplayAccepted: &yes,
		TicketWeaknesses: []probe.TicketWeakness{
			{Version: probe.VersionTLS12, Weakness: probe.WeaknessZeroKey, Found: true},
			{Version: probe.VersionTLS13, Weakness: probe.WeaknessSecretInClear, Found: false},
		},
	}}
	got := Evaluate(r, nil, now, DefaultThresholds)
	want := []string{"psk_without_dhe_accepted", "ticket_weak_protection", "early_data_replay_accepted"}
	if !slices.Equal(ids(got), want) {
		t.Fatalf("findings %v, want %v", ids(got), want)
	}
	if got[1].Subject != "TLS 1.2 zero_key" || got[0].Severity != Critical || got[2].Severity != Warning {
		t.Errorf("findings %+v", got)
	}
	if fs := Evaluate(&probe.Result{}, nil, now, DefaultThresholds); len(fs) != 0 {
		t.Errorf("no verdicts gave findings %v", ids(fs))
	}
}

// A renewed TLS 1.2 ticket is the warning of its alert; 0 is no finding.
func TestTicketRenewalFinding(t *testing.T) {
	for _, tt := range []struct {
		renewed *bool
		want    []string
	}{{new(true), []string{"ticket_renewed_on_resumption"}}, {new(false), nil}, {nil, nil}} {
		got := Evaluate(&probe.Result{Risks: probe.RiskResult{TicketRenewed12: tt.renewed}}, nil, now, DefaultThresholds)
		if !slices.Equal(ids(got), tt.want) {
			t.Errorf("renewed %v: findings %v, want %v", tt.renewed, ids(got), tt.want)
		}
		if len(got) == 1 && (got[0].Severity != Warning || got[0].Subject != "TLS 1.2") {
			t.Errorf("finding %+v", got[0])
		}
	}
}

// A session ID resumed after a fatal alert is the warning of its alert;
// tickets that survive it, and a session ID refused, are no finding.
func TestAfterFatalAlertFinding(t *testing.T) {
	for _, tt := range []struct {
		verdicts map[probe.Mechanism]bool
		want     []string
	}{
		{map[probe.Mechanism]bool{probe.MechanismSessionID: true, probe.MechanismSessionTicket: true, probe.MechanismPSK: true}, []string{"session_id_resumed_after_fatal_alert"}},
		{map[probe.Mechanism]bool{probe.MechanismSessionID: false, probe.MechanismSessionTicket: true, probe.MechanismPSK: true}, nil},
		{nil, nil},
	} {
		got := Evaluate(&probe.Result{Risks: probe.RiskResult{AfterFatalAlertAccepted: tt.verdicts}}, nil, now, DefaultThresholds)
		if !slices.Equal(ids(got), tt.want) {
			t.Errorf("verdicts %v: findings %v, want %v", tt.verdicts, ids(got), tt.want)
		}
		if len(got) == 1 && (got[0].Severity != Warning || got[0].Subject != "session_id" || got[0].Alert != "TLSSessionIDResumableAfterFatalAlert") {
			t.Errorf("finding %+v", got[0])
		}
	}
}

// A resumption chain older than the threshold is the warning of its
// alert, per mechanism; one within it, or none reported, is no finding.
func TestResumptionChainFinding(t *testing.T) {
	week := DefaultThresholds.ResumptionChainMaxAge
	for _, tt := range []struct {
		ages map[probe.Mechanism]time.Duration
		want []string
	}{
		{map[probe.Mechanism]time.Duration{probe.MechanismPSK: week + time.Hour, probe.MechanismSessionTicket: time.Hour},
			[]string{"resumption_chain_unbounded"}},
		{map[probe.Mechanism]time.Duration{probe.MechanismPSK: week}, nil},
		{nil, nil},
	} {
		got := Evaluate(&probe.Result{Risks: probe.RiskResult{ResumptionChainMaxAge: tt.ages}}, nil, now, DefaultThresholds)
		if !slices.Equal(ids(got), tt.want) {
			t.Errorf("ages %v: findings %v, want %v", tt.ages, ids(got), tt.want)
		}
		if len(got) == 1 && (got[0].Severity != Warning || got[0].Subject != "psk" || !strings.Contains(got[0].Summary, "169h0m0s")) {
			t.Errorf("finding %+v", got[0])
		}
	}
}

// The cross-name verdicts split as the alerts do: the client-auth bypass
// alone (critical) when a name that resumed demands a certificate, else a
// warning per mechanism that resumed.
func TestCrossNameFindings(t *testing.T) {
	shared := map[probe.Mechanism]bool{probe.MechanismSessionTicket: true, probe.MechanismPSK: false, probe.MechanismSessionID: true}
	tests := []struct {
		name     string
		risks    probe.RiskResult
		want     []string
		subjects []string
	}{
		{"isolated", probe.RiskResult{CrossNameAccepted: map[probe.Mechanism]bool{probe.MechanismPSK: false}}, nil, nil},
		{"shared", probe.RiskResult{CrossNameAccepted: shared, CrossNameClientAuth: new(false)},
			[]string{"sessions_shared_across_names", "sessions_shared_across_names"}, []string{"session_id", "session_ticket"}},
		{"shared with a client certificate demanded", probe.RiskResult{CrossNameAccepted: shared, CrossNameClientAuth: new(true)},
			[]string{"cross_name_client_auth_bypass"}, []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Evaluate(&probe.Result{Risks: tt.risks}, nil, now, DefaultThresholds)
			if !slices.Equal(ids(got), tt.want) {
				t.Fatalf("findings %v, want %v", ids(got), tt.want)
			}
			var subjects []string
			for _, f := range got {
				subjects = append(subjects, f.Subject)
				if f.Definition == ClientAuthBypassAcrossNames && f.Severity != Critical || f.Definition == SessionsSharedAcrossNames && f.Severity != Warning {
					t.Errorf("%s: severity %v", f.ID, f.Severity)
				}
			}
			if !slices.Equal(subjects, tt.subjects) {
				t.Errorf("subjects %v, want %v", subjects, tt.subjects)
			}
		})
	}
}
