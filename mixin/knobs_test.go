package mixin

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
)

// rendering is the mixin's output for one _config override.
type rendering struct {
	Alerts struct {
		Groups []struct {
			Rules []struct {
				Alert       string            `json:"alert"`
				Expr        string            `json:"expr"`
				Annotations map[string]string `json:"annotations"`
			} `json:"rules"`
		} `json:"groups"`
	} `json:"alerts"`
	Dashboards map[string]json.RawMessage `json:"dashboards"`
	raw        string
}

// evalMixin evaluates a jsonnet expression over the mixin overridden with
// the JSON object override.
func evalMixin(t *testing.T, jsonnet, override, expr string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), RenderTimeout)
	defer cancel()
	code := fmt.Sprintf("local m = (import 'mixin.libsonnet') + { _config+:: %s }; %s", override, expr)
	out, err := exec.CommandContext(ctx, jsonnet, "-J", Dir(), "-e", code).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("jsonnet with _config %s: %v\n%s", override, err, stderr)
	}
	return out
}

func render(t *testing.T, jsonnet, override string) rendering {
	t.Helper()
	out := evalMixin(t, jsonnet, override, "{ alerts: m.prometheusAlerts, dashboards: m.grafanaDashboards }")
	var r rendering
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatal(err)
	}
	r.raw = string(out)
	return r
}

func (r rendering) rule(t *testing.T, alert string) (expr string, annotations map[string]string) {
	t.Helper()
	for _, g := range r.Alerts.Groups {
		for _, rule := range g.Rules {
			if rule.Alert == alert {
				return rule.Expr, rule.Annotations
			}
		}
	}
	t.Fatalf("no alert %s", alert)
	return "", nil
}

// knobsChange evaluates, in one jsonnet run, whether overriding each
// _config field with another value of its type changes the rendered rules
// or dashboards.
const knobsChange = `
local base = import 'mixin.libsonnet';
local changed(v) =
  if v == null then '2m'
  else if std.isBoolean(v) then !v
  else if std.isNumber(v) then v * 2 + 60
  else if std.isString(v) then v + '_other'
  else if std.isArray(v) then v + ['cluster']
  else error 'no other value for ' + std.toString(v);
local render(m) = { alerts: m.prometheusAlerts, dashboards: m.grafanaDashboards };
local unchanged = render(base);
{
  [k]: render(base { _config+:: { [k]: changed(base._config[k]) } }) != unchanged
  for k in std.objectFields(base._config)
}
`

// TestEveryKnobChangesTheRendering: a _config field that the rules and
// dashboards do not read is a knob that does nothing when overridden.
func TestEveryKnobChangesTheRendering(t *testing.T) {
	jsonnet := testservers.LookPath(t, "jsonnet")
	ctx, cancel := context.WithTimeout(context.Background(), RenderTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, jsonnet, "-J", Dir(), "-e", knobsChange).Output()
	if err != nil {
		t.Fatalf("jsonnet: %v", err)
	}
	var changes map[string]bool
	if err := json.Unmarshal(out, &changes); err != nil {
		t.Fatal(err)
	}
	for _, knob := range []string{"keyMaxAgeSeconds", "activeWindowSeconds", "acceptedMaxAgeSeconds", "probeSelector", "runbookBase"} {
		if _, ok := changes[knob]; !ok {
			t.Errorf("_config has no %s", knob)
		}
	}
	for knob, changed := range changes {
		if !changed {
			t.Errorf("overriding %s changes neither rules nor dashboards: remove it or use it", knob)
		}
	}
}

// TestThresholdKnobs: each threshold changes what the rules compare with
// and what their texts say, printed as a duration.
func TestThresholdKnobs(t *testing.T) {
	jsonnet := testservers.LookPath(t, "jsonnet")
	tests := []struct {
		override string
		alert    string
		expr     []string
		text     map[string]string // annotation → substring
	}{
		{`{keyMaxAgeSeconds: 43200}`, "TLSSessionTicketKeyNotRotated", []string{") > 44100"},
			map[string]string{"summary": "not rotated within 12h", "description": "limit: 12h plus the 15m"}},
		{`{keyMaxAgeSeconds: 43200}`, "TLSSessionTicketKeyUnchanged", []string{"[44100s]", "offset 44100s"},
			map[string]string{"summary": "more than 12h", "description": "of the last 12h15m"}},
		{`{keyMaxAgeSeconds: 43200}`, "TLSSessionTicketLifetimeAboveOneDay", []string{"> 43200"},
			map[string]string{"summary": "longer than 12h", "description": "more than 12h."}},
		{`{activeWindowSeconds: 1800}`, "TLSSessionTicketKeyNotRotated", []string{") > 88200"},
			map[string]string{"description": "plus the 30m active-key window"}},
		{`{activeWindowSeconds: 1800}`, "ResumptionExporterHistorySaveFailing", nil,
			map[string]string{"description": "until 1d30m of history"}},
		{`{acceptedMaxAgeSeconds: 129600}`, "TLSSessionTicketResumableAfterOneDay", []string{"> 129600"},
			map[string]string{"summary": "more than 1d12h", "description": "(limit: 1d12h)"}},
		{`{acceptedMaxAgeSeconds: 129600}`, "TLSSessionIDResumableAfterOneDay", []string{"> 129600"},
			map[string]string{"summary": "more than 1d12h"}},
		{`{tls13MaxTicketLifetimeSeconds: 172800}`, "TLS13SessionTicketLifetimeAboveMaximum", []string{"> 172800"},
			map[string]string{"summary": "above 2d", "description": "above 172800 s (2d)"}},
		{`{resumptionChainMaxAgeSeconds: 172800}`, "TLSResumptionChainUnbounded", []string{"> 172800"},
			map[string]string{"summary": "older than 2d", "description": "(limit: 2d)"}},
		{`{fingerprintMinSamples: 48}`, "TLSSessionTicketKeyUnchanged", []string{">= 48"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.override+" "+tt.alert, func(t *testing.T) {
			expr, ann := render(t, jsonnet, tt.override).rule(t, tt.alert)
			for _, want := range tt.expr {
				if !strings.Contains(expr, want) {
					t.Errorf("expr lacks %q:\n%s", want, expr)
				}
			}
			for key, want := range tt.text {
				if !strings.Contains(ann[key], want) {
					t.Errorf("%s %q lacks %q", key, ann[key], want)
				}
			}
		})
	}
}

func TestHumanDuration(t *testing.T) {
	jsonnet := testservers.LookPath(t, "jsonnet")
	for seconds, want := range map[int]string{86400: "1d", 43200: "12h", 87300: "1d15m", 90: "1m30s", 0: "0s", 604800: "7d", 3661: "1h1m1s"} {
		out := evalMixin(t, jsonnet, "{}", fmt.Sprintf("(import 'duration.libsonnet').humanDuration(%d)", seconds))
		var got string
		if err := json.Unmarshal(out, &got); err != nil || got != want {
			t.Errorf("humanDuration(%d) = %s (%v), want %q", seconds, out, err, want)
		}
	}
}
