package testservers

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/resumption-exporter/resumption_exporter/probe/starttls"
)

// StartProsody runs the Prosody XMPP server in the foreground (`prosody
// --config prosody.cfg.lua -F`) with client-to-server STARTTLS on
// 127.0.0.1:PORT for the virtual host ServerName ("localhost"), the test
// certificate, c2s_require_encryption, and neither server-to-server, HTTP
// nor direct-TLS listeners. conf is appended to the global section. Its log
// (info level, one line per connection) is prosody.log. It runs as root
// (run_as_root = true), as the tests do.
func StartProsody(t testing.TB, pki *PKI, conf string) *Server {
	t.Helper()
	bin := LookPath(t, "prosody")
	dir := t.TempDir()
	spec := Spec{
		Name:   "prosody",
		Binary: bin,
		Dir:    dir,
		Ready:  []ReadyCheck{StartTLSReady(starttls.XMPP, pki.Pool)},
		Logs:   []string{"prosody.log"},
		Config: func(port int) ([]string, string, error) {
			for _, d := range []string{"data", "certs"} {
				if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
					return nil, "", err
				}
			}
			cfg := fmt.Sprintf(`run_as_root = true
daemonize = false
pidfile = %[1]q
data_path = %[2]q
certificates = %[9]q
log = { { levels = { min = "info" }, to = "file", filename = %[3]q } }
interfaces = { "127.0.0.1" }
c2s_ports = { %[4]d }
c2s_direct_tls_ports = {}
legacy_ssl_ports = {}
s2s_ports = {}
modules_enabled = { "tls", "saslauth", "disco" }
modules_disabled = { "s2s", "http", "admin_telnet", "posix" }
c2s_require_encryption = true
authentication = "internal_plain"
%[7]s
VirtualHost %[8]q
  ssl = { certificate = %[5]q, key = %[6]q }
`, filepath.Join(dir, "prosody.pid"), filepath.Join(dir, "data"), filepath.Join(dir, "prosody.log"),
				port, pki.CertFile, pki.KeyFile, conf, ServerName, filepath.Join(dir, "certs"))
			file := filepath.Join(dir, "prosody.cfg.lua")
			if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
				return nil, "", err
			}
			return []string{"--config", file, "-F"}, file, nil
		},
	}
	return Start(t, spec)
}
