package wire

import (
	"bytes"
	"crypto/tls"
	"testing"
)

// messages returns the plaintext handshake messages of one direction of a
// capture, as the peer framed them.
func messages(t testing.TB, stream []byte) []HandshakeMessage {
	t.Helper()
	events, err := NewFlightReader(len(stream)).Feed(stream)
	if err != nil {
		t.Fatalf("reading capture: %v", err)
	}
	var msgs []HandshakeMessage
	for _, ev := range events {
		if ev.Kind == EventMessage {
			msgs = append(msgs, ev.Message)
		}
	}
	return msgs
}

// innerMessages decrypts the application-epoch records of a TLS 1.3
// server capture and returns the handshake messages in them.
func innerMessages(t testing.TB, r recording) []HandshakeMessage {
	t.Helper()
	sh := messages(t, r.server)
	suite, err := ParseServerHello(sh[len(sh)-1].Body)
	if err != nil {
		t.Fatal(err)
	}
	d, err := newDecrypter(suite.CipherSuite, r.keyLog[LabelServerTrafficSecret0])
	if err != nil {
		t.Fatal(err)
	}
	events, _ := NewFlightReader(len(r.server)).Feed(r.server)
	var hs handshakeReassembler
	var msgs []HandshakeMessage
	for _, ev := range events {
		if ev.Kind != EventProtected {
			continue
		}
		typ, content, err := d.Open(ev.Record)
		if err != nil || typ != RecordHandshake {
			continue // handshake epoch, or application data
		}
		m, err := hs.Add(content)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m...)
	}
	return msgs
}

// TestCapturedFlights reads every recorded server flight and checks what a
// probe relies on.
func TestCapturedFlights(t *testing.T) {
	for _, c := range captureCases {
		t.Run(c.name, func(t *testing.T) {
			r := loadCapture(t, c.name)
			hello, err := ReadClientHello(r.client)
			if err != nil {
				t.Fatalf("client's hello: %v", err)
			}
			switch c.kind {
			case full12, resumed12:
				f, err := ParseFlight12(r.server)
				if err != nil {
					t.Fatal(err)
				}
				sh := f.ServerHello
				if sh.Version() != tls.VersionTLS12 || !SupportsFinish12(sh.CipherSuite) || !f.SawChangeCipherSpec {
					t.Fatalf("ServerHello %+v, ChangeCipherSpec %v", sh, f.SawChangeCipherSpec)
				}
				if f.SawCertificate != (c.kind == full12) {
					t.Errorf("certificate sent %v in a %v handshake", f.SawCertificate, c.kind)
				}
				if c.kind == full12 && (!sh.TicketAck || len(f.Tickets) != 1 || f.Tickets[0].LifetimeHint == 0 || len(f.Tickets[0].Ticket) == 0) {
					t.Errorf("ticket ack %v, tickets %+v", sh.TicketAck, f.Tickets)
				}
				if c.kind == resumed12 {
					checkServerFinished(t, r, hello, sh)
				}
			default:
				f, err := ParseFlight13(r.server, 0, r.keyLog[LabelServerTrafficSecret0])
				if err != nil {
					t.Fatal(err)
				}
				sh := f.ServerHello()
				if sh == nil || sh.Version() != tls.VersionTLS13 || sh.KeyShareGroup == 0 {
					t.Fatalf("ServerHellos %+v", f.ServerHellos)
				}
				if hrr := f.ServerHellos[0]; (c.kind == hrr13) != hrr.HelloRetryRequest ||
					(c.kind == hrr13 && hrr.KeyShareGroup != uint16(tls.CurveP384)) {
					t.Errorf("first ServerHello %+v", hrr)
				}
				if resumed := c.kind == resumed13; sh.PSKSelected != resumed || hello.hasExtensionType(extPreSharedKey) != resumed {
					t.Errorf("PSK offered %v, selected %v", hello.hasExtensionType(extPreSharedKey), sh.PSKSelected)
				}
				if c.kind == full13 && len(f.Tickets) == 0 {
					t.Error("no NewSessionTicket")
				}
				for _, nst := range f.Tickets {
					if nst.Lifetime == 0 || len(nst.Ticket) == 0 {
						t.Errorf("ticket %+v", nst)
					}
				}
			}
		})
	}
}

// checkServerFinished verifies a recorded resumed TLS 1.2 server Finished
// with the keys derived from the key log, as the probe's finish does.
func checkServerFinished(t *testing.T, r recording, hello *ClientHello, sh *ServerHello) {
	t.Helper()
	keys, err := NewKeys12(sh.CipherSuite, r.keyLog[LabelClientRandom], hello.Random[:], sh.Random[:])
	if err != nil {
		t.Fatal(err)
	}
	var transcript []byte
	for _, m := range messages(t, r.client)[:1] {
		transcript = append(transcript, m.Marshal()...)
	}
	events, _ := NewFlightReader(len(r.server)).Feed(r.server)
	for _, ev := range events {
		switch ev.Kind {
		case EventMessage:
			transcript = append(transcript, ev.Message.Marshal()...)
		case EventProtected:
			fin, err := keys.ReadServerFinished(ev.Record)
			if err != nil {
				t.Fatal(err)
			}
			if err := keys.CheckServerFinished(transcript, fin); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatal("no protected Finished in the capture")
}

// TestCapturedMessagesRoundTrip parses every message of every capture that
// has a type here and marshals it again: the bytes must be the server's
// (or crypto/tls's) own.
func TestCapturedMessagesRoundTrip(t *testing.T) {
	seen := map[string]int{}
	for _, c := range captureCases {
		t.Run(c.name, func(t *testing.T) {
			r := loadCapture(t, c.name)
			msgs := append(messages(t, r.client), messages(t, r.server)...)
			tls13 := c.kind != full12 && c.kind != resumed12
			if tls13 {
				msgs = append(msgs, innerMessages(t, r)...)
			}
			for _, m := range msgs {
				name, got, err := reMarshal(m, tls13)
				if name == "" {
					continue
				}
				seen[name]++
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if want := m.Marshal(); !bytes.Equal(got, want) {
					t.Errorf("%s marshals to\n%x\nnot\n%x", name, got, want)
				}
			}
		})
	}
	for _, name := range []string{"ClientHello", "ServerHello", "NewSessionTicket12", "NewSessionTicket13"} {
		if seen[name] == 0 {
			t.Errorf("no %s in the captures", name)
		}
	}
}

// reMarshal parses m by its type and marshals the result; name is "" for a
// type the package does not model.
func reMarshal(m HandshakeMessage, tls13 bool) (name string, out []byte, err error) {
	type message interface{ Marshal() ([]byte, error) }
	var msg message
	switch {
	case m.Type == typeClientHello:
		name, msg, err = "ClientHello", nil, nil
		var ch *ClientHello
		if ch, err = ParseClientHello(m.Body); err == nil {
			msg = ch
		}
	case m.Type == typeServerHello:
		name = "ServerHello"
		var sh *ServerHello
		if sh, err = ParseServerHello(m.Body); err == nil {
			msg = sh
		}
	case m.Type == typeNewSessionTicket && tls13:
		name = "NewSessionTicket13"
		var t *NewSessionTicket13
		if t, err = ParseNewSessionTicket13(m.Body); err == nil {
			msg = t
		}
	case m.Type == typeNewSessionTicket:
		name = "NewSessionTicket12"
		var t *NewSessionTicket12
		if t, err = ParseNewSessionTicket12(m.Body); err == nil {
			msg = t
		}
	default:
		return "", nil, nil
	}
	if err != nil {
		return name, nil, err
	}
	out, err = msg.Marshal()
	return name, out, err
}
