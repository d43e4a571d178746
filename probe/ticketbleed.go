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

// forgetTicket12 drops the TLS 1.2 ticket kept for Ticketbleed's own offer
// and the cross-name offers, so that the next one seen is kept instead.
func (s *riskSink) forgetTicket12() {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ticket12 = nil
}

// sawStandIn12 records a TLS 1.2 ticket stand-in's session as saw12 and
// sawTicket12 record a full handshake's ticket: for ticket_weakness, the
// Ticketbleed offer of its own and the cross-name offers.
func (s *riskSink) sawStandIn12(sess *session12) {
	if s == nil || sess == nil {
		return
	}
	if len(sess.master) > 0 {
		s.mu.Lock()
		s.tickets = append(s.tickets, ticketSecret{version: VersionTLS12, raw: sess.ticket, secret: sess.master})
		s.mu.Unlock()
	}
	s.sawTicket12(sess)
}

// sawTicketbleedSignal records what the session_ticket check's resumed
// hand-built first offer showed: whether the echo was longer than our ID.
func (s *riskSink) sawTicketbleedSignal(bled bool) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bleed12 = &bled
}

// ticketbleed judges CVE-2016-9244: a server is vulnerable when a resumed
// ticket offer with a 16-byte session ID comes back with a longer ID
// starting with ours, and an offer of the same ticket, repeated with a
// fresh ID, does so again: one odd answer could be a fluke, two are the
// bug. The first answer is, in the common case, the session_ticket check's
// own first offer (see firstTicketOffer12), so without a signal this check
// makes no connection. When that offer was not the hand-built one or was
// refused while a later offer resumed (behind a balancer), the check makes
// its own offer of the first ticket, as the first answer. nil: no ticket
// offer was resumed (nothing to judge; no connection is made), or this
// check's own offer was refused (another backend may have answered) or
// failed.
func (h *handshaker) ticketbleed(ctx context.Context, ticketResumed bool) *bool {
	h.risks.mu.Lock()
	s, signal := h.risks.ticket12, h.risks.bleed12
	h.risks.mu.Unlock()
	if s == nil || !ticketResumed {
		return nil
	}
	if signal == nil {
		o, err := h.offer12Echo(ctx, s)
		switch {
		case err != nil:
			h.log.Debug("Ticketbleed offer failed", "step", "risks", "risk", RiskTicketbleed, "addr", h.addr, "err", err)
			return nil
		case !o.resumed:
			h.log.Debug("Ticketbleed offer refused: nothing to judge", "step", "risks", "risk", RiskTicketbleed, "addr", h.addr)
			return nil
		}
		signal = &o.bled
	}
	if !*signal {
		no := false
		return &no
	}
	o, err := h.offer12Echo(ctx, s)
	if err != nil {
		h.log.Debug("Ticketbleed repeat failed", "step", "risks", "risk", RiskTicketbleed, "addr", h.addr, "err", err)
		return nil
	}
	h.log.Debug("Ticketbleed signal repeated", "step", "risks", "risk", RiskTicketbleed, "addr", h.addr, "confirmed", o.bled)
	return &o.bled
}
