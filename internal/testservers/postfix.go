package testservers

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/resumption-exporter/resumption_exporter/probe/starttls"
)

// postfixDaemons is where Debian keeps Postfix's master and daemons.
const postfixDaemons = "/usr/lib/postfix/sbin"

// StartPostfix runs Postfix's master in the foreground with a private
// config_directory, queue_directory and data_directory, and an smtpd on
// 127.0.0.1:PORT offering STARTTLS (smtpd_tls_security_level = may), as
// Debian's main.cf.tls sets it up: no server-side session cache
// (smtpd_tls_session_cache_database unset), session-ticket keys from
// tlsmgr. mainCF is appended to main.cf (later lines win). Only the services
// an smtpd needs to greet, answer EHLO and STARTTLS run; no mail is ever
// delivered. Logs go to maillog in the server's directory. The system's
// Postfix (/etc/postfix, /var/spool/postfix) is never touched. Must run as
// root: the master drops to the postfix user for its daemons.
func StartPostfix(t testing.TB, pki *PKI, mainCF string) *Server {
	t.Helper()
	requireRoot(t, "Postfix")
	master := filepath.Join(postfixDaemons, "master")
	if _, err := os.Stat(master); err != nil {
		Require(t, "postfix") // fails or skips with the usual message
		t.Fatalf("testservers: %v", err)
	}
	postfix := LookPath(t, "postfix")
	pf, err := user.Lookup("postfix")
	if err != nil {
		t.Fatalf("testservers: the postfix user: %v", err)
	}
	uid, _ := strconv.Atoi(pf.Uid)
	dir := serviceDir(t, "postfix")
	spec := Spec{
		Name:   "postfix",
		Binary: master,
		Dir:    dir,
		Ready:  []ReadyCheck{StartTLSReady(starttls.SMTP, pki.Pool)},
		Setsid: true,
		Logs:   []string{"maillog"},
		Config: func(port int) ([]string, string, error) {
			conf := filepath.Join(dir, "conf")
			data := filepath.Join(dir, "data")
			for _, d := range []string{conf, data, filepath.Join(dir, "queue")} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					return nil, "", err
				}
			}
			if err := os.Chown(data, uid, -1); err != nil {
				return nil, "", err
			}
			cert, key, err := copyKeyPair(pki, dir, 0, 0)
			if err != nil {
				return nil, "", err
			}
			main := fmt.Sprintf(`compatibility_level = 3.6
queue_directory = %[1]s/queue
data_directory = %[1]s/data
maillog_file = %[1]s/maillog
maillog_file_prefixes = %[1]s
inet_interfaces = loopback-only
inet_protocols = ipv4
myhostname = localhost
mydestination =
local_recipient_maps =
alias_maps =
biff = no
smtpd_tls_cert_file = %[2]s
smtpd_tls_key_file = %[3]s
smtpd_tls_security_level = may
%[4]s
`, dir, cert, key, mainCF)
			// chroot off (column 5 "n"): a chroot would need copies of
			// /etc files inside the queue directory.
			masterCF := fmt.Sprintf(`127.0.0.1:%d inet n - n - - smtpd
tlsmgr    unix - - n 1000? 1 tlsmgr
anvil     unix - - n - 1 anvil
rewrite   unix - - n - - trivial-rewrite
cleanup   unix n - n - 0 cleanup
postlog   unix-dgram n - n - 1 postlogd
`, port)
			mainFile := filepath.Join(conf, "main.cf")
			if err := os.WriteFile(mainFile, []byte(main), 0o644); err != nil {
				return nil, "", err
			}
			if err := os.WriteFile(filepath.Join(conf, "master.cf"), []byte(masterCF), 0o644); err != nil {
				return nil, "", err
			}
			// `postfix check` creates the queue's subdirectories with the
			// owners and modes the daemons expect.
			if out, err := exec.Command(postfix, "-c", conf, "check").CombinedOutput(); err != nil {
				return nil, "", fmt.Errorf("postfix check: %v\n%s", err, out)
			}
			// -s: stay in the foreground with stdout and stderr kept, as
			// `postfix start-fg` runs it.
			return []string{"-c", conf, "-s"}, mainFile, nil
		},
	}
	return Start(t, spec)
}
