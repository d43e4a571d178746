// Package dashboards holds the Grafana dashboards rendered from mixin/.
// Grafana is not available to the tests, so they decode the JSON into
// Grafana's own dashboard types (sdk_test.go), check it structurally, have
// promtool parse every query, and hold every metric name to README.md's
// contract.
package dashboards

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/resumption-exporter/resumption_exporter/internal/mixintest"
	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
	"github.com/resumption-exporter/resumption_exporter/mixin"
)

// files returns the dashboards, by the uid each must carry.
func files() map[string]string {
	return map[string]string{
		"resumption-overview.json": "resumption-overview",
		"resumption-target.json":   "resumption-target",
	}
}

func load(t *testing.T, name string) (mixin.Dashboard, []byte) {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	d, err := mixin.ParseDashboard(b)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return d, b
}

func TestDashboardsUpToDate(t *testing.T) {
	jsonnet := testservers.LookPath(t, "jsonnet")
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), mixin.RenderTimeout)
	defer cancel()
	if err := mixin.Render(ctx, jsonnet, dir, mixin.RealTiming); err != nil {
		t.Fatal(err)
	}
	for name := range files() {
		want, err := os.ReadFile(filepath.Join(dir, "dashboards", name))
		if err != nil {
			t.Fatal(err)
		}
		if _, got := load(t, name); !bytes.Equal(got, want) {
			t.Errorf("dashboards/%s differs from what the mixin renders: run mixin/generate.sh and commit", name)
		}
	}
}

// datasourceRefs collects every "datasource" value anywhere in the JSON.
func datasourceRefs(v any, path string, out map[string]any) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if k == "datasource" {
				out[path+".datasource"] = x
			}
			datasourceRefs(x, path+"."+k, out)
		}
	case []any:
		for i, x := range v {
			datasourceRefs(x, fmt.Sprintf("%s[%d]", path, i), out)
		}
	}
}

func TestDashboardStructure(t *testing.T) {
	for name, uid := range files() {
		t.Run(name, func(t *testing.T) {
			d, raw := load(t, name)
			if d.UID != uid || d.Title == "" {
				t.Errorf("uid %q title %q, want uid %q and a title", d.UID, d.Title, uid)
			}
			if d.SchemaVersion < 36 {
				t.Errorf("schemaVersion %d, want >= 36", d.SchemaVersion)
			}

			vars := map[string]mixin.Variable{}
			for _, v := range d.Templating.List {
				vars[v.Name] = v
			}
			if v := vars["datasource"]; v.Type != "datasource" || string(v.Query) != `"prometheus"` {
				t.Errorf("datasource variable = %+v, want type datasource, query prometheus", v)
			}
			for _, name := range []string{"job", "instance"} {
				v := vars[name]
				if v.Type != "query" || !strings.HasPrefix(strings.Trim(string(v.Query), `"`), "label_values(") {
					t.Errorf("%s variable = %+v, want a label_values query", name, v)
				}
			}

			// No hard-coded data source anywhere: every reference is the
			// variable.
			var doc any
			if err := json.Unmarshal(raw, &doc); err != nil {
				t.Fatal(err)
			}
			refs := map[string]any{}
			datasourceRefs(doc, "", refs)
			want := map[string]any{"type": "prometheus", "uid": "${datasource}"}
			for path, ref := range refs {
				if m, ok := ref.(map[string]any); !ok || len(m) != 2 || m["type"] != want["type"] || m["uid"] != want["uid"] {
					t.Errorf("%s = %v, want %v", path, ref, want)
				}
			}

			ids := map[int]bool{}
			for _, p := range d.Panels {
				if ids[p.ID] {
					t.Errorf("panel id %d used twice", p.ID)
				}
				ids[p.ID] = true
				if p.Datasource == nil {
					t.Errorf("panel %q: no datasource", p.Title)
				}
				if strings.TrimSpace(p.Description) == "" {
					t.Errorf("panel %q: no description", p.Title)
				}
				if p.FieldConfig.Defaults.Unit == "" {
					t.Errorf("panel %q: no unit", p.Title)
				}
				if len(p.Targets) == 0 {
					t.Errorf("panel %q: no queries", p.Title)
				}
				for _, tg := range p.Targets {
					if tg.Datasource == nil {
						t.Errorf("panel %q query %s: no datasource", p.Title, tg.RefID)
					}
				}
				if p.Type == "table" && len(p.Targets) > 1 {
					checkColumns(t, p)
				}
			}
		})
	}
}

// checkColumns checks that a table merging several queries gives each
// query's column a name and a unit.
func checkColumns(t *testing.T, p mixin.Panel) {
	t.Helper()
	props := map[string]map[string]json.RawMessage{}
	for _, o := range p.FieldConfig.Overrides {
		if o.Matcher.ID == "byName" {
			m := map[string]json.RawMessage{}
			for _, prop := range o.Properties {
				m[prop.ID] = prop.Value
			}
			props[o.Matcher.Options] = m
		}
	}
	for _, tg := range p.Targets {
		col := props["Value #"+tg.RefID]
		if col["displayName"] == nil || col["unit"] == nil || col["description"] == nil {
			t.Errorf("table %q column of query %s lacks displayName, unit or description: %v", p.Title, tg.RefID, col)
		}
	}
}

// TestOverviewTable checks the overview's promises: one row per target with
// the posture columns, sorted, key age coloured past a day.
func TestOverviewTable(t *testing.T) {
	d, _ := load(t, "resumption-overview.json")
	var table *mixin.Panel
	for i := range d.Panels {
		if d.Panels[i].Type == "table" {
			table = &d.Panels[i]
		}
	}
	if table == nil {
		t.Fatal("no table panel")
	}
	used := map[string]string{}
	for _, tg := range table.Targets {
		if !tg.Instant {
			t.Errorf("query %s is not instant: a range query gives many rows per target", tg.RefID)
		}
		if !strings.Contains(tg.Expr, "by (job, instance)") {
			t.Errorf("query %s does not aggregate to one row per target: %s", tg.RefID, tg.Expr)
		}
		names, err := mixin.MetricNames(tg.Expr)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			used[n] = tg.RefID
		}
	}
	for _, m := range []string{
		"probe_success",
		"tls_resumption_supported",
		"tls_session_ticket_lifetime_hint_seconds",
		"tls_session_ticket_key_oldest_active_first_seen_timestamp_seconds",
		"tls_session_ticket_key_rotation_interval_seconds",
		"tls_session_ticket_accepted_max_age_seconds",
		"tls_session_id_accepted_max_age_seconds",
	} {
		if used[m] == "" {
			t.Errorf("overview table has no column from %s", m)
		}
	}

	var opts struct {
		SortBy []struct {
			DisplayName string `json:"displayName"`
		} `json:"sortBy"`
	}
	if err := json.Unmarshal(table.Options, &opts); err != nil {
		t.Errorf("table options: %s", err)
	} else if len(opts.SortBy) == 0 {
		t.Error("table is not sorted (no options.sortBy)")
	}

	// The key-age column turns red from 86400 s on.
	ageRef := used["tls_session_ticket_key_oldest_active_first_seen_timestamp_seconds"]
	var colored bool
	for _, o := range table.FieldConfig.Overrides {
		if o.Matcher.Options != "Value #"+ageRef {
			continue
		}
		for _, prop := range o.Properties {
			if prop.ID != "thresholds" {
				continue
			}
			var th mixin.Thresholds
			if err := json.Unmarshal(prop.Value, &th); err != nil {
				t.Fatal(err)
			}
			last := th.Steps[len(th.Steps)-1]
			colored = last.Color == "red" && last.Value != nil && *last.Value == 86400
		}
	}
	if !colored {
		t.Error("key age column has no red threshold at 86400 s")
	}
}

// TestQueriesParse has promtool parse every query, variables replaced as
// Grafana would: each becomes a recording rule of a throwaway rules file.
func TestQueriesParse(t *testing.T) {
	promtool := testservers.LookPath(t, "promtool")
	type recording struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []recording
	for name := range files() {
		d, _ := load(t, name)
		qs, err := d.Queries()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, q := range qs {
			rules = append(rules, recording{
				Record: fmt.Sprintf("dashboard_query_%d", len(rules)),
				Expr:   mixin.Expand(q.Expr, map[string]string{"job": "resumption", "instance": "example.com:443"}, "1m"),
			})
			if strings.Contains(rules[len(rules)-1].Expr, "$") {
				t.Errorf("%s %s: variable left after expansion: %s", q.Dashboard, q.Panel, rules[len(rules)-1].Expr)
			}
		}
	}
	doc := map[string]any{"groups": []any{map[string]any{"name": "dashboards", "rules": rules}}}
	b, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "dashboard-queries.yml")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, promtool, "check", "rules", path).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules: %v\n%s\n%s", err, out, b)
	}
	if len(rules) < 10 {
		t.Errorf("only %d queries found; the dashboards hold more", len(rules))
	}
}

func TestQueriesUseContractMetrics(t *testing.T) {
	allowed := mixintest.RequireContract(t)
	for name := range files() {
		d, _ := load(t, name)
		qs, err := d.Queries()
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range qs {
			names, err := mixin.MetricNames(q.Expr)
			if err != nil {
				t.Errorf("%s %q: %v", q.Dashboard, q.Panel, err)
				continue
			}
			if len(names) == 0 {
				t.Errorf("%s %q %s selects no metric: %s", q.Dashboard, q.Panel, q.RefID, q.Expr)
			}
			for _, n := range names {
				if !allowed[n] {
					t.Errorf("%s %q uses %s, which README.md's metric tables do not list", q.Dashboard, q.Panel, n)
				}
			}
		}
	}
}
