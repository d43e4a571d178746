package main

import (
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/resumption-exporter/resumption_exporter/probe"
)

// admission decides, before a probe starts, whether it may run: its target
// must pass the allow-lists and a probe slot must be free. It wraps the
// /probe handler, and hands the handler a probe.Guard that the dialer uses
// to check every address it connects to.
//
// Refusals answer as blackbox_exporter users would want: 403 for a target
// the exporter will not probe (a configuration error, not a failing target,
// so no probe_success 0 to page anyone), 503 when it is too busy (the scrape
// fails, up is 0 for that target, and the next scrape tries again).
type admission struct {
	flagList *probe.AllowList // --probe.allowed-targets
	config   *SafeConfig      // for the configuration file's allowed_targets
	limits   *limiter
	logger   *slog.Logger
	refused  *prometheus.CounterVec
}

// refusalReasons is every value of the reason label.
var refusalReasons = []string{
	string(probe.ReasonTargetNotAllowed), string(probe.ReasonAddressNotAllowed),
	reasonConcurrency, reasonTargetConcurrency,
}

func newAdmission(reg prometheus.Registerer, flagList *probe.AllowList, sc *SafeConfig, l *limiter, logger *slog.Logger) *admission {
	a := &admission{
		flagList: flagList, config: sc, limits: l, logger: logger,
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "resumption_exporter_probes_refused_total",
			Help: "Probes refused before they started, by reason (target_not_allowed, address_not_allowed, concurrency, target_concurrency).",
		}, []string{"reason"}),
	}
	for _, r := range refusalReasons {
		a.refused.WithLabelValues(r)
	}
	reg.MustRegister(a.refused,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "resumption_exporter_probes_in_flight",
			Help: "Probes running now.",
		}, func() float64 { return float64(l.InFlight()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "resumption_exporter_probes_max_in_flight",
			Help: "The most probes that may run at once (--probe.max-concurrent).",
		}, func() float64 { return float64(l.max) }),
	)
	return a
}

// policy is every allow-list in force: the flag's, then the file's.
func (a *admission) policy() probe.Policy {
	return probe.Policy{a.flagList, a.config.AllowList()}
}

// wrap admits requests to next. A request whose target does not parse, whose
// module does not exist or whose other parameters are wrong (a typo such as
// hostnme=, a server_name that is no host name) goes straight on: next
// answers it with 400 and probes nothing, so a malformed request never gets
// a 403 or a 5xx, however busy.
func (a *admission) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		t, err := probe.ParseTarget(q.Get("target"))
		if _, perr := serverNameParam(q); err != nil || perr != nil || !a.knownModule(q.Get("module")) {
			next.ServeHTTP(w, r)
			return
		}
		g := probe.NewGuard(a.policy())
		if re := g.CheckTarget(t); re != nil {
			a.refuse(w, string(re.Reason), re.Error(), http.StatusForbidden)
			return
		}
		release, reason, msg := a.limits.acquire(t.String())
		if release == nil {
			a.refuse(w, reason, msg, http.StatusServiceUnavailable)
			return
		}
		defer release()
		next.ServeHTTP(w, r.WithContext(probe.WithGuard(r.Context(), g)))
		if re := g.Refused(); re != nil { // the handler answered 403
			a.refused.WithLabelValues(string(re.Reason)).Inc()
			a.logger.Debug("Probe refused", "target", re.Target, "reason", re.Reason, "address", re.Addr, "list", re.List)
		}
	})
}

func (a *admission) knownModule(name string) bool {
	if name == "" {
		name = defaultModuleName
	}
	_, ok := a.config.Module(name)
	return ok
}

func (a *admission) refuse(w http.ResponseWriter, reason, msg string, code int) {
	a.refused.WithLabelValues(reason).Inc()
	a.logger.Debug("Probe refused", "reason", reason, "msg", msg)
	http.Error(w, msg, code)
}

// logPolicy says at start and after a reload which targets may be probed.
func (a *admission) logPolicy() {
	p := a.policy()
	if p.Empty() {
		a.logger.Warn("No --probe.allowed-targets and no allowed_targets in the configuration file: anyone who can reach /probe can make the exporter connect to any host and port, link-local and loopback addresses included")
		return
	}
	a.logger.Info("Allowed targets", "flag", a.flagList.String(), "config", a.config.AllowList().String(),
		"rule", "a probe must pass both lists; an empty list passes everything")
}
