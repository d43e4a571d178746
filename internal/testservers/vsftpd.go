package testservers

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/resumption-exporter/resumption_exporter/probe/starttls"
)

// StartVsftpd runs `vsftpd vsftpd.conf` in the foreground (background=NO)
// on 127.0.0.1:PORT with ssl_enable=YES: plaintext control connections that
// may switch with AUTH TLS. It keeps Debian's vsftpd.conf choices that
// matter here (local users, no anonymous login, PAM service vsftpd) and logs
// every FTP command and reply to vsftpd.log. conf is appended (vsftpd takes
// the last value of an option). vsftpd's own default ssl_ciphers is
// DES-CBC3-SHA, which no TLS 1.2 client of today offers; pass
// "ssl_ciphers=HIGH" for TLS 1.2. Must run as root.
func StartVsftpd(t testing.TB, pki *PKI, conf string) *Server {
	t.Helper()
	requireRoot(t, "vsftpd")
	bin := LookPath(t, "vsftpd")
	dir := serviceDir(t, "vsftpd")
	spec := Spec{
		Name:   "vsftpd",
		Binary: bin,
		Dir:    dir,
		Ready:  []ReadyCheck{StartTLSReady(starttls.FTP, pki.Pool)},
		Logs:   []string{"vsftpd.log"},
		Config: func(port int) ([]string, string, error) {
			cert, key, err := copyKeyPair(pki, dir, 0, 0)
			if err != nil {
				return nil, "", err
			}
			empty := filepath.Join(dir, "empty")
			if err := os.MkdirAll(empty, 0o755); err != nil {
				return nil, "", err
			}
			cfg := fmt.Sprintf(`listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port=%[1]d
background=NO
anonymous_enable=NO
local_enable=YES
pam_service_name=vsftpd
secure_chroot_dir=%[2]s
ssl_enable=YES
rsa_cert_file=%[3]s
rsa_private_key_file=%[4]s
vsftpd_log_file=%[5]s/vsftpd.log
xferlog_enable=YES
xferlog_std_format=NO
log_ftp_protocol=YES
%[6]s
`, port, empty, cert, key, dir, conf)
			file := filepath.Join(dir, "vsftpd.conf")
			if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
				return nil, "", err
			}
			return []string{file}, file, nil
		},
	}
	return Start(t, spec)
}
