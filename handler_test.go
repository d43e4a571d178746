package main

import (
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
	"github.com/resumption-exporter/resumption_exporter/probe"
)

// newTestExporter wires an exporter on the embedded configuration, as
// main does, and serves its mux.
func newTestExporter(t *testing.T, o options) (*exporter, *httptest.Server) {
	t.Helper()
	sc := &SafeConfig{}
	if err := sc.Load(o.configFile); err != nil {
		t.Fatal(err)
	}
	if o.activeWindow == 0 {
		o.activeWindow = 15 * time.Minute
	}
	if o.timeoutOffset == 0 {
		o.timeoutOffset = 500 * time.Millisecond
	}
	e, err := newExporter(sc, o, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.closeHistory)
	srv := httptest.NewServer(e.mux())
	t.Cleanup(srv.Close)
	return e, srv
}

// startTLSServer runs a crypto/tls server on 127.0.0.1 that keeps each
// connection until the client closes it.
func startTLSServer(t *testing.T, edit func(*tls.Config)) string {
	t.Helper()
	return testservers.ServeTLS(t, testservers.NewPKI(t), edit)
}

func get(t *testing.T, url string, header http.Header) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// parseMetrics reads the text exposition into family name → families.
func parseMetrics(t *testing.T, text string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parse exposition: %v\n%s", err, text)
	}
	return mfs
}

// value returns the gauge value of the series of name whose labels include
// all of want.
func value(t *testing.T, mfs map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	t.Helper()
	mf, ok := mfs[name]
	if !ok {
		return 0, false
	}
next:
	for _, m := range mf.GetMetric() {
		labels := map[string]string{}
		for _, lp := range m.GetLabel() {
			labels[lp.GetName()] = lp.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		if m.Gauge != nil {
			return m.GetGauge().GetValue(), true
		}
		return m.GetCounter().GetValue(), true
	}
	return 0, false
}

func TestProbeBadRequests(t *testing.T) {
	_, srv := newTestExporter(t, options{})
	tests := []struct {
		name, query string
		header      http.Header
		reason      string
	}{
		{"no target", "", nil, "target parameter is missing"},
		{"target without port", "target=example.com", nil, "want host:port"},
		{"port out of range", "target=example.com:70000", nil, "port"},
		{"port zero", "target=example.com:0", nil, "port"},
		{"empty host", "target=:443", nil, "empty host"},
		{"unknown module", "target=example.com:443&module=nope", nil, `unknown module "nope"`},
		{"bad scrape timeout", "target=example.com:443", http.Header{"X-Prometheus-Scrape-Timeout-Seconds": {"soon"}}, "not a positive number"},
		{"NaN scrape timeout", "target=example.com:443", http.Header{"X-Prometheus-Scrape-Timeout-Seconds": {"NaN"}}, "not a positive number"},
		{"scrape timeout below offset", "target=example.com:443", http.Header{"X-Prometheus-Scrape-Timeout-Seconds": {"0.2"}}, "--timeout-offset"},
		{"misspelt parameter", "target=example.com:443&hostnme=www.example.com", nil, `unknown query parameter "hostnme"`},
		{"server_name and hostname disagree", "target=example.com:443&server_name=a.example&hostname=b.example", nil, "disagree"},
		{"server_name with a space", "target=example.com:443&server_name=a%20b", nil, "not a host name"},
		{"cross_names with a space", "target=example.com:443&cross_names=a.example,b%20c", nil, "not a host name"},
		{"cross_names twice", "target=example.com:443&cross_names=a.example&cross_names=b.example", nil, "given 2 times"},
		{"cross_names repeated", "target=example.com:443&cross_names=a.example,a.example", nil, "listed twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := get(t, srv.URL+"/probe?"+tt.query, tt.header)
			if code != http.StatusBadRequest {
				t.Errorf("status %d, want 400", code)
			}
			if !strings.Contains(body, tt.reason) || strings.Count(strings.TrimSpace(body), "\n") != 0 {
				t.Errorf("body %q: want one line saying %q", body, tt.reason)
			}
		})
	}
}

func TestProbeGoServer(t *testing.T) {
	e, srv := newTestExporter(t, options{})
	addr := startTLSServer(t, nil)
	code, body := get(t, srv.URL+"/probe?module=insecure&target="+addr, nil)
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	mfs := parseMetrics(t, body)
	want := []struct {
		name   string
		labels map[string]string
		value  float64
	}{
		{"probe_success", nil, 1},
		{"probe_tls_version_info", map[string]string{"version": "TLS 1.3"}, 1},
		{"tls_version_supported", map[string]string{"version": "TLS 1.2"}, 1},
		{"tls_resumption_supported", map[string]string{"mechanism": "psk"}, 1},
		{"tls_resumption_supported", map[string]string{"mechanism": "session_ticket"}, 1},
		{"tls_resumption_supported", map[string]string{"mechanism": "session_id"}, 0},
		{"tls_session_ticket_lifetime_hint_seconds", map[string]string{"version": "TLS 1.3"}, 604800},
		{"tls_session_ticket_info", map[string]string{"version": "TLS 1.3", "format": "stateless_unnamed", "key_name_bytes": "0"}, 1},
	}
	for _, w := range want {
		got, ok := value(t, mfs, w.name, w.labels)
		if !ok || got != w.value {
			t.Errorf("%s%v = %v (present %v), want %v", w.name, w.labels, got, ok, w.value)
		}
	}
	if _, ok := mfs["tls_session_ticket_key_fingerprint"]; ok {
		t.Error("Go server tickets have no key name, yet a fingerprint was published")
	}
	// The second probe offers the first probe's sessions.
	_, body = get(t, srv.URL+"/probe?module=insecure&target="+addr, nil)
	if age, ok := value(t, parseMetrics(t, body), "tls_session_ticket_accepted_max_age_seconds", map[string]string{"version": "TLS 1.3"}); !ok || age <= 0 {
		t.Errorf("accepted max age after a second probe = %v (present %v), want > 0", age, ok)
	}
	_, metrics := get(t, srv.URL+"/metrics", nil)
	if v, _ := value(t, parseMetrics(t, metrics), "resumption_exporter_probes_total", map[string]string{"module": "insecure", "result": "success"}); v != 2 {
		t.Errorf("probes_total{insecure,success} = %v, want 2", v)
	}
	_ = e
}

func TestProbeDebugOutput(t *testing.T) {
	_, srv := newTestExporter(t, options{})
	addr := startTLSServer(t, func(c *tls.Config) { c.MaxVersion = tls.VersionTLS12 })
	code, body := get(t, srv.URL+"/probe?module=insecure&debug=true&target="+addr, nil)
	if code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	for _, want := range []string{"Logs for the probe:", "session_ticket: completed=true", "refused", "Metrics that would have been returned:", `tls_version_supported{version="TLS 1.3"} 0`} {
		if !strings.Contains(body, want) {
			t.Errorf("debug output lacks %q:\n%s", want, body)
		}
	}
}

// A scrape timeout shorter than the module's wins, less --timeout-offset: a
// silent server costs the scrape its timeout and no more.
func TestProbeHonoursScrapeTimeout(t *testing.T) {
	_, srv := newTestExporter(t, options{timeoutOffset: 500 * time.Millisecond})
	addr := testservers.ServeTCP(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	start := time.Now()
	_, body := get(t, srv.URL+"/probe?target="+addr, http.Header{"X-Prometheus-Scrape-Timeout-Seconds": {"1.5"}})
	took := time.Since(start)
	if v, _ := value(t, parseMetrics(t, body), "probe_success", nil); v != 0 {
		t.Errorf("probe_success = %v against a silent server", v)
	}
	if took > 3*time.Second {
		t.Errorf("probe took %s with a 1.5 s scrape timeout", took)
	}
}

func TestLandingAndHealth(t *testing.T) {
	_, srv := newTestExporter(t, options{})
	for path, want := range map[string]string{"/": "resumption_exporter", "/-/healthy": "Healthy", "/config": "modules:"} {
		code, body := get(t, srv.URL+path, nil)
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("GET %s: %d, body lacks %q", path, code, want)
		}
	}
	if code, _ := get(t, srv.URL+"/-/reload", nil); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /-/reload: %d, want 405", code)
	}
}

// A scrape timeout below the module's ticket_wait keeps the module valid:
// the ticket wait shrinks with it.
func TestModuleWithTimeout(t *testing.T) {
	tests := []struct {
		name                        string
		ticketWait, timeout         time.Duration
		wantTicketWait, wantTimeout time.Duration
	}{
		{"room to wait", time.Second, 10 * time.Second, time.Second, 10 * time.Second},
		{"wait as long as the timeout", time.Second, time.Second, 500 * time.Millisecond, time.Second},
		{"wait longer than the timeout", time.Second, 400 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond},
	}
	for _, tt := range tests {
		m := probe.DefaultModule
		m.TicketWait = tt.ticketWait
		got := m.WithTimeout(tt.timeout)
		if got.Timeout != tt.wantTimeout || got.TicketWait != tt.wantTicketWait {
			t.Errorf("%s: timeout %s, ticket_wait %s; want %s, %s", tt.name, got.Timeout, got.TicketWait, tt.wantTimeout, tt.wantTicketWait)
		}
		if err := got.Validate(); err != nil {
			t.Errorf("%s: %v", tt.name, err)
		}
		if m.Timeout != probe.DefaultModule.Timeout {
			t.Errorf("%s: WithTimeout changed the module it was called on", tt.name)
		}
	}
}

// server_name (or blackbox's hostname) sets this probe's SNI and the name
// the certificate must match, over the module's; each server name keeps
// its own sessions.
func TestProbeServerNameParameter(t *testing.T) {
	pki := testservers.NewPKI(t)
	cfg := filepath.Join(t.TempDir(), "config.yml")
	writeFile(t, cfg, "modules:\n  verify:\n    tls_config:\n      ca_file: "+pki.CAFile+
		"\n  insecure:\n    tls_config:\n      insecure_skip_verify: true\n")
	_, srv := newTestExporter(t, options{configFile: cfg})
	var mu sync.Mutex
	seen := map[string]int{}
	addr := testservers.ServeTLS(t, pki, func(c *tls.Config) {
		c.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			mu.Lock()
			seen[hello.ServerName]++
			mu.Unlock()
			return nil, nil
		}
	})
	probe := func(module, param, name string) (float64, map[string]*dto.MetricFamily, string) {
		t.Helper()
		code, body := get(t, srv.URL+"/probe?debug=true&module="+module+"&target="+addr+"&"+param+"="+name, nil)
		if code != http.StatusOK {
			t.Fatalf("%s=%s: status %d: %s", param, name, code, body)
		}
		_, metrics, found := strings.Cut(body, "Metrics that would have been returned:\n")
		if !found {
			t.Fatalf("%s=%s: no metrics in the debug output:\n%s", param, name, body)
		}
		mfs := parseMetrics(t, metrics)
		v, _ := value(t, mfs, "probe_success", nil)
		return v, mfs, body
	}
	for _, tt := range []struct{ param, name string }{
		{"server_name", "vhost-a.example"},
		{"hostname", "vhost-b.example"},
	} {
		if ok, _, body := probe("insecure", tt.param, tt.name); ok != 1 {
			t.Fatalf("%s=%s: probe_success %v:\n%s", tt.param, tt.name, ok, body)
		}
		mu.Lock()
		n := seen[tt.name]
		mu.Unlock()
		if n == 0 {
			t.Errorf("%s=%s: the server never saw that SNI; it saw %v", tt.param, tt.name, seen)
		}
	}
	mu.Lock()
	if len(seen) != 2 {
		t.Errorf("server names seen %v, want only the two given", seen)
	}
	mu.Unlock()

	// The certificate is checked against the parameter's name: one it
	// covers passes, one it does not fails with the hint naming both.
	if ok, _, body := probe("verify", "server_name", "localhost"); ok != 1 {
		t.Errorf("verify with server_name=localhost, which the certificate covers: probe_success %v:\n%s", ok, body)
	}
	ok, _, body := probe("verify", "server_name", "vhost-c.example")
	if want := `the certificate is for "localhost", 127.0.0.1, ::1, not "vhost-c.example"`; ok != 0 || !strings.Contains(body, want) {
		t.Errorf("verify with server_name=vhost-c.example: probe_success %v, want 0 and the hint %q:\n%s", ok, want, body)
	}

	// Sessions: the second probe under vhost-a.example offers the first's
	// sessions and measures the age the server accepted; a first probe
	// under another name has none to offer.
	const maxAge = "tls_session_ticket_accepted_max_age_seconds"
	if _, mfs, body := probe("insecure", "server_name", "vhost-a.example"); !hasMetric(mfs, maxAge) {
		t.Errorf("second probe under vhost-a.example: no %s:\n%s", maxAge, body)
	}
	if _, mfs, body := probe("insecure", "server_name", "vhost-d.example"); hasMetric(mfs, maxAge) {
		t.Errorf("first probe under vhost-d.example: %s present, but it had no session of that name:\n%s", maxAge, body)
	}
}

func hasMetric(mfs map[string]*dto.MetricFamily, name string) bool {
	_, ok := mfs[name]
	return ok
}

// cross_names= reaches the probe: a stock Go server shares its ticket key
// across names, so the other name resumes; without the parameter the
// check does not run.
func TestProbeCrossNamesParam(t *testing.T) {
	_, srv := newTestExporter(t, options{})
	addr := startTLSServer(t, nil)
	for _, tt := range []struct {
		query string
		want  bool
	}{
		{"&cross_names=other.example,third.example", true},
		{"", false},
	} {
		code, body := get(t, srv.URL+"/probe?module=insecure&target="+addr+tt.query, nil)
		if code != http.StatusOK {
			t.Fatalf("%q: status %d: %s", tt.query, code, body)
		}
		got, ok := value(t, parseMetrics(t, body), "tls_resumption_cross_name_accepted", map[string]string{"mechanism": "psk"})
		if ok != tt.want || (ok && got != 1) {
			t.Errorf("%q: cross-name psk = %v (present %v), want present %v with 1", tt.query, got, ok, tt.want)
		}
	}
}
