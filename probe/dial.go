package probe

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	"github.com/resumption-exporter/resumption_exporter/probe/starttls"
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

// dial opens one connection of the probe, ready for a ClientHello: for a
// STARTTLS module it has run the protocol's preamble. Every connection a
// probe makes comes from here, so full handshakes, offers and replays all
// meet the server the same way.
func (h *handshaker) dial(ctx context.Context) (net.Conn, error) {
	conn, err := dial(ctx, h.addr)
	if err != nil || h.module.StartTLS.Protocol == starttls.None {
		return conn, err
	}
	opts := starttls.Options{EHLOName: h.module.StartTLS.EHLOName, ServerName: h.serverName}
	if err := starttls.Negotiate(ctx, conn, h.module.StartTLS.Protocol, opts); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}
