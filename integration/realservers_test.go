package integration

import (
	"testing"

	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
	"github.com/resumption-exporter/resumption_exporter/probe"
)

// Series names used below, to keep the tables readable.
const (
	success     = "probe_success"
	sessionID   = `tls_resumption_supported{mechanism="session_id"}`
	ticket12    = `tls_resumption_supported{mechanism="session_ticket"}`
	psk         = `tls_resumption_supported{mechanism="psk"}`
	checkID     = `tls_resumption_check_success{mechanism="session_id"}`
	checkTicket = `tls_resumption_check_success{mechanism="session_ticket"}`
	checkPSK    = `tls_resumption_check_success{mechanism="psk"}`
	hint12      = `tls_session_ticket_lifetime_hint_seconds{version="TLS 1.2"}`
	hint13      = `tls_session_ticket_lifetime_hint_seconds{version="TLS 1.3"}`
	named12     = `tls_session_ticket_info{format="stateless",key_name_bytes="16",version="TLS 1.2"}`
	named13     = `tls_session_ticket_info{format="stateless",key_name_bytes="16",version="TLS 1.3"}`
	stateful13  = `tls_session_ticket_info{format="stateful",key_name_bytes="0",version="TLS 1.3"}`
	has12       = `tls_version_supported{version="TLS 1.2"}`
	has13       = `tls_version_supported{version="TLS 1.3"}`
	highest12   = `probe_tls_version_info{version="TLS 1.2"}`
	highest13   = `probe_tls_version_info{version="TLS 1.3"}`
	fingerprint = "tls_session_ticket_key_fingerprint"
)

// both is what every target speaking TLS 1.2 and 1.3 publishes.
var both = map[string]float64{success: 1, has12: 1, has13: 1, highest13: 1, checkID: 1, checkTicket: 1, checkPSK: 1}

func with(base map[string]float64, more map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range more {
		out[k] = v
	}
	return out
}

type serverCase struct {
	name   string
	start  func(t *testing.T, pki *testservers.PKI) *testservers.Server
	want   map[string]float64
	absent []string
	// issued, when set, says whether each mechanism's full handshake gave
	// the client something to offer, whatever the server then did with it.
	issued map[probe.Mechanism]bool
}

func nginx(directives string) func(*testing.T, *testservers.PKI) *testservers.Server {
	return func(t *testing.T, pki *testservers.PKI) *testservers.Server {
		testservers.Require(t, "nginx")
		return testservers.StartNginx(t, pki, directives)
	}
}

func opensslServer(args ...string) func(*testing.T, *testservers.PKI) *testservers.Server {
	return func(t *testing.T, pki *testservers.PKI) *testservers.Server {
		testservers.Require(t, "openssl")
		return testservers.StartOpenSSL(t, pki, args...)
	}
}

func haproxy(bind string) func(*testing.T, *testservers.PKI) *testservers.Server {
	return func(t *testing.T, pki *testservers.PKI) *testservers.Server {
		testservers.Require(t, "haproxy")
		return testservers.StartHAProxy(t, pki, bind)
	}
}

func gnutlsServer(args ...string) func(*testing.T, *testservers.PKI) *testservers.Server {
	return func(t *testing.T, pki *testservers.PKI) *testservers.Server {
		testservers.Require(t, "gnutls-serv")
		return testservers.StartGnuTLS(t, pki, args...)
	}
}

func TestRealServers(t *testing.T) {
	cases := []serverCase{
		{
			// nginx's built-in defaults: ssl_session_cache none sends a
			// session ID it never resumes; tickets with a random key;
			// hint = ssl_session_timeout 300.
			name:   "nginx defaults",
			start:  nginx("ssl_protocols TLSv1.2 TLSv1.3;"),
			want:   with(both, map[string]float64{sessionID: 0, ticket12: 1, psk: 1, hint12: 300, hint13: 300, named12: 1, named13: 1}),
			issued: map[probe.Mechanism]bool{probe.MechanismSessionID: true, probe.MechanismSessionTicket: true, probe.MechanismPSK: true},
		},
		{
			name:  "nginx shared session cache",
			start: nginx("ssl_protocols TLSv1.2 TLSv1.3; ssl_session_cache shared:SSL:1m;"),
			want:  with(both, map[string]float64{sessionID: 1, ticket12: 1, psk: 1, hint12: 300, hint13: 300, named12: 1, named13: 1}),
		},
		{
			// Tickets are not resumption: with tickets off and no shared
			// cache, OpenSSL still sends stateful TLS 1.3 tickets, which
			// never resume.
			name:   "nginx tickets off, no cache",
			start:  nginx("ssl_protocols TLSv1.2 TLSv1.3; ssl_session_tickets off;"),
			want:   with(both, map[string]float64{sessionID: 0, ticket12: 0, psk: 0, hint13: 300, stateful13: 1}),
			absent: []string{hint12, fingerprint},
			issued: map[probe.Mechanism]bool{probe.MechanismSessionTicket: false, probe.MechanismPSK: true},
		},
		{
			// …and with a shared cache the stateful tickets resume.
			name:   "nginx tickets off, shared cache",
			start:  nginx("ssl_protocols TLSv1.2 TLSv1.3; ssl_session_tickets off; ssl_session_cache shared:SSL:1m;"),
			want:   with(both, map[string]float64{sessionID: 1, ticket12: 0, psk: 1, hint13: 300, stateful13: 1}),
			absent: []string{hint12, fingerprint},
		},
		{
			name:   "nginx TLS 1.2 only",
			start:  nginx("ssl_protocols TLSv1.2;"),
			want:   map[string]float64{success: 1, has12: 1, has13: 0, highest12: 1, checkID: 1, checkTicket: 1, sessionID: 0, ticket12: 1, hint12: 300, named12: 1},
			absent: []string{psk, checkPSK, hint13, highest13},
		},
		{
			name:   "nginx TLS 1.3 only",
			start:  nginx("ssl_protocols TLSv1.3;"),
			want:   map[string]float64{success: 1, has12: 0, has13: 1, highest13: 1, checkPSK: 1, psk: 1, hint13: 300, named13: 1},
			absent: []string{sessionID, ticket12, checkID, checkTicket, hint12},
		},
		{
			// Debian's stock ssl.conf: shmcb cache, 300 s, tickets off.
			name: "apache stock ssl.conf",
			start: func(t *testing.T, pki *testservers.PKI) *testservers.Server {
				testservers.Require(t, "apache2")
				return testservers.StartApacheConfig(t, pki, testservers.ApacheConfig{Global: testservers.DebianApacheSSLConf})
			},
			want:   with(both, map[string]float64{sessionID: 1, ticket12: 0, psk: 1, hint13: 300, stateful13: 1}),
			absent: []string{hint12, fingerprint},
		},
		{
			// HAProxy keeps a session cache and issues tickets with
			// OpenSSL's default lifetime.
			name:  "haproxy defaults",
			start: haproxy(""),
			want:  with(both, map[string]float64{sessionID: 1, ticket12: 1, psk: 1, hint12: 7200, hint13: 7200, named12: 1, named13: 1}),
		},
		{
			name:   "haproxy no-tls-tickets",
			start:  haproxy("no-tls-tickets"),
			want:   with(both, map[string]float64{sessionID: 1, ticket12: 0, psk: 1, hint13: 7200, stateful13: 1}),
			absent: []string{hint12, fingerprint},
		},
		{
			// -no_ticket: no TLS 1.2 tickets, stateful TLS 1.3 ones.
			name:   "openssl s_server -no_ticket",
			start:  opensslServer("-no_ticket"),
			want:   with(both, map[string]float64{sessionID: 1, ticket12: 0, psk: 1, hint13: 7200, stateful13: 1}),
			absent: []string{hint12, fingerprint},
		},
		{
			// -num_tickets 0: no TLS 1.3 ticket at all, so nothing to
			// resume with; TLS 1.2 tickets are unaffected.
			name:   "openssl s_server -num_tickets 0",
			start:  opensslServer("-num_tickets", "0"),
			want:   with(both, map[string]float64{sessionID: 1, ticket12: 1, psk: 0, hint12: 7200, named12: 1}),
			absent: []string{hint13},
			issued: map[probe.Mechanism]bool{probe.MechanismPSK: false},
		},
		{
			// GnuTLS 3.7's gnutls-serv: a session cache of its own and
			// tickets (two per TLS 1.3 handshake) with a lifetime of
			// 21600 s, as s_client -sess_out/-sess_in shows: all three
			// mechanisms resume.
			name:  "gnutls-serv defaults",
			start: gnutlsServer(),
			want:  with(both, map[string]float64{sessionID: 1, ticket12: 1, psk: 1, hint12: 21600, hint13: 21600, named12: 1, named13: 1}),
		},
		{
			// --noticket: no ticket at either version (no TLS 1.3
			// NewSessionTicket either), while the cache still resumes
			// session IDs.
			name:   "gnutls-serv --noticket",
			start:  gnutlsServer("--noticket"),
			want:   with(both, map[string]float64{sessionID: 1, ticket12: 0, psk: 0}),
			absent: []string{hint12, hint13, fingerprint},
			issued: map[probe.Mechanism]bool{probe.MechanismSessionTicket: false, probe.MechanismPSK: false},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pki := testservers.NewPKI(t)
			srv := c.start(t, pki)
			p := newRunner(t, pki, nil)
			o := p.probe(t, srv.Addr)
			o.expect(t, c.want, c.absent...)
			// The next probe replays this one's sessions: every mechanism
			// that resumes shows how old a session it still accepts.
			again := p.probe(t, srv.Addr)
			for series, age := range map[string]string{
				sessionID: "tls_session_id_accepted_max_age_seconds",
				ticket12:  `tls_session_ticket_accepted_max_age_seconds{version="TLS 1.2"}`,
				psk:       `tls_session_ticket_accepted_max_age_seconds{version="TLS 1.3"}`,
			} {
				got, ok := again.series[age]
				if c.want[series] == 1 && (!ok || got <= 0) {
					t.Errorf("second probe: %s = %v (present %v), want the first probe's age", age, got, ok)
				}
				if c.want[series] != 1 && ok {
					t.Errorf("second probe: %s = %v although %s is not supported", age, got, series)
				}
			}
			for mech, want := range c.issued {
				if got, _ := o.result.Check(mech); got.Issued != want {
					t.Errorf("%s issued = %v, want %v", mech, got.Issued, want)
				}
			}
			if t.Failed() {
				t.Logf("%s logs:\n%s", srv.Name, srv.Logs())
			}
		})
	}
}
