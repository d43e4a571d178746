package e2e

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/resumption-exporter/resumption_exporter/collector/history"
	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
	"github.com/resumption-exporter/resumption_exporter/mixin"
	"github.com/resumption-exporter/resumption_exporter/probe"
)

const (
	// pathTimeout bounds, from the moment Prometheus is ready, everything
	// the test waits for through it: scrapes, rule evaluations, dashboard
	// queries with data and the notification at the webhook.
	pathTimeout = 90 * time.Second
	// pollPause is the pause between two looks at Prometheus or the webhook.
	pollPause = 500 * time.Millisecond
	// historyAge is how long before the test the persisted key history
	// started, and its key was first seen: beyond the headline alert's 24h
	// plus the 15m active-key window, for which it also wants that much
	// history.
	historyAge = 26 * time.Hour
	// activeWindow is the exporter's --history.active-window: a few of the
	// test's 1s scrape intervals.
	activeWindow = 30 * time.Second
	// headlineAlert is the "not rotated within a day" alert.
	headlineAlert = "TLSSessionTicketKeyNotRotated"
)

// TestMain removes the exporter binary the test builds (see
// testservers.BuildExporter) once it is done.
func TestMain(m *testing.M) { os.Exit(testservers.Main(m)) }

// TestRealPath runs the path a user deploys — TLS server, exporter,
// Prometheus with the example scrape configuration and the mixin's rules,
// Alertmanager with the example routing, a webhook — and checks that the
// exporter is scraped through the relabeling, that the dashboards' queries
// find data for the target, and that the headline alert reaches the
// webhook for a key first seen more than a day ago.
func TestRealPath(t *testing.T) {
	testservers.Require(t, "nginx", "go", "jsonnet", "prometheus", "prometheus-alertmanager")
	jsonnet := testservers.LookPath(t, "jsonnet")
	root := mixin.RepoRoot()
	work := t.TempDir()

	// The target: nginx with a fixed session-ticket key from a file, so its
	// key name — and so its fingerprint — is known before the first probe.
	// The session cache lets session IDs resume too, so the dashboards'
	// session-ID queries have something to show.
	pki := testservers.NewPKI(t)
	key := make([]byte, 80) // nginx 1.22 takes 48 or 80 bytes: name, HMAC and AES keys
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(work, "ticket.key")
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	nginx := testservers.StartNginx(t, pki, fmt.Sprintf(
		"ssl_protocols TLSv1.2 TLSv1.3;\nssl_session_cache shared:e2e:1m;\nssl_session_ticket_key %s;\n", keyFile))
	fingerprint := probe.Fingerprint(key[:16])

	// The rules rendered with 1s `for:` and evaluation interval. The
	// Prometheus configuration goes into the rendered mixin's examples/
	// directory so that the example's own rule_files entry,
	// ../alerts/resumption-alerts.yml, names them.
	rendered := filepath.Join(work, "mixin")
	renderCtx, cancel := context.WithTimeout(context.Background(), mixin.RenderTimeout)
	defer cancel()
	if err := mixin.Render(renderCtx, jsonnet, rendered, mixin.FastTiming); err != nil {
		t.Fatal(err)
	}
	promExample := readFile(t, filepath.Join(root, "examples", "prometheus.yml"))
	module, err := exampleModule(promExample)
	if err != nil {
		t.Fatal(err)
	}

	// The exporter, from a key history saved as if it had watched the
	// target for historyAge, seeing the same key every hour.
	historyFile := filepath.Join(work, "history.json")
	since := writeHistory(t, historyFile, nginx.Addr, module, fingerprint)
	exporterConfig, err := yaml.Marshal(map[string]any{"modules": map[string]any{module: map[string]any{
		"tls_config": map[string]any{"ca_file": pki.CAFile, "server_name": testservers.ServerName},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	exporterConfigFile := filepath.Join(work, "exporter.yml")
	writeFile(t, exporterConfigFile, exporterConfig)
	exporter := testservers.StartExporter(t,
		"--config.file="+exporterConfigFile,
		"--history.path="+historyFile,
		"--history.active-window="+activeWindow.String(),
	)

	// Alertmanager with the example routing, every webhook on this test.
	hook := startWebhook(t)
	amConfig, err := alertmanagerConfig(readFile(t, filepath.Join(root, "examples", "alertmanager.yml")), hook.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	amConfigFile := filepath.Join(work, "alertmanager.yml")
	writeFile(t, amConfigFile, amConfig)
	alertmanager := testservers.StartAlertmanager(t, amConfigFile)

	// Prometheus: the example configuration, pointed at this test's
	// programs.
	promConfig, _, err := prometheusConfig(promExample,
		prometheusEndpoints{Target: nginx.Addr, Exporter: exporter.Addr, Alertmanager: alertmanager.Addr})
	if err != nil {
		t.Fatal(err)
	}
	promConfigFile := filepath.Join(mkdir(t, rendered, "examples"), "prometheus.yml")
	writeFile(t, promConfigFile, promConfig)
	rulesFile := filepath.Join(rendered, "alerts", "resumption-alerts.yml")
	prometheus := testservers.StartPrometheus(t, promConfigFile)

	api := newPromAPI(prometheus.Addr)
	deadline := time.Now().Add(pathTimeout)
	ctx, cancelQueries := context.WithDeadline(context.Background(), deadline)
	defer cancelQueries()

	t.Run("rules", func(t *testing.T) {
		eventually(t, deadline, "the rendered rules loaded and evaluated without errors", func() error {
			return checkRules(ctx, api, rulesFile)
		})
	})

	t.Run("scrape through relabeling", func(t *testing.T) {
		eventually(t, deadline, "Prometheus probing "+nginx.Addr+" through the exporter", func() error {
			return checkProbeTarget(ctx, api, nginx.Addr, exporter.Addr, module)
		})
		for _, c := range []struct{ what, expr string }{
			{"probe scraped", fmt.Sprintf(`up{job="resumption", instance=%q} == 1`, nginx.Addr)},
			{"probe succeeded", fmt.Sprintf(`probe_success{job="resumption", instance=%q} == 1`, nginx.Addr)},
			{"exporter scraped", fmt.Sprintf(`up{job="resumption_exporter", instance=%q} == 1`, exporter.Addr)},
			// The probe saw the key file's key, the one whose
			// fingerprint the saved history holds.
			{"fixed key seen", fmt.Sprintf(`tls_session_ticket_key_fingerprint{instance=%q} == %d`, nginx.Addr, fingerprint)},
			// The exporter carried on from the persisted history
			// instead of starting a new one.
			{"history restored", fmt.Sprintf(`abs(tls_session_ticket_history_since_timestamp_seconds{instance=%q} - %.3f) < 0.01`,
				nginx.Addr, float64(since.UnixNano())/1e9)},
		} {
			eventually(t, deadline, c.what, func() error {
				return wantSamples(ctx, api, c.expr)
			})
		}
	})

	t.Run("dashboard queries", func(t *testing.T) {
		checkDashboards(t, ctx, api, root, deadline, nginx.Addr)
	})

	t.Run("headline alert at the webhook", func(t *testing.T) {
		var got notification
		eventually(t, deadline, headlineAlert+" for "+nginx.Addr+" at the webhook", func() error {
			ns, bad := hook.notifications()
			if len(bad) > 0 {
				t.Fatalf("webhook got requests that are not Alertmanager notifications: %q", bad)
			}
			for _, n := range ns {
				if n.Labels["alertname"] == headlineAlert && n.Labels["instance"] == nginx.Addr && n.Status == "firing" {
					got = n
					return nil
				}
			}
			return fmt.Errorf("received %s", summarize(ns))
		})
		// The example routes posture alerts (TLS*) to the tls-posture
		// receiver; the alert carries what the page needs.
		if got.Receiver != "tls-posture" || got.Path != "/tls-posture" {
			t.Errorf("%s went to receiver %q at %s, want tls-posture at /tls-posture", headlineAlert, got.Receiver, got.Path)
		}
		if got.Labels["job"] != "resumption" || got.Labels["severity"] == "" {
			t.Errorf("%s labels = %v, want job=resumption and a severity", headlineAlert, got.Labels)
		}
		if !strings.Contains(got.Annotations["description"], nginx.Addr) {
			t.Errorf("%s description %q does not name the target %s", headlineAlert, got.Annotations["description"], nginx.Addr)
		}
		if got.Annotations["runbook_url"] == "" || got.Annotations["summary"] == "" {
			t.Errorf("%s annotations = %v, want a summary and a runbook_url", headlineAlert, got.Annotations)
		}
	})
}

// writeHistory saves a key history in which target has shown the key with
// fingerprint once an hour from historyAge ago until an hour ago, through
// history.KeyHistory itself, and returns when the history started. The
// module probes with tls_config.server_name set (the certificate's name,
// not the target's address), which keys the history too.
func writeHistory(t *testing.T, path, target, module string, fingerprint uint64) time.Time {
	t.Helper()
	now := time.Now()
	start := now.Add(-historyAge).Round(0)
	clock := start
	h := history.New(history.Options{
		ActiveWindow: activeWindow,
		Now:          func() time.Time { return clock },
	})
	for ; clock.Before(now.Add(-30 * time.Minute)); clock = clock.Add(time.Hour) {
		h.ObserveServerName(target, module, testservers.ServerName, []probe.KeyName{{Fingerprint: fingerprint, Tickets: 1}})
	}
	if err := h.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	return start
}

// checkRules says whether Prometheus loaded the rendered rules file and
// every rule evaluated cleanly.
func checkRules(ctx context.Context, api promAPI, rulesFile string) error {
	groups, err := api.ruleGroups(ctx)
	if err != nil {
		return err
	}
	var files []string
	for _, g := range groups {
		files = append(files, g.File)
		if g.File != rulesFile {
			continue
		}
		if g.Interval != 1 {
			return fmt.Errorf("group %s evaluates every %vs, want the fast rendering's 1s", g.Name, g.Interval)
		}
		if len(g.Rules) == 0 {
			return fmt.Errorf("group %s has no rules", g.Name)
		}
		for _, r := range g.Rules {
			if r.Health != "ok" {
				return fmt.Errorf("rule %s: health %q", r.Name, r.Health)
			}
		}
		return nil
	}
	return fmt.Errorf("no rule group from %s; groups come from %q", rulesFile, files)
}

// checkProbeTarget says whether Prometheus has turned the static target into
// a probe of the exporter, as the example's relabeling means to: instance is
// the target, the scrape goes to the exporter's /probe with target and
// module parameters, and it succeeded.
func checkProbeTarget(ctx context.Context, api promAPI, target, exporter, module string) error {
	ts, err := api.activeTargets(ctx)
	if err != nil {
		return err
	}
	for _, at := range ts {
		if at.Labels["job"] != "resumption" {
			continue
		}
		if at.Labels["instance"] != target {
			return fmt.Errorf("job resumption has instance %q, want %q", at.Labels["instance"], target)
		}
		u, err := url.Parse(at.ScrapeURL)
		if err != nil {
			return err
		}
		q := u.Query()
		if u.Host != exporter || u.Path != "/probe" || q.Get("target") != target || q.Get("module") != module {
			return fmt.Errorf("job resumption scrapes %s, want the exporter's /probe?module=%s&target=%s", at.ScrapeURL, module, target)
		}
		if at.Health != "up" {
			return fmt.Errorf("scrape of %s: health %q, last error %q", at.ScrapeURL, at.Health, at.LastError)
		}
		return nil
	}
	return fmt.Errorf("no active target of job resumption among %d", len(ts))
}

// dashboardQuery is one query of a checked-in dashboard, expanded for the
// test's target.
type dashboardQuery struct {
	mixin.Query
	expanded string
}

// name identifies a query in the exemption list and in messages.
func (q dashboardQuery) name() string {
	return q.Dashboard + "/" + q.Panel + "/" + q.RefID
}

// checkDashboards runs every query of dashboards/*.json, expanded for
// job="resumption" and the target, until each has returned data at least
// once. The exempt ones must not, so that the list stays true.
func checkDashboards(t *testing.T, ctx context.Context, api promAPI, root string, deadline time.Time, target string) {
	// Queries that cannot have data here, and why. Keep this short: every
	// other query of the dashboards must show the target.
	exempt := map[string]string{
		"resumption-overview/Targets/H": "the last rotation interval is published only after a key rotation was observed, and this target's key is fixed",
		"resumption-target/Rotations/A": "the last rotation interval is published only after a key rotation was observed, and this target's key is fixed",
	}
	files, err := filepath.Glob(filepath.Join(root, "dashboards", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no dashboards in %s", filepath.Join(root, "dashboards"))
	}
	// Grafana writes a multi-value variable into a =~ matcher as an
	// escaped regular expression, and a PromQL string escapes backslashes.
	vars := map[string]string{
		"job":      "resumption",
		"instance": strings.ReplaceAll(regexp.QuoteMeta(target), `\`, `\\`),
	}
	var queries []dashboardQuery
	for _, f := range files {
		d, err := mixin.ParseDashboard(readFile(t, f))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		qs, err := d.Queries()
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, q := range qs {
			queries = append(queries, dashboardQuery{Query: q, expanded: mixin.Expand(q.Expr, vars, "1m")})
		}
	}
	for name := range exempt {
		if !slices.ContainsFunc(queries, func(q dashboardQuery) bool { return q.name() == name }) {
			t.Errorf("exempt query %s is in no dashboard: update the list", name)
		}
	}

	seen := make([]bool, len(queries))
	lastErr := make([]error, len(queries))
	for {
		missing := 0
		for i, q := range queries {
			if seen[i] {
				continue
			}
			samples, err := api.query(ctx, q.expanded)
			lastErr[i] = err
			if err == nil && len(samples) > 0 {
				seen[i] = true
				continue
			}
			if exempt[q.name()] == "" {
				missing++
			}
		}
		if missing == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(pollPause)
	}
	for i, q := range queries {
		reason, isExempt := exempt[q.name()]
		switch {
		case isExempt && seen[i]:
			t.Errorf("%s returned data although it is exempt (%s): remove it from the list\n  %s", q.name(), reason, q.expanded)
		case isExempt:
			t.Logf("%s: no data, as expected: %s", q.name(), reason)
		case !seen[i] && lastErr[i] != nil:
			t.Errorf("%s failed: %v\n  %s", q.name(), lastErr[i], q.expanded)
		case !seen[i]:
			t.Errorf("%s returned no data for %s within %v\n  %s", q.name(), target, pathTimeout, q.expanded)
		}
	}
}

// wantSamples says whether expr returns at least one sample.
func wantSamples(ctx context.Context, api promAPI, expr string) error {
	samples, err := api.query(ctx, expr)
	if err != nil {
		return err
	}
	if len(samples) == 0 {
		return fmt.Errorf("%s: no result", expr)
	}
	return nil
}

// eventually calls check until it returns nil, failing the test with its
// last error once deadline has passed.
func eventually(t *testing.T, deadline time.Time, what string, check func() error) {
	t.Helper()
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, pathTimeout, err)
		}
		time.Sleep(pollPause)
	}
}

// summarize lists the alerts received, for failure messages.
func summarize(ns []notification) string {
	if len(ns) == 0 {
		return "no alerts"
	}
	var parts []string
	for _, n := range ns {
		parts = append(parts, fmt.Sprintf("%s{instance=%q} %s at %s", n.Labels["alertname"], n.Labels["instance"], n.Status, n.Path))
	}
	return strings.Join(parts, ", ")
}

func mkdir(t *testing.T, parent, name string) string {
	t.Helper()
	dir := filepath.Join(parent, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
