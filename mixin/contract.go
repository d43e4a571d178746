package mixin

import (
	"bufio"
	"bytes"
	"regexp"
)

// metricRow matches a row of README.md's metric tables: | `name` | ... |
var metricRow = regexp.MustCompile("^\\|\\s*`([a-zA-Z_:][a-zA-Z0-9_:]*)`\\s*\\|")

// ContractMetrics returns the metric names README.md's tables promise: the
// metric contract between the exporter and everything in this directory.
func ContractMetrics(readme []byte) map[string]bool {
	names := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(readme))
	for sc.Scan() {
		if m := metricRow.FindSubmatch(sc.Bytes()); m != nil {
			names[string(m[1])] = true
		}
	}
	return names
}

// PrometheusMetrics are series Prometheus itself attaches to every scrape;
// rules may use them beside the exporter's.
func PrometheusMetrics() []string {
	return []string{"up", "scrape_duration_seconds", "scrape_samples_scraped"}
}
