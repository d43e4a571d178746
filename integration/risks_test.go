package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
	"github.com/resumption-exporter/resumption_exporter/probe"
)

// Series of the risk checks.
const (
	pskNoDHE      = "tls_resumption_psk_without_dhe_accepted"
	ticketbleed   = "tls_ticketbleed_vulnerable"
	earlyAccepted = "tls_early_data_accepted"
	earlyReplay   = "tls_early_data_replay_accepted"
	weakness      = "tls_session_ticket_weakness"
	zeroKey12     = `tls_session_ticket_weakness{version="TLS 1.2",weakness="zero_key"}`
	zeroKey13     = `tls_session_ticket_weakness{version="TLS 1.3",weakness="zero_key"}`
	inClear12     = `tls_session_ticket_weakness{version="TLS 1.2",weakness="secret_in_clear"}`
	inClear13     = `tls_session_ticket_weakness{version="TLS 1.3",weakness="secret_in_clear"}`
	keystream13   = `tls_session_ticket_weakness{version="TLS 1.3",weakness="keystream_reuse"}`
	keystream12   = `tls_session_ticket_weakness{version="TLS 1.2",weakness="keystream_reuse"}`
)

// zeroTicketKey writes an nginx ssl_session_ticket_key file of 80 zero
// bytes, which nginx accepts without complaint.
func zeroTicketKey(t *testing.T) string {
	path := filepath.Join(t.TempDir(), "zero.key")
	if err := os.WriteFile(path, make([]byte, 80), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestRiskChecks runs the default module's risk checks against real
// servers that show each behaviour and servers that do not.
func TestRiskChecks(t *testing.T) {
	cases := []serverCase{
		{
			// s_server -allow_no_dhe_kex resumes psk_ke-only offers.
			name:  "openssl s_server -allow_no_dhe_kex",
			start: opensslServer("-allow_no_dhe_kex"),
			want: map[string]float64{success: 1, psk: 1, pskNoDHE: 1, ticketbleed: 0,
				zeroKey12: 0, zeroKey13: 0, inClear12: 0, inClear13: 0, keystream12: 0, keystream13: 0},
		},
		{
			// The runbook's OpenSSL option, the wrong way round: nginx
			// then resumes without DHE too.
			name:  "nginx ssl_conf_command Options AllowNoDHEKEX",
			start: nginx("ssl_protocols TLSv1.2 TLSv1.3;\nssl_conf_command Options AllowNoDHEKEX;"),
			want:  map[string]float64{success: 1, psk: 1, pskNoDHE: 1},
		},
		{
			name:  "openssl s_server",
			start: opensslServer(),
			want:  map[string]float64{success: 1, psk: 1, pskNoDHE: 0, ticketbleed: 0},
		},
		{
			name:  "nginx defaults",
			start: nginx("ssl_protocols TLSv1.2 TLSv1.3;"),
			want: map[string]float64{success: 1, psk: 1, pskNoDHE: 0, ticketbleed: 0,
				zeroKey12: 0, zeroKey13: 0, inClear12: 0, inClear13: 0, keystream12: 0, keystream13: 0},
			absent: []string{earlyAccepted, earlyReplay},
		},
		{
			name: "nginx all-zero ticket key",
			start: func(t *testing.T, pki *testservers.PKI) *testservers.Server {
				testservers.Require(t, "nginx")
				return testservers.StartNginx(t, pki, "ssl_protocols TLSv1.2 TLSv1.3;\nssl_session_ticket_key "+zeroTicketKey(t)+";")
			},
			want: map[string]float64{success: 1, ticket12: 1, psk: 1, zeroKey12: 1, zeroKey13: 1, inClear12: 0, inClear13: 0,
				keystream12: 0, keystream13: 0, ticketbleed: 0},
		},
		{
			name: "nginx random ticket key file",
			start: func(t *testing.T, pki *testservers.PKI) *testservers.Server {
				testservers.Require(t, "nginx")
				key := filepath.Join(t.TempDir(), "ticket.key")
				testservers.WriteNginxTicketKey(t, key)
				return testservers.StartNginx(t, pki, "ssl_protocols TLSv1.2 TLSv1.3;\nssl_session_ticket_key "+key+";")
			},
			want: map[string]float64{success: 1, zeroKey12: 0, zeroKey13: 0, inClear12: 0, inClear13: 0, ticketbleed: 0},
		},
		{
			name:  "haproxy defaults",
			start: haproxy(""),
			want:  map[string]float64{success: 1, ticket12: 1, ticketbleed: 0, pskNoDHE: 0, zeroKey12: 0, zeroKey13: 0},
		},
		{
			// Tickets off: no TLS 1.2 ticket offer is resumed, so there is
			// no Ticketbleed verdict; stateful TLS 1.3 tickets are
			// judged for secrets in clear only.
			name:   "nginx tickets off, shared cache",
			start:  nginx("ssl_protocols TLSv1.2 TLSv1.3; ssl_session_tickets off; ssl_session_cache shared:SSL:1m;"),
			want:   map[string]float64{success: 1, inClear13: 0, pskNoDHE: 0},
			absent: []string{ticketbleed, zeroKey12, zeroKey13, inClear12},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pki := testservers.NewPKI(t)
			srv := c.start(t, pki)
			o := newRunner(t, pki, nil).probe(t, srv.Addr)
			o.expect(t, c.want, c.absent...)
			if t.Failed() {
				t.Logf("%s logs:\n%s", srv.Name, srv.Logs())
			}
		})
	}
}

// With no risks listed, no risk metric appears.
func TestRiskChecksOff(t *testing.T) {
	testservers.Require(t, "openssl")
	pki := testservers.NewPKI(t)
	srv := testservers.StartOpenSSL(t, pki, "-allow_no_dhe_kex")
	o := newRunner(t, pki, func(m *probe.Module) { m.Risks = []probe.Risk{} }).probe(t, srv.Addr)
	o.expect(t, map[string]float64{success: 1, psk: 1}, pskNoDHE, ticketbleed, weakness, earlyAccepted, earlyReplay)
}

// TestEarlyData runs the early_data check, which modules must ask for:
// openssl s_server -early_data accepts 0-RTT and, with its default
// anti-replay (single-use tickets), refuses the replay; -no_anti_replay
// accepts it again; nginx without ssl_early_data issues tickets that
// allow no early data, so nothing is sent; nginx 1.22 with ssl_early_data
// on (stateless tickets, no session cache) and HAProxy 2.6 with allow-0rtt
// accept the replay.
func TestEarlyData(t *testing.T) {
	quiet := func(args ...string) func(*testing.T, *testservers.PKI) *testservers.Server {
		return func(t *testing.T, pki *testservers.PKI) *testservers.Server {
			testservers.Require(t, "openssl")
			return testservers.StartOpenSSLQuiet(t, pki, args...)
		}
	}
	cases := []serverCase{
		{
			name:  "openssl s_server -early_data",
			start: quiet("-early_data"),
			want:  map[string]float64{success: 1, earlyAccepted: 1, earlyReplay: 0},
		},
		{
			name:  "openssl s_server -early_data -no_anti_replay",
			start: quiet("-early_data", "-no_anti_replay"),
			want:  map[string]float64{success: 1, earlyAccepted: 1, earlyReplay: 1},
		},
		{
			name:   "nginx without ssl_early_data",
			start:  nginx("ssl_protocols TLSv1.2 TLSv1.3;"),
			want:   map[string]float64{success: 1, earlyAccepted: 0},
			absent: []string{earlyReplay},
		},
		{
			// HAProxy 2.6 with allow-0rtt leaves OpenSSL's anti-replay
			// off: the replay is accepted too.
			name:  "haproxy allow-0rtt",
			start: haproxy("allow-0rtt"),
			want:  map[string]float64{success: 1, earlyAccepted: 1, earlyReplay: 1},
		},
		{
			name:   "haproxy defaults",
			start:  haproxy(""),
			want:   map[string]float64{success: 1, earlyAccepted: 0},
			absent: []string{earlyReplay},
		},
		{
			name:  "nginx ssl_early_data on",
			start: nginx("ssl_protocols TLSv1.2 TLSv1.3;\nssl_early_data on;"),
			want:  map[string]float64{success: 1, earlyAccepted: 1, earlyReplay: 1},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pki := testservers.NewPKI(t)
			srv := c.start(t, pki)
			o := newRunner(t, pki, func(m *probe.Module) { m.Risks = []probe.Risk{probe.RiskEarlyData} }).probe(t, srv.Addr)
			o.expect(t, c.want, c.absent...)
			// s_server prints the early data it decrypted: proof that
			// the probe's client_early_traffic_secret is right, which
			// the server's acceptance alone (decided before it reads
			// the data) is not.
			if srv.Name == "openssl s_server" && !strings.Contains(srv.Logs(), strings.TrimSpace(probe.DefaultEarlyDataPayload)) {
				t.Errorf("s_server did not print the early data %q", probe.DefaultEarlyDataPayload)
			}
			if t.Failed() {
				t.Logf("%s logs:\n%s", srv.Name, srv.Logs())
			}
		})
	}
}
