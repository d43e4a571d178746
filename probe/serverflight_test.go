package probe

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
	"github.com/resumption-exporter/resumption_exporter/probe/internal/wire"
)

// replay serves a recorded server flight to each connection in pieces of n
// bytes, then waits for the client to close.
func replay(t *testing.T, flight []byte, n int) string {
	return testservers.ServeTCP(t, func(c net.Conn) {
		for b := flight; len(b) > 0; b = b[min(n, len(b)):] {
			if _, err := c.Write(b[:min(n, len(b))]); err != nil {
				return
			}
			time.Sleep(time.Millisecond) // separate reads on the client
		}
		drain(c)
	})
}

func readCapture(t *testing.T, name string) (server, client []byte, keyLog map[string][]byte) {
	t.Helper()
	var files [3][]byte
	for i, ext := range []string{".server", ".client", ".keylog"} {
		b, err := os.ReadFile(filepath.Join("internal", "wire", "testdata", name+ext))
		if err != nil {
			t.Fatal(err)
		}
		files[i] = b
	}
	return files[0], files[1], wire.ParseKeyLog(files[2])
}

// The server's flight, however it arrives, gives the ServerHello, then the
// Finished of a resumed handshake, which verifies over the transcript the
// reader kept: a real OpenSSL resumption replayed in small pieces.
func TestServerFlightResumed12(t *testing.T) {
	server, client, keyLog := readCapture(t, "openssl-tls12-resumed")
	hello, err := wire.ReadClientHello(client)
	if err != nil {
		t.Fatal(err)
	}
	helloMsg, err := hello.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{3, 100, len(server)} {
		conn, err := net.Dial("tcp", replay(t, server, n))
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		f := newServerFlight(newTap(conn))
		sh, err := f.serverHello()
		if err != nil {
			t.Fatalf("%d-byte pieces: %v", n, err)
		}
		keys, err := wire.NewKeys12(sh.CipherSuite, keyLog[wire.LabelClientRandom], hello.Random[:], sh.Random[:])
		if err != nil {
			t.Fatal(err)
		}
		fin, err := f.finished12(keys)
		if err != nil {
			t.Fatalf("%d-byte pieces: %v", n, err)
		}
		if err := keys.CheckServerFinished(append(helloMsg, f.transcript...), fin); err != nil {
			t.Errorf("%d-byte pieces: %v", n, err)
		}
		conn.Close()
	}
}

func TestServerFlightEnds(t *testing.T) {
	server, _, _ := readCapture(t, "nginx-tls12-ticket")
	tests := []struct {
		name  string
		serve func(net.Conn)
		want  string
	}{
		{"closed before a ServerHello", func(c net.Conn) { c.Write(server[:20]) }, "connection closed before a ServerHello"},
		{"fatal alert", func(c net.Conn) {
			c.Write(wire.AppendRecords(nil, wire.RecordAlert, wire.VersionTLS12, wire.Alert{Level: wire.AlertLevelFatal, Description: wire.AlertHandshakeFailure}.Marshal()))
			drain(c)
		}, "server answered with alert fatal handshake_failure(40)"},
		{"not TLS", func(c net.Conn) { c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n")); drain(c) }, "not TLS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", testservers.ServeTCP(t, tt.serve))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			_, err = newServerFlight(newTap(conn)).serverHello()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one saying %q", err, tt.want)
			}
		})
	}
}
