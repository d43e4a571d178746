package probe

import "context"

// sawTicket12 keeps the first TLS 1.2 ticket the chains obtained, for
// Ticketbleed's own offer.
func (s *riskSink) sawTicket12(sess *session12) {
	if s == nil || sess == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ticket12 == nil {
		s.ticket12 = sess
	}
}

// ticketbleed judges CVE-2016-9244. The session_ticket check offers its
// tickets through crypto/tls, whose 32-byte session ID leaves no room for
// the echo to be longer, so this check makes one offer of its own: the
// first ticket, by hand, with a 16-byte session ID. A server is vulnerable
// when the resumed offer comes back with a longer ID starting with ours,
// and an offer of the same ticket, repeated with a fresh ID, does so
// again: one odd answer could be a fluke, two are the bug. Without the
// signal there is no further connection. nil: no ticket offer was resumed
// (nothing to judge; no connection is made), or this offer was refused
// (behind a balancer, another backend may have answered) or failed.
func (h *handshaker) ticketbleed(ctx context.Context, ticketResumed bool) *bool {
	h.risks.mu.Lock()
	s := h.risks.ticket12
	h.risks.mu.Unlock()
	if s == nil || !ticketResumed {
		return nil
	}
	o, err := h.offer12Echo(ctx, s)
	switch {
	case err != nil:
		h.log.Debug("Ticketbleed offer failed", "step", "risks", "risk", RiskTicketbleed, "addr", h.addr, "err", err)
		return nil
	case !o.resumed:
		h.log.Debug("Ticketbleed offer refused: nothing to judge", "step", "risks", "risk", RiskTicketbleed, "addr", h.addr)
		return nil
	case !o.bled:
		no := false
		return &no
	}
	o, err = h.offer12Echo(ctx, s)
	if err != nil {
		h.log.Debug("Ticketbleed repeat failed", "step", "risks", "risk", RiskTicketbleed, "addr", h.addr, "err", err)
		return nil
	}
	h.log.Debug("Ticketbleed signal repeated", "step", "risks", "risk", RiskTicketbleed, "addr", h.addr, "confirmed", o.bled)
	return &o.bled
}
