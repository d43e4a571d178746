package testservers

import (
	"strconv"
	"testing"
)

// StartOpenSSL runs `openssl s_server -accept 127.0.0.1:PORT -cert -key -www`
// followed by args, for example "-no_ticket", "-num_tickets", "0",
// "-tls1_2", "-tls1_3", "-early_data". With -www it answers each HTTP
// request with a status page and closes; it never reads stdin, which is
// /dev/null. s_server handles one connection at a time until it is
// stopped, so a client that holds a connection open stalls the others.
// Do not pass -naccept: the readiness handshake would use up a connection.
// It has no workers and cannot reload; Restart gives it fresh keys.
func StartOpenSSL(t testing.TB, pki *PKI, args ...string) *Server {
	t.Helper()
	bin := LookPath(t, "openssl")
	return Start(t, Spec{
		Name:   "openssl s_server",
		Binary: bin,
		Ready:  []ReadyCheck{TLSReady(pki.Pool)},
		Config: func(port int) ([]string, string, error) {
			argv := []string{"s_server",
				"-accept", "127.0.0.1:" + strconv.Itoa(port),
				"-cert", pki.CertFile,
				"-key", pki.KeyFile,
				"-www",
			}
			return append(argv, args...), "", nil
		},
	})
}
