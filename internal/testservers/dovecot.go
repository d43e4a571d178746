package testservers

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/resumption-exporter/resumption_exporter/probe/starttls"
)

// StartDovecot runs `dovecot -F -c dovecot.conf` serving one protocol,
// protocol "imap" or "pop3", in plaintext with STARTTLS on 127.0.0.1:PORT;
// its implicit-TLS listener (imaps, pop3s) is off. The configuration is
// Dovecot's defaults plus what it needs to start: private base_dir and
// state_dir, ssl = yes with the test certificate, and an empty passwd-file
// so that no login can succeed. Dovecot's default login service runs one
// process per connection (service_count = 1). conf is appended; a later
// `service imap-login { … }` section is merged into the earlier one, so
// for example "service imap-login {\n service_count = 0\n}" selects
// high-performance mode. Logs go to dovecot.log. Must run as root: the
// login processes drop to dovenull.
func StartDovecot(t testing.TB, pki *PKI, protocol, conf string) *Server {
	t.Helper()
	var p starttls.Protocol
	switch protocol {
	case "imap":
		p = starttls.IMAP
	case "pop3":
		p = starttls.POP3
	default:
		t.Fatalf("testservers: StartDovecot: protocol %q, want imap or pop3", protocol)
	}
	requireRoot(t, "Dovecot")
	bin := LookPath(t, "dovecot")
	dir := serviceDir(t, "dovecot")
	spec := Spec{
		Name:   "dovecot " + protocol,
		Binary: bin,
		Dir:    dir,
		Ready:  []ReadyCheck{StartTLSReady(p, pki.Pool)},
		Logs:   []string{"dovecot.log"},
		Config: func(port int) ([]string, string, error) {
			cert, key, err := copyKeyPair(pki, dir, 0, 0)
			if err != nil {
				return nil, "", err
			}
			passwd := filepath.Join(dir, "passwd")
			if err := os.WriteFile(passwd, nil, 0o644); err != nil {
				return nil, "", err
			}
			cfg := fmt.Sprintf(`base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = %[1]s/dovecot.log
protocols = %[2]s
listen = 127.0.0.1
ssl = yes
ssl_cert = <%[3]s
ssl_key = <%[4]s
passdb {
  driver = passwd-file
  args = %[5]s
}
userdb {
  driver = passwd-file
  args = %[5]s
}
service %[2]s-login {
  inet_listener %[2]s {
    address = 127.0.0.1
    port = %[6]d
  }
  inet_listener %[2]ss {
    port = 0
  }
}
%[7]s
`, dir, protocol, cert, key, passwd, port, conf)
			file := filepath.Join(dir, "dovecot.conf")
			if err := os.WriteFile(file, []byte(cfg), 0o644); err != nil {
				return nil, "", err
			}
			return []string{"-F", "-c", file}, file, nil
		},
	}
	return Start(t, spec)
}
