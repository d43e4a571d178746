package probe

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Run probes target (host:port) as m describes and returns what it learned.
// A Guard in ctx (WithGuard) decides which targets and addresses it may
// connect to; a refusal sets Result.Refused.
// It never returns later than the context's deadline or m.Timeout, whichever
// comes first, plus the time to tidy up. sessions may be nil; then no earlier
// session is offered and no accepted-age is measured. logger receives the
// probe's records, all at Debug level, with attributes such as mechanism,
// step, addr and err (for --log.level=debug and /probe?debug=true); it may
// be nil.
func Run(ctx context.Context, target string, module string, m *Module, sessions *Sessions, logger *slog.Logger) (r Result) {
	start := time.Now()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithTimeout(ctx, m.Timeout)
	defer cancel()
	r = Result{Target: target, Module: module, Start: start, Versions: map[uint16]bool{}}
	defer func() { r.Duration = time.Since(start) }()

	t, err := ParseTarget(target)
	if err != nil {
		r.Failure = err.Error()
		return r
	}
	r.Target = t.String()
	ctx, cs := withConns(ctx, t)
	if r.refuse(cs.guard.CheckTarget(t)) {
		return r
	}
	resolveStart := time.Now()
	ip, err := resolve(ctx, t, m)
	if _, literal := t.Addr(); !literal {
		r.DNSLookup = time.Since(resolveStart)
	}
	if err != nil {
		r.Failure = err.Error()
		logger.Debug("Target not resolved", "step", "resolve", "err", err)
		return r
	}
	// Every connection of the probe dials this one address, so that all of
	// them reach the same server even behind round-robin DNS. The dialer
	// checks it, on every connection and only there: one place that no code
	// path can go around.
	r.setAddr(netip.AddrPortFrom(ip, t.Port))
	h := &handshaker{module: m, addr: r.Addr, serverName: t.Host, log: logger, now: sessions.clock(), risks: &riskSink{}}
	if m.TLSConfig.ServerName != "" {
		h.serverName = m.TLSConfig.ServerName
	}
	r.ServerName = h.serverName
	logger.Debug("Probing", "addr", h.addr, "ip_protocol", r.IPProtocol, "dns_lookup_seconds", r.DNSLookup.Seconds(),
		"server_name", h.serverName, "versions", versionNames(m.Versions()), "checks", m.Checks)
	key := module + "\x00" + r.Target + "\x00" + h.serverName

	h.sessions, h.key = sessions, key
	if sessions.oneServer(key) {
		h.oneServer = true
		logger.Debug("Earlier probes met one server: the ticket offer is hand-built, replays run beside the first offers",
			"step", "plan", "addr", h.addr)
	}
	outs := h.runChains(ctx, m)
	h.recheckStandIn12(ctx, outs)
	extra := h.moreTickets(ctx, outs)
	h.fleet = h.newFleet(outs, extra)
	h.startPSKWithoutDHE(ctx, false, nil)
	h.followUp(ctx, outs, h.fleet)
	if h.fleet.balanced() {
		sessions.markBalanced(key)
	}
	r.collect(outs, logger)
	h.settleKeyNames(ctx, &r, outs, extra)
	sessions.learnKeyNames(key, r.Tickets)
	h.runRisks(ctx, &r)
	h.ending.Wait() // no connection outlives the probe
	if r.refuse(cs.guard.Refused()) {
		r.Checks, r.Versions, r.Tickets, r.KeyNames, r.AcceptedMaxAge = nil, map[uint16]bool{}, nil, nil, nil
		r.Risks = RiskResult{}
		logger.Debug("Probe refused", "reason", r.Failure)
		return r
	}
	r.judge()
	if r.Failure != "" {
		logger.Debug("Probe failed", "reason", r.Failure, "duration_seconds", time.Since(start).Seconds())
	}
	return r
}

// refuse marks the result refused when err is not nil.
func (r *Result) refuse(err *RefusedError) bool {
	if err == nil {
		return false
	}
	r.Refused, r.Failure = err, err.Error()
	return true
}

// runChains runs, concurrently, one chain per configured mechanism of every
// probed version, and a plain handshake for a probed version no mechanism
// covers (so version support is always known).
func (h *handshaker) runChains(ctx context.Context, m *Module) []chainOut {
	var jobs []func() chainOut
	for _, v := range m.Versions() {
		covered := false
		for _, c := range m.Checks {
			if c.Version() != v {
				continue
			}
			covered = true
			switch c {
			case MechanismSessionID:
				jobs = append(jobs, func() chainOut { return h.sessionIDChain(ctx) })
			case MechanismSessionTicket:
				jobs = append(jobs, func() chainOut { return h.ticketChain12(ctx) })
			case MechanismPSK:
				jobs = append(jobs, func() chainOut { return h.pskChain13(ctx) })
			}
		}
		if !covered {
			jobs = append(jobs, func() chainOut {
				_, err := h.full(ctx, v, false)
				return chainOut{version: v, versionErr: err}
			})
		}
	}
	outs := make([]chainOut, len(jobs))
	var wg sync.WaitGroup
	for i, job := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i] = job()
		}()
	}
	wg.Wait()
	return outs
}

// collect folds the chains' outcomes into the result: version support,
// checks (dropped for versions the server refused) and accepted ages.
func (r *Result) collect(outs []chainOut, logger *slog.Logger) {
	for _, o := range outs {
		switch {
		case o.versionErr == nil:
			r.Versions[o.version] = true
		case errors.Is(o.versionErr, errVersionRefused):
			if _, known := r.Versions[o.version]; !known {
				r.Versions[o.version] = false
			}
			logger.Debug("Version not supported", "step", "full_handshake", "version", VersionName(o.version), "err", o.versionErr)
		}
	}
	for _, o := range outs {
		if o.check.Mechanism == "" {
			continue
		}
		if ok, known := r.Versions[o.version]; known && !ok {
			continue // the server lacks the version; the mechanism is absent, not failed
		}
		c := o.check
		attrs := []any{"mechanism", c.Mechanism, "completed", c.Completed, "issued", c.Issued, "resumed", c.Resumed,
			"first_offer_resumed", c.FirstOfferResumed, "offers_resumed", c.OffersResumed, "offers_refused", c.OffersRefused,
			"full_handshake", c.FullHandshake, "resumed_handshake", c.ResumedHandshake}
		if c.Recent {
			attrs = append(attrs, "resumed_within_window", c.RecentAge.Round(time.Second))
		}
		if c.Err != "" {
			attrs = append(attrs, "err", c.Err)
		}
		logger.Debug("Check done", attrs...)
		r.Checks = append(r.Checks, c)
		if o.hasMaxAge {
			if r.AcceptedMaxAge == nil {
				r.AcceptedMaxAge = map[Mechanism]time.Duration{}
			}
			r.AcceptedMaxAge[c.Mechanism] = o.maxAge
		}
	}
}

// settleKeyNames summarises the tickets of all chains. When one version
// produced a single ticket whose format cannot be told on its own (it shares
// no prefix with any other ticket), one more full handshake at that version
// fetches a second ticket: a key name is only a name once two tickets show it.
func (h *handshaker) settleKeyNames(ctx context.Context, r *Result, outs []chainOut, extra []ticketSeen) {
	ts := append(chainTickets(outs), extra...)
	for _, v := range ambiguous(ts) {
		more, err := h.ticketsAt(ctx, v)
		if err != nil {
			continue
		}
		ts = append(ts, more...)
	}
	if len(ts) == 0 {
		return
	}
	known := 0
	if h.fleet != nil {
		known = max(h.fleet.nameLen[VersionTLS12], h.fleet.nameLen[VersionTLS13])
	}
	r.Tickets, r.KeyNames = summariseKnown(ts, known)
	for v, t := range r.Tickets {
		h.log.Debug("Tickets seen", "step", "tickets", "version", VersionName(v), "count", t.Count,
			"lifetime_seconds", t.LifetimeHint, "format", t.Format, "key_name_bytes", t.KeyNameBytes, "keys_seen", t.KeysSeen, "max_early_data", t.MaxEarlyData)
	}
}

// ticketsAt runs one more full handshake at version v for its tickets, to
// infer key names from.
func (h *handshaker) ticketsAt(ctx context.Context, v uint16) ([]ticketSeen, error) {
	var more []ticketSeen
	var err error
	if v == VersionTLS12 {
		_, more, err = h.ticketHandshake12(ctx)
	} else {
		_, more, err = h.ticketHandshake13(ctx)
	}
	if err != nil {
		h.log.Debug("No further ticket for key-name inference", "step", "tickets", "version", VersionName(v), "addr", h.addr, "err", err)
	}
	return more, err
}

// judge sets Success: the target completed a handshake, and every check that
// applies could run. Failure names what did not.
func (r *Result) judge() {
	if r.Failure != "" {
		return
	}
	var hints []string
	for _, c := range r.Checks {
		if c.Hint != "" {
			hints = append(hints, c.Hint)
		}
	}
	if r.HighestVersion() == 0 {
		var why []string
		for _, c := range r.Checks {
			if c.Err != "" {
				why = append(why, c.Err)
			}
		}
		if len(why) == 0 {
			why = append(why, "the server refused every version probed")
		}
		r.Failure = "no TLS handshake completed: " + strings.Join(dedupe(append(dedupe(why), dedupe(hints)...)), "; ")
		return
	}
	var failed []string
	for _, c := range r.Checks {
		if !c.Completed {
			failed = append(failed, fmt.Sprintf("%s check: %s", c.Mechanism, c.Err))
		}
	}
	if len(failed) > 0 {
		r.Failure = strings.Join(append(failed, dedupe(hints)...), "; ")
		return
	}
	r.Success = true
}

// setAddr records the address every connection dials, with the figures
// blackbox_exporter publishes for it. The hash covers the address's own
// bytes, 4 for IPv4 (resolve unmaps IPv4-mapped IPv6) and 16 for IPv6, as
// blackbox_exporter's ipHash does (To4, else To16).
func (r *Result) setAddr(ap netip.AddrPort) {
	r.Addr = ap.String()
	r.IPProtocol = 6
	if ap.Addr().Is4() {
		r.IPProtocol = 4
	}
	h := fnv.New32a()
	h.Write(ap.Addr().AsSlice())
	r.IPAddrHash = h.Sum32()
}

func dedupe(ss []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func versionNames(vs []uint16) []string {
	var out []string
	for _, v := range vs {
		out = append(out, VersionName(v))
	}
	return out
}
