package probe

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
)

// countingListener is a loopback listener that counts the connections that
// reached it and closes each at once.
func countingListener(t *testing.T) (port string, accepted *atomic.Int64) {
	t.Helper()
	accepted = new(atomic.Int64)
	addr := testservers.ServeTCP(t, func(net.Conn) { accepted.Add(1) })
	_, port, _ = net.SplitHostPort(addr)
	return port, accepted
}

func guardCtx(t *testing.T, entries ...string) (context.Context, *Guard) {
	t.Helper()
	l, err := ParseAllowList("test list", entries)
	if err != nil {
		t.Fatal(err)
	}
	g := NewGuard(Policy{l})
	return WithGuard(context.Background(), g), g
}

// Every spelling of the loopback address is refused by the dialer itself,
// before connect(2): the listener never sees a connection.
func TestDialerRefusesBeforeConnecting(t *testing.T) {
	port, accepted := countingListener(t)
	for _, addr := range []string{
		"127.0.0.1:" + port,
		"[::ffff:127.0.0.1]:" + port,
		"0.0.0.0:" + port, // Linux connects the unspecified address to the host itself
		"127.0.0.2:" + port,
	} {
		t.Run(addr, func(t *testing.T) {
			ctx, g := guardCtx(t, "10.0.0.0/8")
			tg, _ := ParseTarget("localhost:" + port)
			ctx, _ = withConns(ctx, tg)
			conn, err := dial(ctx, addr)
			if err == nil {
				conn.Close()
				t.Fatal("dial succeeded")
			}
			var re *RefusedError
			if !errors.As(err, &re) || re.Reason != ReasonAddressNotAllowed {
				t.Fatalf("dial error %v, want an address refusal", err)
			}
			if g.Refused() != re {
				t.Errorf("guard kept %v, want the dialer's refusal", g.Refused())
			}
		})
	}
	// Give a connection that slipped through time to be counted.
	time.Sleep(50 * time.Millisecond)
	if n := accepted.Load(); n != 0 {
		t.Errorf("listener accepted %d connections from refused dials", n)
	}

	ctx, g := guardCtx(t, "127.0.0.0/8:"+port)
	tg, _ := ParseTarget("localhost:" + port)
	ctx, _ = withConns(ctx, tg)
	conn, err := dial(ctx, "127.0.0.1:"+port)
	if err != nil {
		t.Fatalf("allowed dial failed: %v", err)
	}
	conn.Close()
	if g.Refused() != nil {
		t.Errorf("guard kept a refusal of an allowed dial: %v", g.Refused())
	}
}

// The dialer's check for addresses that must never be dialed from a test:
// its Control hook is called directly, as net.Dialer would before connect.
func TestDialerControlRefusesOtherNetworks(t *testing.T) {
	tests := []struct {
		entries []string
		address string
		refused bool
	}{
		{[]string{"192.168.0.0/16"}, "10.1.2.3:443", true},
		{[]string{"192.168.0.0/16"}, "192.168.7.7:443", false},
		{[]string{"192.168.0.0/16:443"}, "192.168.7.7:22", true},
		{[]string{"[2001:db8::/32]"}, "[2001:db8::1]:443", false},
		{[]string{"[2001:db8::/32]"}, "[2001:db9::1]:443", true},
		{[]string{"*.example.com"}, "169.254.169.254:80", true},
		{[]string{"*.example.com"}, "[fe80::a9fe:a9fe%eth0]:80", true},
		{[]string{"*.example.com"}, "10.1.2.3:443", false},
		{[]string{"*.example.com"}, "not an address", true},
	}
	for _, tt := range tests {
		ctx, g := guardCtx(t, tt.entries...)
		_, cs := withConns(ctx, Target{Host: "a.example.com", Port: 443})
		err := cs.control("tcp", tt.address, nil)
		if (err != nil) != tt.refused || (g.Refused() != nil) != tt.refused {
			t.Errorf("%v dialing %s: control error %v, guard %v; want refused=%t", tt.entries, tt.address, err, g.Refused(), tt.refused)
		}
	}
}

// A probe the allow-list refuses reports it in Result.Refused, never
// connects, and its failure does not say where the name resolved.
func TestRunRefused(t *testing.T) {
	pki := testservers.NewPKI(t)
	addr := startGoServer(t, pki, nil)
	_, port, _ := net.SplitHostPort(addr)
	m := testModule(t, pki, func(m *Module) { m.PreferredIPProtocol = "ip4" })
	tests := []struct {
		target  string
		entries []string
		reason  RefusalReason // "" = allowed, and the probe succeeds
	}{
		{"localhost:" + port, []string{"10.0.0.0/8"}, ReasonAddressNotAllowed}, // a name that "rebinds" to loopback
		{"0.0.0.0:" + port, []string{"10.0.0.0/8"}, ReasonTargetNotAllowed},
		{"[::ffff:127.0.0.1]:" + port, []string{"10.0.0.0/8"}, ReasonTargetNotAllowed},
		{"127.0.0.1:" + port, []string{"127.0.0.1:1-" + strconv.Itoa(mustAtoi(t, port)-1)}, ReasonTargetNotAllowed},
		{"localhost:" + port, []string{"*.example.com"}, ReasonTargetNotAllowed},
		{"localhost:" + port, []string{"localhost", "10.0.0.0/8"}, ReasonAddressNotAllowed},
		{"localhost:" + port, []string{"localhost:" + port}, ""},
		{"localhost:" + port, []string{"localhost", "127.0.0.0/8"}, ""},
		{"[::ffff:127.0.0.1]:" + port, []string{"127.0.0.1"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.target+" "+tt.entries[0], func(t *testing.T) {
			ctx, _ := guardCtx(t, tt.entries...)
			r := Run(ctx, tt.target, "test", m, nil, testLogger(t))
			switch {
			case tt.reason == "":
				if r.Refused != nil || !r.Success {
					t.Fatalf("allowed probe: refused %v, failure %s", r.Refused, r.Failure)
				}
			case r.Refused == nil || r.Refused.Reason != tt.reason:
				t.Fatalf("Refused = %v (failure %q), want %s", r.Refused, r.Failure, tt.reason)
			case r.Success || len(r.Checks) > 0 || len(r.Versions) > 0:
				t.Errorf("refused probe reports facts: %+v", r)
			}
		})
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A target that streams bytes without end costs a probe its read budget and
// no more.
func TestReadBudget(t *testing.T) {
	addr := testservers.ServeTCP(t, func(c net.Conn) {
		buf := make([]byte, 32<<10)
		for i := 0; i < 4*maxProbeRead/len(buf); i++ {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	})
	tg, _ := ParseTarget(addr)
	ctx, _ := withConns(context.Background(), tg)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var total int64
	for range 2 { // two connections share one budget
		conn, err := dial(ctx, addr)
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, conn)
		conn.Close()
		total += n
		if total >= maxProbeRead && !errors.Is(err, errReadBudget) {
			t.Errorf("read %d bytes, ended with %v, want the budget error", total, err)
		}
	}
	if total != maxProbeRead {
		t.Errorf("two connections read %d bytes in all, want exactly the budget %d", total, maxProbeRead)
	}
}
