package findings

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
	"github.com/resumption-exporter/resumption_exporter/mixin"
)

// notFindings are the alerts no finding mirrors, and why: a decision each new
// alert must get, so that checks and alerts do not drift apart silently.
var notFindings = map[string]string{
	// Its threshold and history are those of TLSSessionTicketKeyNotRotated;
	// a check judges from its own key history (--history.path or
	// --watch), so ticket_key_not_rotated covers both.
	"TLSSessionTicketKeyUnchanged": "fingerprint-gauge fallback; a check has its own history",
	// A check judges each target alone; this one compares targets.
	"TLSSessionTicketKeySharedAcrossTargets": "compares targets; a check judges each alone",
	// A check that cannot probe exits with status 2 instead.
	"ResumptionProbeFailing":               "a failed probe is exit status 2",
	"ResumptionExporterConfigReloadFailed": "about a running exporter",
	"ResumptionExporterHistorySaveFailing": "about a running exporter",
}

// mixinConfig evaluates the mixin's _config with the jsonnet binary.
func mixinConfig(t *testing.T) map[string]any {
	t.Helper()
	jsonnet := testservers.LookPath(t, "jsonnet")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, jsonnet, "-J", mixin.Dir(), "-e", "(import 'mixin.libsonnet')._config").Output()
	if err != nil {
		t.Fatalf("jsonnet: %v", err)
	}
	var c map[string]any
	if err := json.Unmarshal(out, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestThresholdsAreTheMixins keeps DefaultThresholds equal to the knobs the
// alerts are rendered from.
func TestThresholdsAreTheMixins(t *testing.T) {
	c := mixinConfig(t)
	thresholds := map[string]time.Duration{
		"keyMaxAgeSeconds":              DefaultThresholds.KeyMaxAge,
		"activeWindowSeconds":           DefaultThresholds.ActiveWindow,
		"acceptedMaxAgeSeconds":         DefaultThresholds.AcceptedMaxAge,
		"tls13MaxTicketLifetimeSeconds": DefaultThresholds.TLS13MaxTicketLifetime,
		"resumptionChainMaxAgeSeconds":  DefaultThresholds.ResumptionChainMaxAge,
	}
	for field := range c {
		if _, ok := thresholds[field]; strings.HasSuffix(field, "Seconds") && !ok {
			t.Errorf("mixin _config.%s has no threshold compared here", field)
		}
	}
	for field, got := range thresholds {
		want, ok := c[field].(float64)
		if !ok {
			t.Errorf("mixin _config.%s = %v, want a number of seconds", field, c[field])
			continue
		}
		if got.Seconds() != want {
			t.Errorf("threshold for _config.%s is %v s, the mixin says %v s", field, got.Seconds(), want)
		}
	}
	if c["runbookBase"] != RunbookBase {
		t.Errorf("RunbookBase %q, the mixin's runbookBase %q", RunbookBase, c["runbookBase"])
	}
}

type alertRule struct {
	Alert       string            `yaml:"alert"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func loadAlerts(t *testing.T) map[string]alertRule {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(mixin.RepoRoot(), "alerts", "resumption-alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Rules []alertRule `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	rules := map[string]alertRule{}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			rules[r.Alert] = r
		}
	}
	if len(rules) == 0 {
		t.Fatal("no alerts in resumption-alerts.yml")
	}
	return rules
}

// TestSeveritiesAreTheAlerts: a finding and the alert with the same meaning
// have the same severity and the same runbook section; every alert is either
// mirrored or listed in notFindings.
func TestSeveritiesAreTheAlerts(t *testing.T) {
	rules := loadAlerts(t)
	mirrored := map[string]bool{}
	for _, d := range Definitions {
		if d.Alert == "" {
			continue
		}
		mirrored[d.Alert] = true
		r, ok := rules[d.Alert]
		if !ok {
			t.Errorf("finding %s mirrors alert %s, which resumption-alerts.yml lacks", d.ID, d.Alert)
			continue
		}
		if got := d.Severity.String(); got != r.Labels["severity"] {
			t.Errorf("finding %s has severity %s, alert %s has %s", d.ID, got, d.Alert, r.Labels["severity"])
		}
		if got := d.RunbookURL(); got != r.Annotations["runbook_url"] {
			t.Errorf("finding %s links %s, alert %s links %s", d.ID, got, d.Alert, r.Annotations["runbook_url"])
		}
	}
	for name := range rules {
		if !mirrored[name] && notFindings[name] == "" {
			t.Errorf("alert %s has no finding: add one to Definitions or say why in notFindings", name)
		}
		if mirrored[name] && notFindings[name] != "" {
			t.Errorf("alert %s is both mirrored and listed in notFindings", name)
		}
	}
	for name := range notFindings {
		if _, ok := rules[name]; !ok {
			t.Errorf("notFindings names %s, which resumption-alerts.yml lacks", name)
		}
	}
}

var heading = regexp.MustCompile(`(?m)^#{1,6} +(.+?) *$`)

// TestRunbookSections: every finding links to a heading of alerts/runbook.md.
func TestRunbookSections(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(mixin.RepoRoot(), "alerts", "runbook.md"))
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	for _, m := range heading.FindAllStringSubmatch(string(b), -1) {
		anchors[Definition{Section: m[1]}.Anchor()] = true
	}
	for _, d := range Definitions {
		if !anchors[d.Anchor()] {
			t.Errorf("finding %s: runbook.md has no heading for #%s", d.ID, d.Anchor())
		}
		if !strings.HasPrefix(d.RunbookURL(), RunbookBase+"#") {
			t.Errorf("finding %s: runbook URL %s", d.ID, d.RunbookURL())
		}
	}
	if got := (Definition{Section: "Stateful TLS 1.3 tickets"}).Anchor(); got != "stateful-tls-13-tickets" {
		t.Errorf("anchor of a heading with spaces and dots: %q", got)
	}
}

// TestDefinitionsInREADME keeps README.md's table of the check command's
// findings equal to Definitions, both ways: each ID with its severity and
// alert ("none" for a finding without one).
func TestDefinitionsInREADME(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(readme), "| finding | severity | alert |\n|---|---|---|\n")
	if !ok {
		t.Fatal("README.md has no findings table")
	}
	name := regexp.MustCompile("`([^`]+)`")
	type row struct{ severity, alert string }
	documented := map[string]row{}
	for _, line := range strings.Split(table, "\n") {
		if !strings.HasPrefix(line, "| `") {
			break
		}
		cells := strings.Split(line, "|")
		if len(cells) < 5 {
			t.Fatalf("findings table row %q: want three cells", line)
		}
		alert := "none"
		if m := name.FindStringSubmatch(cells[3]); m != nil && !strings.HasPrefix(strings.TrimSpace(cells[3]), "none") {
			alert = m[1]
		}
		for _, id := range name.FindAllStringSubmatch(cells[1], -1) {
			documented[id[1]] = row{strings.TrimSpace(cells[2]), alert}
		}
	}
	ids := map[string]bool{}
	for _, d := range Definitions {
		ids[d.ID] = true
		want := row{d.Severity.String(), d.Alert}
		if d.Alert == "" {
			want.alert = "none"
		}
		got, ok := documented[d.ID]
		switch {
		case !ok:
			t.Errorf("finding %s is not in README.md's findings table", d.ID)
		case got != want:
			t.Errorf("README.md's findings table has %s as %+v, the definition is %+v", d.ID, got, want)
		}
	}
	for id := range documented {
		if !ids[id] {
			t.Errorf("README.md's findings table lists %s, which Definitions lacks", id)
		}
	}
}
