package integration

import (
	"crypto/tls"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
	"github.com/resumption-exporter/resumption_exporter/probe"
)

// The runbook's advice (alerts/runbook.md), tried on the servers it is
// for: each row starts a server the way the runbook says is wrong and sees
// the alert's condition, then the same server with exactly the runbook's
// fix and sees it gone. Versions here: Debian bookworm's nginx 1.22.1,
// Apache 2.4, HAProxy 2.6, OpenSSL 3.0, and the Go toolchain's crypto/tls.

// alertOn is an alert's condition on one series: the alert fires while the
// series is above the threshold (the rules' `== 1` is above 0.5).
type alertOn struct {
	series string
	above  float64
}

func fires(series string) alertOn                  { return alertOn{series, 0.5} }
func exceeds(series string, limit float64) alertOn { return alertOn{series, limit} }

// runbookServer is one server of a row and what else it must publish.
type runbookServer struct {
	start  func(*testing.T, *testservers.PKI) string
	want   map[string]float64
	absent []string
}

// runbookFix is one piece of the runbook's advice.
type runbookFix struct {
	section string // the runbook heading that gives the advice
	name    string
	module  func(*probe.Module) // the checks the alert needs
	alert   []alertOn
	// problem is the server as the runbook says it is found; nil when the
	// runbook only claims that a server never shows the finding.
	problem *runbookServer
	// fixed is the same server with the runbook's fix.
	fixed runbookServer
	// stillFires says the fix leaves the alert firing, which the runbook
	// says of it: it limits the damage at another layer.
	stillFires bool
}

const day = 86400

// TestRunbookFixes runs every row of runbookFixes.
func TestRunbookFixes(t *testing.T) {
	for _, f := range runbookFixes() {
		t.Run(f.section+"/"+f.name, func(t *testing.T) {
			if f.problem != nil {
				t.Run("problem", func(t *testing.T) {
					o := f.probe(t, *f.problem)
					for _, a := range f.alert {
						if v, ok := o.series[a.series]; !ok || v <= a.above {
							t.Errorf("%s = %v (present %v): the alert's condition (> %v) does not hold\n%s", a.series, v, ok, a.above, o)
						}
					}
				})
			}
			t.Run("fixed", func(t *testing.T) {
				o := f.probe(t, f.fixed)
				for _, a := range f.alert {
					v, ok := o.series[a.series]
					if firing := ok && v > a.above; firing != f.stillFires {
						t.Errorf("%s = %v (present %v): alert firing %v after the fix, want %v\n%s", a.series, v, ok, firing, f.stillFires, o)
					}
				}
			})
		})
	}
}

func (f runbookFix) probe(t *testing.T, s runbookServer) observation {
	t.Helper()
	pki := testservers.NewPKI(t)
	addr := s.start(t, pki)
	o := newRunner(t, pki, f.module).probe(t, addr)
	o.expect(t, s.want, s.absent...)
	return o
}

// runbookHeading matches the runbook's section headings.
var runbookHeading = regexp.MustCompile(`(?m)^#{2,3} (.+)$`)

// TestRunbookFixSections: every row names a heading of alerts/runbook.md,
// so renaming a section breaks this test rather than the rows' meaning.
func TestRunbookFixSections(t *testing.T) {
	b, err := os.ReadFile("../alerts/runbook.md")
	if err != nil {
		t.Fatal(err)
	}
	headings := map[string]bool{}
	for _, m := range runbookHeading.FindAllSubmatch(b, -1) {
		headings[strings.TrimSpace(string(m[1]))] = true
	}
	var sections []string
	for _, f := range runbookFixes() {
		sections = append(sections, f.section)
	}
	for _, r := range runbookAgeFixes() {
		sections = append(sections, r.section)
	}
	for _, r := range runbookRotations() {
		sections = append(sections, r.section)
	}
	for _, r := range runbookKeyPerServer() {
		sections = append(sections, r.section)
	}
	for _, r := range runbookChainFixes() {
		sections = append(sections, r.section)
	}
	for _, s := range sections {
		if !headings[s] {
			t.Errorf("row names section %q, which alerts/runbook.md does not have", s)
		}
	}
	if len(sections) == 0 {
		t.Fatal("no rows")
	}
}

// Starters for the rows.

func nginxAt(directives string) func(*testing.T, *testservers.PKI) string {
	return logged(nginx("ssl_protocols TLSv1.2 TLSv1.3;\n" + directives))
}

func haproxyAt(cfg testservers.HAProxyConfig) func(*testing.T, *testservers.PKI) string {
	return logged(func(t *testing.T, pki *testservers.PKI) *testservers.Server {
		testservers.Require(t, "haproxy")
		return testservers.StartHAProxyConfig(t, pki, cfg)
	})
}

// apacheAt serves Apache with a shmcb session cache; global goes at server
// level, vhost into the virtual host.
func apacheAt(global, vhost string) func(*testing.T, *testservers.PKI) string {
	return logged(func(t *testing.T, pki *testservers.PKI) *testservers.Server {
		testservers.Require(t, "apache2")
		return testservers.StartApacheConfig(t, pki, testservers.ApacheConfig{
			Global:      "SSLSessionCache shmcb:" + filepath.Join(t.TempDir(), "scache") + "(512000)\n" + global,
			VirtualHost: vhost,
		})
	})
}

// goAt serves in-process crypto/tls.
func goAt(configure func(*tls.Config)) func(*testing.T, *testservers.PKI) string {
	return func(t *testing.T, pki *testservers.PKI) string {
		return testservers.ServeTLS(t, pki, configure)
	}
}

// logged adapts a server starter, quoting the server's logs when the row
// fails.
func logged(start func(*testing.T, *testservers.PKI) *testservers.Server) func(*testing.T, *testservers.PKI) string {
	return func(t *testing.T, pki *testservers.PKI) string {
		srv := start(t, pki)
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("%s logs:\n%s", srv.Name, srv.Logs())
			}
		})
		return srv.Addr
	}
}

// withEnv sets an environment variable for the servers the row starts
// (they inherit the test's environment), then starts them.
func withEnv(key string, value func(*testing.T) string, start func(*testing.T, *testservers.PKI) string) func(*testing.T, *testservers.PKI) string {
	return func(t *testing.T, pki *testservers.PKI) string {
		t.Setenv(key, value(t))
		return start(t, pki)
	}
}

// opensslConf writes an OpenSSL configuration whose system_default
// section sets options, as distributions and hardening guides do in
// openssl.cnf; servers that load it (every OpenSSL-based one, at start)
// apply them to each SSL_CTX. Empty options: the section has none.
func opensslConf(options string) func(*testing.T) string {
	return func(t *testing.T) string {
		path := filepath.Join(t.TempDir(), "openssl.cnf")
		conf := "openssl_conf = openssl_init\n[openssl_init]\nssl_conf = ssl_sect\n[ssl_sect]\nsystem_default = system_default_sect\n[system_default_sect]\n"
		if options != "" {
			conf += "Options = " + options + "\n"
		}
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
}

// opensslRand runs the runbook's key command, `openssl rand [-base64] N`,
// and returns its output.
func opensslRand(t *testing.T, args ...string) []byte {
	t.Helper()
	testservers.Require(t, "openssl")
	out, err := exec.Command("openssl", append([]string{"rand"}, args...)...).Output()
	if err != nil {
		t.Fatalf("openssl rand %v: %v", args, err)
	}
	return out
}

// writeKeyFile writes content to a new file named name and returns its path.
func writeKeyFile(t *testing.T, name string, content []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// haproxyKeys writes a tls-ticket-keys file of three keys (HAProxy 2.6
// keeps a ring of three), each line made by line().
func haproxyKeys(t *testing.T, line func() []byte) string {
	t.Helper()
	var b []byte
	for range 3 {
		b = append(b, line()...)
	}
	return writeKeyFile(t, "tls-ticket-keys", b)
}

// zeroBase64Key is an 80-byte all-zero key, base64-encoded, one line.
var zeroBase64Key = strings.Repeat("A", 107) + "=\n"

// haproxyKeyLine runs the runbook's command for one tls-ticket-keys line,
// `openssl rand 80 | openssl base64 -A`: one line of base64. (`openssl rand
// -base64 80` wraps its output after 64 characters, and HAProxy refuses the
// file: "wrong sized key on line 2".)
func haproxyKeyLine(t *testing.T) []byte {
	t.Helper()
	testservers.Require(t, "openssl")
	out, err := exec.Command("sh", "-c", "openssl rand 80 | openssl base64 -A").Output()
	if err != nil {
		t.Fatalf("openssl rand 80 | openssl base64 -A: %v", err)
	}
	return append(out, '\n')
}

func earlyDataModule(m *probe.Module) { m.Risks = []probe.Risk{probe.RiskEarlyData} }
func crossNameModule(m *probe.Module) { m.CrossNames = []string{otherName} }

// Go servers that keep the ticket format to themselves.
func goTicketsInClear(c *tls.Config) {
	c.WrapSession = func(_ tls.ConnectionState, ss *tls.SessionState) ([]byte, error) { return ss.Bytes() }
	c.UnwrapSession = func(id []byte, _ tls.ConnectionState) (*tls.SessionState, error) {
		if ss, err := tls.ParseSessionState(id); err == nil {
			return ss, nil
		}
		return nil, nil // not ours: a full handshake
	}
}

// goTicketsStock keeps WrapSession/UnwrapSession (to add application data,
// say) but encrypts with the Config's own EncryptTicket/DecryptTicket, the
// runbook's advice.
func goTicketsStock(c *tls.Config) {
	c.WrapSession = func(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) { return c.EncryptTicket(cs, ss) }
	c.UnwrapSession = func(id []byte, cs tls.ConnectionState) (*tls.SessionState, error) { return c.DecryptTicket(id, cs) }
}

// goTicketsBoundToName records the server name in each session's Extra
// and resumes a ticket only under the name it was issued for: the
// runbook's check of the name in UnwrapSession.
func goTicketsBoundToName(c *tls.Config) {
	const prefix = "sni:"
	c.WrapSession = func(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
		ss.Extra = append(ss.Extra, []byte(prefix+cs.ServerName))
		return c.EncryptTicket(cs, ss)
	}
	c.UnwrapSession = func(id []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
		ss, err := c.DecryptTicket(id, cs)
		if err != nil || ss == nil {
			return nil, err
		}
		for _, e := range ss.Extra {
			if string(e) == prefix+cs.ServerName {
				return ss, nil
			}
		}
		return nil, nil // another name's session: a full handshake
	}
}

func runbookFixes() []runbookFix {
	const noDHE = "TLSResumptionWithoutForwardSecrecy"
	allowNoDHE := opensslConf("AllowNoDHEKEX")
	weak := []alertOn{fires(zeroKey12), fires(zeroKey13)}
	noWeakness := map[string]float64{success: 1, ticket12: 1, psk: 1, zeroKey12: 0, zeroKey13: 0, inClear12: 0, inClear13: 0, keystream12: 0, keystream13: 0}
	crossAll := []alertOn{fires(crossID), fires(crossTicket), fires(crossPSK)}
	lifetime := []alertOn{exceeds(hint12, day), exceeds(hint13, day)}
	const common = "ssl_protocols TLSv1.2 TLSv1.3; ssl_session_cache shared:SSL:1m;"
	const resumptionOff = "ssl_session_tickets off; ssl_session_cache off;"
	fixes := []runbookFix{
		{
			section: noDHE, name: "nginx ssl_conf_command Options -AllowNoDHEKEX over openssl.cnf",
			alert:   []alertOn{fires(pskNoDHE)},
			problem: &runbookServer{start: withEnv("OPENSSL_CONF", allowNoDHE, nginxAt(""))},
			fixed: runbookServer{start: withEnv("OPENSSL_CONF", allowNoDHE, nginxAt("ssl_conf_command Options -AllowNoDHEKEX;")),
				want: map[string]float64{success: 1, psk: 1, pskNoDHE: 0}},
		},
		{
			section: noDHE, name: "Apache SSLOpenSSLConfCmd Options -AllowNoDHEKEX over openssl.cnf",
			alert:   []alertOn{fires(pskNoDHE)},
			problem: &runbookServer{start: withEnv("OPENSSL_CONF", allowNoDHE, apacheAt("", ""))},
			fixed: runbookServer{start: withEnv("OPENSSL_CONF", allowNoDHE, apacheAt("", "SSLOpenSSLConfCmd Options -AllowNoDHEKEX")),
				want: map[string]float64{success: 1, psk: 1, pskNoDHE: 0}},
		},
		{
			section: noDHE, name: "HAProxy: AllowNoDHEKEX removed from openssl.cnf, restarted",
			alert:   []alertOn{fires(pskNoDHE)},
			problem: &runbookServer{start: withEnv("OPENSSL_CONF", allowNoDHE, haproxyAt(testservers.HAProxyConfig{}))},
			fixed: runbookServer{start: withEnv("OPENSSL_CONF", opensslConf(""), haproxyAt(testservers.HAProxyConfig{})),
				want: map[string]float64{success: 1, psk: 1, pskNoDHE: 0}},
		},
		{
			section: noDHE, name: "Go resumes with psk_dhe_ke only",
			alert: []alertOn{fires(pskNoDHE)},
			fixed: runbookServer{start: goAt(nil), want: map[string]float64{success: 1, psk: 1, pskNoDHE: 0}},
		},
		{
			section: "TLSTicketbleedVulnerable", name: "Apache is not affected",
			alert: []alertOn{fires(ticketbleed)},
			fixed: runbookServer{start: apacheAt("", ""), want: map[string]float64{success: 1, ticket12: 1, ticketbleed: 0}},
		},
		{
			section: "TLSTicketbleedVulnerable", name: "Go is not affected",
			alert: []alertOn{fires(ticketbleed)},
			fixed: runbookServer{start: goAt(nil), want: map[string]float64{success: 1, ticket12: 1, ticketbleed: 0}},
		},
		{
			section: "TLSSessionTicketWeakProtection", name: "nginx key file from openssl rand 80",
			alert: weak,
			problem: &runbookServer{start: func(t *testing.T, pki *testservers.PKI) string {
				return nginxAt("ssl_session_ticket_key "+zeroTicketKey(t)+";")(t, pki)
			}},
			fixed: runbookServer{start: func(t *testing.T, pki *testservers.PKI) string {
				return nginxAt("ssl_session_ticket_key "+writeKeyFile(t, "ticket.key", opensslRand(t, "80"))+";")(t, pki)
			}, want: noWeakness},
		},
		{
			// Seen on Apache 2.4.71 with OpenSSL 3.0: with any
			// SSLSessionTicketKeyFile, random or not, the tickets' HMAC
			// verifies under an all-zero key; the key name and the AES
			// key are the file's (a ticket decrypts under the file's AES
			// key, checked by hand with s_client -sess_out). A random
			// key file does not clear the alert.
			section: "TLSSessionTicketWeakProtection", name: "Apache SSLSessionTicketKeyFile from openssl rand 48",
			alert: weak,
			problem: &runbookServer{start: func(t *testing.T, pki *testservers.PKI) string {
				return apacheAt("SSLSessionTicketKeyFile "+writeKeyFile(t, "ticket.key", make([]byte, 48))+"\n", "")(t, pki)
			}},
			fixed: runbookServer{start: func(t *testing.T, pki *testservers.PKI) string {
				return apacheAt("SSLSessionTicketKeyFile "+writeKeyFile(t, "ticket.key", opensslRand(t, "48"))+"\n", "")(t, pki)
			}, want: map[string]float64{success: 1, ticket12: 1, psk: 1}},
			stillFires: true,
		},
		{
			section: "TLSSessionTicketWeakProtection", name: "Apache without SSLSessionTicketKeyFile",
			alert: weak,
			problem: &runbookServer{start: func(t *testing.T, pki *testservers.PKI) string {
				return apacheAt("SSLSessionTicketKeyFile "+writeKeyFile(t, "ticket.key", opensslRand(t, "48"))+"\n", "")(t, pki)
			}},
			fixed: runbookServer{start: apacheAt("", ""), want: noWeakness},
		},
		{
			section: "TLSSessionTicketWeakProtection", name: "HAProxy tls-ticket-keys from openssl rand 80 | openssl base64 -A",
			alert: weak,
			problem: &runbookServer{start: func(t *testing.T, pki *testservers.PKI) string {
				keys := haproxyKeys(t, func() []byte { return []byte(zeroBase64Key) })
				return haproxyAt(testservers.HAProxyConfig{Bind: "tls-ticket-keys " + keys})(t, pki)
			}},
			fixed: runbookServer{start: func(t *testing.T, pki *testservers.PKI) string {
				keys := haproxyKeys(t, func() []byte { return haproxyKeyLine(t) })
				return haproxyAt(testservers.HAProxyConfig{Bind: "tls-ticket-keys " + keys})(t, pki)
			}, want: noWeakness},
		},
		{
			section: "TLSSessionTicketWeakProtection", name: "Go WrapSession through Config.EncryptTicket",
			alert:   []alertOn{fires(inClear12), fires(inClear13)},
			problem: &runbookServer{start: goAt(goTicketsInClear)},
			fixed:   runbookServer{start: goAt(goTicketsStock), want: map[string]float64{success: 1, ticket12: 1, psk: 1, inClear12: 0, inClear13: 0, keystream12: 0, keystream13: 0}},
		},
		{
			section: "TLSEarlyDataReplayAccepted", name: "nginx ssl_early_data off",
			module: earlyDataModule, alert: []alertOn{fires(earlyReplay)},
			problem: &runbookServer{start: nginxAt("ssl_early_data on;"), want: map[string]float64{earlyAccepted: 1}},
			fixed:   runbookServer{start: nginxAt("ssl_early_data off;"), want: map[string]float64{success: 1, earlyAccepted: 0}, absent: []string{earlyReplay}},
		},
		{
			// wait-for-handshake makes HAProxy hold unsafe early requests
			// (or answer 425); the TLS layer still accepts the replay.
			section: "TLSEarlyDataReplayAccepted", name: "HAProxy allow-0rtt with wait-for-handshake",
			module: earlyDataModule, alert: []alertOn{fires(earlyReplay)},
			problem: &runbookServer{start: haproxyAt(testservers.HAProxyConfig{Bind: "allow-0rtt"})},
			fixed: runbookServer{start: haproxyAt(testservers.HAProxyConfig{Bind: "allow-0rtt", Frontend: "http-request wait-for-handshake if ! METH_GET"}),
				want: map[string]float64{success: 1, earlyAccepted: 1}},
			stillFires: true,
		},
		{
			section: "TLSEarlyDataReplayAccepted", name: "Apache accepts no early data",
			module: earlyDataModule, alert: []alertOn{fires(earlyReplay)},
			fixed: runbookServer{start: apacheAt("", ""), want: map[string]float64{success: 1, earlyAccepted: 0}, absent: []string{earlyReplay}},
		},
		{
			section: "TLSEarlyDataReplayAccepted", name: "Go accepts no early data",
			module: earlyDataModule, alert: []alertOn{fires(earlyReplay)},
			fixed: runbookServer{start: goAt(nil), want: map[string]float64{success: 1, earlyAccepted: 0}, absent: []string{earlyReplay}},
		},
		{
			section: "TLSClientAuthBypassAcrossNames", name: "nginx resumption off in the port's first server block",
			module: crossNameModule, alert: []alertOn{fires(crossAuth)},
			problem: &runbookServer{start: func(t *testing.T, pki *testservers.PKI) string {
				return logged(nginxTwoNames(common, common+"ssl_verify_client on; ssl_client_certificate "+pki.CAFile+";"))(t, pki)
			}},
			fixed: runbookServer{start: func(t *testing.T, pki *testservers.PKI) string {
				return logged(nginxTwoNames(common+resumptionOff, common+"ssl_verify_client on; ssl_client_certificate "+pki.CAFile+";"))(t, pki)
			}, want: map[string]float64{success: 1}},
		},
		{
			section: "TLSSessionsSharedAcrossNames", name: "nginx resumption off on the shared port",
			module: crossNameModule, alert: crossAll,
			problem: &runbookServer{start: logged(nginxTwoNames(common, common))},
			fixed:   runbookServer{start: logged(nginxTwoNames(common+resumptionOff, common)), want: map[string]float64{success: 1}},
		},
		{
			section: "TLSSessionsSharedAcrossNames", name: "Apache virtual hosts without key files",
			module: crossNameModule, alert: crossAll,
			fixed: runbookServer{start: logged(func(t *testing.T, pki *testservers.PKI) *testservers.Server {
				testservers.Require(t, "apache2")
				return testservers.StartApacheConfig(t, pki, testservers.ApacheConfig{
					Global:     "SSLSessionCache shmcb:" + filepath.Join(t.TempDir(), "scache") + "(512000)\n",
					OtherHosts: map[string]string{otherName: ""},
				})
			}), want: map[string]float64{success: 1, sessionID: 1, ticket12: 1, psk: 1}},
		},
		{
			section: "TLSSessionsSharedAcrossNames", name: "HAProxy one bind resumes under any name",
			module: crossNameModule, alert: crossAll,
			problem: &runbookServer{start: haproxyAt(testservers.HAProxyConfig{})},
			fixed:   runbookServer{start: haproxyAt(testservers.HAProxyConfig{Bind: "strict-sni"}), want: map[string]float64{success: 1}},
		},
		{
			section: "TLSSessionsSharedAcrossNames", name: "Go UnwrapSession checks the name",
			module: crossNameModule, alert: []alertOn{fires(crossTicket), fires(crossPSK)},
			problem: &runbookServer{start: goAt(nil)},
			fixed:   runbookServer{start: goAt(goTicketsBoundToName), want: map[string]float64{success: 1, ticket12: 1, psk: 1, crossTicket: 0, crossPSK: 0}},
		},
		{
			section: "TLSSessionTicketRenewedOnResumption", name: "Go MinVersion TLS 1.3",
			alert:   []alertOn{fires(renewed12)},
			problem: &runbookServer{start: goAt(nil)},
			fixed:   runbookServer{start: goAt(func(c *tls.Config) { c.MinVersion = tls.VersionTLS13 }), want: map[string]float64{success: 1, psk: 1}},
		},
		{
			section: "TLSSessionTicketRenewedOnResumption", name: "Go SessionTicketsDisabled",
			alert:   []alertOn{fires(renewed12)},
			problem: &runbookServer{start: goAt(nil)},
			fixed:   runbookServer{start: goAt(func(c *tls.Config) { c.SessionTicketsDisabled = true }), want: map[string]float64{success: 1, ticket12: 0}},
		},
		{
			section: "TLSSessionTicketRenewedOnResumption", name: "Apache does not renew",
			alert: []alertOn{fires(renewed12)},
			fixed: runbookServer{start: apacheAt("", ""), want: map[string]float64{success: 1, ticket12: 1, renewed12: 0}},
		},
		{
			section: "TLSSessionTicketRenewedOnResumption", name: "HAProxy does not renew",
			alert: []alertOn{fires(renewed12)},
			fixed: runbookServer{start: haproxyAt(testservers.HAProxyConfig{}), want: map[string]float64{success: 1, ticket12: 1, renewed12: 0}},
		},
		{
			section: "TLSSessionTicketLifetimeAboveOneDay", name: "nginx ssl_session_timeout 1h",
			alert:   lifetime,
			problem: &runbookServer{start: nginxAt("ssl_session_timeout 2d;")},
			fixed:   runbookServer{start: nginxAt("ssl_session_timeout 1h;"), want: map[string]float64{hint12: 3600, hint13: 3600}},
		},
		{
			section: "TLSSessionTicketLifetimeAboveOneDay", name: "Apache SSLSessionCacheTimeout 3600",
			alert:   lifetime,
			problem: &runbookServer{start: apacheAt("SSLSessionCacheTimeout 172800\n", "")},
			fixed:   runbookServer{start: apacheAt("SSLSessionCacheTimeout 3600\n", ""), want: map[string]float64{hint12: 3600, hint13: 3600}},
		},
		{
			section: "TLSSessionTicketLifetimeAboveOneDay", name: "HAProxy tune.ssl.lifetime 1h",
			alert:   lifetime,
			problem: &runbookServer{start: haproxyAt(testservers.HAProxyConfig{Global: "tune.ssl.lifetime 2d"})},
			fixed:   runbookServer{start: haproxyAt(testservers.HAProxyConfig{Global: "tune.ssl.lifetime 1h"}), want: map[string]float64{hint12: 3600, hint13: 3600}},
		},
		{
			// Go announces 0 for TLS 1.2 and 7 days for TLS 1.3.
			section: "TLSSessionTicketLifetimeAboveOneDay", name: "Go SessionTicketsDisabled",
			alert:   []alertOn{exceeds(hint13, day)},
			problem: &runbookServer{start: goAt(nil)},
			fixed:   runbookServer{start: goAt(func(c *tls.Config) { c.SessionTicketsDisabled = true }), want: map[string]float64{success: 1}},
		},
		{
			// Rotating keys bounds what Go accepts, not what it announces.
			section: "TLSSessionTicketLifetimeAboveOneDay", name: "Go SetSessionTicketKeys",
			alert:   []alertOn{exceeds(hint13, day)},
			problem: &runbookServer{start: goAt(nil)},
			fixed: runbookServer{start: goAt(func(c *tls.Config) { c.SetSessionTicketKeys([][32]byte{{1}, {2}}) }),
				want: map[string]float64{success: 1, psk: 1, hint12: 0, hint13: 604800}},
			stillFires: true,
		},
		{
			section: "Stateful TLS 1.3 tickets", name: "nginx ssl_session_cache off as well",
			alert:   []alertOn{fires(psk), fires(sessionID)},
			problem: &runbookServer{start: nginxAt("ssl_session_tickets off; ssl_session_cache shared:SSL:1m;"), want: map[string]float64{stateful13: 1, ticket12: 0}},
			fixed:   runbookServer{start: nginxAt("ssl_session_tickets off; ssl_session_cache off;"), want: map[string]float64{success: 1, ticket12: 0}},
		},
		{
			section: "Stateful TLS 1.3 tickets", name: "Apache SSLSessionCache none as well",
			alert: []alertOn{fires(psk), fires(sessionID)},
			problem: &runbookServer{start: apacheAt("SSLSessionTickets off\n", ""),
				want: map[string]float64{stateful13: 1, ticket12: 0}},
			fixed: runbookServer{start: logged(func(t *testing.T, pki *testservers.PKI) *testservers.Server {
				testservers.Require(t, "apache2")
				return testservers.StartApacheConfig(t, pki, testservers.ApacheConfig{Global: "SSLSessionTickets off\nSSLSessionCache none\n"})
			}), want: map[string]float64{success: 1, ticket12: 0}},
		},
		{
			section: "Stateful TLS 1.3 tickets", name: "HAProxy tune.ssl.cachesize 0 as well",
			alert:   []alertOn{fires(psk), fires(sessionID)},
			problem: &runbookServer{start: haproxyAt(testservers.HAProxyConfig{Bind: "no-tls-tickets"}), want: map[string]float64{stateful13: 1, ticket12: 0}},
			fixed:   runbookServer{start: haproxyAt(testservers.HAProxyConfig{Bind: "no-tls-tickets", Global: "tune.ssl.cachesize 0"}), want: map[string]float64{success: 1, ticket12: 0}},
		},
		{
			section: "Stateful TLS 1.3 tickets", name: "openssl s_server with 0-RTT sends stateful tickets",
			alert: []alertOn{fires(named13)},
			fixed: runbookServer{start: logged(quietOpenSSL("-early_data")), want: map[string]float64{success: 1, psk: 1, stateful13: 1}},
		},
		{
			section: "HAProxy", name: "ssl-default-bind-options no-tls-tickets in global",
			alert:   []alertOn{fires(ticket12)},
			problem: &runbookServer{start: haproxyAt(testservers.HAProxyConfig{})},
			fixed:   runbookServer{start: haproxyAt(testservers.HAProxyConfig{Global: "ssl-default-bind-options no-tls-tickets"}), want: map[string]float64{success: 1, sessionID: 1, stateful13: 1}},
		},
		{
			// Since Go 1.21 tickets carry no key name: no fingerprint.
			section: "Go (crypto/tls) and servers built on it", name: "SessionTicketsDisabled",
			alert: []alertOn{fires(ticket12), fires(psk)},
			problem: &runbookServer{start: goAt(nil), want: map[string]float64{
				`tls_session_ticket_info{format="stateless_unnamed",key_name_bytes="0",version="TLS 1.2"}`: 1,
				`tls_session_ticket_info{format="stateless_unnamed",key_name_bytes="0",version="TLS 1.3"}`: 1,
			}, absent: []string{fingerprint}},
			fixed: runbookServer{start: goAt(func(c *tls.Config) { c.SessionTicketsDisabled = true }), want: map[string]float64{success: 1}},
		},
		{
			// Apache's default SSLSessionCacheTimeout is 300 s.
			section: "Apache httpd (mod_ssl)", name: "SSLOpenSSLConfCmd Options -SessionTicket",
			alert:   []alertOn{fires(ticket12)},
			problem: &runbookServer{start: apacheAt("", ""), want: map[string]float64{hint12: 300, hint13: 300}},
			fixed:   runbookServer{start: apacheAt("", "SSLOpenSSLConfCmd Options -SessionTicket"), want: map[string]float64{success: 1, sessionID: 1}},
		},
	}
	return append(fixes, fatalAlertFixes()...)
}

func fatalAlertModule(m *probe.Module) { m.Risks = append(m.Risks, probe.RiskAfterFatalAlert) }

// fatalAlertFixes are TLSSessionIDResumableAfterFatalAlert's claims: the
// OpenSSL servers' session caches forget an alerted session (0), and
// turning the cache off leaves no session ID to resume at all.
func fatalAlertFixes() []runbookFix {
	const section = "TLSSessionIDResumableAfterFatalAlert"
	alert := []alertOn{fires(afterAlertID)}
	forgets := map[string]float64{success: 1, sessionID: 1, afterAlertID: 0}
	off := runbookServer{want: map[string]float64{success: 1, sessionID: 0}, absent: []string{afterAlertID}}
	with := func(s runbookServer, start func(*testing.T, *testservers.PKI) string) runbookServer {
		s.start = start
		return s
	}
	const cache = "ssl_session_cache shared:SSL:1m;"
	return []runbookFix{
		{section: section, name: "nginx shared cache forgets the session", module: fatalAlertModule, alert: alert,
			fixed: runbookServer{start: nginxAt(cache), want: forgets}},
		{section: section, name: "Apache SSLSessionCache forgets the session", module: fatalAlertModule, alert: alert,
			fixed: runbookServer{start: apacheAt("", ""), want: forgets}},
		{section: section, name: "HAProxy shared cache forgets the session", module: fatalAlertModule, alert: alert,
			fixed: runbookServer{start: haproxyAt(testservers.HAProxyConfig{}), want: forgets}},
		{section: section, name: "nginx ssl_session_cache off", module: fatalAlertModule, alert: alert,
			fixed: with(off, nginxAt("ssl_session_cache off;"))},
		{section: section, name: "Apache SSLSessionCache none", module: fatalAlertModule, alert: alert,
			fixed: with(off, logged(func(t *testing.T, pki *testservers.PKI) *testservers.Server {
				testservers.Require(t, "apache2")
				return testservers.StartApacheConfig(t, pki, testservers.ApacheConfig{Global: "SSLSessionCache none\n"})
			}))},
		{section: section, name: "HAProxy tune.ssl.cachesize 0", module: fatalAlertModule, alert: alert,
			fixed: with(off, haproxyAt(testservers.HAProxyConfig{Global: "tune.ssl.cachesize 0"}))},
	}
}
