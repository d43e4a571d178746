// Package examples holds configuration examples for running
// resumption_exporter: Prometheus scrape configs, an Alertmanager route, and
// Kubernetes manifests (checked in examples/probecrd, a module of its own).
// Its tests also check the repository's Dockerfile.
package examples

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
	"github.com/resumption-exporter/resumption_exporter/mixin"
)

// exporterPort is the exporter's default --web.listen-address port.
const exporterPort = "10517"

func command(t *testing.T, timeout time.Duration, name string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", filepath.Base(name), strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return out
}

func TestPrometheusConfigsCheck(t *testing.T) {
	promtool := testservers.LookPath(t, "promtool")
	for _, name := range []string{"prometheus.yml", "prometheus-replicas.yml"} {
		t.Run(name, func(t *testing.T) {
			command(t, time.Minute, promtool, "check", "config", name)
		})
	}
}

type discovered struct {
	DiscoveredLabels map[string]string `json:"discoveredLabels"`
	Labels           map[string]string `json:"labels"`
}

// scrapeTargets runs Prometheus's own service discovery and relabeling on a
// job of a config file, as Prometheus would before scraping.
func scrapeTargets(t *testing.T, config, job string) []discovered {
	t.Helper()
	promtool := testservers.LookPath(t, "promtool")
	// Static targets are discovered at once; without --timeout promtool
	// waits its default 30 s for more.
	out := command(t, time.Minute, promtool, "check", "service-discovery", "--timeout=3s", config, job)
	var ts []discovered
	if err := json.Unmarshal(out, &ts); err != nil {
		t.Fatalf("promtool check service-discovery %s %s: %v\n%s", config, job, err, out)
	}
	if len(ts) == 0 {
		t.Fatalf("%s job %s has no targets", config, job)
	}
	return ts
}

// TestScrapeRelabeling proves the relabeling turns each target into a /probe
// request for that target, labelled with it, sent to an exporter replica.
func TestScrapeRelabeling(t *testing.T) {
	for _, tc := range []struct {
		config    string
		exporters []string // where the probe requests may go
	}{
		{"prometheus.yml", []string{"127.0.0.1:" + exporterPort}},
		{"prometheus-replicas.yml", []string{
			"resumption-exporter-0.example.internal:" + exporterPort,
			"resumption-exporter-1.example.internal:" + exporterPort,
		}},
	} {
		t.Run(tc.config, func(t *testing.T) {
			perExporter, serverNames := map[string]int{}, 0
			for _, target := range scrapeTargets(t, tc.config, "resumption") {
				l, host := target.Labels, target.DiscoveredLabels["__address__"]
				if l["__param_target"] != host || l["instance"] != host {
					t.Errorf("%s: __param_target %q instance %q, want both the target", host, l["__param_target"], l["instance"])
				}
				if l["__metrics_path__"] != "/probe" || l["__param_module"] != "default" {
					t.Errorf("%s: path %q module %q, want /probe and default", host, l["__metrics_path__"], l["__param_module"])
				}
				if l["job"] != "resumption" {
					t.Errorf("%s: job %q, want resumption (the mixin's probeSelector)", host, l["job"])
				}
				if sn := target.DiscoveredLabels["__param_server_name"]; sn != "" {
					serverNames++
					if l["__param_server_name"] != sn || l["server_name"] != sn {
						t.Errorf("%s: server_name parameter %q, label %q; want both %q", host, l["__param_server_name"], l["server_name"], sn)
					}
				} else if _, ok := l["server_name"]; ok {
					t.Errorf("%s: a server_name label without a server_name parameter", host)
				}
				perExporter[l["__address__"]]++
			}
			if tc.config == "prometheus.yml" && serverNames != 2 {
				t.Errorf("%d targets with a per-probe server_name, want the 2 addresses of www.example.com", serverNames)
			}
			for addr := range perExporter {
				if !contains(tc.exporters, addr) {
					t.Errorf("a probe goes to %q, not to an exporter %q", addr, tc.exporters)
				}
			}
			for _, e := range tc.exporters {
				if perExporter[e] == 0 {
					t.Errorf("exporter %s gets no targets: %v", e, perExporter)
				}
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

type alertmanagerConfig struct {
	InhibitRules []struct {
		SourceMatchers []string `yaml:"source_matchers"`
		TargetMatchers []string `yaml:"target_matchers"`
		Equal          []string `yaml:"equal"`
	} `yaml:"inhibit_rules"`
}

// alertNames returns the alerts the shipped rules define.
func alertNames(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(mixin.RepoRoot(), "alerts", "resumption-alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			names = append(names, r.Alert)
		}
	}
	if len(names) == 0 {
		t.Fatal("no alerts in resumption-alerts.yml")
	}
	return names
}

// isPosture tells a finding about a target's TLS (named TLS*) from a
// problem of the probe or the exporter (Resumption*).
func isPosture(alert string) bool { return strings.HasPrefix(alert, "TLS") }

func TestAlertmanagerConfig(t *testing.T) {
	amtool := testservers.LookPath(t, "amtool")
	command(t, time.Minute, amtool, "check-config", "alertmanager.yml")

	// Routing, decided by amtool itself: posture findings to their owners,
	// probe and exporter problems to whoever runs the monitoring.
	for _, alert := range alertNames(t) {
		want := "monitoring"
		if isPosture(alert) {
			want = "tls-posture"
		}
		command(t, time.Minute, amtool, "config", "routes", "test", "--config.file=alertmanager.yml",
			"--verify.receivers="+want, "alertname="+alert, "severity=warning", "instance=example.com:443")
	}
}

// matches applies one Alertmanager matcher on alertname, e.g.
// alertname=~"TLS.+", to an alert name.
func matches(t *testing.T, m, alert string) bool {
	t.Helper()
	name, value, ok := strings.Cut(m, "=")
	if !ok || strings.TrimSpace(name) != "alertname" {
		t.Fatalf("matcher %q: want one on alertname", m)
	}
	isRegexp := strings.HasPrefix(value, "~")
	value, err := strconv.Unquote(strings.TrimPrefix(value, "~"))
	if err != nil {
		t.Fatalf("matcher %q: %v", m, err)
	}
	if !isRegexp {
		return value == alert
	}
	return regexp.MustCompile("^(?:" + value + ")$").MatchString(alert)
}

// TestInhibitRule checks that a failing probe holds back exactly the
// posture alerts of the same instance.
func TestInhibitRule(t *testing.T) {
	b, err := os.ReadFile("alertmanager.yml")
	if err != nil {
		t.Fatal(err)
	}
	var c alertmanagerConfig
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	if len(c.InhibitRules) != 1 {
		t.Fatalf("want one inhibit rule, got %d", len(c.InhibitRules))
	}
	r := c.InhibitRules[0]
	if !contains(r.Equal, "instance") {
		t.Errorf("equal %q lacks instance: one failing probe would silence every target", r.Equal)
	}
	for _, alert := range alertNames(t) {
		source := len(r.SourceMatchers) > 0
		for _, m := range r.SourceMatchers {
			source = source && matches(t, m, alert)
		}
		target := len(r.TargetMatchers) > 0
		for _, m := range r.TargetMatchers {
			target = target && matches(t, m, alert)
		}
		if source != (alert == "ResumptionProbeFailing") {
			t.Errorf("%s: inhibits = %v", alert, source)
		}
		if target != isPosture(alert) {
			t.Errorf("%s: inhibited while the probe fails = %v, want %v", alert, target, isPosture(alert))
		}
	}
}

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	Cmd  string // upper case: FROM, RUN, ...
	Args string
}

func parseDockerfile(t *testing.T) []instruction {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(mixin.RepoRoot(), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var (
		out  []instruction
		line strings.Builder
	)
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		text := strings.TrimSpace(sc.Text())
		if line.Len() == 0 && (text == "" || strings.HasPrefix(text, "#")) {
			continue
		}
		if cont, ok := strings.CutSuffix(text, `\`); ok {
			line.WriteString(cont + " ")
			continue
		}
		line.WriteString(text)
		cmd, args, _ := strings.Cut(line.String(), " ")
		out = append(out, instruction{Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args)})
		line.Reset()
	}
	return out
}

// finalStage returns the instructions after the last FROM, and that FROM.
func finalStage(ins []instruction) (from string, stage []instruction) {
	for i := len(ins) - 1; i >= 0; i-- {
		if ins[i].Cmd == "FROM" {
			return ins[i].Args, ins[i+1:]
		}
	}
	return "", nil
}

var goBuild = regexp.MustCompile(`CGO_ENABLED=0 go build .*`)

func TestDockerfile(t *testing.T) {
	ins := parseDockerfile(t)
	var froms []string
	var build string
	for _, in := range ins {
		switch in.Cmd {
		case "FROM":
			froms = append(froms, in.Args)
		case "RUN":
			if m := goBuild.FindString(in.Args); m != "" {
				build = m
			}
		}
	}
	if len(froms) < 2 || !strings.HasPrefix(froms[0], "golang:1.26 ") {
		t.Errorf("stages %q: want a golang:1.26 build stage and a final stage", froms)
	}
	if build == "" || !strings.Contains(build, "-trimpath") {
		t.Errorf("no RUN CGO_ENABLED=0 go build -trimpath: %q", build)
	}

	from, final := finalStage(ins)
	args := map[string][]string{}
	for _, in := range final {
		args[in.Cmd] = append(args[in.Cmd], in.Args)
	}
	switch {
	case strings.HasPrefix(from, "gcr.io/distroless/static") && strings.Contains(from, ":nonroot"):
	case from == "scratch":
	default:
		t.Errorf("final stage FROM %q: want distroless static nonroot or scratch", from)
	}
	// An explicit USER, even on a nonroot base, so the image does not run as
	// root if the base is ever swapped.
	if u := args["USER"]; len(u) == 0 {
		t.Error("final stage has no USER")
	} else if user, _, _ := strings.Cut(u[len(u)-1], ":"); user == "root" || user == "0" {
		t.Errorf("final stage USER %s: want a non-root user", u[len(u)-1])
	}
	if !contains(args["EXPOSE"], exporterPort) {
		t.Errorf("EXPOSE %q, want %s", args["EXPOSE"], exporterPort)
	}
	if !contains(args["COPY"], "config.yml /etc/resumption_exporter/config.yml") {
		t.Errorf("COPY %q: config.yml is not shipped at /etc/resumption_exporter/config.yml", args["COPY"])
	}
	if !contains(args["VOLUME"], "/var/lib/resumption_exporter") {
		t.Errorf("VOLUME %q, want /var/lib/resumption_exporter", args["VOLUME"])
	}
	var argv []string
	for _, cmd := range []string{"ENTRYPOINT", "CMD"} {
		for _, a := range args[cmd] {
			var list []string
			if err := json.Unmarshal([]byte(a), &list); err != nil {
				t.Errorf("%s %s: want the exec (JSON) form: %v", cmd, a, err)
			}
			argv = append(argv, list...)
		}
	}
	for _, want := range []string{"--history.path=/var/lib/resumption_exporter/history.json", "--config.file=/etc/resumption_exporter/config.yml"} {
		if !contains(argv, want) {
			t.Errorf("ENTRYPOINT/CMD %q lacks %s", argv, want)
		}
	}
	for _, in := range ins {
		if in.Cmd != "COPY" || strings.HasPrefix(in.Args, "--from") {
			continue
		}
		fields := strings.Fields(in.Args)
		for _, src := range fields[:len(fields)-1] {
			if _, err := os.Stat(filepath.Join(mixin.RepoRoot(), src)); err != nil {
				t.Errorf("COPY %s: %v", in.Args, err)
			}
		}
	}
}

// TestDockerfileBuildCompiles runs the Dockerfile's go build line, with its
// flags, on this checkout (there is no Docker engine here), and checks that
// the result is a static binary.
func TestDockerfileBuildCompiles(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the exporter")
	}
	var build string
	for _, in := range parseDockerfile(t) {
		if m := goBuild.FindString(in.Args); in.Cmd == "RUN" && m != "" {
			build = m
		}
	}
	if build == "" {
		t.Fatal("no go build line in the Dockerfile")
	}
	out := filepath.Join(t.TempDir(), "resumption_exporter")
	output := regexp.MustCompile(`-o +\S+`)
	if !output.MatchString(build) {
		t.Fatalf("go build line %q has no -o", build)
	}
	build = output.ReplaceAllLiteralString(build, "-o "+out)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", build)
	cmd.Dir = mixin.RepoRoot()
	// The ARG defaults the build line refers to.
	cmd.Env = append(os.Environ(), "VERSION=dev", "REVISION=unknown")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", build, err, b)
	}
	f, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("binary has a %v program header: not static", p.Type)
		}
	}
	if libs, err := f.ImportedLibraries(); err == nil && len(libs) > 0 {
		t.Errorf("binary links %q: not static", libs)
	}
}

// TestReadmeDocumentsDockerBuild: there is no Docker engine here, so this
// checks that the build command the README gives is the one this Dockerfile
// is written for.
func TestReadmeDocumentsDockerBuild(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(mixin.RepoRoot(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	const want = "docker build -t resumption_exporter ."
	if !bytes.Contains(readme, []byte(want)) {
		t.Errorf("README.md does not document %q", want)
	}
}
