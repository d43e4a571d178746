package dashboards

import (
	"os"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/resumption-exporter/resumption_exporter/mixin"
)

// alertExpr returns the expression of an alert in the shipped rules.
func alertExpr(t *testing.T, alert string) string {
	t.Helper()
	b, err := os.ReadFile("../alerts/resumption-alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct{ Alert, Expr string }
		}
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatal(err)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == alert {
				return r.Expr
			}
		}
	}
	t.Fatalf("no alert %s", alert)
	return ""
}

// panelQueries returns, by panel title, the queries of a dashboard.
func panelQueries(t *testing.T, name string) map[string][]string {
	t.Helper()
	d, _ := load(t, name)
	out := map[string][]string{}
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			out[p.Title] = append(out[p.Title], tg.Expr)
		}
	}
	return out
}

// dashboardSelector is what every panel selects by; the alerts select by
// the mixin's probeSelector instead.
const dashboardSelector = `job=~"$job", instance=~"$instance"`

// TestKeyStatMatchesAlert: the overview's key stat counts exactly the
// targets TLSSessionTicketKeyNotRotated fires for (before its `for:`), so
// it cannot be red while the alert stays silent or the other way round.
func TestKeyStatMatchesAlert(t *testing.T) {
	var stat string
	for title, qs := range panelQueries(t, "resumption-overview.json") {
		if strings.HasPrefix(title, "Keys not rotated") {
			stat = qs[0]
		}
	}
	inner, ok := strings.CutPrefix(stat, "count(")
	if inner, ok = strings.CutSuffix(inner, ") or vector(0)"); !ok {
		t.Fatalf("key stat query %q is not count(<alert expression>) or vector(0)", stat)
	}
	got := strings.TrimSpace(strings.ReplaceAll(inner, dashboardSelector, `job="resumption"`))
	if want := strings.TrimSpace(alertExpr(t, "TLSSessionTicketKeyNotRotated")); got != want {
		t.Errorf("key stat counts\n%s\nbut the alert fires on\n%s", got, want)
	}
}

// TestChainStatMatchesAlert: the overview's resumption-chain stat counts
// the targets TLSResumptionChainUnbounded fires for (before its `for:`).
func TestChainStatMatchesAlert(t *testing.T) {
	qs := panelQueries(t, "resumption-overview.json")["Risk: unbounded resumption chains"]
	if len(qs) != 1 {
		t.Fatalf("overview has %d queries for the chain stat, want 1", len(qs))
	}
	inner, ok := strings.CutPrefix(qs[0], "count(max by (job, instance) (")
	if inner, ok = strings.CutSuffix(inner, ")) or vector(0)"); !ok {
		t.Fatalf("chain stat query %q is not count(max by (job, instance) (<alert expression>)) or vector(0)", qs[0])
	}
	got := strings.ReplaceAll(inner, dashboardSelector, `job="resumption"`)
	if want := strings.TrimSpace(alertExpr(t, "TLSResumptionChainUnbounded")); got != want {
		t.Errorf("chain stat counts\n%s\nbut the alert fires on\n%s", got, want)
	}
}

// TestDashboardsFindAnyJob: the variables list the jobs that scrape
// resumption_exporter whatever they are called, and no panel adds a job of
// its own to what the variables select.
func TestDashboardsFindAnyJob(t *testing.T) {
	for name := range files() {
		d, _ := load(t, name)
		qs, err := d.Queries()
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range qs {
			if strings.Contains(q.Expr, `job="`) {
				t.Errorf("%s %s: hard-coded job in %s", name, q.Panel, q.Expr)
			}
			if !strings.HasPrefix(q.Panel, "variable ") && !strings.Contains(q.Expr, dashboardSelector) {
				t.Errorf("%s %s: does not select by the job and instance variables: %s", name, q.Panel, q.Expr)
			}
		}
	}
}

// TestDashboardsShowZeroRTTAndVersion: both dashboards show 0-RTT and the
// negotiated TLS version.
func TestDashboardsShowZeroRTTAndVersion(t *testing.T) {
	for name := range files() {
		used := panelMetrics(t, name)
		for _, m := range []string{"tls_session_ticket_max_early_data_bytes", "probe_tls_version_info"} {
			if !used[m] {
				t.Errorf("%s shows no %s", name, m)
			}
		}
	}
}

// The overview shows fleets: how many backends (ticket keys) answered a
// probe, and whether the first resumption offer landed on one that takes
// it — the facts behind "resumes only sometimes" behind a load balancer.
func TestOverviewShowsFleets(t *testing.T) {
	used := panelMetrics(t, "resumption-overview.json")
	for _, m := range []string{"tls_session_ticket_keys_seen", "tls_resumption_first_offer_resumed"} {
		if !used[m] {
			t.Errorf("resumption-overview.json has no panel showing %s", m)
		}
	}
}

// panelMetrics is the set of metric names the panels of dashboard file name
// query (template variables not counted).
func panelMetrics(t *testing.T, name string) map[string]bool {
	t.Helper()
	d, _ := load(t, name)
	qs, err := d.Queries()
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, q := range qs {
		if strings.HasPrefix(q.Panel, "variable ") {
			continue
		}
		names, err := mixin.MetricNames(q.Expr)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			used[n] = true
		}
	}
	return used
}
