package probe

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"net"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
	"github.com/resumption-exporter/resumption_exporter/probe/internal/wire"
)

// A server that answers the psk_ke offer with a HelloRetryRequest (a
// stateless retry with a cookie, as a server under load may send, after
// which it could still accept psk_ke) leaves psk_without_dhe unjudged:
// the retry is no refusal. Every other hello goes to crypto/tls.
func TestPSKWithoutDHEHelloRetryRequest(t *testing.T) {
	pki := testservers.NewPKI(t)
	cfg := &tls.Config{Certificates: []tls.Certificate{pki.TLSCertificate(t)}}
	var retried atomic.Int64
	addr := testservers.ServeTCP(t, func(c net.Conn) {
		head, ch := readClientHello(c)
		if ch == nil {
			return
		}
		if !slices.Equal(ch.PSKModes, []uint8{wire.PSKModePlain}) {
			tc := tls.Server(&replayConn{Conn: c, head: head}, cfg)
			defer tc.Close()
			drain(tc)
			return
		}
		retried.Add(1)
		cookie := make([]byte, 32)
		rand.Read(cookie)
		hrr := &wire.ServerHello{LegacyVersion: wire.VersionTLS12, HelloRetryRequest: true, SessionID: ch.SessionID,
			CipherSuite: ch.CipherSuites[0], SupportedVersion: wire.VersionTLS13,
			Other: []wire.Extension{{Type: 44, Data: append([]byte{0, byte(len(cookie))}, cookie...)}}}
		msg, err := hrr.Marshal()
		if err != nil {
			t.Error(err)
			return
		}
		c.Write(wire.AppendRecords(nil, wire.RecordHandshake, wire.VersionTLS12, msg))
	})
	m := testModule(t, pki, func(m *Module) { m.Risks = []Risk{RiskPSKWithoutDHE} })
	r := Run(context.Background(), addr, "test", m, nil, testLogger(t))
	if !r.Success {
		t.Fatal(r.Failure)
	}
	if retried.Load() == 0 {
		t.Fatal("no psk_ke offer reached the server")
	}
	if got := r.Risks.PSKWithoutDHE; got != nil {
		t.Errorf("psk_without_dhe = %s after a HelloRetryRequest, want absent (not judged)", fmtBool(got))
	}
}

// While the psk_ke offer made beside the first offers is in flight with
// the full handshake's last ticket, the PSK retries (the probe turned out
// to show several backends) do not offer that ticket too: a single-use one
// would be refused to one of the two. Once it is answered, they do.
func TestPSKRetryCandidatesSparePendingPSKKE(t *testing.T) {
	fresh, last := &stored{key: 7}, &stored{key: 7}
	o := &chainOut{check: Check{Mechanism: MechanismPSK}, fresh: fresh, keep: last}
	h := &handshaker{pskKE: &pskKEOffer{done: make(chan struct{})}}
	if got := h.candidates(o); len(got) != 1 || got[0] != fresh {
		t.Errorf("candidates with the psk_ke offer in flight: %v, want the fresh session alone", got)
	}
	close(h.pskKE.done)
	if got := h.candidates(o); len(got) != 1 || got[0] != last {
		t.Errorf("candidates once the psk_ke offer was answered: %v, want the last ticket alone", got)
	}
}
