package integration

import (
	"strings"
	"testing"

	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
	"github.com/resumption-exporter/resumption_exporter/probe"
)

var (
	afterAlertID     = `tls_resumption_after_fatal_alert_accepted{mechanism="session_id"}`
	afterAlertTicket = `tls_resumption_after_fatal_alert_accepted{mechanism="session_ticket"}`
	afterAlertPSK    = `tls_resumption_after_fatal_alert_accepted{mechanism="psk"}`
)

// TestAfterFatalAlert ends a session's connection with a fatal alert and
// offers it again. OpenSSL (HAProxy, s_server, nginx, Apache) drops a cached
// session ID on the alert; GnuTLS's gnutls-serv keeps it. Stateless tickets
// survive everywhere. OpenSSL's stateful TLS 1.3 tickets (tickets off) are
// one session each, and the alert removes only the last: the first still
// resumes, unless the server sends one ticket per connection.
//
// alertLog, when set, is the line the server logs per alert it received:
// the proof that the alert reached it as a fatal internal_error, one per
// mechanism judged (the probe's other connections end without one).
func TestAfterFatalAlert(t *testing.T) {
	cases := []struct {
		serverCase
		alertLog string
	}{
		{serverCase: serverCase{
			name:  "haproxy defaults",
			start: haproxy(""),
			want:  map[string]float64{success: 1, afterAlertID: 0, afterAlertTicket: 1, afterAlertPSK: 1},
		}},
		{serverCase: serverCase{
			// Debian's stock bind options: session IDs and stateful
			// TLS 1.3 tickets from the cache.
			name: "haproxy no-tls-tickets",
			start: func(t *testing.T, pki *testservers.PKI) *testservers.Server {
				testservers.Require(t, "haproxy")
				return testservers.StartHAProxyConfig(t, pki, testservers.HAProxyConfig{Global: testservers.DebianHAProxyGlobal})
			},
			want:   map[string]float64{success: 1, afterAlertID: 0, afterAlertPSK: 1},
			absent: []string{afterAlertTicket},
		}},
		{serverCase: serverCase{
			name:  "openssl s_server",
			start: quietOpenSSL(),
			want:  map[string]float64{success: 1, afterAlertID: 0, afterAlertTicket: 1, afterAlertPSK: 1},
		}, alertLog: "SSL alert number 80"},
		{serverCase: serverCase{
			name:   "openssl s_server -no_ticket",
			start:  quietOpenSSL("-no_ticket"),
			want:   map[string]float64{success: 1, afterAlertID: 0, afterAlertPSK: 1},
			absent: []string{afterAlertTicket},
		}, alertLog: "SSL alert number 80"},
		{serverCase: serverCase{
			name:   "openssl s_server -no_ticket -num_tickets 1",
			start:  quietOpenSSL("-no_ticket", "-num_tickets", "1"),
			want:   map[string]float64{success: 1, afterAlertID: 0, afterAlertPSK: 0},
			absent: []string{afterAlertTicket},
		}, alertLog: "SSL alert number 80"},
		{serverCase: serverCase{
			name:   "nginx tickets off, shared cache, NumTickets 1",
			start:  nginx("ssl_protocols TLSv1.2 TLSv1.3; ssl_session_tickets off; ssl_session_cache shared:SSL:1m; ssl_conf_command NumTickets 1;"),
			want:   map[string]float64{success: 1, afterAlertID: 0, afterAlertPSK: 0},
			absent: []string{afterAlertTicket},
		}},
		{serverCase: serverCase{
			name:   "nginx tickets off, shared cache",
			start:  nginx("ssl_protocols TLSv1.2 TLSv1.3; ssl_session_tickets off; ssl_session_cache shared:SSL:1m;"),
			want:   map[string]float64{success: 1, afterAlertID: 0, afterAlertPSK: 1},
			absent: []string{afterAlertTicket},
		}},
		{serverCase: serverCase{
			name:  "apache stock ssl.conf, SSLSessionTickets on",
			start: apacheCached(testservers.DebianApacheSSLConf+"SSLSessionTickets on\n", ""),
			want:  map[string]float64{success: 1, afterAlertID: 0, afterAlertTicket: 1, afterAlertPSK: 1},
		}},
		{serverCase: serverCase{
			// Debian's stock ssl.conf: tickets off.
			name:   "apache stock ssl.conf",
			start:  apacheCached(testservers.DebianApacheSSLConf, ""),
			want:   map[string]float64{success: 1, afterAlertID: 0, afterAlertPSK: 1},
			absent: []string{afterAlertTicket},
		}},
		{serverCase: serverCase{
			name:   "apache stock ssl.conf, SSLOpenSSLConfCmd NumTickets 1",
			start:  apacheCached(testservers.DebianApacheSSLConf, "SSLOpenSSLConfCmd NumTickets 1\n"),
			want:   map[string]float64{success: 1, afterAlertID: 0, afterAlertPSK: 0},
			absent: []string{afterAlertTicket},
		}},
		{serverCase: serverCase{
			name:  "gnutls-serv defaults",
			start: gnutlsServer(),
			want:  map[string]float64{success: 1, afterAlertID: 1, afterAlertTicket: 1, afterAlertPSK: 1},
		}, alertLog: "Received alert '80': Internal error."},
		{serverCase: serverCase{
			// Without the risk check nothing is judged, and no alert sent.
			name:   "openssl s_server, default risks",
			start:  quietOpenSSL(),
			absent: []string{"tls_resumption_after_fatal_alert_accepted"},
		}, alertLog: "SSL alert number 80"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pki := testservers.NewPKI(t)
			srv := tc.start(t, pki)
			edit := func(m *probe.Module) { m.Risks = append(m.Risks, probe.RiskAfterFatalAlert) }
			if tc.want == nil {
				edit = nil
			}
			o := newRunner(t, pki, edit).probe(t, srv.Addr)
			o.expect(t, tc.want, tc.absent...)
			if tc.alertLog == "" {
				return
			}
			judged := len(o.result.Risks.AfterFatalAlertAccepted)
			if n := strings.Count(srv.Logs(), tc.alertLog); n != judged {
				t.Errorf("%s logged %q %d times, want %d (one per mechanism judged)\n%s", tc.name, tc.alertLog, n, judged, srv.Logs())
			}
		})
	}
}

// apacheCached serves Apache with global at server level (it must set
// SSLSessionCache, as DebianApacheSSLConf does, for session IDs to resume)
// and vhost in the virtual host.
func apacheCached(global, vhost string) func(*testing.T, *testservers.PKI) *testservers.Server {
	return func(t *testing.T, pki *testservers.PKI) *testservers.Server {
		testservers.Require(t, "apache2")
		return testservers.StartApacheConfig(t, pki, testservers.ApacheConfig{Global: global, VirtualHost: vhost})
	}
}
