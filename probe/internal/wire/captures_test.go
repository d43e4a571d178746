package wire

import (
	"crypto/tls"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
)

// The parser tests below read real servers' bytes from testdata/, so they
// run without the servers. To record them again (servers installed):
//
//	go test ./probe/internal/wire -run TestRecordCaptures -args -update
//
// (the gnutls-serv cases need root: testservers.StartGnuTLS runs
// gnutls-serv, which listens on every interface, in a network namespace of
// its own and relays 127.0.0.1 to it).
var update = flag.Bool("update", false, "record testdata/ captures from real servers (TestRecordCaptures)")

// captureKind is what one recorded connection shows.
type captureKind int

const (
	full12    captureKind = iota // TLS 1.2 full handshake with a NewSessionTicket
	resumed12                    // TLS 1.2 abbreviated handshake resuming the ticket of a full one
	full13                       // TLS 1.3 full handshake and the NewSessionTickets after it
	hrr13                        // TLS 1.3 full handshake through a HelloRetryRequest
	resumed13                    // TLS 1.3 PSK resumption offered by crypto/tls
)

type captureCase struct {
	name  string // testdata/NAME.server, .client, .keylog
	how   string // for testdata/README.md
	kind  captureKind
	start func(t *testing.T, pki *testservers.PKI) *testservers.Server
}

func nginxServer(t *testing.T, pki *testservers.PKI) *testservers.Server {
	testservers.Require(t, "nginx")
	return testservers.StartNginx(t, pki, testservers.DebianNginxSSL)
}

func apacheServer(t *testing.T, pki *testservers.PKI) *testservers.Server {
	testservers.Require(t, "apache2")
	return testservers.StartApache(t, pki, "")
}

func haproxyServer(t *testing.T, pki *testservers.PKI) *testservers.Server {
	testservers.Require(t, "haproxy")
	return testservers.StartHAProxy(t, pki, "")
}

func gnutlsServer(t *testing.T, pki *testservers.PKI) *testservers.Server {
	testservers.Require(t, "gnutls-serv")
	return testservers.StartGnuTLS(t, pki)
}

func sServer(args ...string) func(t *testing.T, pki *testservers.PKI) *testservers.Server {
	return func(t *testing.T, pki *testservers.PKI) *testservers.Server {
		testservers.Require(t, "openssl")
		return testservers.StartOpenSSL(t, pki, args...)
	}
}

var captureCases = []captureCase{
	{"nginx-tls12-ticket", "nginx (testservers.StartNginx, Debian SSL settings), crypto/tls client at TLS 1.2 with a session cache", full12, nginxServer},
	{"nginx-tls12-resumed", "nginx as above, the second connection resuming the first one's ticket", resumed12, nginxServer},
	{"nginx-tls13-tickets", "nginx as above at TLS 1.3, read up to the HTTP answer (tickets before it)", full13, nginxServer},
	{"apache-tls12-ticket", "Apache mod_ssl (testservers.StartApache, defaults: tickets on), TLS 1.2 with a session cache", full12, apacheServer},
	{"apache-tls13-tickets", "Apache as above at TLS 1.3", full13, apacheServer},
	{"haproxy-tls12-ticket", "HAProxy (testservers.StartHAProxy, defaults), TLS 1.2 with a session cache", full12, haproxyServer},
	{"haproxy-tls13-tickets", "HAProxy as above at TLS 1.3", full13, haproxyServer},
	{"gnutls-tls12-ticket", "gnutls-serv --http (testservers.StartGnuTLS, in its own network namespace), TLS 1.2 with a session cache", full12, gnutlsServer},
	{"gnutls-tls12-resumed", "gnutls-serv as above, the second connection resuming the first one's ticket", resumed12, gnutlsServer},
	{"gnutls-tls13-tickets", "gnutls-serv as above at TLS 1.3", full13, gnutlsServer},
	{"openssl-tls12-ticket", "openssl s_server -www, TLS 1.2 with a session cache", full12, sServer()},
	{"openssl-tls12-resumed", "openssl s_server -www, the second connection resuming the first one's ticket", resumed12, sServer()},
	{"openssl-tls13-tickets", "openssl s_server -www at TLS 1.3 (two tickets)", full13, sServer()},
	{"openssl-tls13-hrr", "openssl s_server -www -groups P-384: crypto/tls's X25519 share draws a HelloRetryRequest", hrr13, sServer("-groups", "P-384")},
	{"openssl-tls13-resumed", "openssl s_server -www, the second TLS 1.3 connection offering the first one's ticket (pre_shared_key)", resumed13, sServer()},
}

// recording is one connection read back from testdata.
type recording struct {
	server, client []byte
	keyLog         map[string][]byte
}

func loadCapture(t testing.TB, name string) recording {
	t.Helper()
	var r recording
	var raw [3][]byte
	for i, ext := range []string{".server", ".client", ".keylog"} {
		b, err := os.ReadFile(filepath.Join("testdata", name+ext))
		if err != nil {
			t.Fatalf("%v (record with: go test ./probe/internal/wire -run TestRecordCaptures -args -update)", err)
		}
		raw[i] = b
	}
	r.server, r.client, r.keyLog = raw[0], raw[1], ParseKeyLog(raw[2])
	return r
}

// TestRecordCaptures writes testdata/ from real servers; only with -update.
func TestRecordCaptures(t *testing.T) {
	if !*update {
		t.Skip("records testdata/ only with -update")
	}
	var readme strings.Builder
	readme.WriteString("# Captures of real servers\n\n" +
		"Written by `go test ./probe/internal/wire -run TestRecordCaptures -args -update` (captures_test.go),\n" +
		"which starts each server through internal/testservers on 127.0.0.1 and connects with crypto/tls.\n" +
		"Per connection: `NAME.server` (every byte the server sent until the client's first read of\n" +
		"application data), `NAME.client` (every byte the client sent) and `NAME.keylog` (the NSS key\n" +
		"log of the connection, with a comment naming the cipher suite), so the TLS 1.3 records can be\n" +
		"decrypted. gnutls-serv listens on every interface, so testservers.StartGnuTLS runs it in a\n" +
		"network namespace of its own behind a relay on 127.0.0.1; its cases record only as root.\n\n")
	for _, c := range captureCases {
		t.Run(c.name, func(t *testing.T) {
			pki := testservers.NewPKI(t)
			srv := c.start(t, pki)
			cp := recordConnection(t, srv.Addr, pki, c.kind)
			keyLog := fmt.Sprintf("# cipher suite %s\n%s", tls.CipherSuiteName(cp.state.CipherSuite), cp.keyLog)
			for ext, b := range map[string][]byte{".server": cp.server, ".client": cp.client, ".keylog": []byte(keyLog)} {
				if err := os.WriteFile(filepath.Join("testdata", c.name+ext), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
		fmt.Fprintf(&readme, "- `%s.*`: %s.\n", c.name, c.how)
	}
	if err := os.WriteFile(filepath.Join("testdata", "README.md"), []byte(readme.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// recordConnection makes the connection a capture kind needs and returns
// it (for the resumed kinds, the second connection).
func recordConnection(t *testing.T, addr string, pki *testservers.PKI, kind captureKind) capture {
	const request = "GET / HTTP/1.0\r\n\r\n"
	cfg := &tls.Config{ServerName: testservers.ServerName, RootCAs: pki.Pool, ClientSessionCache: newRecordingCache()}
	switch kind {
	case full12, resumed12:
		cfg.MaxVersion, cfg.CipherSuites = tls.VersionTLS12, FinishableSuites12()
	default:
		cfg.MinVersion = tls.VersionTLS13
	}
	cp := clientHandshake(t, addr, cfg, request)
	if kind == resumed12 || kind == resumed13 {
		first := cp
		cp = clientHandshake(t, addr, cfg, request)
		if !cp.state.DidResume {
			t.Fatal("second connection not resumed")
		}
		if kind == resumed12 {
			// crypto/tls logs a TLS 1.2 master secret only when it makes
			// one: the resumed connection's is the full handshake's.
			cp.keyLog = append([]byte("# CLIENT_RANDOM of the full handshake whose session this resumes\n"), first.keyLog...)
		}
	}
	return cp
}
