package testservers

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/resumption-exporter/resumption_exporter/probe/starttls"
)

// StartSlapd runs OpenLDAP's `slapd -d stats -h ldap://127.0.0.1:PORT/ -f
// slapd.conf` in the foreground (-d keeps it there) with a minimal
// slapd.conf: no database, only TLSCertificateFile and
// TLSCertificateKeyFile, so that it answers the StartTLS extended
// operation. conf is appended. Debian builds slapd with GnuTLS. The stats
// log level records every connection and operation, in output.log.
func StartSlapd(t testing.TB, pki *PKI, conf string) *Server {
	t.Helper()
	bin := LookPath(t, "slapd")
	dir := t.TempDir()
	spec := Spec{
		Name:   "slapd",
		Binary: bin,
		Dir:    dir,
		Ready:  []ReadyCheck{StartTLSReady(starttls.LDAP, pki.Pool)},
		Config: func(port int) ([]string, string, error) {
			cfg := fmt.Sprintf(`pidfile %[1]s/slapd.pid
argsfile %[1]s/slapd.args
TLSCertificateFile %[2]s
TLSCertificateKeyFile %[3]s
%[4]s
`, dir, pki.CertFile, pki.KeyFile, conf)
			file := filepath.Join(dir, "slapd.conf")
			if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
				return nil, "", err
			}
			return []string{"-d", "stats", "-h", fmt.Sprintf("ldap://127.0.0.1:%d/", port), "-f", file}, file, nil
		},
	}
	return Start(t, spec)
}
