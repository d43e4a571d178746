package wire

import (
	"bytes"
	"crypto/tls"
	"slices"
	"testing"
)

// goTLS13TicketLifetime is the ticket_lifetime crypto/tls servers announce:
// maxSessionTicketLifetime, 7 days, the RFC 8446 maximum.
const goTLS13TicketLifetime = 7 * 24 * 60 * 60

func TestParseFlight12GoServer(t *testing.T) {
	cert := testCert(t)
	tests := []struct {
		name           string
		ticketsOff     bool // server SessionTicketsDisabled
		clientCache    bool // client has a ClientSessionCache, so offers tickets
		suites         []uint16
		wantTicket     bool
		wantResumption bool // a second handshake with the same cache resumes
	}{
		{name: "tickets", clientCache: true, wantTicket: true, wantResumption: true},
		{name: "tickets chacha", clientCache: true, wantTicket: true, wantResumption: true,
			suites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}},
		{name: "tickets aes256", clientCache: true, wantTicket: true, wantResumption: true,
			suites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}},
		{name: "server tickets disabled", ticketsOff: true, clientCache: true},
		{name: "client offers no ticket", clientCache: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := goServer(t, &tls.Config{
				Certificates:           []tls.Certificate{cert},
				SessionTicketsDisabled: tt.ticketsOff,
				MaxVersion:             tls.VersionTLS12,
			})
			cfg := &tls.Config{ServerName: "localhost", InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12, CipherSuites: tt.suites}
			var cache *recordingCache
			if tt.clientCache {
				cache = newRecordingCache()
				cfg.ClientSessionCache = cache
			}
			cp := clientHandshake(t, addr, cfg, "")
			f, err := ParseFlight12(cp.server)
			if err != nil {
				t.Fatal(err)
			}
			sh := f.ServerHello
			if sh == nil {
				t.Fatal("no ServerHello")
			}
			if sh.Version() != tls.VersionTLS12 || sh.Version() != cp.state.Version {
				t.Errorf("version %#04x, want TLS 1.2 (%#04x negotiated)", sh.Version(), cp.state.Version)
			}
			if sh.CipherSuite != cp.state.CipherSuite {
				t.Errorf("suite %s, connection negotiated %s", tls.CipherSuiteName(sh.CipherSuite), tls.CipherSuiteName(cp.state.CipherSuite))
			}
			if !sh.ExtendedMasterSecret {
				t.Error("extended_master_secret missing; crypto/tls always negotiates it")
			}
			if sh.TicketAck != tt.wantTicket {
				t.Errorf("TicketAck %v, want %v", sh.TicketAck, tt.wantTicket)
			}
			// crypto/tls servers never send a session ID in a full TLS 1.2
			// handshake: they have no session cache, only tickets.
			if len(sh.SessionID) != 0 {
				t.Errorf("session ID %x from a Go server's full handshake", sh.SessionID)
			}
			if !f.SawCertificate || !f.SawChangeCipherSpec || f.Alert != nil {
				t.Errorf("full handshake: SawCertificate %v, SawChangeCipherSpec %v, Alert %v", f.SawCertificate, f.SawChangeCipherSpec, f.Alert)
			}
			checkTickets12(t, f.Tickets, cp.newTickets, tt.wantTicket)

			// Again with the same cache: a resumed flight.
			if !tt.clientCache {
				return
			}
			cp2 := clientHandshake(t, addr, cfg, "")
			if cp2.state.DidResume != tt.wantResumption {
				t.Fatalf("second handshake resumed %v, want %v", cp2.state.DidResume, tt.wantResumption)
			}
			f2, err := ParseFlight12(cp2.server)
			if err != nil {
				t.Fatal(err)
			}
			if f2.SawCertificate == cp2.state.DidResume {
				t.Errorf("second handshake: SawCertificate %v but DidResume %v", f2.SawCertificate, cp2.state.DidResume)
			}
			if tt.wantResumption && len(f2.ServerHello.SessionID) == 0 {
				t.Error("resumed by ticket but the ServerHello echoes no session ID")
			}
			checkTickets12(t, f2.Tickets, cp2.newTickets, len(cp2.newTickets) > 0)
		})
	}
}

// checkTickets12 compares the tickets read from the wire with those the
// crypto/tls client stored.
func checkTickets12(t *testing.T, got []NewSessionTicket12, stored [][]byte, want bool) {
	t.Helper()
	if !want {
		if len(got) != 0 || len(stored) != 0 {
			t.Errorf("%d tickets on the wire, %d stored; want none", len(got), len(stored))
		}
		return
	}
	if len(got) != 1 || len(stored) != 1 {
		t.Fatalf("%d tickets on the wire, %d stored; want 1", len(got), len(stored))
	}
	if !bytes.Equal(got[0].Ticket, stored[0]) {
		t.Errorf("ticket on the wire\n%x\ndiffers from the one crypto/tls stored\n%x", got[0].Ticket, stored[0])
	}
}

// checkTickets13 compares decrypted TLS 1.3 tickets with those the client
// stored.
func checkTickets13(t *testing.T, got []NewSessionTicket13, stored [][]byte) {
	t.Helper()
	if len(got) == 0 || len(got) != len(stored) {
		t.Fatalf("%d tickets decrypted, %d stored by crypto/tls; want the same, at least 1", len(got), len(stored))
	}
	for i := range got {
		if !bytes.Equal(got[i].Ticket, stored[i]) {
			t.Errorf("ticket %d decrypted\n%x\ndiffers from the one crypto/tls stored\n%x", i, got[i].Ticket, stored[i])
		}
	}
}

func TestParseFlight13GoServer(t *testing.T) {
	cert := testCert(t)
	tests := []struct {
		name        string
		curves      []tls.CurveID // server CurvePreferences
		clientCache bool
		wantHRR     tls.CurveID // the group an HRR asks for, 0 for no HRR
	}{
		{name: "default", clientCache: true},
		{name: "hello retry request for P-384", curves: []tls.CurveID{tls.CurveP384}, clientCache: true, wantHRR: tls.CurveP384},
		{name: "client offers no psk modes", clientCache: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := goServer(t, &tls.Config{Certificates: []tls.Certificate{cert}, CurvePreferences: tt.curves})
			cfg := &tls.Config{ServerName: "localhost", InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}
			if tt.clientCache {
				cfg.ClientSessionCache = newRecordingCache()
			}
			cp := clientHandshake(t, addr, cfg, "")
			secret := ParseKeyLog(cp.keyLog)[LabelServerTrafficSecret0]
			if len(secret) == 0 {
				t.Fatalf("no %s in the key log:\n%s", LabelServerTrafficSecret0, cp.keyLog)
			}
			f, err := ParseFlight13(cp.server, cp.state.CipherSuite, secret)
			if err != nil {
				t.Fatal(err)
			}
			wantHellos := 1
			if tt.wantHRR != 0 {
				wantHellos = 2
			}
			if len(f.ServerHellos) != wantHellos {
				t.Fatalf("%d ServerHellos, want %d", len(f.ServerHellos), wantHellos)
			}
			if tt.wantHRR != 0 {
				hrr := f.ServerHellos[0]
				if !hrr.HelloRetryRequest || hrr.KeyShareGroup != uint16(tt.wantHRR) {
					t.Errorf("first ServerHello: HelloRetryRequest %v, group %d; want an HRR for %d", hrr.HelloRetryRequest, hrr.KeyShareGroup, tt.wantHRR)
				}
			}
			sh := f.ServerHello()
			if sh == nil {
				t.Fatal("no ServerHello after the HelloRetryRequest")
			}
			if sh.HelloRetryRequest || sh.Version() != tls.VersionTLS13 || sh.LegacyVersion != tls.VersionTLS12 {
				t.Errorf("ServerHello: HRR %v, version %#04x, legacy %#04x", sh.HelloRetryRequest, sh.Version(), sh.LegacyVersion)
			}
			if sh.CipherSuite != cp.state.CipherSuite || sh.KeyShareGroup != uint16(cp.state.CurveID) {
				t.Errorf("ServerHello suite %#04x group %d; connection has %#04x group %d", sh.CipherSuite, sh.KeyShareGroup, cp.state.CipherSuite, cp.state.CurveID)
			}
			if sh.PSKSelected {
				t.Error("pre_shared_key in a full handshake")
			}
			if f.Alert != nil {
				t.Errorf("alert %v", f.Alert)
			}
			if !tt.clientCache {
				if len(f.Tickets) != 0 {
					t.Errorf("%d tickets for a client that offered no psk_key_exchange_modes", len(f.Tickets))
				}
				return
			}
			checkTickets13(t, f.Tickets, cp.newTickets)
			for _, nst := range f.Tickets {
				if nst.Lifetime != goTLS13TicketLifetime {
					t.Errorf("lifetime %d, want Go's %d", nst.Lifetime, goTLS13TicketLifetime)
				}
			}
			// Suite 0 takes the suite from the ServerHello.
			f0, err := ParseFlight13(cp.server, 0, secret)
			if err != nil || len(f0.Tickets) != len(f.Tickets) {
				t.Errorf("suite 0: %d tickets, err %v", len(f0.Tickets), err)
			}

			// The resumption: the ServerHello shows the accepted PSK.
			cp2 := clientHandshake(t, addr, cfg, "")
			f2, err := ParseFlight13(cp2.server, cp2.state.CipherSuite, ParseKeyLog(cp2.keyLog)[LabelServerTrafficSecret0])
			if err != nil {
				t.Fatal(err)
			}
			if sh2 := f2.ServerHello(); sh2 == nil || sh2.PSKSelected != cp2.state.DidResume || !cp2.state.DidResume {
				t.Errorf("resumption: ServerHello %+v, DidResume %v", sh2, cp2.state.DidResume)
			}
			checkTickets13(t, f2.Tickets, cp2.newTickets)
		})
	}
}

// TestParseFlight13OpenSSL covers every TLS 1.3 suite with a real peer:
// crypto/tls cannot be made to pick ChaCha20 or AES-256 on a machine with
// AES hardware, but `openssl s_server -ciphersuites` can.
func TestParseFlight13OpenSSL(t *testing.T) {
	tests := []struct {
		suite     uint16
		earlyData bool
	}{
		{suite: tls.TLS_AES_128_GCM_SHA256},
		{suite: tls.TLS_AES_256_GCM_SHA384},
		{suite: tls.TLS_CHACHA20_POLY1305_SHA256},
		{suite: tls.TLS_AES_128_GCM_SHA256, earlyData: true},
	}
	for _, tt := range tests {
		name := tls.CipherSuiteName(tt.suite)
		args := []string{"-tls1_3", "-ciphersuites", name}
		if tt.earlyData {
			name += " early_data"
			args = append(args, "-early_data")
		}
		t.Run(name, func(t *testing.T) {
			addr := opensslServer(t, args...)
			cache := newRecordingCache()
			cfg := &tls.Config{ServerName: "localhost", InsecureSkipVerify: true, MinVersion: tls.VersionTLS13, ClientSessionCache: cache}
			// OpenSSL sends two tickets after a full handshake unless told
			// otherwise (SSL_CTX_set_num_tickets).
			cp := clientHandshakeTickets(t, addr, cfg, "", 2)
			if cp.state.CipherSuite != tt.suite {
				t.Fatalf("negotiated %s", tls.CipherSuiteName(cp.state.CipherSuite))
			}
			f, err := ParseFlight13(cp.server, tt.suite, ParseKeyLog(cp.keyLog)[LabelServerTrafficSecret0])
			if err != nil {
				t.Fatal(err)
			}
			if sh := f.ServerHello(); sh == nil || sh.CipherSuite != tt.suite {
				t.Fatalf("ServerHello %+v", sh)
			}
			checkTickets13(t, f.Tickets, cp.newTickets)
			for _, nst := range f.Tickets {
				if nst.Lifetime == 0 || nst.EarlyData != tt.earlyData || (nst.MaxEarlyData > 0) != tt.earlyData {
					t.Errorf("ticket lifetime %d, early_data %v max %d; want early data %v", nst.Lifetime, nst.EarlyData, nst.MaxEarlyData, tt.earlyData)
				}
			}
		})
	}
}

func TestParseFlight12Truncated(t *testing.T) {
	cert := testCert(t)
	addr := goServer(t, &tls.Config{Certificates: []tls.Certificate{cert}, MaxVersion: tls.VersionTLS12})
	cp := clientHandshake(t, addr, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12, ClientSessionCache: newRecordingCache()}, "")
	full, err := ParseFlight12(cp.server)
	if err != nil {
		t.Fatal(err)
	}
	records, _, _ := parseRecords(cp.server)
	shEnd := recordHeaderLen + len(records[0].Payload) // the first record holds the ServerHello
	tests := []struct {
		name     string
		stream   []byte
		wantErr  bool
		wantSH   bool
		wantCCS  bool
		wantTick int
	}{
		{name: "empty", stream: nil, wantErr: true},
		{name: "half a header", stream: cp.server[:3], wantErr: true},
		{name: "first record cut", stream: cp.server[:shEnd-1], wantErr: true},
		{name: "first record", stream: cp.server[:shEnd], wantSH: true},
		{name: "all but the last byte", stream: cp.server[:len(cp.server)-1], wantSH: true, wantCCS: true, wantTick: 1},
		{name: "whole", stream: cp.server, wantSH: true, wantCCS: true, wantTick: 1},
		{name: "not TLS", stream: []byte("HTTP/1.1 400 Bad Request\r\n\r\n"), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := ParseFlight12(tt.stream)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v, want error %v", err, tt.wantErr)
			}
			if (f.ServerHello != nil) != tt.wantSH || f.SawChangeCipherSpec != tt.wantCCS || len(f.Tickets) != tt.wantTick {
				t.Errorf("ServerHello %v, CCS %v, %d tickets", f.ServerHello != nil, f.SawChangeCipherSpec, len(f.Tickets))
			}
			if f.ServerHello != nil && !slices.Equal(f.ServerHello.Extensions, full.ServerHello.Extensions) {
				t.Errorf("extensions %v, whole stream gives %v", f.ServerHello.Extensions, full.ServerHello.Extensions)
			}
		})
	}
}
