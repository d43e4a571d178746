package probe

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
)

// crypto/tls offers no PSK for a session whose certificate has expired,
// even with insecure_skip_verify. The probe must see that in its own
// ClientHello and fail the check, not report "not resumed".
func TestSessionNotOfferedIsNotARefusal(t *testing.T) {
	addr := testservers.ServeTLS(t, testservers.NewPKIExpired(t), nil)
	m := DefaultModule
	m.Checks, m.TicketWait = []Mechanism{MechanismPSK}, 500*time.Millisecond
	m.TLSConfig.InsecureSkipVerify = true
	r := Run(context.Background(), addr, "test", &m, nil, testLogger(t))
	c, ok := r.Check(MechanismPSK)
	if !ok || c.Completed || c.Resumed || !strings.Contains(c.Err, "did not offer") {
		t.Fatalf("psk check %+v: want an incomplete check saying the session was not offered", c)
	}
	if r.Success {
		t.Error("probe succeeded although the psk check could not run")
	}
}
