package integration

import (
	"regexp"
	"strings"
	"testing"

	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
	"github.com/resumption-exporter/resumption_exporter/probe"
	"github.com/resumption-exporter/resumption_exporter/probe/starttls"
)

// A STARTTLS case: a real server, the preamble the module runs, what the
// probe must publish, and what the server's own log must show of the probe
// (logs) and must not (noLogs: a login attempt, a protocol error).
type starttlsCase struct {
	name     string
	protocol starttls.Protocol
	start    func(t *testing.T, pki *testservers.PKI) *testservers.Server
	want     map[string]float64
	absent   []string
	issued   map[probe.Mechanism]bool
	logs     *regexp.Regexp
	noLogs   *regexp.Regexp
	failure  string // what the failure must say, for a case expecting probe_success 0
}

// The expected values below were first seen by hand with OpenSSL 3.0's
// s_client against the same servers and configurations:
//
//	openssl s_client -starttls PROTO -connect 127.0.0.1:PORT -tls1_2|-tls1_3 [-no_ticket] -sess_out s
//	openssl s_client -starttls PROTO -connect 127.0.0.1:PORT -tls1_2|-tls1_3 [-no_ticket] -sess_in s
//
// ("Reused" or "New" on the second connection; -no_ticket for session IDs;
// TLS 1.3 tickets arrive only when s_client waits, so stdin was held open).
func TestStartTLSServers(t *testing.T) {
	cases := []starttlsCase{
		{
			// Debian's main.cf.tls: smtpd_tls_security_level=may, no
			// smtpd_tls_session_cache_database. s_client: a 32-byte
			// session ID that is never resumed; TLS 1.2 and 1.3 tickets
			// (keys from tlsmgr) with hint 7200 that resume.
			name:     "postfix smtpd, Debian's TLS settings",
			protocol: starttls.SMTP,
			start: func(t *testing.T, pki *testservers.PKI) *testservers.Server {
				testservers.Require(t, "postfix")
				return testservers.StartPostfix(t, pki, "")
			},
			want:   with(both, map[string]float64{sessionID: 0, ticket12: 1, psk: 1, hint12: 7200, hint13: 7200, named12: 1, named13: 1}),
			logs:   regexp.MustCompile(`disconnect from localhost\[127\.0\.0\.1\] ehlo=1 starttls=1 commands=2`),
			noLogs: regexp.MustCompile(`auth=|warning`),
		},
		{
			// Dovecot's default login service runs one process per
			// connection (service_count = 1): each process has its own
			// OpenSSL context, so the session IDs and the tickets (hint
			// 7200) it issues are never resumed. s_client agrees.
			name:     "dovecot imap, default one process per login",
			protocol: starttls.IMAP,
			start:    dovecot("imap", ""),
			want:     with(both, map[string]float64{sessionID: 0, ticket12: 0, psk: 0, hint12: 7200, hint13: 7200}),
			issued:   map[probe.Mechanism]bool{probe.MechanismSessionID: true, probe.MechanismSessionTicket: true, probe.MechanismPSK: true},
			logs:     regexp.MustCompile(`imap-login: Info: Disconnected: Connection closed \(no auth attempts in \d+ secs\): user=<>, rip=127\.0\.0\.1, lip=127\.0\.0\.1, TLS`),
			noLogs:   regexp.MustCompile(`auth failed|Aborted login`),
		},
		{
			// High-performance mode (service_count = 0) with one login
			// process: every connection meets the same OpenSSL context,
			// and all three mechanisms resume.
			name:     "dovecot imap, high-performance login process",
			protocol: starttls.IMAP,
			start:    dovecot("imap", highPerformance("imap")),
			want:     with(both, map[string]float64{sessionID: 1, ticket12: 1, psk: 1, hint12: 7200, hint13: 7200, named12: 1, named13: 1}),
		},
		{
			name:     "dovecot pop3, default one process per login",
			protocol: starttls.POP3,
			start:    dovecot("pop3", ""),
			want:     with(both, map[string]float64{sessionID: 0, ticket12: 0, psk: 0, hint12: 7200, hint13: 7200}),
			logs:     regexp.MustCompile(`pop3-login: Info: Disconnected: Connection closed \(no auth attempts in \d+ secs\): user=<>, rip=127\.0\.0\.1, lip=127\.0\.0\.1, TLS`),
			noLogs:   regexp.MustCompile(`auth failed|Aborted login`),
		},
		{
			// vsftpd forks a process per connection, but after creating
			// its OpenSSL context in the listener: the ticket key is
			// shared and tickets resume, while the session cache is the
			// child's own and IDs never do. It sets the session timeout
			// to INT_MAX, so the TLS 1.2 hint is 2147483647 s; OpenSSL
			// caps the TLS 1.3 ticket lifetime at 604800 s (7 days).
			name:     "vsftpd, ssl_ciphers=HIGH",
			protocol: starttls.FTP,
			start: func(t *testing.T, pki *testservers.PKI) *testservers.Server {
				testservers.Require(t, "vsftpd")
				return testservers.StartVsftpd(t, pki, "ssl_ciphers=HIGH")
			},
			want:   with(both, map[string]float64{sessionID: 0, ticket12: 1, psk: 1, hint12: 2147483647, hint13: 604800, named12: 1, named13: 1}),
			logs:   regexp.MustCompile(`FTP command: Client "127\.0\.0\.1", "AUTH TLS"`),
			noLogs: regexp.MustCompile(`"USER|"PASS|LOGIN`),
		},
		{
			// vsftpd's own default, ssl_ciphers=DES-CBC3-SHA, leaves no
			// TLS 1.2 suite a client of today offers: the TLS 1.2
			// handshakes fail with handshake_failure (a failed check, not
			// an absent version), TLS 1.3 (whose suites that setting does
			// not touch) works and resumes. s_client -tls1_2 gets no
			// cipher either.
			name:     "vsftpd, its default ssl_ciphers",
			protocol: starttls.FTP,
			start: func(t *testing.T, pki *testservers.PKI) *testservers.Server {
				testservers.Require(t, "vsftpd")
				return testservers.StartVsftpd(t, pki, "")
			},
			want:    map[string]float64{success: 0, has13: 1, highest13: 1, checkID: 0, checkTicket: 0, checkPSK: 1, psk: 1, hint13: 604800},
			absent:  []string{has12, sessionID, ticket12, hint12},
			failure: "server answered with alert fatal handshake_failure(40)",
		},
		{
			// PostgreSQL turns resumption off (SSL_OP_NO_TICKET, no session
			// cache, no TLS 1.3 tickets): s_client gets an empty session
			// ID and no ticket at either version.
			name:     "postgresql ssl=on",
			protocol: starttls.Postgres,
			start: func(t *testing.T, pki *testservers.PKI) *testservers.Server {
				testservers.Require(t, "setpriv")
				return testservers.StartPostgres(t, pki)
			},
			want:   with(both, map[string]float64{sessionID: 0, ticket12: 0, psk: 0}),
			absent: []string{hint12, hint13, fingerprint},
			issued: map[probe.Mechanism]bool{probe.MechanismSessionID: false, probe.MechanismSessionTicket: false, probe.MechanismPSK: false},
			// With log_connections=on a probe is a "connection received"
			// line and nothing more: no startup packet, so no
			// "connection authorized" and no authentication failure.
			logs:   regexp.MustCompile(`LOG:  connection received: host=127\.0\.0\.1 port=\d+`),
			noLogs: regexp.MustCompile(`connection authorized|FATAL|authentication`),
		},
		{
			// Debian's slapd is built with GnuTLS and keeps no session
			// cache: s_client gets a session ID that is never resumed and
			// no ticket.
			name:     "slapd StartTLS",
			protocol: starttls.LDAP,
			start: func(t *testing.T, pki *testservers.PKI) *testservers.Server {
				testservers.Require(t, "slapd")
				return testservers.StartSlapd(t, pki, "")
			},
			want:   with(both, map[string]float64{sessionID: 0, ticket12: 0, psk: 0}),
			absent: []string{hint12, hint13, fingerprint},
			logs:   regexp.MustCompile(`EXT oid=1\.3\.6\.1\.4\.1\.1466\.20037`),
			noLogs: regexp.MustCompile(`BIND`),
		},
		{
			// Prosody 0.12 (LuaSec on OpenSSL): TLS 1.2 sessions have an
			// empty ID and no ticket; TLS 1.3 tickets (hint 7200, stateful:
			// OpenSSL's with tickets off) come, two per handshake, and are
			// never resumed. s_client -starttls xmpp -xmpphost localhost
			// agrees.
			name:     "prosody c2s",
			protocol: starttls.XMPP,
			start: func(t *testing.T, pki *testservers.PKI) *testservers.Server {
				testservers.Require(t, "prosody")
				return testservers.StartProsody(t, pki, "")
			},
			want:   with(both, map[string]float64{sessionID: 0, ticket12: 0, psk: 0, hint13: 7200, stateful13: 1}),
			absent: []string{hint12, fingerprint},
			issued: map[probe.Mechanism]bool{probe.MechanismSessionID: false, probe.MechanismSessionTicket: false, probe.MechanismPSK: true},
			logs:   regexp.MustCompile(`info\tClient connected`),
			noLogs: regexp.MustCompile(`(?i)authenticated|sasl`),
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pki := testservers.NewPKI(t)
			srv := c.start(t, pki)
			p := newRunner(t, pki, func(m *probe.Module) { m.StartTLS.Protocol = c.protocol })
			o := p.probe(t, srv.Addr)
			o.expect(t, c.want, c.absent...)
			for mech, want := range c.issued {
				if got, _ := o.result.Check(mech); got.Issued != want {
					t.Errorf("%s issued = %v, want %v", mech, got.Issued, want)
				}
			}
			// The second probe replays the first one's sessions through
			// the preamble too.
			again := p.probe(t, srv.Addr)
			if again.series[success] != c.want[success] {
				t.Errorf("second probe: success %v, failure %q", again.series[success], again.result.Failure)
			}
			if c.failure != "" && !strings.Contains(o.result.Failure, c.failure) {
				t.Errorf("failure %q does not say %q", o.result.Failure, c.failure)
			}
			for series, age := range map[string]string{
				sessionID: "tls_session_id_accepted_max_age_seconds",
				ticket12:  `tls_session_ticket_accepted_max_age_seconds{version="TLS 1.2"}`,
				psk:       `tls_session_ticket_accepted_max_age_seconds{version="TLS 1.3"}`,
			} {
				if got, ok := again.series[age]; (c.want[series] == 1) != (ok && got > 0) {
					t.Errorf("second probe: %s = %v (present %v), with %s = %v", age, got, ok, series, c.want[series])
				}
			}
			logs := srv.Logs()
			if c.logs != nil && !c.logs.MatchString(logs) {
				t.Errorf("%s logs do not show %q", srv.Name, c.logs)
			}
			if c.noLogs != nil && c.noLogs.MatchString(logs) {
				t.Errorf("%s logs show %q: %q", srv.Name, c.noLogs, c.noLogs.FindString(logs))
			}
			if t.Failed() || testing.Verbose() {
				t.Logf("%s logs:\n%s", srv.Name, logs)
			}
		})
	}
}

func dovecot(protocol, conf string) func(*testing.T, *testservers.PKI) *testservers.Server {
	return func(t *testing.T, pki *testservers.PKI) *testservers.Server {
		testservers.Require(t, "dovecot")
		return testservers.StartDovecot(t, pki, protocol, conf)
	}
}

// highPerformance is Dovecot's high-performance login mode with a single
// process, so that every connection meets the same TLS state.
func highPerformance(protocol string) string {
	return "service " + protocol + "-login {\n  service_count = 0\n  process_limit = 1\n  process_min_avail = 1\n}\n"
}

// Real servers configured without TLS refuse the preamble, and the probe
// says how.
func TestStartTLSRefusedByRealServers(t *testing.T) {
	cases := []struct {
		name     string
		protocol starttls.Protocol
		start    func(t *testing.T, pki *testservers.PKI) *testservers.Server
		failure  *regexp.Regexp
	}{
		{
			name:     "postfix smtpd_tls_security_level = none",
			protocol: starttls.SMTP,
			start: func(t *testing.T, pki *testservers.PKI) *testservers.Server {
				testservers.Require(t, "postfix")
				return testservers.StartPostfix(t, pki, "smtpd_tls_security_level = none")
			},
			failure: regexp.MustCompile(`SMTP server did not offer STARTTLS \(EHLO keywords: "PIPELINING SIZE [^"]*"\)`),
		},
		{
			name:     "dovecot ssl = no",
			protocol: starttls.IMAP,
			start:    dovecot("imap", "ssl = no"),
			failure:  regexp.MustCompile(`IMAP server did not offer STARTTLS \(CAPABILITY: "IMAP4rev1 [^"]*"\)`),
		},
		{
			name:     "postgresql ssl=off",
			protocol: starttls.Postgres,
			start: func(t *testing.T, pki *testservers.PKI) *testservers.Server {
				testservers.Require(t, "setpriv")
				return testservers.StartPostgres(t, pki, "ssl=off")
			},
			failure: regexp.MustCompile(`PostgreSQL server does not support SSL`),
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pki := testservers.NewPKI(t)
			srv := c.start(t, pki)
			p := newRunner(t, pki, func(m *probe.Module) { m.StartTLS.Protocol = c.protocol })
			o := p.probe(t, srv.Addr)
			o.expect(t, map[string]float64{success: 0}, has12, has13, sessionID, ticket12, psk)
			if !c.failure.MatchString(o.result.Failure) {
				t.Errorf("failure %q does not match %q", o.result.Failure, c.failure)
			}
			if t.Failed() {
				t.Logf("%s logs:\n%s", srv.Name, srv.Logs())
			}
		})
	}
}
