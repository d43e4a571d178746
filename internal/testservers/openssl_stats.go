package testservers

import (
	"crypto/tls"
	"io"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// OpenSSL s_server -www's counters (SSL_CTX_sess_accept, _accept_good,
// _hits), as its status page names them.
const (
	OpenSSLAccepts  = "server accepts (SSL_accept())"
	OpenSSLFinished = "server accepts that finished"
	OpenSSLHits     = "session cache hits"
)

var statLine = regexp.MustCompile(`(?m)^\s*(\d+) ([a-z].*?)\s*$`)

// OpenSSLStats fetches the status page of an s_server started by
// StartOpenSSL (-www) and returns its counters by name. The fetch is a
// connection of its own: one more accept that finished, a full handshake.
func OpenSSLStats(t testing.TB, addr string, pki *PKI) map[string]int {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pki.Pool, ServerName: ServerName})
	if err != nil {
		t.Fatalf("testservers: fetching s_server's status page from %s: %v", addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.0\r\n\r\n"); err != nil {
		t.Fatalf("testservers: asking %s for s_server's status page: %v", addr, err)
	}
	page, _ := io.ReadAll(io.LimitReader(c, 1<<20))
	stats := map[string]int{}
	for _, m := range statLine.FindAllStringSubmatch(string(page), -1) {
		stats[m[2]], _ = strconv.Atoi(m[1])
	}
	if _, ok := stats[OpenSSLFinished]; !ok {
		t.Fatalf("testservers: no counters in s_server's status page from %s:\n%s", addr, page)
	}
	return stats
}
