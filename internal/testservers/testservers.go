// Package testservers starts the real programs the tests run against, on
// 127.0.0.1: Debian's TLS servers — nginx, Apache, HAProxy, openssl
// s_server and gnutls-serv, and the STARTTLS servers Postfix, Dovecot,
// vsftpd, PostgreSQL, slapd and Prosody — each in its own temporary
// directory with its own throwaway certificate (PKI), and the exporter
// itself (built once per test binary), Prometheus and Alertmanager. One
// launcher (Spec, Start) starts them all, waits until they serve, keeps
// their logs and stops them (workers included) by PID when the test ends; a
// starter for another server is a Spec.
//
// A test asks for the programs it needs with Require (or LookPath), starts a
// server and uses Server.Addr. TLS servers are ready when their Start
// returns: a crypto/tls client has completed a handshake with them (after
// the STARTTLS preamble, for the servers that need one), verifying the
// certificate against PKI.Pool; a STARTTLS server configured to refuse is
// ready once it has answered the preamble. Every failure message carries
// the server's own logs.
//
// Nothing here binds anything but 127.0.0.1.
package testservers

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// lookPath finds an executable in $PATH or, failing that, in the sbin
// directories: Debian installs nginx, apache2 and haproxy in /usr/sbin, which
// an unprivileged user's $PATH often lacks.
func lookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/local/sbin", "/usr/sbin", "/sbin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", &exec.Error{Name: name, Err: exec.ErrNotFound}
}

// inCI reports whether missing servers are errors rather than reasons to
// skip: CI promises to have installed them.
func inCI() bool { return os.Getenv("CI") == "true" }

// Require checks that every named program is installed. A missing one fails
// the test when the environment has CI=true (CI must run everything) and
// skips it otherwise.
func Require(t testing.TB, binaries ...string) {
	t.Helper()
	var missing []string
	for _, b := range binaries {
		if _, err := lookPath(b); err != nil {
			missing = append(missing, fmt.Sprintf("%s (Debian package %s)", b, debianPackage(b)))
		}
	}
	if len(missing) == 0 {
		return
	}
	if inCI() {
		t.Fatalf("testservers: %s not installed, and CI=true requires every program (scripts/test.sh installs them as root)", strings.Join(missing, ", "))
	}
	t.Skipf("testservers: %s not installed (scripts/test.sh installs them when run as root)", strings.Join(missing, ", "))
}

// debianPackage names the package(s) that install a program the tests use,
// as apt-get takes them, for Require's message.
func debianPackage(binary string) string {
	switch binary {
	case "promtool":
		return "prometheus"
	case "amtool":
		return "prometheus-alertmanager"
	case "go":
		return "golang-go"
	case "gnutls-serv":
		return "gnutls-bin"
	case "dovecot": // the tests serve both IMAP and POP3
		return "dovecot-imapd dovecot-pop3d"
	case "postgres", "initdb":
		return "postgresql"
	case "ip":
		return "iproute2"
	case "setpriv", "unshare":
		return "util-linux"
	default: // nginx, apache2, haproxy, openssl, postfix, vsftpd, slapd, prosody, …
		return binary
	}
}

// LookPath is Require for one program, returning its path.
func LookPath(t testing.TB, name string) string {
	t.Helper()
	Require(t, name)
	p, err := lookPath(name)
	if err != nil {
		t.Fatalf("testservers: %s", err) // unreachable after Require
	}
	return p
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago: it
// listens on port 0 and closes the listener. Another process may take the
// port before the server binds it; the Start functions notice "address in
// use" and retry with a new port.
func FreePort(t testing.TB) int {
	t.Helper()
	p, err := freePort()
	if err != nil {
		t.Fatalf("testservers: finding a free port on 127.0.0.1: %v", err)
	}
	return p
}

func freePort() (int, error) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	addr, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		return 0, errors.New("listener address is not TCP")
	}
	return addr.Port, nil
}

// isRoot reports whether servers start as root and so must be told which
// user their workers run as.
func isRoot() bool { return os.Geteuid() == 0 }

// requireRoot is Require for servers that only start as root (they drop to
// users of their own, or need a network namespace): it fails the test under
// CI=true and skips it otherwise.
func requireRoot(t testing.TB, server string) {
	t.Helper()
	if isRoot() {
		return
	}
	if inCI() {
		t.Fatalf("testservers: %s must be started as root, and CI=true requires every server", server)
	}
	t.Skipf("testservers: %s must be started as root", server)
}
