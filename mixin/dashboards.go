package mixin

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

// Query is one PromQL query of a dashboard: a panel target or the selector
// inside a template variable's label_values(...).
type Query struct {
	Dashboard string // the dashboard's uid
	Panel     string // the panel's title, or "variable NAME"
	RefID     string
	Expr      string // as written, with Grafana variables
}

// Dashboard is the part of Grafana's dashboard JSON the checks read.
type Dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []Panel `json:"panels"`
	Templating    struct {
		List []Variable `json:"list"`
	} `json:"templating"`
}

// Panel is a dashboard panel.
type Panel struct {
	ID          int             `json:"id"`
	Type        string          `json:"type"`
	Title       string          `json:"title"`
	Description string          `json:"description"`
	Datasource  *DatasourceRef  `json:"datasource"`
	FieldConfig FieldConfig     `json:"fieldConfig"`
	Options     json.RawMessage `json:"options"`
	Targets     []Target        `json:"targets"`
}

// FieldConfig holds a panel's field defaults and overrides.
type FieldConfig struct {
	Defaults struct {
		Unit       string      `json:"unit"`
		Thresholds *Thresholds `json:"thresholds"`
	} `json:"defaults"`
	Overrides []struct {
		Matcher struct {
			ID      string `json:"id"`
			Options string `json:"options"`
		} `json:"matcher"`
		Properties []struct {
			ID    string          `json:"id"`
			Value json.RawMessage `json:"value"`
		} `json:"properties"`
	} `json:"overrides"`
}

// Thresholds are Grafana's colour steps.
type Thresholds struct {
	Mode  string `json:"mode"`
	Steps []struct {
		Color string   `json:"color"`
		Value *float64 `json:"value"`
	} `json:"steps"`
}

// Target is a panel query.
type Target struct {
	RefID      string         `json:"refId"`
	Expr       string         `json:"expr"`
	Instant    bool           `json:"instant"`
	Datasource *DatasourceRef `json:"datasource"`
}

// DatasourceRef names a data source.
type DatasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// Variable is a template variable.
type Variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	Datasource *DatasourceRef  `json:"datasource"`
	Multi      bool            `json:"multi"`
	IncludeAll bool            `json:"includeAll"`
}

// ParseDashboard decodes Grafana dashboard JSON.
func ParseDashboard(b []byte) (Dashboard, error) {
	var d Dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		return d, err
	}
	return d, nil
}

// labelValues matches Grafana's label_values(selector, label).
var labelValues = regexp.MustCompile(`^label_values\((.+),\s*[a-zA-Z_][a-zA-Z0-9_]*\)$`)

// Queries returns every PromQL query of the dashboard, panels first.
func (d Dashboard) Queries() ([]Query, error) {
	var qs []Query
	for _, p := range d.Panels {
		for _, t := range p.Targets {
			qs = append(qs, Query{Dashboard: d.UID, Panel: p.Title, RefID: t.RefID, Expr: t.Expr})
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q string
		if err := json.Unmarshal(v.Query, &q); err != nil {
			return nil, fmt.Errorf("variable %s: query is not a string: %w", v.Name, err)
		}
		m := labelValues.FindStringSubmatch(strings.TrimSpace(q))
		if m == nil {
			return nil, fmt.Errorf("variable %s: %q is not label_values(selector, label)", v.Name, q)
		}
		qs = append(qs, Query{Dashboard: d.UID, Panel: "variable " + v.Name, RefID: v.Name, Expr: m[1]})
	}
	return qs, nil
}

// Expand replaces Grafana's variables in a query: the template variables
// with the given values (job, instance), Grafana's built-in intervals with
// the given step. The result is what Grafana would send to Prometheus.
func Expand(expr string, vars map[string]string, step string) string {
	builtins := []string{"$__rate_interval", "$__interval", "$__range", "${__rate_interval}", "${__interval}", "${__range}"}
	for _, b := range builtins {
		expr = strings.ReplaceAll(expr, b, step)
	}
	for name, value := range vars {
		expr = strings.ReplaceAll(expr, "${"+name+"}", value)
		expr = strings.ReplaceAll(expr, "$"+name, value)
	}
	return expr
}
