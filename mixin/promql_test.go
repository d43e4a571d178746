package mixin

import (
	"reflect"
	"testing"
)

func TestMetricNames(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`up`, []string{"up"}},
		{`probe_success{job="resumption", instance=~"$instance"} == 0`, []string{"probe_success"}},
		{`max by (job, instance) (tls_resumption_supported{mechanism="psk"})`, []string{"tls_resumption_supported"}},
		{`sum without(version) (a) / on (job) group_left (instance) b`, []string{"a", "b"}},
		{`sum(rate(x_total[5m])) by (job)`, []string{"x_total"}},
		{`count_over_time(fp[87300s]) >= 24 and on (job, instance) fp offset 87300s unless bool c`, []string{"c", "fp"}},
		{`time() - first_seen > 86400`, []string{"first_seen"}},
		{`histogram_quantile(0.9, sum by (le) (rate(h_bucket[1d15m])))`, []string{"h_bucket"}},
		{`label_replace(m, "dst", "$1", "src", "(and|or).*")`, []string{"m"}},
		{`x{a="}{[("} + y{b='\''}`, []string{"x", "y"}},
		{`min_over_time(timestamp(m)[1h:5m]) + 1e3 + 0x1F + Inf`, []string{"m"}},
		{"m # a comment naming not_a_metric\n+ n", []string{"m", "n"}},
		{`vector(0)`, []string{}},
		{`{__name__="hidden"}`, []string{}},
		{"ns:recorded:rate5m", []string{"ns:recorded:rate5m"}},
	} {
		got, err := MetricNames(tc.expr)
		if err != nil {
			t.Errorf("MetricNames(%q): %v", tc.expr, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("MetricNames(%q) = %q, want %q", tc.expr, got, tc.want)
		}
	}
}

func TestMetricNamesRejectsBrokenExpressions(t *testing.T) {
	for _, expr := range []string{
		`sum(x`,
		`x{a="b"`,
		`x[5m`,
		`x)`,
		`x{a="b]`,
		`rate(x[5m)]`,
	} {
		if got, err := MetricNames(expr); err == nil {
			t.Errorf("MetricNames(%q) = %q, want an error", expr, got)
		}
	}
}

func TestContractMetrics(t *testing.T) {
	readme := []byte("# x\n\n| metric | labels | meaning |\n|---|---|---|\n" +
		"| `probe_success` | | 1 when ok |\n" +
		"| `tls_version_supported` | `version` | ... |\n" +
		"not a row `fake_metric` |\n" +
		"| metric | header |\n")
	got := ContractMetrics(readme)
	want := map[string]bool{"probe_success": true, "tls_version_supported": true}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ContractMetrics = %v, want %v", got, want)
	}
}

func TestExpand(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`rate(x{job=~"$job", instance=~"${instance}"}[$__rate_interval])`, `rate(x{job=~"resumption", instance=~"a:443"}[1m])`},
		{`increase(x[$__range]) / $__interval`, `increase(x[1m]) / 1m`},
		{`no variables`, `no variables`},
	} {
		if got := Expand(tc.in, map[string]string{"job": "resumption", "instance": "a:443"}, "1m"); got != tc.want {
			t.Errorf("Expand(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
