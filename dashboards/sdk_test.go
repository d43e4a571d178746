package dashboards

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	sdkdashboard "github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// TestGrafanaSchema decodes each dashboard into Grafana's own dashboard
// types, generated from Grafana's schemas by the Grafana Foundation SDK.
// Its strict decoding fails on a field the schema does not know (a typo, a
// field of another panel type), a value of the wrong type, and a required
// field that is missing; with the default plugins registered it decodes the
// options and field config of each panel as that panel type's (stat,
// table, timeseries) and every target as a Prometheus query, equally
// strictly. Validate then checks the schema's value constraints. What it
// cannot check: that Grafana renders the panels as intended.
func TestGrafanaSchema(t *testing.T) {
	plugins.RegisterDefaultPlugins()
	for name := range files() {
		t.Run(name, func(t *testing.T) {
			_, raw := load(t, name)
			var d sdkdashboard.Dashboard
			if err := schemaErr(d.UnmarshalJSONStrict(raw)); err != nil {
				t.Fatalf("Grafana's dashboard schema rejects %s:\n%v", name, err)
			}
			if err := schemaErr(d.Validate()); err != nil {
				t.Errorf("%s breaks a constraint of Grafana's dashboard schema:\n%v", name, err)
			}
			if len(d.Panels) == 0 {
				t.Errorf("%s: no panels decoded", name)
			}
		})
	}
}

// TestGrafanaSchemaRejects makes sure the strict decoding above does
// reject what it promises to, on a copy of the overview with one mistake.
func TestGrafanaSchemaRejects(t *testing.T) {
	plugins.RegisterDefaultPlugins()
	tests := []struct {
		name   string
		mutate func(panel map[string]any)
	}{
		{"misspelt stat option", func(p map[string]any) { p["options"].(map[string]any)["colourMode"] = "background" }},
		{"unknown panel field", func(p map[string]any) { p["fieldconfig"] = map[string]any{} }},
		{"wrong type", func(p map[string]any) { p["gridPos"].(map[string]any)["h"] = "tall" }},
		{"required field missing", func(p map[string]any) { delete(p["options"].(map[string]any), "reduceOptions") }},
	}
	_, raw := load(t, "resumption-overview.json")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var doc map[string]any
			if err := json.Unmarshal(raw, &doc); err != nil {
				t.Fatal(err)
			}
			panel := doc["panels"].([]any)[0].(map[string]any)
			if panel["type"] != "stat" {
				t.Fatalf("first overview panel is a %v, want a stat", panel["type"])
			}
			tt.mutate(panel)
			b, err := json.Marshal(doc)
			if err != nil {
				t.Fatal(err)
			}
			var d sdkdashboard.Dashboard
			if schemaErr(d.UnmarshalJSONStrict(b)) == nil {
				t.Error("accepted")
			}
		})
	}
}

// schemaErr returns nil for the SDK's "no errors": its strict decoder
// returns an empty cog.BuildErrors as a non-nil error.
func schemaErr(err error) error {
	var errs cog.BuildErrors
	if errors.As(err, &errs) && len(errs) == 0 {
		return nil
	}
	return err
}
