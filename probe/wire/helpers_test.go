package wire

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// hangBound bounds every network wait in these tests. It is not a speed
// assertion: loopback handshakes take milliseconds.
const hangBound = 10 * time.Second

// testCert returns a self-signed ECDSA certificate for localhost and
// 127.0.0.1, and writes it and its key as PEM files into dir if dir != "".
func testCert(t testing.TB, dir string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	if dir != "" {
		if err := os.WriteFile(filepath.Join(dir, "cert.pem"), certPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "key.pem"), keyPEM, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// tapConn copies every byte read from the connection, which is everything
// the server sent.
type tapConn struct {
	net.Conn
	mu  sync.Mutex
	got bytes.Buffer
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
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(hangBound))
				if err := c.(*tls.Conn).Handshake(); err != nil {
					return
				}
				io.WriteString(c, "hello\n")
				io.Copy(io.Discard, c)
			})
		}
	})
	return ln.Addr().String()
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
	cp := capture{server: tap.captured(), keyLog: keyLog.Bytes(), state: c.ConnectionState()}
	if cache != nil {
		cp.newTickets = cache.Tickets()[before:]
	}
	return cp
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// requireOpenSSL skips the test when the openssl binary is missing, except
// in CI, where it must be there.
func requireOpenSSL(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("openssl is required in CI: %v", err)
		}
		t.Skipf("openssl not installed: %v", err)
	}
	return path
}

// opensslServer starts `openssl s_server` on 127.0.0.1 with a fresh
// certificate and the extra arguments, waits until it accepts connections,
// and stops it (by PID) when the test ends.
func opensslServer(t *testing.T, args ...string) string {
	t.Helper()
	bin := requireOpenSSL(t)
	dir := t.TempDir()
	testCert(t, dir)
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // a port taken in between: try another
		port := freePort(t)
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		argv := append([]string{"s_server", "-accept", addr, "-naccept", "1000",
			"-cert", filepath.Join(dir, "cert.pem"), "-key", filepath.Join(dir, "key.pem"), "-quiet"}, args...)
		cmd := exec.Command(bin, argv...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		cmd.Stdout = io.Discard
		// Without -www, s_server ends a connection when its stdin ends:
		// give it a pipe that stays open until it is stopped.
		stdin, stdinW, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdin = stdin
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		stdin.Close()
		done := make(chan struct{})
		var waitErr error
		go func() { waitErr = cmd.Wait(); close(done) }()
		stop := func() {
			cmd.Process.Kill()
			select { // bounded: a stuck stderr copy must not hang the run
			case <-done:
			case <-time.After(hangBound):
				t.Errorf("openssl s_server (PID %d) did not exit after SIGKILL", cmd.Process.Pid)
			}
			stdinW.Close()
		}
		lastErr = waitListening(addr, done)
		if lastErr != nil {
			stop()
			lastErr = fmt.Errorf("%w (%v); stderr: %s", lastErr, waitErr, stderr.String())
			continue
		}
		t.Cleanup(stop)
		return addr
	}
	t.Fatalf("openssl s_server did not start: %v", lastErr)
	return ""
}

// waitListening polls addr until it accepts a connection, the process
// exits, or hangBound passes.
func waitListening(addr string, exited <-chan struct{}) error {
	deadline := time.Now().Add(hangBound)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errors.New("exited")
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return errors.New("not listening after " + hangBound.String())
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
	records, _, _ := ParseRecords(stream)
	var hs HandshakeReassembler
	for _, r := range records {
		if r.Type != RecordHandshake {
			continue
		}
		msgs, _ := hs.Add(r.Payload)
		for _, m := range msgs {
			if m.Type == TypeServerHelloDone {
				return true
			}
		}
	}
	return false
}
