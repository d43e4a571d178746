package collector

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/resumption-exporter/resumption_exporter/probe"
)

// The risk checks' verdicts: each published where it was reached, absent
// where the check did not run or apply, never 0 for "unknown".
func TestRiskMetrics(t *testing.T) {
	yes, no := true, false
	tests := []struct {
		name  string
		risks probe.RiskResult
		want  []string
	}{
		{"nothing judged", probe.RiskResult{}, nil},
		{"every verdict", probe.RiskResult{
			PSKWithoutDHE: &yes, Ticketbleed: &no, EarlyDataAccepted: &yes, EarlyDataReplayAccepted: &no,
			TicketWeaknesses: []probe.TicketWeakness{
				{Version: probe.VersionTLS12, Weakness: probe.WeaknessZeroKey, Found: true},
				{Version: probe.VersionTLS13, Weakness: probe.WeaknessKeystreamReuse, Found: false},
			},
		}, []string{
			"tls_resumption_psk_without_dhe_accepted 1",
			"tls_ticketbleed_vulnerable 0",
			"tls_early_data_accepted 1",
			"tls_early_data_replay_accepted 0",
			`tls_session_ticket_weakness{version="TLS 1.2",weakness="zero_key"} 1`,
			`tls_session_ticket_weakness{version="TLS 1.3",weakness="keystream_reuse"} 0`,
		}},
		{"cross names: per mechanism offered", probe.RiskResult{
			CrossNameAccepted:   map[probe.Mechanism]bool{probe.MechanismSessionTicket: true, probe.MechanismPSK: false},
			CrossNameClientAuth: &yes,
		}, []string{
			"tls_resumption_cross_name_client_auth 1",
			`tls_resumption_cross_name_accepted{mechanism="session_ticket"} 1`,
			`tls_resumption_cross_name_accepted{mechanism="psk"} 0`,
		}},
		{"ticket reuse: per version judged", probe.RiskResult{
			TicketReuseAccepted: map[uint16]bool{probe.VersionTLS12: true, probe.VersionTLS13: false},
			TicketRenewed12:     &yes,
		}, []string{
			`tls_session_ticket_renewed_on_resumption{version="TLS 1.2"} 1`,
			`tls_session_ticket_reuse_accepted{version="TLS 1.2"} 1`,
			`tls_session_ticket_reuse_accepted{version="TLS 1.3"} 0`,
		}},
		{"after a fatal alert: per mechanism judged", probe.RiskResult{
			AfterFatalAlertAccepted: map[probe.Mechanism]bool{probe.MechanismSessionID: false, probe.MechanismSessionTicket: true, probe.MechanismPSK: true},
		}, []string{
			`tls_resumption_after_fatal_alert_accepted{mechanism="session_id"} 0`,
			`tls_resumption_after_fatal_alert_accepted{mechanism="session_ticket"} 1`,
			`tls_resumption_after_fatal_alert_accepted{mechanism="psk"} 1`,
		}},
		{"resumption chains: per ticket mechanism that resumed", probe.RiskResult{
			ResumptionChainMaxAge: map[probe.Mechanism]time.Duration{probe.MechanismPSK: 48 * time.Hour, probe.MechanismSessionTicket: 0},
		}, []string{
			`tls_resumption_chain_max_age_seconds{mechanism="psk"} 172800`,
			`tls_resumption_chain_max_age_seconds{mechanism="session_ticket"} 0`,
		}},
		{"early data declined: no replay verdict", probe.RiskResult{EarlyDataAccepted: &no}, []string{
			"tls_early_data_accepted 0",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &probe.Result{Risks: tt.risks}
			coll := NewProbeCollector(r, nil)
			want := append([]string{"probe_success 0", "probe_duration_seconds 0", "probe_dns_lookup_time_seconds 0"}, tt.want...)
			if err := testutil.CollectAndCompare(coll, strings.NewReader(exposition(t, describe(t, coll), want))); err != nil {
				t.Error(err)
			}
		})
	}
}
