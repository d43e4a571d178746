package integration

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/resumption-exporter/resumption_exporter/collector"
	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
	"github.com/resumption-exporter/resumption_exporter/probe"
)

// observation is one probe's result and the series it published, keyed
// `name{label="value",...}` with labels in name order.
type observation struct {
	result probe.Result
	series map[string]float64
}

// prober runs probes the way the /probe handler does: probe, then key
// history, then metrics.
type prober struct {
	module   *probe.Module
	history  *collector.KeyHistory
	sessions *probe.Sessions
}

func newProber(t *testing.T, pki *testservers.PKI, edit func(*probe.Module)) *prober {
	t.Helper()
	m := probe.DefaultModule
	m.Checks = append([]probe.Mechanism(nil), probe.Mechanisms...)
	m.Timeout = 10 * time.Second
	m.TicketWait = time.Second
	m.TLSConfig.CAFile = pki.CAFile
	m.TLSConfig.ServerName = "localhost"
	if edit != nil {
		edit(&m)
	}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := m.Compile(); err != nil {
		t.Fatal(err)
	}
	return &prober{
		module:   &m,
		history:  collector.NewKeyHistory(collector.HistoryOptions{}),
		sessions: probe.NewSessions(probe.SessionsOptions{}),
	}
}

func (p *prober) probe(t *testing.T, addr string) observation {
	t.Helper()
	r := probe.Run(context.Background(), addr, "test", p.module, p.sessions, slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})))
	state := p.history.Observe(addr, "test", r.KeyNames)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector.NewProbeCollector(&r, &state))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	o := observation{result: r, series: map[string]float64{}}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, lp := range m.GetLabel() {
				ls = append(ls, fmt.Sprintf("%s=%q", lp.GetName(), lp.GetValue()))
			}
			key := mf.GetName()
			if len(ls) > 0 {
				key += "{" + strings.Join(ls, ",") + "}"
			}
			o.series[key] = m.GetGauge().GetValue()
		}
	}
	return o
}

// expect checks exact values, and that every name in absent (a metric name,
// or a whole series) has no series.
func (o observation) expect(t *testing.T, want map[string]float64, absent ...string) {
	t.Helper()
	for k, v := range want {
		got, ok := o.series[k]
		if !ok {
			t.Errorf("%s missing", k)
		} else if got != v {
			t.Errorf("%s = %v, want %v", k, got, v)
		}
	}
	for _, a := range absent {
		for k := range o.series {
			if k == a || strings.HasPrefix(k, a+"{") {
				t.Errorf("%s present (%v), want absent", k, o.series[k])
			}
		}
	}
	if t.Failed() {
		t.Logf("published:\n%s", o)
	}
}

func (o observation) String() string {
	var lines []string
	for k, v := range o.series {
		lines = append(lines, fmt.Sprintf("  %s %v", k, v))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n") + "\n  failure: " + o.result.Failure
}
