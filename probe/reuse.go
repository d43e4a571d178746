package probe

import (
	"context"
	"maps"
)

func (s *riskSink) sawResumedFresh(version uint16, st *stored) {
	if s == nil || st == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.resumedFresh == nil {
		s.resumedFresh = map[uint16]*stored{}
	}
	s.resumedFresh[version] = st
}

// ticketReuse offers, once more and as the chain did, each version's fresh
// ticket that the chain's first offer resumed: resumed again = the server
// accepts one ticket twice (stateless tickets always do; RFC 8446 §8.1's
// single-use tickets do not). A version whose offer failed is absent.
func (h *handshaker) ticketReuse(ctx context.Context) map[uint16]bool {
	h.risks.mu.Lock()
	fresh := maps.Clone(h.risks.resumedFresh)
	h.risks.mu.Unlock()
	out := map[uint16]bool{}
	for _, v := range []uint16{VersionTLS12, VersionTLS13} {
		st := fresh[v]
		if st == nil {
			continue
		}
		m := MechanismSessionTicket
		if v == VersionTLS13 {
			m = MechanismPSK
		}
		a, err := h.offerer(m)(ctx, st)
		if err != nil {
			h.log.Debug("Ticket reuse offer failed", "step", "risks", "risk", RiskTicketReuse, "version", VersionName(v), "addr", h.addr, "err", err)
			continue
		}
		h.log.Debug("Ticket offered again", "step", "risks", "risk", RiskTicketReuse, "version", VersionName(v), "addr", h.addr, "resumed", a.resumed)
		out[v] = a.resumed
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func (s *riskSink) sawRenewal12(renewed bool) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.renewed12 = &renewed
}
