package wire

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"slices"
	"sync"
	"testing"
)

// helloLog keeps the ClientHelloInfo crypto/tls servers parsed from the
// hellos they received: the server's own reading of what Marshal wrote.
type helloLog struct {
	mu    sync.Mutex
	infos []*tls.ClientHelloInfo
}

func (l *helloLog) record(info *tls.ClientHelloInfo) (*tls.Config, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.infos = append(l.infos, info)
	return nil, nil
}

func (l *helloLog) last() *tls.ClientHelloInfo {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.infos) == 0 {
		return nil
	}
	return l.infos[len(l.infos)-1]
}

// offer12 is what a TLS 1.2 resumption offer varies, for the tables below.
type offer12 struct {
	SessionID            []byte
	CipherSuites         []uint16
	ServerName           string
	ExtendedMasterSecret bool
	OfferTicket          bool
	SessionTicket        []byte
}

// hello builds the offer as the probe does, with a fresh random.
func (o *offer12) hello(t testing.TB) *ClientHello {
	ch := NewClientHello12(o.ServerName, o.CipherSuites)
	copy(ch.Random[:], randomBytes(t, 32))
	ch.SessionID, ch.ExtendedMasterSecret = o.SessionID, o.ExtendedMasterSecret
	ch.TicketSupported, ch.SessionTicket = o.OfferTicket, o.SessionTicket
	return ch
}

// u16s converts crypto/tls's named code points to their wire values.
func u16s[T ~uint16](s []T) []uint16 {
	out := make([]uint16, len(s))
	for i, v := range s {
		out[i] = uint16(v)
	}
	return out
}

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestClientHello12GoServer(t *testing.T) {
	cert := testCert(t)
	var hellos helloLog
	addr := goServer(t, &tls.Config{
		Certificates:       []tls.Certificate{cert},
		MaxVersion:         tls.VersionTLS12,
		GetConfigForClient: hellos.record,
	})

	// A real TLS 1.2 session with a ticket, to offer back.
	cache := newRecordingCache()
	first := clientHandshake(t, addr, &tls.Config{ServerName: "localhost", InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12, ClientSessionCache: cache}, "")
	if len(first.newTickets) != 1 {
		t.Fatalf("%d tickets from the full handshake, want 1", len(first.newTickets))
	}
	ticket, suite := first.newTickets[0], first.state.CipherSuite
	var otherSuite uint16 = tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
	if suite == otherSuite {
		otherSuite = tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
	}
	var allSuites []uint16
	for _, s := range tls.CipherSuites() {
		allSuites = append(allSuites, s.ID)
	}

	tests := []struct {
		name       string
		hello      offer12
		wantSNI    string
		wantResume bool
		wantClose  bool // the server refuses the hello by closing the connection
	}{
		{name: "fresh, every suite", hello: offer12{CipherSuites: allSuites, ServerName: "localhost", ExtendedMasterSecret: true}, wantSNI: "localhost"},
		{name: "IP server name sends no SNI", hello: offer12{CipherSuites: allSuites, ServerName: "127.0.0.1", ExtendedMasterSecret: true}},
		{name: "trailing dot dropped from SNI", hello: offer12{CipherSuites: allSuites, ServerName: "localhost."}, wantSNI: "localhost"},
		{name: "empty ticket asks for one", hello: offer12{CipherSuites: []uint16{suite}, ServerName: "localhost", ExtendedMasterSecret: true, OfferTicket: true}, wantSNI: "localhost"},
		// crypto/tls servers keep no session cache: a session ID alone
		// never resumes.
		{name: "unknown session ID", hello: offer12{SessionID: randomBytes(t, 32), CipherSuites: []uint16{suite}, ServerName: "localhost", ExtendedMasterSecret: true}, wantSNI: "localhost"},
		{name: "ticket", wantSNI: "localhost", wantResume: true,
			hello: offer12{SessionID: randomBytes(t, 16), CipherSuites: []uint16{suite}, ServerName: "localhost", ExtendedMasterSecret: true, OfferTicket: true, SessionTicket: ticket}},
		{name: "ticket, 1-byte session ID", wantSNI: "localhost", wantResume: true,
			hello: offer12{SessionID: randomBytes(t, 1), CipherSuites: []uint16{otherSuite, suite}, ServerName: "localhost", ExtendedMasterSecret: true, OfferTicket: true, SessionTicket: ticket}},
		// crypto/tls itself does not tie a TLS 1.2 ticket to the SNI.
		{name: "ticket without SNI", wantResume: true,
			hello: offer12{SessionID: randomBytes(t, 32), CipherSuites: []uint16{suite}, ExtendedMasterSecret: true, OfferTicket: true, SessionTicket: ticket}},
		{name: "ticket for another suite", wantSNI: "localhost",
			hello: offer12{SessionID: randomBytes(t, 32), CipherSuites: []uint16{otherSuite}, ServerName: "localhost", ExtendedMasterSecret: true, OfferTicket: true, SessionTicket: ticket}},
		// RFC 7627 §5.3: a session with EMS offered without it must abort;
		// crypto/tls does so by closing the connection, with no alert.
		{name: "ticket without extended master secret", wantSNI: "localhost", wantClose: true,
			hello: offer12{SessionID: randomBytes(t, 32), CipherSuites: []uint16{suite}, ServerName: "localhost", OfferTicket: true, SessionTicket: ticket}},
		{name: "damaged ticket", wantSNI: "localhost",
			hello: offer12{SessionID: randomBytes(t, 32), CipherSuites: []uint16{suite}, ServerName: "localhost", ExtendedMasterSecret: true, OfferTicket: true, SessionTicket: append(bytes.Clone(ticket[:len(ticket)-1]), ticket[len(ticket)-1]^1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hello := tt.hello.hello(t)
			f, err := sendHello(t, addr, hello)
			if tt.wantClose {
				if err == nil || f.ServerHello != nil || f.Alert != nil {
					t.Errorf("got ServerHello %+v, alert %v, err %v; want the connection closed", f.ServerHello, f.Alert, err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			info := hellos.last()
			if info == nil {
				t.Fatal("the server parsed no ClientHello")
			}
			if info.ServerName != tt.wantSNI || !slices.Equal(info.CipherSuites, tt.hello.CipherSuites) ||
				info.SupportedVersions[0] != tls.VersionTLS12 || // from legacy_version: no supported_versions sent

				!slices.Equal(u16s(info.SupportedCurves), clientHelloGroups) || !slices.Equal(info.SupportedPoints, []uint8{0}) ||
				!slices.Equal(u16s(info.SignatureSchemes), clientHelloSigAlgs) || !slices.Equal(info.Extensions, hello.extensionTypes()) {
				t.Errorf("the server read the hello as %+v", info)
			}
			if tt.wantClose {
				return
			}
			sh := f.ServerHello
			if sh == nil {
				t.Fatalf("no ServerHello (alert %v)", f.Alert)
			}
			if sh.Version() != tls.VersionTLS12 || !slices.Contains(tt.hello.CipherSuites, sh.CipherSuite) || sh.Compression != 0 {
				t.Errorf("ServerHello version %#04x suite %#04x compression %d", sh.Version(), sh.CipherSuite, sh.Compression)
			}
			if sh.ExtendedMasterSecret != tt.hello.ExtendedMasterSecret || sh.TicketAck != tt.hello.OfferTicket {
				t.Errorf("ServerHello EMS %v ticket ack %v; offered %v %v", sh.ExtendedMasterSecret, sh.TicketAck, tt.hello.ExtendedMasterSecret, tt.hello.OfferTicket)
			}
			echoed := len(tt.hello.SessionID) > 0 && bytes.Equal(sh.SessionID, tt.hello.SessionID)
			if echoed != tt.wantResume || f.SawCertificate == tt.wantResume {
				t.Errorf("session ID %x echoed %v, certificate %v; want resumption %v", sh.SessionID, echoed, f.SawCertificate, tt.wantResume)
			}
			if tt.wantResume && sh.CipherSuite != suite {
				t.Errorf("resumed with suite %#04x, the session's is %#04x", sh.CipherSuite, suite)
			}
		})
	}
}

// TestClientHello12OpenSSLSessionID resumes an OpenSSL session-cache
// session by its ID, which crypto/tls clients cannot do.
func TestClientHello12OpenSSLSessionID(t *testing.T) {
	addr := opensslServer(t, "-www", "-no_ticket")
	tests := []struct {
		name       string
		edit       func(ch *offer12) // from the offer of the original session
		wantResume bool
		wantAlert  uint8 // a fatal alert instead of a ServerHello
	}{
		{name: "session ID, suite and EMS", wantResume: true},
		{name: "session ID among other suites", wantResume: true, edit: func(ch *offer12) {
			ch.CipherSuites = append([]uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}, ch.CipherSuites...)
		}},
		{name: "unknown session ID", edit: func(ch *offer12) { ch.SessionID = randomBytes(t, 32) }},
		// What the shared notes report: OpenSSL refuses the offer of an EMS
		// session without EMS with handshake_failure.
		{name: "without extended master secret", wantAlert: 40, edit: func(ch *offer12) { ch.ExtendedMasterSecret = false }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A fresh session for each row: a refused offer may destroy it.
			cp := clientHandshake(t, addr, &tls.Config{ServerName: "localhost", InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12}, "GET / HTTP/1.0\r\n\r\n")
			full, err := ParseFlight12(cp.server)
			if err != nil {
				t.Fatal(err)
			}
			if len(full.ServerHello.SessionID) == 0 || full.ServerHello.TicketAck || !full.ServerHello.ExtendedMasterSecret {
				t.Fatalf("full handshake ServerHello %+v: want a session ID, EMS, no ticket", full.ServerHello)
			}
			o := &offer12{
				SessionID:            full.ServerHello.SessionID,
				CipherSuites:         []uint16{cp.state.CipherSuite},
				ServerName:           "localhost",
				ExtendedMasterSecret: true,
			}
			if tt.edit != nil {
				tt.edit(o)
			}
			ch := o.hello(t)
			f, err := sendHello(t, addr, ch)
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantAlert != 0 {
				if f.Alert == nil || *f.Alert != (Alert{AlertLevelFatal, tt.wantAlert}) {
					t.Fatalf("alert %v, want fatal %d", f.Alert, tt.wantAlert)
				}
				return
			}
			if f.ServerHello == nil {
				t.Fatalf("no ServerHello (alert %v)", f.Alert)
			}
			resumed := bytes.Equal(f.ServerHello.SessionID, full.ServerHello.SessionID)
			if resumed != tt.wantResume || f.SawCertificate == tt.wantResume {
				t.Errorf("session ID echoed %v, certificate %v; want resumption %v", resumed, f.SawCertificate, tt.wantResume)
			}
			if tt.wantResume && f.ServerHello.CipherSuite != cp.state.CipherSuite {
				t.Errorf("resumed with suite %#04x, the session's is %#04x", f.ServerHello.CipherSuite, cp.state.CipherSuite)
			}
		})
	}
}

func TestClientHello12MarshalErrors(t *testing.T) {
	tests := []struct {
		name    string
		hello   offer12
		wantErr string
	}{
		{name: "no suites", hello: offer12{}, wantErr: "no cipher suites"},
		{name: "session ID too long", hello: offer12{CipherSuites: []uint16{1}, SessionID: make([]byte, 33)}, wantErr: "33-byte session ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.hello.hello(t).Marshal()
			if err == nil || !bytes.Contains([]byte(err.Error()), []byte(tt.wantErr)) {
				t.Errorf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestClientHello12Fragmented sends a hello too large for one record, as a
// very long ticket makes it, and checks a real server reassembles it.
func TestClientHello12Fragmented(t *testing.T) {
	cert := testCert(t)
	var hellos helloLog
	addr := goServer(t, &tls.Config{Certificates: []tls.Certificate{cert}, MaxVersion: tls.VersionTLS12, GetConfigForClient: hellos.record})
	o := &offer12{CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}, ServerName: "localhost",
		ExtendedMasterSecret: true, OfferTicket: true, SessionTicket: randomBytes(t, 20000)}
	ch := o.hello(t)
	msg, err := ch.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	records, rest, err := parseRecords(AppendRecords(nil, RecordHandshake, VersionTLS10, msg))
	if err != nil || len(rest) != 0 || len(records) != 2 {
		t.Fatalf("%d records, %d bytes left, err %v; want 2 whole records", len(records), len(rest), err)
	}
	f, err := sendHello(t, addr, ch)
	if err != nil {
		t.Fatal(err)
	}
	if f.ServerHello == nil || !f.ServerHello.TicketAck || !slices.Equal(hellos.last().Extensions, ch.extensionTypes()) {
		t.Errorf("ServerHello %+v to a fragmented hello", f.ServerHello)
	}
}

func TestClientHelloExtensionsRoundTrip(t *testing.T) {
	for _, offer := range []bool{false, true} {
		o := offer12{CipherSuites: []uint16{0xc02f}, ServerName: "example.com", ExtendedMasterSecret: true, OfferTicket: offer}
		msg, err := o.hello(t).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		ch, err := ParseClientHello(msg[4:])
		if err != nil {
			t.Fatal(err)
		}
		if !ch.hasExtensionType(extServerName) || !ch.hasExtensionType(extExtendedMasterSecret) || ch.hasExtensionType(extSessionTicket) != offer {
			t.Errorf("offer ticket %v: extensions %v", offer, ch.Extensions)
		}
	}
	if _, err := ParseClientHello([]byte{3, 3}); err == nil {
		t.Error("a truncated ClientHello parsed")
	}
}
