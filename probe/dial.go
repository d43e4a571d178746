package probe

import (
	"context"
	"fmt"
	"net"
	"net/netip"
)

// resolve picks the address every handshake of one probe dials, so that all
// of them reach the same server even behind round-robin DNS. It follows
// blackbox_exporter: the preferred family first, the other one as fallback.
func resolve(ctx context.Context, t Target, m *Module) (netip.Addr, error) {
	if a, ok := t.Addr(); ok {
		return a, nil
	}
	host := t.Host
	preferred, other := "ip6", "ip4"
	if m.PreferredIPProtocol == "ip4" {
		preferred, other = "ip4", "ip6"
	}
	var r net.Resolver
	ips, err := r.LookupNetIP(ctx, preferred, host)
	if err == nil && len(ips) > 0 {
		return ips[0].Unmap(), nil
	}
	if !m.IPProtocolFallback {
		return netip.Addr{}, fmt.Errorf("resolve %s (%s, no fallback): %w", host, preferred, lookupErr(err))
	}
	ips, err2 := r.LookupNetIP(ctx, other, host)
	if err2 == nil && len(ips) > 0 {
		return ips[0].Unmap(), nil
	}
	return netip.Addr{}, fmt.Errorf("resolve %s: %w", host, lookupErr(err2))
}

func lookupErr(err error) error {
	if err == nil {
		return fmt.Errorf("no addresses")
	}
	return err
}

// dial opens one TCP connection whose reads and writes end at the probe's
// deadline, so no handshake can outlive the probe. The probe's guard checks
// the address before connecting, and its reads draw on the probe's budget.
func dial(ctx context.Context, addr string) (net.Conn, error) {
	cs := connsFrom(ctx)
	d := net.Dialer{Control: cs.control}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	return cs.meter(conn), nil
}
