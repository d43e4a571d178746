package testservers

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// DebianHAProxyGlobal is the TLS part of the global section of Debian
// bookworm's stock /etc/haproxy/haproxy.cfg (Mozilla's "intermediate"
// profile). Note no-tls-tickets: a stock HAProxy resumes by session ID only,
// from its own session cache (on by default). Pass it as HAProxyConfig.Global.
const DebianHAProxyGlobal = `ssl-default-bind-ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384
ssl-default-bind-ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256
ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets
`

// HAProxyConfig is what a test adds to the generated haproxy.cfg.
type HAProxyConfig struct {
	// Global goes in the global section: DebianHAProxyGlobal,
	// tune.ssl.lifetime, tune.ssl.cachesize, …
	Global string
	// Bind follows `bind 127.0.0.1:PORT ssl crt CHAIN` on the same line:
	// "no-tls-tickets", "tls-ticket-keys FILE", "ssl-min-ver TLSv1.3", …
	Bind string
	// Frontend goes in the frontend section after the bind line:
	// "http-request wait-for-handshake if ! METH_GET", …
	Frontend string
}

// StartHAProxy runs HAProxy terminating TLS on a free port of 127.0.0.1
// with the PKI's certificate; bindOptions are appended to the bind line.
// HTTP requests get a 200 from HAProxy itself; there is no backend server.
func StartHAProxy(t testing.TB, pki *PKI, bindOptions string) *Server {
	t.Helper()
	return StartHAProxyConfig(t, pki, HAProxyConfig{Bind: bindOptions})
}

// StartHAProxyConfig is StartHAProxy with global settings too.
func StartHAProxyConfig(t testing.TB, pki *PKI, cfg HAProxyConfig) *Server {
	t.Helper()
	return startHAProxy(t, pki, func(port int) string {
		return fmt.Sprintf(`global
%s
defaults
    mode http
    log global
    option httplog
    timeout connect 5s
    timeout client 30s
    timeout server 30s

frontend tls
    bind 127.0.0.1:%d ssl crt %s %s
%s    http-request return status 200 content-type text/plain string "ok"
`, indent(haproxyGlobal()+cfg.Global), port, pki.ChainFile, cfg.Bind, indent(cfg.Frontend))
	})
}

// StartHAProxyTCP runs HAProxy as a TCP load balancer in front of backends
// ("127.0.0.1:PORT", for example other Servers' Addr): mode tcp, balance
// roundrobin, no TLS termination, so each new connection's handshake is
// answered by the next backend in turn. Readiness is a TCP connect, since
// the backends' certificates are not HAProxy's business.
func StartHAProxyTCP(t testing.TB, backends ...string) *Server {
	t.Helper()
	return StartHAProxyTCPBalance(t, "roundrobin", backends...)
}

// StartHAProxyTCPBalance is StartHAProxyTCP with another `balance`
// algorithm: "roundrobin", "leastconn", "source" (every test connection
// comes from 127.0.0.1, so one backend answers them all), "random", …
func StartHAProxyTCPBalance(t testing.TB, balance string, backends ...string) *Server {
	t.Helper()
	if len(backends) == 0 {
		t.Fatal("testservers: StartHAProxyTCP needs at least one backend")
	}
	return startHAProxy(t, nil, func(port int) string {
		var b strings.Builder
		fmt.Fprintf(&b, `global
%s
defaults
    mode tcp
    log global
    option tcplog
    timeout connect 5s
    timeout client 30s
    timeout server 30s

listen balancer
    bind 127.0.0.1:%d
    balance %s
`, indent(haproxyGlobal()), port, balance)
		for i, addr := range backends {
			fmt.Fprintf(&b, "    server backend%d %s\n", i, addr)
		}
		return b.String()
	})
}

// haproxyGlobal is the global section every configuration starts with: logs
// on stderr (which Logs shows) instead of syslog.
func haproxyGlobal() string {
	return "log stderr format short local0 info\n"
}

// startHAProxy runs `haproxy -W -db -S SOCKET -f haproxy.cfg`: master-worker
// mode in the foreground, so that the master's PID stays put across reloads,
// with the master CLI on a unix socket.
//
// The worker serves before the master is ready for signals: a SIGUSR2 then
// is lost and a SIGTERM kills the master without its workers. The master CLI
// is only answered from the master's event loop, where signals are handled,
// so the server counts as ready once `show proc` there lists a worker.
func startHAProxy(t testing.TB, pki *PKI, config func(port int) string) *Server {
	t.Helper()
	bin := LookPath(t, "haproxy")
	dir := t.TempDir()
	// A unix socket path must fit in 108 bytes, which a directory named
	// after a long subtest need not; so the socket gets a short one.
	sockDir, err := os.MkdirTemp("", "haproxy-cli-")
	if err != nil {
		t.Fatalf("testservers: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	sock := filepath.Join(sockDir, "master.sock")
	serving := TCPReady()
	if pki != nil {
		serving = TLSReady(pki.Pool)
	}
	return Start(t, Spec{
		Name:   "haproxy",
		Binary: bin,
		Dir:    dir,
		Ready:  []ReadyCheck{serving, func(*Server) error { return haproxyMasterReady(sock) }},
		Reload: reloadHAProxy,
		Config: func(port int) ([]string, string, error) {
			conf := filepath.Join(dir, "haproxy.cfg")
			if err := os.WriteFile(conf, []byte(config(port)), 0o644); err != nil {
				return nil, "", err
			}
			return []string{"-W", "-db", "-S", sock, "-f", conf}, conf, nil
		},
	})
}

// haproxyMasterReady asks the master CLI for its processes and checks that
// the answer lists a worker.
func haproxyMasterReady(sock string) error {
	c, err := net.DialTimeout("unix", sock, probeTimeout)
	if err != nil {
		return fmt.Errorf("master CLI: %w", err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(probeTimeout)); err != nil {
		return err
	}
	if _, err := io.WriteString(c, "show proc\n"); err != nil {
		return fmt.Errorf("master CLI: %w", err)
	}
	// HAProxy 2.6 keeps the connection open after answering, so read lines
	// until one names a worker ("PID worker RELOADS UPTIME VERSION").
	sc := bufio.NewScanner(io.LimitReader(c, 64<<10))
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if f := strings.Fields(sc.Text()); len(f) > 1 && f[1] == "worker" {
			return nil
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("master CLI: reading the process list: %w (read so far: %q)", err, lines)
	}
	return fmt.Errorf("master CLI lists no worker: %q", lines)
}

// reloadHAProxy sends SIGUSR2 to the master, which re-executes itself with
// the configuration, starts a new worker and soft-stops the old one (it
// stops listening and exits once its connections are done). The wait ends
// when the old worker has exited and the re-executed master answers its
// CLI. A new worker means new SSL contexts: a new random ticket key unless
// tls-ticket-keys names a file.
func reloadHAProxy(t testing.TB, s *Server) {
	t.Helper()
	reloadBySignal(t, s, syscall.SIGUSR2, nil)
}
