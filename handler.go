package main

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"

	"github.com/resumption-exporter/resumption_exporter/internal/prober"
	"github.com/resumption-exporter/resumption_exporter/probe"
)

// defaultModuleName is used when a request names no module.
const defaultModuleName = "default"

// probeHandler serves /probe: it turns the request into a target and a
// module, and leaves the rest to the prober.
type probeHandler struct {
	config        *SafeConfig
	prober        *prober.Prober
	timeoutOffset time.Duration
	probes        *prometheus.CounterVec
}

func (h *probeHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	serverName, err := serverNameParam(q)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	name := q.Get("module")
	if name == "" {
		name = defaultModuleName
	}
	module, ok := h.config.Module(name)
	if !ok {
		http.Error(w, "unknown module "+probe.Echo(name), http.StatusBadRequest)
		return
	}
	target := q.Get("target")
	if target == "" {
		http.Error(w, "target parameter is missing", http.StatusBadRequest)
		return
	}
	t, err := probe.ParseTarget(target)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	target = t.String() // the one spelling that keys sessions, history and logs
	timeout, err := h.timeout(r, module.Timeout)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}

	if serverName != "" {
		module.TLSConfig.ServerName = serverName
	}
	if cn, ok := q["cross_names"]; ok {
		names, err := crossNamesParam(cn)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		module.CrossNames = names
	}
	debug := q.Get("debug") == "true"
	out := h.prober.Probe(r.Context(), target, name, module.WithTimeout(timeout), debug)
	if out.Result.Refused != nil {
		http.Error(w, out.Result.Refused.Error(), http.StatusForbidden)
		return
	}
	outcome := "failure"
	if out.Result.Success {
		outcome = "success"
	}
	h.probes.WithLabelValues(name, outcome).Inc()
	if debug {
		writeDebug(w, out)
		return
	}
	promhttp.HandlerFor(out.Registry, promhttp.HandlerOpts{}).ServeHTTP(w, r)
}

// probeParams are the query parameters /probe knows (those ServeHTTP and
// the admission wrapper read): another one is a typo (hostnme=) to report,
// not to ignore.
var probeParams = []string{"cross_names", "debug", "hostname", "module", "server_name", "target"}

// serverNameParam checks that q holds only known parameters and returns
// the server name for this probe (SNI and the name the certificate must
// match, over the module's tls_config.server_name): server_name, or
// hostname as blackbox_exporter calls it.
func serverNameParam(q url.Values) (string, error) {
	for _, k := range slices.Sorted(maps.Keys(q)) {
		if !slices.Contains(probeParams, k) {
			return "", fmt.Errorf("unknown query parameter %s (known: %s)", probe.Echo(k), strings.Join(probeParams, ", "))
		}
	}
	sn, hn := q.Get("server_name"), q.Get("hostname")
	if sn != "" && hn != "" && sn != hn {
		return "", fmt.Errorf("server_name %s and hostname %s disagree", probe.Echo(sn), probe.Echo(hn))
	}
	sn = cmp.Or(sn, hn)
	if len(sn) > 253 || strings.ContainsFunc(sn, func(r rune) bool { return r <= ' ' || r == '/' }) {
		return "", fmt.Errorf("server_name %s is not a host name", probe.Echo(sn))
	}
	return sn, nil
}

// crossNamesParam reads cross_names=a,b: the other SNI names of this
// probe's cross-name offers, over the module's cross_names. Empty means
// none (the check off for this probe).
func crossNamesParam(vs []string) ([]string, error) {
	if len(vs) > 1 {
		return nil, fmt.Errorf("cross_names given %d times; give one comma-separated list", len(vs))
	}
	var names []string
	for n := range strings.SplitSeq(vs[0], ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	if err := probe.ValidateCrossNames(names); err != nil {
		return nil, err
	}
	return names, nil
}

// timeout follows blackbox_exporter: the scrape timeout Prometheus sends,
// less --timeout-offset so the answer arrives in time, capped by the
// module's own timeout.
func (h *probeHandler) timeout(r *http.Request, moduleTimeout time.Duration) (time.Duration, error) {
	v := r.Header.Get("X-Prometheus-Scrape-Timeout-Seconds")
	if v == "" {
		return moduleTimeout, nil
	}
	secs, err := strconv.ParseFloat(v, 64)
	if err != nil || !(secs > 0) || math.IsInf(secs, 0) {
		return 0, fmt.Errorf("X-Prometheus-Scrape-Timeout-Seconds %s is not a positive number", probe.Echo(v))
	}
	t := time.Duration(secs*float64(time.Second)) - h.timeoutOffset
	if t <= 0 {
		return 0, fmt.Errorf("scrape timeout %s s leaves no time after --timeout-offset %s", probe.Echo(v), h.timeoutOffset)
	}
	return min(t, moduleTimeout), nil
}

// writeDebug answers /probe?debug=true: the probe's log lines, then the
// metrics it would have returned, as text.
func writeDebug(w http.ResponseWriter, out *prober.Outcome) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "Logs for the probe:\n")
	w.Write(out.Log)
	fmt.Fprintf(w, "\n\nMetrics that would have been returned:\n")
	mfs, err := out.Registry.Gather()
	if err != nil {
		fmt.Fprintf(w, "gathering metrics: %s\n", err)
		return
	}
	enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		enc.Encode(mf)
	}
}
