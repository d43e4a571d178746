package wire

import (
	"bytes"
	"crypto/tls"
	"net"
	"testing"
	"time"
)

var fatalInternalError = Alert{Level: AlertLevelFatal, Description: AlertInternalError}

// What ClientAlert12 protects, the client keys of the same connection
// open as record seq, for every suite a probe negotiates; under another
// sequence number it does not decrypt.
func TestClientAlert12RoundTrip(t *testing.T) {
	master := bytes.Repeat([]byte{3}, 48)
	cr, sr := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	for _, suite := range FinishableSuites12() {
		t.Run(tls.CipherSuiteName(suite), func(t *testing.T) {
			rec, err := ClientAlert12(suite, master, cr, sr, 1, fatalInternalError)
			if err != nil {
				t.Fatal(err)
			}
			recs, rest, err := parseRecords(rec)
			if err != nil || len(rest) != 0 || len(recs) != 1 || recs[0].Type != RecordAlert {
				t.Fatalf("records %+v, rest %d, %v", recs, len(rest), err)
			}
			for _, tt := range []struct {
				seq uint64
				ok  bool
			}{{1, true}, {0, false}, {2, false}} {
				k, err := NewKeys12(suite, master, cr, sr)
				if err != nil {
					t.Fatal(err)
				}
				k.client.seq = tt.seq
				plain, err := k.client.Open(recs[0])
				if (err == nil) != tt.ok {
					t.Fatalf("opened as seq %d: %v, want success %v", tt.seq, err, tt.ok)
				}
				if err != nil {
					continue
				}
				if a, err := ParseAlert(plain); err != nil || a != fatalInternalError {
					t.Errorf("alert %v, %v", a, err)
				}
			}
		})
	}
	if _, err := ClientAlert12(tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, master, cr, sr, 1, fatalInternalError); err == nil {
		t.Error("a CBC suite sealed")
	}
}

func TestClientAlert13RoundTrip(t *testing.T) {
	for _, tt := range []struct {
		suite  uint16
		secret int
	}{{tls.TLS_AES_128_GCM_SHA256, 32}, {tls.TLS_AES_256_GCM_SHA384, 48}, {tls.TLS_CHACHA20_POLY1305_SHA256, 32}} {
		t.Run(tls.CipherSuiteName(tt.suite), func(t *testing.T) {
			secret := bytes.Repeat([]byte{9}, tt.secret)
			rec, err := ClientAlert13(tt.suite, secret, 0, fatalInternalError)
			if err != nil {
				t.Fatal(err)
			}
			recs, rest, err := parseRecords(rec)
			if err != nil || len(rest) != 0 || len(recs) != 1 || recs[0].Type != RecordApplicationData {
				t.Fatalf("records %+v, rest %d, %v", recs, len(rest), err)
			}
			d, err := newDecrypter(tt.suite, secret)
			if err != nil {
				t.Fatal(err)
			}
			typ, plain, err := d.Open(recs[0])
			if err != nil || typ != RecordAlert {
				t.Fatalf("inner type %d, %v", typ, err)
			}
			if a, err := ParseAlert(plain); err != nil || a != fatalInternalError {
				t.Errorf("alert %v, %v", a, err)
			}
			later, err := ClientAlert13(tt.suite, secret, 1, fatalInternalError)
			if err != nil {
				t.Fatal(err)
			}
			recs, _, _ = parseRecords(later)
			d, _ = newDecrypter(tt.suite, secret)
			if _, _, err := d.Open(recs[0]); err == nil {
				t.Error("record seq 1 opened as seq 0")
			}
		})
	}
}

// A crypto/tls server reads the alert written after crypto/tls's own
// handshake as the fatal internal_error it is: its Read fails with
// "remote error: tls: internal error". A wrong key, nonce or sequence
// number would fail it with bad_record_mac instead.
func TestClientAlertReachesGoServer(t *testing.T) {
	cert := testCert(t)
	tests := []struct {
		name    string
		version uint16
		suite   uint16 // TLS 1.2 only; crypto/tls picks TLS 1.3's
	}{
		{"TLS 1.2 AES-128-GCM", VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
		{"TLS 1.2 AES-256-GCM", VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384},
		{"TLS 1.2 ChaCha20-Poly1305", VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256},
		{"TLS 1.3", VersionTLS13, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			serverErr := make(chan error, 1)
			cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tt.version, MaxVersion: tt.version,
				SessionTicketsDisabled: true}
			if tt.suite != 0 {
				cfg.CipherSuites = []uint16{tt.suite}
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				c, err := ln.Accept()
				if err != nil {
					serverErr <- err
					return
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(hangBound))
				tc := tls.Server(c, cfg)
				_, err = tc.Read(make([]byte, 1))
				serverErr <- err
			}()
			raw, err := net.DialTimeout("tcp", ln.Addr().String(), hangBound)
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			tap := &tapConn{Conn: raw}
			var keyLog bytes.Buffer
			c := tls.Client(tap, &tls.Config{InsecureSkipVerify: true, MinVersion: tt.version, MaxVersion: tt.version, KeyLogWriter: &keyLog})
			c.SetDeadline(time.Now().Add(hangBound))
			if err := c.Handshake(); err != nil {
				t.Fatal(err)
			}
			st := c.ConnectionState()
			secrets := ParseKeyLog(keyLog.Bytes())
			var rec []byte
			if tt.version == VersionTLS12 {
				hello, err := ReadClientHello(tap.written())
				if err != nil {
					t.Fatal(err)
				}
				f, err := ParseFlight12(tap.captured())
				if err != nil || f.ServerHello == nil {
					t.Fatalf("server flight: %v", err)
				}
				rec, err = ClientAlert12(st.CipherSuite, secrets[LabelClientRandom], hello.Random[:], f.ServerHello.Random[:], 1, fatalInternalError)
			} else {
				rec, err = ClientAlert13(st.CipherSuite, secrets[LabelClientTrafficSecret0], 0, fatalInternalError)
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := raw.Write(rec); err != nil {
				t.Fatal(err)
			}
			err = <-serverErr
			if err == nil || err.Error() != "remote error: tls: internal error" {
				t.Fatalf("server's Read: %v, want the remote internal error", err)
			}
		})
	}
}
