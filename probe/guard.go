package probe

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
)

// Guard enforces a Policy on one probe and keeps what it refused, so that
// the caller can tell "not allowed" from "the target failed". The exporter
// makes one per request and hands it to Run through the context (WithGuard);
// without one, Run allows everything.
type Guard struct {
	policy Policy

	mu      sync.Mutex
	refused *RefusedError
}

// NewGuard returns a guard enforcing p.
func NewGuard(p Policy) *Guard { return &Guard{policy: p} }

type guardKey struct{}

// WithGuard returns a context whose probes g guards.
func WithGuard(ctx context.Context, g *Guard) context.Context {
	return context.WithValue(ctx, guardKey{}, g)
}

func guardFrom(ctx context.Context) *Guard {
	g, _ := ctx.Value(guardKey{}).(*Guard)
	return g
}

// Refused returns the first refusal, or nil.
func (g *Guard) Refused() *RefusedError {
	if g == nil {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.refused
}

// CheckTarget checks t's name and port against the policy.
func (g *Guard) CheckTarget(t Target) *RefusedError {
	if g == nil {
		return nil
	}
	return g.keep(g.policy.CheckTarget(t))
}

func (g *Guard) checkAddr(target string, ap netip.AddrPort) *RefusedError {
	if g == nil {
		return nil
	}
	return g.keep(g.policy.CheckAddr(target, ap))
}

func (g *Guard) keep(err *RefusedError) *RefusedError {
	if err != nil {
		g.mu.Lock()
		if g.refused == nil {
			g.refused = err
		}
		g.mu.Unlock()
	}
	return err
}

// maxProbeRead bounds what one probe reads from its target over all its
// connections. A whole probe of a real server reads some tens of kilobytes
// (one certificate chain per full handshake); a hostile server that streams
// is cut off here, whatever it does to each connection's tap (maxCapture).
const maxProbeRead = 1 << 20

var errReadBudget = fmt.Errorf("the target sent more than %d bytes in one probe", maxProbeRead)

// conns is what the dialer of one probe shares: the guard that checks each
// address before connecting and the probe's read budget.
type conns struct {
	guard  *Guard
	target string // canonical, for messages
	left   atomic.Int64
}

type connsKey struct{}

func withConns(ctx context.Context, t Target) (context.Context, *conns) {
	c := &conns{guard: guardFrom(ctx), target: t.String()}
	c.left.Store(maxProbeRead)
	return context.WithValue(ctx, connsKey{}, c), c
}

func connsFrom(ctx context.Context) *conns {
	c, _ := ctx.Value(connsKey{}).(*conns)
	return c
}

// control is net.Dialer.Control: it runs after the socket exists and before
// connect(2), on the address actually dialed, whatever spelling or DNS
// answer led there. A refusal means no packet left.
func (c *conns) control(network, address string, _ syscall.RawConn) error {
	if c == nil || c.guard == nil {
		return nil
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return c.guard.keep(&RefusedError{Reason: ReasonAddressNotAllowed, Target: c.target, List: "the dialer (unparsable address)"})
	}
	if err := c.guard.checkAddr(c.target, ap); err != nil {
		return err
	}
	return nil
}

// meter wraps a connection so that its reads draw on the probe's budget.
func (c *conns) meter(conn net.Conn) net.Conn {
	if c == nil {
		return conn
	}
	return &meteredConn{Conn: conn, left: &c.left}
}

type meteredConn struct {
	net.Conn
	left *atomic.Int64
}

// Read reads at most what is left of the budget. Concurrent connections may
// overshoot it by one read each.
func (m *meteredConn) Read(p []byte) (int, error) {
	left := m.left.Load()
	if left <= 0 {
		return 0, errReadBudget
	}
	if int64(len(p)) > left {
		p = p[:left]
	}
	n, err := m.Conn.Read(p)
	m.left.Add(-int64(n))
	return n, err
}
