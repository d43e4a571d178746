package testservers

import (
	"strconv"
	"testing"
)

// StartGnuTLS runs GnuTLS's test server, `gnutls-serv --http -a -p PORT
// --x509certfile --x509keyfile` followed by args (for example
// "--noticket", "--nodb", "--priority", "NORMAL:-VERS-TLS1.3"): an HTTP
// status page over implicit TLS, no client certificate requested. It keeps
// a session cache and issues tickets by default. gnutls-serv listens on
// every address and has no option to choose one, so it runs in a network
// namespace of its own (which needs root) and Server.Addr is a relay on
// 127.0.0.1 to it. It logs each connection to output.log.
func StartGnuTLS(t testing.TB, pki *PKI, args ...string) *Server {
	t.Helper()
	requireRoot(t, "gnutls-serv (in a network namespace)")
	bin := LookPath(t, "gnutls-serv")
	dir := t.TempDir()
	var relay *nsRelay
	spec := Spec{
		Name:  "gnutls-serv",
		Dir:   dir,
		Ready: []ReadyCheck{TLSReady(pki.Pool)},
		Started: func(pid int) {
			relay.pid.Store(int64(pid))
		},
	}
	argv := []string{bin, "--http", "-a", "-p", "PORT", "--x509certfile", pki.CertFile, "--x509keyfile", pki.KeyFile}
	argv = append(argv, args...)
	spec.Binary, argv = isolatedCommand(t, argv)
	spec.Config = func(port int) ([]string, string, error) {
		if relay == nil || relay.port != port {
			r, err := startRelay(t, port)
			if err != nil {
				return nil, "", err
			}
			relay = r
		}
		out := append([]string(nil), argv...)
		for i, a := range out {
			if a == "PORT" {
				out[i] = strconv.Itoa(port)
			}
		}
		return out, "", nil
	}
	return Start(t, spec)
}
