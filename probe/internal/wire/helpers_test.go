package wire

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
)

// hangBound bounds every network wait in these tests. It is not a speed
// assertion: loopback handshakes take milliseconds.
const hangBound = 10 * time.Second

// tapConn copies every byte read from the connection, which is everything
// the server sent, and every byte written, the client's side.
type tapConn struct {
	net.Conn
	mu   sync.Mutex
	got  bytes.Buffer
	sent bytes.Buffer
}

func (c *tapConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.sent.Write(p)
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *tapConn) written() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.sent.Bytes())
}

func (c *tapConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.got.Write(p[:n])
	c.mu.Unlock()
	return n, err
}

func (c *tapConn) captured() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.got.Bytes())
}

// recordingCache is a real LRU session cache that also keeps the raw ticket
// of every session crypto/tls stores, in order.
type recordingCache struct {
	tls.ClientSessionCache
	mu      sync.Mutex
	tickets [][]byte
}

func newRecordingCache() *recordingCache {
	return &recordingCache{ClientSessionCache: tls.NewLRUClientSessionCache(16)}
}

func (c *recordingCache) Put(key string, cs *tls.ClientSessionState) {
	if cs != nil {
		if ticket, _, err := cs.ResumptionState(); err == nil {
			c.mu.Lock()
			c.tickets = append(c.tickets, bytes.Clone(ticket))
			c.mu.Unlock()
		}
	}
	c.ClientSessionCache.Put(key, cs)
}

func (c *recordingCache) Tickets() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]byte(nil), c.tickets...)
}

// capture is one real handshake seen from the client.
type capture struct {
	server []byte // everything the server sent
	client []byte // everything the client sent
	keyLog []byte
	state  tls.ConnectionState
	// newTickets are the tickets the client cache received on this
	// connection.
	newTickets [][]byte
}

// goServer starts a crypto/tls server on 127.0.0.1 that completes
// handshakes, sends a greeting (so the client's Read returns after the
// TLS 1.3 tickets, which the server sends before it) and waits for the
// client to close. It returns the address.
func goServer(t testing.TB, cfg *tls.Config) string {
	t.Helper()
	return testservers.ServeTCP(t, func(c net.Conn) {
		tc := tls.Server(c, cfg)
		defer tc.Close()
		tc.SetDeadline(time.Now().Add(hangBound))
		if err := tc.Handshake(); err != nil {
			return
		}
		io.WriteString(tc, "hello\n")
		io.Copy(io.Discard, tc)
	})
}

// clientHandshake runs a crypto/tls client against addr with cfg (which
// it copies and fills with a key log writer), sends request if not empty,
// and reads until the server's first application byte, which servers send
// after their TLS 1.3 tickets. With request "", against a server that
// sends nothing unasked, use clientHandshakeTickets.
func clientHandshake(t testing.TB, addr string, cfg *tls.Config, request string) capture {
	return clientHandshakeTickets(t, addr, cfg, request, -1)
}

// clientHandshakeTickets is clientHandshake that, when wantTickets >= 0,
// instead of waiting for application data reads until the client cache
// stored wantTickets tickets (crypto/tls processes TLS 1.3 tickets only
// inside Read).
func clientHandshakeTickets(t testing.TB, addr string, cfg *tls.Config, request string, wantTickets int) capture {
	t.Helper()
	raw, err := net.DialTimeout("tcp", addr, hangBound)
	if err != nil {
		t.Fatal(err)
	}
	tap := &tapConn{Conn: raw}
	var keyLog bytes.Buffer
	cfg = cfg.Clone()
	cfg.KeyLogWriter = &keyLog
	var before int
	cache, _ := cfg.ClientSessionCache.(*recordingCache)
	if cache != nil {
		before = len(cache.Tickets())
	}
	c := tls.Client(tap, cfg)
	defer c.Close()
	c.SetDeadline(time.Now().Add(hangBound))
	if err := c.Handshake(); err != nil {
		t.Fatalf("handshake with %s: %v", addr, err)
	}
	if request != "" {
		if _, err := io.WriteString(c, request); err != nil {
			t.Fatal(err)
		}
	}
	if wantTickets < 0 {
		// The server answers after its tickets, so reading one byte of the
		// answer makes the client process every NewSessionTicket before it.
		if _, err := io.ReadAtLeast(c, make([]byte, 1), 1); err != nil {
			t.Fatalf("reading from %s after the handshake: %v", addr, err)
		}
	} else {
		deadline := time.Now().Add(hangBound)
		for len(cache.Tickets())-before < wantTickets {
			if time.Now().After(deadline) {
				t.Fatalf("%d tickets stored after %s, want %d", len(cache.Tickets())-before, hangBound, wantTickets)
			}
			c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			if _, err := c.Read(make([]byte, 1)); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("reading from %s after the handshake: %v", addr, err)
			}
		}
	}
	cp := capture{server: tap.captured(), client: tap.written(), keyLog: keyLog.Bytes(), state: c.ConnectionState()}
	if cache != nil {
		cp.newTickets = cache.Tickets()[before:]
	}
	return cp
}

// testCert returns a server certificate for localhost from a fresh
// testservers PKI.
func testCert(t testing.TB) tls.Certificate {
	t.Helper()
	return testservers.NewPKI(t).TLSCertificate(t)
}

// opensslServer starts `openssl s_server` with a fresh PKI and the extra
// arguments, and returns its address: with -www among them an HTTP status
// page server, else one that answers nothing (testservers.StartOpenSSLQuiet).
func opensslServer(t testing.TB, args ...string) string {
	t.Helper()
	testservers.Require(t, "openssl")
	pki := testservers.NewPKI(t)
	if i := slices.Index(args, "-www"); i >= 0 {
		return testservers.StartOpenSSL(t, pki, slices.Delete(slices.Clone(args), i, i+1)...).Addr
	}
	return testservers.StartOpenSSLQuiet(t, pki, args...).Addr
}

// sendHello writes a marshalled ClientHello12 to addr and reads until the
// server's answer up to its ChangeCipherSpec, an alert, or a closed
// connection, then closes the socket (never sending an alert).
func sendHello(t testing.TB, addr string, ch *ClientHello) (*Flight12, error) {
	t.Helper()
	msg, err := ch.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	msg = AppendRecords(nil, RecordHandshake, VersionTLS10, msg)
	c, err := net.DialTimeout("tcp", addr, hangBound)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(hangBound))
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	var got []byte
	buf := make([]byte, 4096)
	for {
		n, rerr := c.Read(buf)
		got = append(got, buf[:n]...)
		f, err := ParseFlight12(got)
		if err == nil && (f.SawChangeCipherSpec || f.Alert != nil || (f.SawCertificate && len(got) > 0 && serverHelloDone(got))) {
			return f, nil
		}
		if rerr != nil {
			return f, fmt.Errorf("read after %d bytes: %w (parse: %v)", len(got), rerr, err)
		}
	}
}

// serverHelloDone reports whether the captured TLS 1.2 stream holds a
// ServerHelloDone, the end of a full handshake's first server flight.
func serverHelloDone(stream []byte) bool {
	records, _, _ := parseRecords(stream)
	var hs handshakeReassembler
	for _, r := range records {
		if r.Type != RecordHandshake {
			continue
		}
		msgs, _ := hs.Add(r.Payload)
		for _, m := range msgs {
			if m.Type == typeServerHelloDone {
				return true
			}
		}
	}
	return false
}
