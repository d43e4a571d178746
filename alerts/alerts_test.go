// Package alerts holds the generated Prometheus alerting rules
// (resumption-alerts.yml, rendered from mixin/), their promtool unit tests
// (tests.yml) and the runbook the rules link to. Its Go tests keep the three
// consistent with each other, with the mixin and with README.md's metric
// contract.
package alerts

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/resumption-exporter/resumption_exporter/collector/findings"
	"github.com/resumption-exporter/resumption_exporter/internal/mixintest"
	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
	"github.com/resumption-exporter/resumption_exporter/mixin"
)

const rulesFile = "resumption-alerts.yml"

type rule struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type ruleFile struct {
	Groups []struct {
		Name     string `yaml:"name"`
		Interval string `yaml:"interval"`
		Rules    []rule `yaml:"rules"`
	} `yaml:"groups"`
}

func (f ruleFile) rules() []rule {
	var rs []rule
	for _, g := range f.Groups {
		rs = append(rs, g.Rules...)
	}
	return rs
}

func loadRules(t *testing.T, path string) ruleFile {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f ruleFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(f.rules()) == 0 {
		t.Fatalf("%s holds no rules", path)
	}
	return f
}

func run(t *testing.T, timeout time.Duration, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
}

// render writes the mixin's files with the given timing into a temporary
// directory and returns it.
func render(t *testing.T, timing mixin.Timing) string {
	t.Helper()
	jsonnet := testservers.LookPath(t, "jsonnet")
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), mixin.RenderTimeout)
	defer cancel()
	if err := mixin.Render(ctx, jsonnet, dir, timing); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestRulesUpToDate(t *testing.T) {
	dir := render(t, mixin.RealTiming)
	want, err := os.ReadFile(filepath.Join(dir, "alerts", rulesFile))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("alerts/%s differs from what the mixin renders: run mixin/generate.sh and commit", rulesFile)
	}
}

// TestFastRulesDifferOnlyInTiming makes sure the rules the end-to-end test
// loads are the shipped ones, only quicker to fire.
func TestFastRulesDifferOnlyInTiming(t *testing.T) {
	fast := loadRules(t, filepath.Join(render(t, mixin.FastTiming), "alerts", rulesFile))
	real := loadRules(t, rulesFile)
	fr, rr := fast.rules(), real.rules()
	if len(fr) != len(rr) {
		t.Fatalf("fast rendering has %d rules, real %d", len(fr), len(rr))
	}
	for i := range rr {
		f, r := fr[i], rr[i]
		if f.Alert != r.Alert || f.Expr != r.Expr || !equalMaps(f.Labels, r.Labels) || !equalMaps(f.Annotations, r.Annotations) {
			t.Errorf("rule %d (%s): fast rendering differs beyond for:", i, r.Alert)
		}
		if f.For != "1s" {
			t.Errorf("%s: fast for: %q, want 1s", f.Alert, f.For)
		}
		if r.For == "" || r.For == f.For {
			t.Errorf("%s: real for: %q, want a real duration", r.Alert, r.For)
		}
	}
	for _, g := range fast.Groups {
		if g.Interval != "1s" {
			t.Errorf("fast group %s: interval %q, want 1s", g.Name, g.Interval)
		}
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

func TestPromtoolCheckRules(t *testing.T) {
	promtool := testservers.LookPath(t, "promtool")
	for _, tc := range []struct {
		name string
		path func(t *testing.T) string
	}{
		{"checked-in", func(*testing.T) string { return rulesFile }},
		{"fast", func(t *testing.T) string {
			return filepath.Join(render(t, mixin.FastTiming), "alerts", rulesFile)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run(t, time.Minute, promtool, "check", "rules", tc.path(t))
		})
	}
}

func TestPromtoolTestRules(t *testing.T) {
	promtool := testservers.LookPath(t, "promtool")
	run(t, 5*time.Minute, promtool, "test", "rules", "tests.yml")
}

type unitTests struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		Name          string `yaml:"name"`
		AlertRuleTest []struct {
			EvalTime  string           `yaml:"eval_time"`
			AlertName string           `yaml:"alertname"`
			ExpAlerts []map[string]any `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

// TestEveryAlertIsTestedBothWays checks tests.yml has, for every alert, a
// case where it fires and one where it must not.
func TestEveryAlertIsTestedBothWays(t *testing.T) {
	b, err := os.ReadFile("tests.yml")
	if err != nil {
		t.Fatal(err)
	}
	var u unitTests
	if err := yaml.Unmarshal(b, &u); err != nil {
		t.Fatal(err)
	}
	if len(u.RuleFiles) != 1 || u.RuleFiles[0] != rulesFile {
		t.Errorf("tests.yml rule_files = %q, want [%s]", u.RuleFiles, rulesFile)
	}
	fires, silent := map[string]int{}, map[string]int{}
	for _, tc := range u.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.AlertName]++
			} else {
				silent[a.AlertName]++
			}
		}
	}
	known := map[string]bool{}
	for _, r := range loadRules(t, rulesFile).rules() {
		known[r.Alert] = true
		if fires[r.Alert] == 0 {
			t.Errorf("%s: no test where it fires", r.Alert)
		}
		if silent[r.Alert] == 0 {
			t.Errorf("%s: no test where it must stay silent", r.Alert)
		}
	}
	for name := range fires {
		if !known[name] {
			t.Errorf("tests.yml tests unknown alert %s", name)
		}
	}
	for name := range silent {
		if !known[name] {
			t.Errorf("tests.yml tests unknown alert %s (a silent test of a renamed alert proves nothing)", name)
		}
	}
}

func TestGithubAnchor(t *testing.T) {
	for _, tc := range []struct{ heading, want string }{
		{"TLSSessionTicketKeyNotRotated", "tlssessionticketkeynotrotated"},
		{"Stateful TLS 1.3 tickets", "stateful-tls-13-tickets"},
		{"Apache httpd (mod_ssl)", "apache-httpd-mod_ssl"},
	} {
		if got := findings.GitHubAnchor(tc.heading); got != tc.want {
			t.Errorf("findings.GitHubAnchor(%q) = %q, want %q", tc.heading, got, tc.want)
		}
	}
}

var heading = regexp.MustCompile(`(?m)^#{1,6} +(.+?) *$`)

// templateVar finds the figures a description may name.
var templateVar = regexp.MustCompile(`\$value|\| *query`)

func TestAlertsAreDocumented(t *testing.T) {
	anchors := runbookAnchors(t)
	seen := map[string]bool{}
	for _, r := range loadRules(t, rulesFile).rules() {
		t.Run(r.Alert, func(t *testing.T) {
			if seen[r.Alert] {
				t.Errorf("alert name used twice")
			}
			seen[r.Alert] = true
			switch r.Labels["severity"] {
			case "critical", "warning", "info":
			default:
				t.Errorf("severity %q, want critical, warning or info", r.Labels["severity"])
			}
			if r.Annotations["summary"] == "" {
				t.Error("no summary")
			}
			desc := r.Annotations["description"]
			if !strings.Contains(desc, "{{ $labels.instance }}") {
				t.Errorf("description does not name the target: %q", desc)
			}
			// Alerts on a threshold name the figure; alerts on a state
			// (== 0) have none to name.
			if !strings.Contains(r.Expr, "== 0") && !templateVar.MatchString(desc) {
				t.Errorf("description does not name the figure ($value): %q", desc)
			}
			url, anchor, ok := strings.Cut(r.Annotations["runbook_url"], "#")
			if !ok || !strings.HasSuffix(url, "/alerts/runbook.md") {
				t.Errorf("runbook_url %q: want .../alerts/runbook.md#anchor", r.Annotations["runbook_url"])
			}
			if !anchors[anchor] {
				t.Errorf("runbook.md has no heading for #%s", anchor)
			}
		})
	}
}

// queryTemplate finds the metric a description's query template reads.
var queryTemplate = regexp.MustCompile(`printf "([a-zA-Z_:][a-zA-Z0-9_:]*)`)

func TestRulesUseContractMetrics(t *testing.T) {
	allowed := mixintest.RequireContract(t)
	for _, m := range mixin.PrometheusMetrics() {
		allowed[m] = true
	}
	for _, r := range loadRules(t, rulesFile).rules() {
		names, err := mixin.MetricNames(r.Expr)
		if err != nil {
			t.Errorf("%s: %v", r.Alert, err)
			continue
		}
		if len(names) == 0 {
			t.Errorf("%s: expression selects no metric", r.Alert)
		}
		for _, m := range queryTemplate.FindAllStringSubmatch(r.Annotations["description"], -1) {
			names = append(names, m[1])
		}
		for _, n := range names {
			if !allowed[n] {
				t.Errorf("%s uses %s, which README.md's metric tables do not list", r.Alert, n)
			}
		}
	}
}
