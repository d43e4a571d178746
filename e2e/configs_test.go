package e2e

import (
	"errors"
	"fmt"
	"net/url"

	"gopkg.in/yaml.v3"
)

// The test runs the shipped examples, not configurations of its own: it
// decodes examples/prometheus.yml and examples/alertmanager.yml and changes
// only what must differ on a test machine — addresses and intervals — so the
// relabeling, the job names the rules select, the routes and the inhibit
// rule are the ones users copy. Anything missing from the examples that
// these edits expect is an error, so an edit there cannot slip past.

// fastInterval is every scrape, evaluation and grouping interval of the
// test: the rendered rules' `for:` is 1s as well.
const fastInterval = "1s"

// prometheusEndpoints are the loopback addresses the example's are replaced
// with.
type prometheusEndpoints struct {
	Target       string // the TLS server probed
	Exporter     string // resumption_exporter
	Alertmanager string
}

// prometheusConfig rewrites the example Prometheus configuration for the
// test: 1s intervals, the test's target, exporter and Alertmanager.
// rule_files is kept as it is. It also returns the module the example's
// probe job asks for.
func prometheusConfig(example []byte, e prometheusEndpoints) (config []byte, module string, err error) {
	var cfg map[string]any
	if err := yaml.Unmarshal(example, &cfg); err != nil {
		return nil, "", fmt.Errorf("example Prometheus config: %w", err)
	}
	global, err := mapAt(cfg, "global")
	if err != nil {
		return nil, "", err
	}
	global["scrape_interval"] = fastInterval
	global["scrape_timeout"] = fastInterval
	global["evaluation_interval"] = fastInterval

	alerting, err := mapAt(cfg, "alerting")
	if err != nil {
		return nil, "", err
	}
	ams, err := listAt(alerting, "alertmanagers")
	if err != nil {
		return nil, "", err
	}
	if len(ams) == 0 {
		return nil, "", errors.New("example Prometheus config: no alertmanagers")
	}
	for i, am := range ams {
		m, ok := am.(map[string]any)
		if !ok {
			return nil, "", fmt.Errorf("alertmanagers[%d] is not a mapping", i)
		}
		m["static_configs"] = []any{map[string]any{"targets": []any{e.Alertmanager}}}
	}

	jobs, err := listAt(cfg, "scrape_configs")
	if err != nil {
		return nil, "", err
	}
	found := map[string]bool{}
	for i, j := range jobs {
		job, ok := j.(map[string]any)
		if !ok {
			return nil, "", fmt.Errorf("scrape_configs[%d] is not a mapping", i)
		}
		name, _ := job["job_name"].(string)
		found[name] = true
		switch name {
		case "resumption":
			job["static_configs"] = []any{map[string]any{"targets": []any{e.Target}}}
			if module, err = probeModule(job); err != nil {
				return nil, "", fmt.Errorf("job %s: %w", name, err)
			}
			if err := pointRelabelingAt(job, e.Exporter); err != nil {
				return nil, "", fmt.Errorf("job %s: %w", name, err)
			}
		case "resumption_exporter":
			job["static_configs"] = []any{map[string]any{"targets": []any{e.Exporter}}}
		default:
			return nil, "", fmt.Errorf("example Prometheus config: unexpected job %q", name)
		}
	}
	for _, name := range []string{"resumption", "resumption_exporter"} {
		if !found[name] {
			return nil, "", fmt.Errorf("example Prometheus config: no job %q", name)
		}
	}
	config, err = yaml.Marshal(cfg)
	return config, module, err
}

// exampleModule returns the module the example's probe job asks for, which
// the exporter must be configured with before the endpoints are known.
func exampleModule(example []byte) (string, error) {
	_, module, err := prometheusConfig(example, prometheusEndpoints{})
	return module, err
}

// probeModule returns the one module a probe job's params ask for.
func probeModule(job map[string]any) (string, error) {
	params, err := mapAt(job, "params")
	if err != nil {
		return "", err
	}
	modules, err := listAt(params, "module")
	if err != nil {
		return "", err
	}
	if len(modules) != 1 {
		return "", fmt.Errorf("params.module %v: want one module", modules)
	}
	m, ok := modules[0].(string)
	if !ok || m == "" {
		return "", fmt.Errorf("params.module %v: want a module name", modules)
	}
	return m, nil
}

// pointRelabelingAt sets the replacement of the relabel rule that sends the
// probe to the exporter (target_label __address__ without source labels).
func pointRelabelingAt(job map[string]any, exporter string) error {
	rules, err := listAt(job, "relabel_configs")
	if err != nil {
		return err
	}
	n := 0
	for _, r := range rules {
		rule, ok := r.(map[string]any)
		if !ok {
			return errors.New("a relabel rule is not a mapping")
		}
		if rule["target_label"] == "__address__" && rule["source_labels"] == nil {
			rule["replacement"] = exporter
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("%d relabel rules set __address__ to the exporter, want 1", n)
	}
	return nil
}

// alertmanagerConfig rewrites the example Alertmanager configuration for the
// test: every group_wait and group_interval at 1s, every webhook URL on the
// test's receiver, same path. Routes, receivers and inhibit rules stay.
func alertmanagerConfig(example []byte, webhookURL string) ([]byte, error) {
	base, err := url.Parse(webhookURL)
	if err != nil {
		return nil, err
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(example, &cfg); err != nil {
		return nil, fmt.Errorf("example Alertmanager config: %w", err)
	}
	route, err := mapAt(cfg, "route")
	if err != nil {
		return nil, err
	}
	if err := fastRoute(route, true); err != nil {
		return nil, err
	}
	receivers, err := listAt(cfg, "receivers")
	if err != nil {
		return nil, err
	}
	hooks := 0
	for i, r := range receivers {
		recv, ok := r.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("receivers[%d] is not a mapping", i)
		}
		whs, _ := recv["webhook_configs"].([]any)
		if len(whs) != 1 || len(recv) != 2 {
			return nil, fmt.Errorf("receiver %v: want a name and exactly one webhook, as the example has", recv["name"])
		}
		wh, ok := whs[0].(map[string]any)
		if !ok {
			return nil, fmt.Errorf("receiver %v: webhook is not a mapping", recv["name"])
		}
		s, _ := wh["url"].(string)
		u, err := url.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("receiver %v: webhook url: %w", recv["name"], err)
		}
		if u.Path == "" {
			return nil, fmt.Errorf("receiver %v: webhook url %q has no path", recv["name"], s)
		}
		u.Scheme, u.Host = base.Scheme, base.Host
		wh["url"] = u.String()
		hooks++
	}
	if hooks == 0 {
		return nil, errors.New("example Alertmanager config: no webhook receivers")
	}
	return yaml.Marshal(cfg)
}

// fastRoute shortens the grouping intervals of a route and its children;
// children only where they set their own.
func fastRoute(route map[string]any, root bool) error {
	for _, k := range []string{"group_wait", "group_interval"} {
		if _, ok := route[k]; ok || root {
			route[k] = fastInterval
		}
	}
	children, _ := route["routes"].([]any)
	for i, c := range children {
		child, ok := c.(map[string]any)
		if !ok {
			return fmt.Errorf("routes[%d] is not a mapping", i)
		}
		if err := fastRoute(child, false); err != nil {
			return err
		}
	}
	return nil
}

func mapAt(m map[string]any, key string) (map[string]any, error) {
	v, ok := m[key].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%q is missing or not a mapping", key)
	}
	return v, nil
}

func listAt(m map[string]any, key string) ([]any, error) {
	v, ok := m[key].([]any)
	if !ok {
		return nil, fmt.Errorf("%q is missing or not a list", key)
	}
	return v, nil
}
