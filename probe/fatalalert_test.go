package probe

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"io"
	"log/slog"
	"maps"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
)

// alertServer is a crypto/tls server that notes how each connection's
// reading ended, so a test can tell a fatal alert from the client (crypto/tls
// reports "remote error: tls: internal error") from a close_notify (io.EOF).
// With forget, its tickets are handles of sessions it keeps, and a
// connection that ends with an alert from the client loses the sessions it
// issued, as RFC 5246 §7.2 asks of session IDs.
type alertServer struct {
	mu       sync.Mutex
	ends     []string
	sessions map[string][]byte // ticket → SessionState bytes, with forget
}

func startAlertServer(t *testing.T, pki *testservers.PKI, forget bool) (*alertServer, string) {
	s := &alertServer{sessions: map[string][]byte{}}
	base := &tls.Config{Certificates: []tls.Certificate{pki.TLSCertificate(t)}}
	// One ticket key for the clones below, each of which would otherwise
	// make its own.
	rand.Read(base.SessionTicketKey[:])
	addr := testservers.ServeTCP(t, func(c net.Conn) {
		cfg := base.Clone()
		var issued []string
		if forget {
			cfg.WrapSession = func(_ tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
				b, err := ss.Bytes()
				if err != nil {
					return nil, err
				}
				id := rand.Text()
				s.mu.Lock()
				s.sessions[id] = b
				s.mu.Unlock()
				issued = append(issued, id)
				return []byte(id), nil
			}
			cfg.UnwrapSession = func(id []byte, _ tls.ConnectionState) (*tls.SessionState, error) {
				s.mu.Lock()
				b, ok := s.sessions[string(id)]
				s.mu.Unlock()
				if !ok {
					return nil, nil // unknown: a full handshake
				}
				return tls.ParseSessionState(b)
			}
		}
		tc := tls.Server(c, cfg)
		defer tc.Close()
		var buf [1024]byte
		var err error
		for err == nil {
			_, err = tc.Read(buf[:])
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		s.ends = append(s.ends, err.Error())
		if forget && err.Error() == "remote error: tls: internal error" {
			for _, id := range issued {
				delete(s.sessions, id)
			}
		}
	})
	return s, addr
}

// alertsReceived counts the connections that ended with the client's fatal
// internal_error alert.
func (s *alertServer) alertsReceived() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, e := range s.ends {
		if e == "remote error: tls: internal error" {
			n++
		}
	}
	return n
}

// Go's stateless tickets resume after a fatal alert, which reached the
// server as one (an alert per mechanism judged, not one more: every other
// connection of the probe ends with close_notify or a TCP close); a server
// that forgets a connection's sessions on the alert refuses them.
func TestAfterFatalAlertGoServers(t *testing.T) {
	pki := testservers.NewPKI(t)
	tests := []struct {
		name   string
		forget bool
		want   map[Mechanism]bool
	}{
		{"stateless tickets survive", false, map[Mechanism]bool{MechanismSessionTicket: true, MechanismPSK: true}},
		{"sessions forgotten on the alert", true, map[Mechanism]bool{MechanismSessionTicket: false, MechanismPSK: false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, addr := startAlertServer(t, pki, tt.forget)
			m := testModule(t, pki, func(m *Module) { m.Risks = []Risk{RiskAfterFatalAlert} })
			r := Run(context.Background(), addr, "test", m, nil, testLogger(t))
			if !r.Success {
				t.Fatal(r.Failure)
			}
			if got := r.Risks.AfterFatalAlertAccepted; !maps.Equal(got, tt.want) {
				t.Errorf("after-fatal-alert verdicts %v, want %v", got, tt.want)
			}
			if n := srv.alertsReceived(); n != len(tt.want) {
				t.Errorf("server read %d fatal internal_error alerts, want %d (one per mechanism)", n, len(tt.want))
			}
		})
	}
}

// Only mechanisms the chains resumed are judged: a refusal after the alert
// would say nothing of a server that never resumes.
func TestAfterFatalAlertOnlyResumedMechanisms(t *testing.T) {
	pki := testservers.NewPKI(t)
	srv, addr := startAlertServer(t, pki, false)
	m := testModule(t, pki, func(m *Module) {
		m.Risks = []Risk{RiskAfterFatalAlert}
		m.TLSConfig.MaxVersion = "TLS12"
	})
	r := Run(context.Background(), addr, "test", m, nil, testLogger(t))
	// A Go server does not resume session IDs; TLS 1.3 is not probed.
	if got, want := r.Risks.AfterFatalAlertAccepted, map[Mechanism]bool{MechanismSessionTicket: true}; !maps.Equal(got, want) {
		t.Errorf("verdicts %v, want %v", got, want)
	}
	if n := srv.alertsReceived(); n != 1 {
		t.Errorf("server read %d fatal alerts, want 1", n)
	}
}

// Off by default: the default module sends no alert.
func TestAfterFatalAlertOffByDefault(t *testing.T) {
	pki := testservers.NewPKI(t)
	srv, addr := startAlertServer(t, pki, false)
	r := Run(context.Background(), addr, "test", testModule(t, pki, nil), nil, testLogger(t))
	if !r.Success {
		t.Fatal(r.Failure)
	}
	if r.Risks.AfterFatalAlertAccepted != nil {
		t.Errorf("verdicts %v from the default module", r.Risks.AfterFatalAlertAccepted)
	}
	if n := srv.alertsReceived(); n != 0 {
		t.Errorf("the default module sent %d fatal alerts", n)
	}
}

// Behind several backends an offer refused after the alert may have reached
// a backend that never issued the session: not judged. One backend resumes
// its stateless ticket (true); two round-robin ones, taking turns, answer
// the alerted session's offer with the other backend (absent), though the
// chain itself resumed on a retry. The debug log says why it stayed
// unjudged: errOtherBackend, not some other failure of the check.
func TestAfterFatalAlertUnjudgedBehindSeveralBackends(t *testing.T) {
	pki := testservers.NewPKI(t)
	m := testModule(t, pki, func(m *Module) {
		m.Checks = []Mechanism{MechanismSessionTicket}
		m.Risks = []Risk{RiskAfterFatalAlert}
		m.TLSConfig.ServerName = "localhost"
		m.TLSConfig.MaxVersion = "TLS12" // one connection at a time: the turns are known
	})
	for _, n := range []int{1, 2} {
		bs := newFleetOf(t, pki, n)
		var next atomic.Uint32
		addr := balancer(t, bs, func() int { return int(next.Add(1)) % len(bs) })
		var logs bytes.Buffer
		logger := slog.New(slog.NewTextHandler(io.MultiWriter(&logs, t.Output()), &slog.HandlerOptions{Level: slog.LevelDebug}))
		r := Run(context.Background(), addr, "test", m, NewSessions(SessionsOptions{}), logger)
		if !r.Success {
			t.Fatalf("%d backends: %s", n, r.Failure)
		}
		unjudged := strings.Contains(logs.String(), `msg="After-fatal-alert check not judged"`) &&
			strings.Contains(logs.String(), strconv.Quote(errOtherBackend.Error()))
		if unjudged != (n == 2) {
			t.Errorf("%d backends: logged unjudged for %q: %v, want %v", n, errOtherBackend, unjudged, n == 2)
		}
		c, _ := r.Check(MechanismSessionTicket)
		got, judged := r.Risks.AfterFatalAlertAccepted[MechanismSessionTicket]
		switch {
		case c.OffersResumed == 0:
			t.Errorf("%d backends: the chain resumed nothing, so the check did not run", n)
		case n == 1 && (!judged || !got):
			t.Errorf("one backend: verdict %v (judged %v), want true", got, judged)
		case n == 2 && judged:
			t.Errorf("two backends: verdict %v, want none", got)
		}
	}
}
