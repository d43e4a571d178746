package probe

import "context"

// bleedObservations is what the TLS 1.2 ticket offers of one probe showed
// of Ticketbleed (CVE-2016-9244).
type bleedObservations struct {
	resumed int        // ticket offers the server resumed
	signal  *session12 // the session of the first offer answered with a longer ID
}

// sawTicketOffer notes the outcome of one TLS 1.2 ticket offer.
func (s *riskSink) sawTicketOffer(sess *session12, o offer12Outcome) {
	if s == nil || !o.resumed {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bleed.resumed++
	if o.bled && s.bleed.signal == nil {
		s.bleed.signal = sess
	}
}

// ticketbleed judges what the ticket offers showed. A server is vulnerable
// when a resumed offer with a 16-byte session ID came back with a longer
// ID starting with ours, and an offer of the same ticket, repeated with a
// fresh ID, does so again: one odd answer could be a fluke, two are the
// bug. Without the signal there is no extra connection. nil: no ticket
// offer was resumed (nothing to judge), or the repeat failed.
func (h *handshaker) ticketbleed(ctx context.Context) *bool {
	h.risks.mu.Lock()
	obs := h.risks.bleed
	h.risks.mu.Unlock()
	if obs.signal == nil {
		if obs.resumed == 0 {
			return nil
		}
		no := false
		return &no
	}
	o, err := h.offer12Echo(ctx, obs.signal)
	if err != nil {
		h.log.Debug("Ticketbleed repeat failed", "step", "risks", "risk", RiskTicketbleed, "addr", h.addr, "err", err)
		return nil
	}
	h.log.Debug("Ticketbleed signal repeated", "step", "risks", "risk", RiskTicketbleed, "addr", h.addr, "confirmed", o.bled)
	return &o.bled
}
