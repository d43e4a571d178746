package testservers

import (
	"fmt"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// StartOpenSSLQuiet runs `openssl s_server -accept 127.0.0.1:PORT -cert -key
// -quiet` followed by args: StartOpenSSL without -www, for the options
// -www excludes (-early_data). It completes handshakes, sends its tickets
// and then only reads, answering nothing. Like StartOpenSSL it serves one
// connection at a time.
//
// Without -www, s_server closes each connection once its stdin ends, so
// stdin is a FIFO opened for reading and writing: it never ends and never
// delivers a byte. A shell makes that redirection and execs openssl, which
// keeps the PID.
func StartOpenSSLQuiet(t testing.TB, pki *PKI, args ...string) *Server {
	t.Helper()
	bin := LookPath(t, "openssl")
	sh := LookPath(t, "sh")
	dir := t.TempDir()
	return Start(t, Spec{
		Name:   "openssl s_server",
		Binary: sh,
		Dir:    dir,
		Ready:  []ReadyCheck{TLSReady(pki.Pool)},
		Config: func(port int) ([]string, string, error) {
			fifo := filepath.Join(dir, "stdin")
			if err := syscall.Mkfifo(fifo, 0o600); err != nil && err != syscall.EEXIST {
				return nil, "", fmt.Errorf("stdin FIFO: %w", err)
			}
			argv := []string{"-c", `exec "$0" "$@" <>"` + fifo + `"`, bin, "s_server",
				"-accept", "127.0.0.1:" + strconv.Itoa(port),
				"-cert", pki.CertFile,
				"-key", pki.KeyFile,
				"-quiet",
			}
			return append(argv, args...), "", nil
		},
	})
}
