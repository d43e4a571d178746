package testservers

import (
	"net"
	"strconv"
	"testing"
)

// StartGnuTLS runs `gnutls-serv --http -p PORT` with the PKI's certificate,
// followed by args (for example "--priority", "NORMAL:-VERS-TLS1.3").
//
// gnutls-serv has no option to bind one address: it listens on every
// interface. Tests may only listen on loopback, so StartGnuTLS runs only
// in a network namespace whose interfaces are all loopback, e.g. under
// `unshare -n sh -c 'ip link set lo up && go test ...'`, and skips (fails
// with CI=true) elsewhere.
func StartGnuTLS(t testing.TB, pki *PKI, args ...string) *Server {
	t.Helper()
	bin := LookPath(t, "gnutls-serv")
	if !onlyLoopback() {
		msg := "gnutls-serv listens on every interface; run inside a private network namespace: unshare -n sh -c 'ip link set lo up && go test ...'"
		if inCI() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return Start(t, Spec{
		Name:   "gnutls-serv",
		Binary: bin,
		Dir:    t.TempDir(),
		Ready:  []ReadyCheck{TLSReady(pki.Pool)},
		Config: func(port int) ([]string, string, error) {
			argv := []string{"--http", "-p", strconv.Itoa(port),
				"--x509certfile", pki.CertFile, "--x509keyfile", pki.KeyFile}
			return append(argv, args...), "", nil
		},
	})
}

// onlyLoopback reports whether every network interface that is up is a
// loopback one.
func onlyLoopback() bool {
	ifs, err := net.Interfaces()
	if err != nil {
		return false
	}
	for _, i := range ifs {
		if i.Flags&net.FlagUp != 0 && i.Flags&net.FlagLoopback == 0 {
			return false
		}
	}
	return true
}
