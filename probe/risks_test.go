package probe

import (
	"bytes"
	"context"
	"crypto/tls"
	"testing"

	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
	"github.com/resumption-exporter/resumption_exporter/probe/internal/wire"
)

// testHandshaker returns a handshaker for addr as Run would make one.
func testHandshaker(t *testing.T, m *Module, addr string) *handshaker {
	return &handshaker{module: m, addr: addr, serverName: testservers.ServerName, log: testLogger(t),
		now: (*Sessions)(nil).clock(), risks: &riskSink{}}
}

// TestSessionSecretLayout pins the layout of crypto/tls's SessionState
// encoding, which Go documents as opaque: if a Go release changes it, this
// test fails and sessionsecret.go must follow. The TLS 1.2 master secret
// is checked against the key log; the TLS 1.3 PSK, which no key log holds,
// by a Go server accepting the binder made with it.
func TestSessionSecretLayout(t *testing.T) {
	pki := testservers.NewPKI(t)
	addr := startGoServer(t, pki, nil)
	m := testModule(t, pki, nil)
	h := testHandshaker(t, m, addr)
	ctx := context.Background()

	fh, err := h.full(ctx, VersionTLS12, true)
	if err != nil || len(fh.sessions) == 0 {
		t.Fatalf("TLS 1.2 handshake: %v (%d sessions)", err, len(fh.sessions))
	}
	s12, err := secretOf(fh.sessions[0])
	if err != nil {
		t.Fatalf("Go %s changed SessionState.Bytes: %v", "release", err)
	}
	if s12.version != VersionTLS12 || s12.suite != fh.state.CipherSuite || !bytes.Equal(s12.secret, fh.masterSecret()) {
		t.Fatalf("SessionState.Bytes layout changed: parsed version %#x suite %#x, secret matches key log: %v",
			s12.version, s12.suite, bytes.Equal(s12.secret, fh.masterSecret()))
	}

	fh, _, err = h.ticketHandshake13(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p := h.risks.lastPSK()
	if p == nil {
		t.Fatal("no TLS 1.3 session recorded (SessionState.Bytes layout changed?)")
	}
	if p.secret.version != VersionTLS13 || p.secret.suite != fh.state.CipherSuite {
		t.Fatalf("SessionState.Bytes layout changed: parsed version %#x suite %#x, want TLS 1.3 %#x", p.secret.version, p.secret.suite, fh.state.CipherSuite)
	}
	_, msg, _, _, err := p.clientHello(h.serverName, []uint8{wire.PSKModeDHE}, false)
	if err != nil {
		t.Fatal(err)
	}
	sh, err := h.sendHello13(ctx, msg)
	if err != nil {
		t.Fatal(err)
	}
	if !sh.PSKSelected || sh.KeyShareGroup == 0 {
		t.Fatalf("Go server did not resume the hand-built psk_dhe_ke offer (PSK parsed wrongly: SessionState.Bytes layout changed?): %+v", sh)
	}
}

// A Go server supports only psk_dhe_ke: offered psk_ke alone, it falls back
// to a full handshake, which the probe reads as 0.
func TestPSKWithoutDHEGoServer(t *testing.T) {
	pki := testservers.NewPKI(t)
	addr := startGoServer(t, pki, nil)
	r := Run(context.Background(), addr, "test", testModule(t, pki, nil), nil, testLogger(t))
	if !r.Success {
		t.Fatal(r.Failure)
	}
	if got := r.Risks.PSKWithoutDHE; got == nil || *got {
		t.Fatalf("psk_without_dhe = %v, want false", fmtBool(got))
	}
}

// Without TLS 1.3 there is no PSK to offer: the verdict is absent.
func TestPSKWithoutDHENotApplicable(t *testing.T) {
	pki := testservers.NewPKI(t)
	addr := startGoServer(t, pki, func(c *tls.Config) { c.MaxVersion = tls.VersionTLS12 })
	r := Run(context.Background(), addr, "test", testModule(t, pki, nil), nil, testLogger(t))
	if r.Risks.PSKWithoutDHE != nil {
		t.Fatalf("psk_without_dhe = %v on a TLS 1.2 server, want absent", *r.Risks.PSKWithoutDHE)
	}
}

func fmtBool(b *bool) string {
	if b == nil {
		return "absent"
	}
	if *b {
		return "true"
	}
	return "false"
}

// Go's crypto/tls servers never accept 0-RTT over TCP: their tickets carry
// no early_data extension, so the check decides without sending any.
func TestEarlyDataGoServer(t *testing.T) {
	pki := testservers.NewPKI(t)
	addr := startGoServer(t, pki, nil)
	m := testModule(t, pki, func(m *Module) { m.Risks = []Risk{RiskEarlyData} })
	r := Run(context.Background(), addr, "test", m, nil, testLogger(t))
	if !r.Success {
		t.Fatal(r.Failure)
	}
	if got := r.Risks.EarlyDataAccepted; got == nil || *got {
		t.Errorf("early data accepted = %s, want false", fmtBool(got))
	}
	if r.Risks.EarlyDataReplayAccepted != nil {
		t.Errorf("replay verdict %s without an accepted first attempt", fmtBool(r.Risks.EarlyDataReplayAccepted))
	}
	if r.Risks.PSKWithoutDHE != nil || r.Risks.Ticketbleed != nil || r.Risks.TicketWeaknesses != nil {
		t.Errorf("risk checks the module did not list ran: %+v", r.Risks)
	}
}

func TestModuleRisks(t *testing.T) {
	for _, tc := range []struct {
		risks   []Risk
		payload string
		ok      bool
	}{
		{DefaultRisks, DefaultEarlyDataPayload, true},
		{[]Risk{}, "", true},
		{Risks, "x", true},
		{[]Risk{"heartbleed"}, "", false},
		{[]Risk{RiskTicketbleed, RiskTicketbleed}, "", false},
		{nil, string(make([]byte, maxEarlyDataPayload+1)), false},
	} {
		m := DefaultModule
		m.Risks, m.EarlyDataPayload = tc.risks, tc.payload
		if err := m.Validate(); (err == nil) != tc.ok {
			t.Errorf("risks %v, %d-byte payload: err %v, want ok %v", tc.risks, len(tc.payload), err, tc.ok)
		}
	}
	if DefaultModule.HasRisk(RiskEarlyData) {
		t.Error("early_data is on by default; it sends application data")
	}
}
