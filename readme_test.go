package main

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// Every metric of the exporter's own registry is in README.md's table of
// the exporter's own metrics, with its labels.
func TestOwnMetricsInREADME(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, _ := strings.Cut(string(readme), "The exporter's own metrics")
	row := regexp.MustCompile("(?m)^\\| `(resumption_exporter_[a-z_]+)` \\|([^|]*)\\|")
	label := regexp.MustCompile("`([a-z_]+)`")
	documented := map[string][]string{}
	for _, m := range row.FindAllStringSubmatch(table, -1) {
		for _, l := range label.FindAllStringSubmatch(m[2], -1) {
			documented[m[1]] = append(documented[m[1]], l[1])
		}
		if documented[m[1]] == nil {
			documented[m[1]] = []string{}
		}
	}
	e, _ := newTestExporter(t, options{})
	mfs, err := e.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		name := mf.GetName()
		if !strings.HasPrefix(name, "resumption_exporter_") || name == "resumption_exporter_build_info" {
			continue
		}
		var labels []string
		if ms := mf.GetMetric(); len(ms) > 0 {
			for _, lp := range ms[0].GetLabel() {
				labels = append(labels, lp.GetName())
			}
		}
		got, ok := documented[name]
		if !ok {
			t.Errorf("%s is on /metrics but not in README.md's table", name)
			continue
		}
		if !slices.Equal(slices.Sorted(slices.Values(labels)), slices.Sorted(slices.Values(got))) {
			t.Errorf("%s: labels %v, README.md says %v", name, labels, got)
		}
	}
}
