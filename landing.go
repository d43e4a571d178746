package main

import (
	"bytes"
	"html/template"
	"log/slog"
	"net/http"
	"strings"

	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/resumption-exporter/resumption_exporter/probe"
)

// landingPage serves "/": exporter-toolkit's landing page, with a probe
// form whose module is a choice among the configured modules, each shown
// with what it checks. The toolkit's LandingForm has text-like <input>s
// only, so the form goes into ExtraHTML (inside the same page and style).
// The page is built per request: /-/reload may have changed the modules.
func landingPage(sc *SafeConfig, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		form, err := probeForm(sc.Modules())
		var page *web.LandingPageHandler
		if err == nil {
			page, err = web.NewLandingPage(web.LandingConfig{
				Name:        exporterName,
				Description: "Prometheus exporter for the TLS session-resumption posture of servers",
				Version:     version.Info(),
				ExtraHTML:   form,
				ExtraCSS:    landingCSS,
				Links: []web.LandingLinks{
					{Address: "metrics", Text: "Metrics", Description: "the exporter's own metrics"},
					{Address: "config", Text: "Configuration", Description: "the modules in force, as YAML"},
				},
			})
		}
		if err != nil {
			logger.Error("Cannot build landing page", "err", err)
			http.Error(w, "cannot build landing page: "+err.Error(), http.StatusInternalServerError)
			return
		}
		page.ServeHTTP(w, r)
	})
}

// landingCSS gives the form the toolkit's label layout, which it computes
// only for its own LandingForm.
const landingCSS = `
label { width: 4em; }
#modules td, #modules th { padding: 0.1rem 0.8rem 0.1rem 0; text-align: left; }
`

// moduleRow is one configured module, as the landing page describes it.
type moduleRow struct {
	Name     string
	StartTLS string // the preamble's protocol, "" for a port that speaks TLS at once
	Checks   string
	Risks    string
	Versions string
	Verify   string
	Timeout  string
	Selected bool
}

var probeFormTemplate = template.Must(template.New("form").Parse(`
<div>
<form action="probe" method="get" id="probe-form">
<label for="target">Target:</label>&nbsp;<input type="text" id="target" name="target" placeholder="host:port" value="example.com:443" size="40"><br>
<label for="module">Module:</label>&nbsp;<select id="module" name="module">
{{- range .}}
<option value="{{.Name}}"{{if .Selected}} selected{{end}}>{{.Name}} ({{if .StartTLS}}STARTTLS {{.StartTLS}}; {{end}}{{.Checks}})</option>
{{- end}}
</select><br>
<label for="debug">Debug:</label>&nbsp;<input type="checkbox" id="debug" name="debug" value="true"><br>
<input type="submit" value="Probe">
</form>
</div>
<div>
<h3>Modules</h3>
<table id="modules">
<tr><th>module</th><th>STARTTLS</th><th>checks</th><th>risks</th><th>versions</th><th>certificate</th><th>timeout</th></tr>
{{- range .}}
<tr><td>{{.Name}}</td><td>{{or .StartTLS "none"}}</td><td>{{.Checks}}</td><td>{{or .Risks "none"}}</td><td>{{.Versions}}</td><td>{{.Verify}}</td><td>{{.Timeout}}</td></tr>
{{- end}}
</table>
<p>Every setting of every module: <a href="config">/config</a>.</p>
</div>
`))

// probeForm renders the form and the module table, the default module
// chosen.
func probeForm(modules map[string]probe.Module) (string, error) {
	var rows []moduleRow
	for _, name := range moduleNames(modules) {
		m := modules[name]
		var checks, risks, versions []string
		for _, c := range m.Checks {
			checks = append(checks, string(c))
		}
		for _, r := range m.Risks {
			risks = append(risks, string(r))
		}
		for _, v := range m.Versions() {
			versions = append(versions, probe.VersionName(v))
		}
		verify := "verified"
		if m.TLSConfig.InsecureSkipVerify {
			verify = "not verified"
		} else if m.TLSConfig.CAFile != "" {
			verify = "verified against " + m.TLSConfig.CAFile
		}
		rows = append(rows, moduleRow{
			Name: name, StartTLS: string(m.StartTLS.Protocol),
			Checks: strings.Join(checks, ", "), Risks: strings.Join(risks, ", "), Versions: strings.Join(versions, ", "),
			Verify: verify, Timeout: m.Timeout.String(), Selected: name == defaultModuleName,
		})
	}
	var b bytes.Buffer
	err := probeFormTemplate.Execute(&b, rows)
	return b.String(), err
}
