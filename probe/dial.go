package probe

import (
	"context"
	"fmt"
	"net"
	"strconv"

	"github.com/resumption-exporter/resumption_exporter/probe/starttls"
)

// ParseTarget checks a target given as host:port and returns its parts. It
// accepts what a user would write in a scrape config and nothing else, so a
// typo is an HTTP 400 rather than a probe of something unintended.
func ParseTarget(target string) (host, port string, err error) {
	host, port, err = net.SplitHostPort(target)
	if err != nil {
		return "", "", fmt.Errorf("target %q: want host:port: %w", target, err)
	}
	if host == "" {
		return "", "", fmt.Errorf("target %q: empty host", target)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return "", "", fmt.Errorf("target %q: port %q is not a number from 1 to 65535", target, port)
	}
	return host, port, nil
}

// resolve picks the address every handshake of one probe dials, so that all
// of them reach the same server even behind round-robin DNS. It follows
// blackbox_exporter: the preferred family first, the other one as fallback.
func resolve(ctx context.Context, host string, m *Module) (net.IP, error) {
	if ip := net.ParseIP(host); ip != nil {
		return ip, nil
	}
	preferred, other := "ip6", "ip4"
	if m.PreferredIPProtocol == "ip4" {
		preferred, other = "ip4", "ip6"
	}
	var r net.Resolver
	ips, err := r.LookupIP(ctx, preferred, host)
	if err == nil && len(ips) > 0 {
		return ips[0], nil
	}
	if !m.IPProtocolFallback {
		return nil, fmt.Errorf("resolve %s (%s, no fallback): %w", host, preferred, lookupErr(err))
	}
	ips, err2 := r.LookupIP(ctx, other, host)
	if err2 == nil && len(ips) > 0 {
		return ips[0], nil
	}
	return nil, fmt.Errorf("resolve %s: %w", host, lookupErr(err2))
}

func lookupErr(err error) error {
	if err == nil {
		return fmt.Errorf("no addresses")
	}
	return err
}

// dial opens one TCP connection whose reads and writes end at the probe's
// deadline, so no handshake can outlive the probe.
func dial(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	return conn, nil
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
