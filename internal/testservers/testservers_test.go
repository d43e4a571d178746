package testservers

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// starter starts one kind of server for the table-driven tests.
type starter struct {
	name     string
	binaries []string
	start    func(t *testing.T, pki *PKI) *Server
}

// starters is every Start function, in its plainest and its Debian-stock
// configuration.
func starters() []starter {
	return []starter{
		{"nginx", []string{"nginx"}, func(t *testing.T, p *PKI) *Server { return StartNginx(t, p, "") }},
		{"nginx debian", []string{"nginx"}, func(t *testing.T, p *PKI) *Server { return StartNginx(t, p, DebianNginxSSL) }},
		{"apache2", []string{"apache2"}, func(t *testing.T, p *PKI) *Server { return StartApache(t, p, "") }},
		{"apache2 debian", []string{"apache2"}, func(t *testing.T, p *PKI) *Server {
			return StartApacheConfig(t, p, ApacheConfig{Global: DebianApacheSSLConf})
		}},
		{"haproxy", []string{"haproxy"}, func(t *testing.T, p *PKI) *Server { return StartHAProxy(t, p, "") }},
		{"haproxy debian", []string{"haproxy"}, func(t *testing.T, p *PKI) *Server {
			return StartHAProxyConfig(t, p, HAProxyConfig{Global: DebianHAProxyGlobal})
		}},
		{"openssl", []string{"openssl"}, func(t *testing.T, p *PKI) *Server { return StartOpenSSL(t, p) }},
		{"openssl tls1_3", []string{"openssl"}, func(t *testing.T, p *PKI) *Server { return StartOpenSSL(t, p, "-tls1_3") }},
	}
}

// clientConfig trusts only the test CA (or CAs).
func clientConfig(pool *x509.CertPool) *tls.Config {
	return &tls.Config{RootCAs: pool, ServerName: ServerName}
}

// handshake dials addr and completes a TLS handshake with cfg.
func handshake(addr string, cfg *tls.Config) (*tls.Conn, error) {
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: cfg}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	tc := c.(*tls.Conn)
	// Bound the request that may follow; nothing here needs longer.
	if err := tc.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		tc.Close()
		return nil, err
	}
	return tc, nil
}

func TestStartServesTLS(t *testing.T) {
	for _, kt := range []struct {
		name string
		kt   KeyType
	}{{"ecdsa", ECDSAP256}, {"rsa", RSA2048}} {
		pki := NewPKIWithKey(t, kt.kt)
		for _, st := range starters() {
			t.Run(kt.name+"/"+st.name, func(t *testing.T) {
				t.Parallel()
				Require(t, st.binaries...)
				s := st.start(t, pki)
				if host, _, err := net.SplitHostPort(s.Addr); err != nil || host != "127.0.0.1" {
					t.Fatalf("Addr = %q, want 127.0.0.1:PORT", s.Addr)
				}
				c, err := handshake(s.Addr, clientConfig(pki.Pool))
				if err != nil {
					t.Fatalf("handshake with %s: %v\n%s", s.Addr, err, s.Logs())
				}
				defer c.Close()
				cs := c.ConnectionState()
				if len(cs.VerifiedChains) == 0 || !cs.PeerCertificates[0].Equal(pki.Cert) {
					t.Fatalf("server did not present the PKI's certificate")
				}
				// The server answers HTTP over the connection, so tests
				// may read post-handshake messages (TLS 1.3 tickets).
				fmt.Fprintf(c, "GET / HTTP/1.0\r\nHost: %s\r\n\r\n", ServerName)
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					t.Fatalf("reading HTTP response: %v\n%s", err, s.Logs())
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("GET / = %s, want 200\n%s", resp.Status, s.Logs())
				}
			})
		}
	}
}

func TestOpenSSLVersionFlags(t *testing.T) {
	Require(t, "openssl")
	pki := NewPKI(t)
	for _, tc := range []struct {
		flag     string
		accepted uint16 // the only version the server may complete
		refused  uint16
	}{
		{"-tls1_3", tls.VersionTLS13, tls.VersionTLS12},
		{"-tls1_2", tls.VersionTLS12, tls.VersionTLS13},
	} {
		t.Run(tc.flag, func(t *testing.T) {
			t.Parallel()
			s := StartOpenSSL(t, pki, tc.flag)
			only := func(v uint16) *tls.Config {
				cfg := clientConfig(pki.Pool)
				cfg.MinVersion, cfg.MaxVersion = v, v
				return cfg
			}
			c, err := handshake(s.Addr, only(tc.refused))
			if err == nil {
				c.Close()
				t.Fatalf("%s accepted a %s-only client", tc.flag, tls.VersionName(tc.refused))
			}
			c, err = handshake(s.Addr, only(tc.accepted))
			if err != nil {
				t.Fatalf("%s refused a %s client: %v\n%s", tc.flag, tls.VersionName(tc.accepted), err, s.Logs())
			}
			defer c.Close()
			if v := c.ConnectionState().Version; v != tc.accepted {
				t.Fatalf("negotiated %s, want %s", tls.VersionName(v), tls.VersionName(tc.accepted))
			}
		})
	}
}

// ticketRecorder is a ClientSessionCache that keeps the raw tickets it is
// given and never offers one back, so every handshake is a full one.
type ticketRecorder struct {
	mu      sync.Mutex
	tickets [][]byte
}

func (r *ticketRecorder) Get(string) (*tls.ClientSessionState, bool) { return nil, false }

func (r *ticketRecorder) Put(_ string, cs *tls.ClientSessionState) {
	if cs == nil {
		return
	}
	ticket, _, err := cs.ResumptionState()
	if err != nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tickets = append(r.tickets, bytes.Clone(ticket))
}

// ticketKeyName does a full TLS 1.2 handshake with addr and returns the
// first 16 bytes of the ticket it got: the key name OpenSSL puts there.
func ticketKeyName(t *testing.T, s *Server, pool *x509.CertPool) []byte {
	t.Helper()
	rec := &ticketRecorder{}
	cfg := clientConfig(pool)
	cfg.MaxVersion = tls.VersionTLS12
	cfg.ClientSessionCache = rec
	c, err := handshake(s.Addr, cfg)
	if err != nil {
		t.Fatalf("TLS 1.2 handshake with %s: %v\n%s", s.Name, err, s.Logs())
	}
	c.Close()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.tickets) != 1 || len(rec.tickets[0]) < 16 {
		t.Fatalf("%s issued tickets %x, want one of at least 16 bytes", s.Name, rec.tickets)
	}
	return rec.tickets[0][:16]
}

// TestReloadRenewsWorkersAndTicketKey checks that Reload returns only once
// new workers serve: without a key file the ticket key, made per SSL
// context, is new after it, while it is the same across handshakes before.
func TestReloadRenewsWorkersAndTicketKey(t *testing.T) {
	pki := NewPKI(t)
	for _, tc := range []struct {
		name   string
		binary string
		start  func(t *testing.T) *Server
	}{
		{"nginx", "nginx", func(t *testing.T) *Server { return StartNginx(t, pki, "") }},
		{"apache2", "apache2", func(t *testing.T) *Server { return StartApache(t, pki, "SSLSessionTickets on") }},
		{"haproxy", "haproxy", func(t *testing.T) *Server { return StartHAProxy(t, pki, "") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			Require(t, tc.binary)
			s := tc.start(t)
			master := s.PID
			before := s.Workers()
			if len(before) == 0 {
				t.Fatalf("master %d has no workers", master)
			}
			key := ticketKeyName(t, s, pki.Pool)
			if again := ticketKeyName(t, s, pki.Pool); !bytes.Equal(again, key) {
				t.Fatalf("key name changed without a reload: %x then %x", key, again)
			}

			s.Reload(t)

			if s.PID != master {
				t.Errorf("master PID changed from %d to %d", master, s.PID)
			}
			after := s.Workers()
			if !slices.ContainsFunc(after, func(pid int) bool { return !slices.Contains(before, pid) }) {
				t.Errorf("workers %v after reload, all already there before (%v)", after, before)
			}
			if newKey := ticketKeyName(t, s, pki.Pool); bytes.Equal(newKey, key) {
				t.Errorf("ticket key name %x unchanged by the reload", key)
			}
		})
	}
}

func TestOpenSSLCannotReloadButRestarts(t *testing.T) {
	Require(t, "openssl")
	pki := NewPKI(t)
	s := StartOpenSSL(t, pki)
	addr, pid := s.Addr, s.PID
	key := ticketKeyName(t, s, pki.Pool)

	s.Restart(t)

	if s.Addr != addr {
		t.Errorf("Restart moved the server from %s to %s", addr, s.Addr)
	}
	if s.PID == pid {
		t.Errorf("Restart kept PID %d", pid)
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil && alive(procStat{pid: pid}) {
		t.Errorf("old s_server %d still runs", pid)
	}
	if newKey := ticketKeyName(t, s, pki.Pool); bytes.Equal(newKey, key) {
		t.Errorf("ticket key name %x unchanged by a restart", key)
	}
}

// TestStopLeavesNoProcess runs its cases one after the other: a parallel
// case could be given the port a stopped server freed, and then the check
// that nothing accepts there any more would see the wrong server.
func TestStopLeavesNoProcess(t *testing.T) {
	pki := NewPKI(t)
	for _, st := range starters() {
		t.Run(st.name, func(t *testing.T) {
			Require(t, st.binaries...)
			s := st.start(t, pki)
			fam := family(s.PID)
			if len(fam) == 0 {
				t.Fatalf("no process found for master %d", s.PID)
			}
			s.Stop()
			s.Stop() // idempotent
			for _, p := range fam {
				if alive(p) {
					t.Errorf("pid %d (%s) survived Stop", p.pid, cmdline(p.pid))
				}
			}
			if c, err := net.DialTimeout("tcp", s.Addr, time.Second); err == nil {
				c.Close()
				t.Errorf("%s still accepts connections after Stop", s.Addr)
			}
		})
	}
}

func TestHAProxyTCPRoundRobin(t *testing.T) {
	Require(t, "haproxy", "nginx")
	pkis := []*PKI{NewPKI(t), NewPKI(t)}
	pool := x509.NewCertPool()
	var backends []string
	for _, p := range pkis {
		pool.AppendCertsFromPEM(mustRead(t, p.CAFile))
		backends = append(backends, StartNginx(t, p, "").Addr)
	}
	lb := StartHAProxyTCP(t, backends...)
	seen := map[int]bool{}
	// Round robin over two backends alternates. The readiness connect,
	// closed at once, may still make HAProxy pick a backend in between
	// two of these handshakes, but only once: three reach both.
	for range 3 {
		c, err := handshake(lb.Addr, clientConfig(pool))
		if err != nil {
			t.Fatalf("handshake through %s: %v\n%s", lb.Addr, err, lb.Logs())
		}
		leaf := c.ConnectionState().PeerCertificates[0]
		c.Close()
		for i, p := range pkis {
			if leaf.Equal(p.Cert) {
				seen[i] = true
			}
		}
	}
	if len(seen) != 2 {
		t.Errorf("two connections reached backends %v, want both", seen)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPKI(t *testing.T) {
	for _, tc := range []struct {
		name string
		kt   KeyType
	}{{"ecdsa", ECDSAP256}, {"rsa", RSA2048}} {
		t.Run(tc.name, func(t *testing.T) {
			p := NewPKIWithKey(t, tc.kt)
			for _, name := range []string{"localhost", "127.0.0.1", "::1"} {
				if _, err := p.Cert.Verify(x509.VerifyOptions{DNSName: name, Roots: p.Pool}); err != nil {
					t.Errorf("certificate does not verify for %s: %v", name, err)
				}
			}
			if _, err := p.Cert.Verify(x509.VerifyOptions{DNSName: "example.com", Roots: p.Pool}); err == nil {
				t.Errorf("certificate verifies for example.com")
			}
			// The chain file alone must hold a matching pair, as
			// HAProxy's crt reads it; and so must the separate files.
			chain := mustRead(t, p.ChainFile)
			for _, pair := range [][2][]byte{{chain, chain}, {mustRead(t, p.CertFile), mustRead(t, p.KeyFile)}} {
				kp, err := tls.X509KeyPair(pair[0], pair[1])
				if err != nil {
					t.Fatalf("key pair: %v", err)
				}
				if !bytes.Equal(kp.Certificate[0], p.Cert.Raw) {
					t.Errorf("key pair holds another certificate")
				}
			}
		})
	}
}

// NewPKIExpired's server certificate expired a day ago, and is signed by
// its CA.
func TestPKIExpired(t *testing.T) {
	p := NewPKIExpired(t)
	var invalid x509.CertificateInvalidError
	if _, err := p.Cert.Verify(x509.VerifyOptions{DNSName: ServerName, Roots: p.Pool}); !errors.As(err, &invalid) || invalid.Reason != x509.Expired {
		t.Errorf("verifying now: %v, want an expired certificate", err)
	}
	if age := time.Since(p.Cert.NotAfter); age < 23*time.Hour {
		t.Errorf("NotAfter %s is not a day past", p.Cert.NotAfter)
	}
	if err := p.Cert.CheckSignatureFrom(mustParseCA(t, p)); err != nil {
		t.Errorf("not signed by the CA: %v", err)
	}
}

func TestFreePortIsLoopbackAndFree(t *testing.T) {
	port := FreePort(t)
	l, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatalf("port %d from FreePort cannot be bound: %v", port, err)
	}
	l.Close()
}

// requireHelperEnv makes the test binary, run again by TestRequire, call
// Require for a binary that does not exist and report what Require did.
const requireHelperEnv = "TESTSERVERS_REQUIRE_HELPER"

func TestRequireHelper(t *testing.T) {
	if os.Getenv(requireHelperEnv) == "" {
		t.Skip("run by TestRequire")
	}
	Require(t, "sh", "no-such-server-binary-testservers")
	t.Log("Require returned")
}

func TestRequire(t *testing.T) {
	for _, tc := range []struct {
		ci       string
		wantFail bool
		want     string
	}{
		{"true", true, "--- FAIL: TestRequireHelper"},
		{"", false, "--- SKIP: TestRequireHelper"},
		{"false", false, "--- SKIP: TestRequireHelper"},
	} {
		t.Run("CI="+tc.ci, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestRequireHelper$", "-test.v")
			cmd.Env = append(os.Environ(), requireHelperEnv+"=1", "CI="+tc.ci)
			out, err := cmd.CombinedOutput()
			var exitErr *exec.ExitError
			if failed := errors.As(err, &exitErr); failed != tc.wantFail || (err != nil && !failed) {
				t.Errorf("exit: %v, want failure %v\n%s", err, tc.wantFail, out)
			}
			if !strings.Contains(string(out), tc.want) || !strings.Contains(string(out), "no-such-server-binary-testservers") {
				t.Errorf("output lacks %q and the missing binary's name:\n%s", tc.want, out)
			}
			if strings.Contains(string(out), "Require returned") {
				t.Errorf("Require returned despite a missing binary:\n%s", out)
			}
		})
	}
}

// TestPortTakenIsRecognised checks the words each server uses when its port
// is taken, on which start's retry with another port depends: it restarts
// a stopped server while a listener holds its port.
func TestPortTakenIsRecognised(t *testing.T) {
	pki := NewPKI(t)
	for _, st := range starters() {
		t.Run(st.name, func(t *testing.T) {
			// Parallel: the servers take seconds to give up binding.
			t.Parallel()
			Require(t, st.binaries...)
			s := st.start(t, pki)
			s.Stop()
			l, err := net.Listen("tcp4", s.Addr)
			if err != nil {
				t.Skipf("port of the stopped server was taken meanwhile: %v", err)
			}
			defer l.Close()
			err = s.launch(s.Port)
			if err == nil {
				t.Fatalf("started on %s although a listener holds it\n%s", s.Addr, s.Logs())
			}
			if !s.proc.hasExited() || !portTaken(s.Logs()) {
				t.Errorf("failure to bind not recognised (exited %v): %v\n%s", s.proc.hasExited(), err, s.Logs())
			}
		})
	}
}

// orphanHelperEnv makes the test binary, run again by
// TestServersDieWithTheTestBinary, start servers, print their PIDs and wait
// to be killed.
const orphanHelperEnv = "TESTSERVERS_ORPHAN_HELPER"

func TestOrphanHelper(t *testing.T) {
	if os.Getenv(orphanHelperEnv) == "" {
		t.Skip("run by TestServersDieWithTheTestBinary")
	}
	pki := NewPKI(t)
	for _, s := range []*Server{StartOpenSSL(t, pki), StartNginx(t, pki, "")} {
		for _, p := range family(s.PID) {
			fmt.Printf("pid %d %d\n", p.pid, p.start)
		}
	}
	fmt.Println("ready")
	time.Sleep(time.Minute) // killed long before
}

// TestServersDieWithTheTestBinary kills a test binary that runs servers with
// SIGKILL, so that no cleanup runs, and checks the servers go too.
func TestServersDieWithTheTestBinary(t *testing.T) {
	Require(t, "openssl", "nginx")
	cmd := exec.Command(os.Args[0], "-test.run=^TestOrphanHelper$")
	cmd.Env = append(os.Environ(), orphanHelperEnv+"=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var procs []procStat
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && sc.Text() != "ready" {
		var p procStat
		if _, err := fmt.Sscanf(sc.Text(), "pid %d %d", &p.pid, &p.start); err == nil {
			procs = append(procs, p)
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if len(procs) < 3 { // s_server; nginx master and worker
		t.Fatalf("helper reported processes %v, want s_server, nginx master and worker", procs)
	}
	var left []int
	for range readyPolls {
		left = left[:0]
		for _, p := range procs {
			if alive(p) {
				left = append(left, p.pid)
			}
		}
		if len(left) == 0 {
			return
		}
		time.Sleep(pollInterval)
	}
	// Do not leave them running: they were started by this test's helper.
	for _, pid := range left {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	t.Errorf("servers %v outlived the test binary that started them", left)
}

// Require's hint names packages that exist, and that scripts/test.sh
// installs (but for util-linux, which Debian always has, and the Go
// toolchain, which runs the tests).
func TestDebianPackage(t *testing.T) {
	script, err := os.ReadFile("../../scripts/test.sh")
	if err != nil {
		t.Fatal(err)
	}
	_, list, ok := strings.Cut(string(script), "\npackages=(")
	list, _, _ = strings.Cut(list, ")")
	if !ok {
		t.Fatal("scripts/test.sh has no packages=(...) list")
	}
	installed := strings.Fields(list)
	for _, tc := range []struct{ binary, want string }{
		{"nginx", "nginx"}, {"apache2", "apache2"}, {"haproxy", "haproxy"}, {"openssl", "openssl"},
		{"gnutls-serv", "gnutls-bin"}, {"ip", "iproute2"},
		{"postfix", "postfix"}, {"dovecot", "dovecot-imapd dovecot-pop3d"}, {"vsftpd", "vsftpd"},
		{"postgres", "postgresql"}, {"initdb", "postgresql"}, {"slapd", "slapd"}, {"prosody", "prosody"},
		{"promtool", "prometheus"}, {"prometheus", "prometheus"},
		{"amtool", "prometheus-alertmanager"}, {"prometheus-alertmanager", "prometheus-alertmanager"},
		{"jsonnet", "jsonnet"}, {"chromium", "chromium"},
		{"setpriv", "util-linux"}, {"unshare", "util-linux"}, {"go", "golang-go"},
	} {
		got := debianPackage(tc.binary)
		if got != tc.want {
			t.Errorf("debianPackage(%q) = %q, want %q", tc.binary, got, tc.want)
		}
		for _, p := range strings.Fields(got) {
			if p != "util-linux" && p != "golang-go" && !slices.Contains(installed, p) {
				t.Errorf("%s: scripts/test.sh does not install %s", tc.binary, p)
			}
		}
	}
}

func mustParseCA(t *testing.T, p *PKI) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(mustRead(t, p.CAFile))
	if block == nil {
		t.Fatalf("%s holds no PEM block", p.CAFile)
	}
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}
