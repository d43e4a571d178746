package wire

import (
	"bytes"
	"crypto/tls"
	"reflect"
	"testing"
)

// Fuzz seeds are real captures: the server bytes of TLS 1.2 and TLS 1.3
// handshakes with crypto/tls and with the servers recorded in testdata/,
// and the messages inside them. Run one fuzzer
// with e.g. `go test -run '^$' -fuzz FuzzParseFlight12 -fuzztime 20s`;
// plain `go test` runs only the seeds.

type seeds struct {
	stream12, stream13 [][]byte
	serverHellos       [][]byte // bodies
	tickets13          [][]byte // decrypted NewSessionTicket bodies
	clientHellos       [][]byte // bodies
}

func captureSeeds(f *testing.F) seeds {
	f.Helper()
	cert := testCert(f)
	var s seeds
	for _, curves := range [][]tls.CurveID{nil, {tls.CurveP384}} {
		addr := goServer(f, &tls.Config{Certificates: []tls.Certificate{cert}, CurvePreferences: curves})
		cp12 := clientHandshake(f, addr, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12, ClientSessionCache: newRecordingCache()}, "")
		cp13 := clientHandshake(f, addr, &tls.Config{InsecureSkipVerify: true, ClientSessionCache: newRecordingCache()}, "")
		s.stream12 = append(s.stream12, cp12.server)
		s.stream13 = append(s.stream13, cp13.server)
		for _, stream := range [][]byte{cp12.server, cp13.server} {
			for _, m := range plaintextMessages(stream) {
				if m.Type == typeServerHello {
					s.serverHellos = append(s.serverHellos, m.Body)
				}
			}
		}
		s.tickets13 = append(s.tickets13, innerTickets(f, cp13)...)
	}
	for _, c := range captureCases {
		r := loadCapture(f, c.name)
		tls12 := c.kind == full12 || c.kind == resumed12
		if tls12 {
			s.stream12 = append(s.stream12, r.server)
		} else {
			s.stream13 = append(s.stream13, r.server)
			for _, m := range innerMessages(f, r) {
				if m.Type == typeNewSessionTicket {
					s.tickets13 = append(s.tickets13, m.Body)
				}
			}
		}
		for _, m := range append(messages(f, r.client), messages(f, r.server)...) {
			switch m.Type {
			case typeClientHello:
				s.clientHellos = append(s.clientHellos, m.Body)
			case typeServerHello:
				s.serverHellos = append(s.serverHellos, m.Body)
			}
		}
	}
	return s
}

// sameBytes checks that a message parsed from body marshals back to the
// handshake message around body.
func sameBytes(t *testing.T, typ uint8, body []byte, m marshaler) {
	t.Helper()
	got, err := m.Marshal()
	if want := (HandshakeMessage{Type: typ, Body: body}).Marshal(); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("parsed %+v marshals to %x, %v; want %x", m, got, err, want)
	}
}

// plaintextMessages returns the handshake messages of the plaintext
// records of a stream.
func plaintextMessages(stream []byte) []HandshakeMessage {
	records, _, _ := parseRecords(stream)
	var h handshakeReassembler
	var all []HandshakeMessage
	for _, r := range records {
		if r.Type == RecordHandshake {
			msgs, _ := h.Add(r.Payload)
			all = append(all, msgs...)
		}
	}
	return all
}

// innerTickets decrypts a TLS 1.3 capture's application records and
// returns the NewSessionTicket bodies in them.
func innerTickets(f *testing.F, cp capture) [][]byte {
	f.Helper()
	d, err := newDecrypter(cp.state.CipherSuite, ParseKeyLog(cp.keyLog)[LabelServerTrafficSecret0])
	if err != nil {
		f.Fatal(err)
	}
	records, _, _ := parseRecords(cp.server)
	var h handshakeReassembler
	var bodies [][]byte
	for _, r := range records {
		if r.Type != RecordApplicationData {
			continue
		}
		typ, content, err := d.Open(r)
		if err != nil || typ != RecordHandshake {
			continue
		}
		msgs, _ := h.Add(content)
		for _, m := range msgs {
			if m.Type == typeNewSessionTicket {
				bodies = append(bodies, m.Body)
			}
		}
	}
	if len(bodies) == 0 {
		f.Fatal("no NewSessionTicket in the TLS 1.3 capture")
	}
	return bodies
}

func FuzzParseRecords(f *testing.F) {
	s := captureSeeds(f)
	for _, b := range append(s.stream12, s.stream13...) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, stream []byte) {
		records, rest, err := parseRecords(stream)
		n := len(rest)
		for _, r := range records {
			if len(r.Payload) > maxRecordPayload {
				t.Fatalf("%d-byte record accepted", len(r.Payload))
			}
			n += recordHeaderLen + len(r.Payload)
		}
		if n != len(stream) {
			t.Fatalf("records and rest hold %d bytes of %d", n, len(stream))
		}
		if err == nil && len(rest) >= recordHeaderLen+maxRecordPayload {
			t.Fatalf("%d-byte rest without error", len(rest))
		}
	})
}

func FuzzParseServerHello(f *testing.F) {
	s := captureSeeds(f)
	for _, b := range s.serverHellos {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		sh, err := ParseServerHello(body)
		if err != nil {
			return
		}
		if len(sh.SessionID) > 32 || 4*len(sh.Extensions) > len(body) {
			t.Fatalf("parsed %d-byte session ID, %d extensions from %d bytes", len(sh.SessionID), len(sh.Extensions), len(body))
		}
		sameBytes(t, typeServerHello, body, sh)
	})
}

func FuzzParseClientHello(f *testing.F) {
	s := captureSeeds(f)
	for _, b := range s.clientHellos {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ch, err := ParseClientHello(body)
		if err != nil {
			return
		}
		if len(ch.SessionID) > 32 || len(ch.PSKBinders) != len(ch.PSKIdentities) {
			t.Fatalf("parsed %d-byte session ID, %d binders for %d identities", len(ch.SessionID), len(ch.PSKBinders), len(ch.PSKIdentities))
		}
		sameBytes(t, typeClientHello, body, ch)
	})
}

// FuzzFlightReader checks that the reader's events do not depend on how
// the bytes arrive.
func FuzzFlightReader(f *testing.F) {
	s := captureSeeds(f)
	for i, b := range append(s.stream12, s.stream13...) {
		f.Add(b, uint16(i*37+1))
	}
	f.Fuzz(func(t *testing.T, stream []byte, chunk uint16) {
		whole, werr := NewFlightReader(len(stream)).Feed(stream)
		got, gerr := feedChunks(stream, max(int(chunk), 1))
		if (werr == nil) != (gerr == nil) || !reflect.DeepEqual(got, whole) {
			t.Fatalf("whole: %d events, %v; in %d-byte pieces: %d events, %v", len(whole), werr, chunk, len(got), gerr)
		}
	})
}

func FuzzParseNewSessionTicket13(f *testing.F) {
	s := captureSeeds(f)
	for _, b := range s.tickets13 {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		nst, err := ParseNewSessionTicket13(body)
		if err != nil {
			return
		}
		if len(nst.Ticket) == 0 || len(nst.Ticket)+len(nst.Nonce)+4*len(nst.Extensions) > len(body) {
			t.Fatalf("parsed %d-byte ticket, %d-byte nonce from %d bytes", len(nst.Ticket), len(nst.Nonce), len(body))
		}
		sameBytes(t, typeNewSessionTicket, body, nst)
	})
}

func FuzzParseFlight12(f *testing.F) {
	s := captureSeeds(f)
	for _, b := range append(s.stream12, s.stream13...) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, stream []byte) {
		fl, err := ParseFlight12(stream)
		if fl == nil {
			t.Fatalf("nil flight (err %v)", err)
		}
		if err == nil && fl.ServerHello == nil && fl.Alert == nil {
			t.Fatal("no error and nothing parsed")
		}
		n := 0
		for _, tk := range fl.Tickets {
			n += len(tk.Ticket)
		}
		if n > len(stream) {
			t.Fatalf("%d ticket bytes from a %d-byte stream", n, len(stream))
		}
	})
}

// FuzzParseFlight13 checks the TLS 1.3 reader on mutated captures. With the
// real secret gone stale under mutation it mostly exercises the plaintext
// part and the trial decryption's skipping.
func FuzzParseFlight13(f *testing.F) {
	s := captureSeeds(f)
	for _, b := range s.stream13 {
		f.Add(b)
	}
	secret := make([]byte, 32)
	f.Fuzz(func(t *testing.T, stream []byte) {
		fl, err := ParseFlight13(stream, tls.TLS_AES_128_GCM_SHA256, secret)
		if fl == nil {
			t.Fatalf("nil flight (err %v)", err)
		}
		if len(fl.ServerHellos) > 2 {
			t.Fatalf("%d ServerHellos", len(fl.ServerHellos))
		}
	})
}
