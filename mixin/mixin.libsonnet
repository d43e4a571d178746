// The resumption_exporter monitoring mixin: alerting rules and Grafana
// dashboards for the TLS session-resumption posture the exporter reports.
//
// Every threshold, duration and selector lives in _config below; override it
// the usual mixin way:
//
//   (import 'mixin.libsonnet') + { _config+:: { keyMaxAgeSeconds: 12 * 3600 } }
//
// Thresholds are numbers of seconds (the `*Seconds` fields), and only those:
// the rules compare with them and the summaries, descriptions and dashboard
// texts print them as durations ('1d', '12h15m'; see duration.libsonnet).
// mixin/knobs_test.go checks that every field here changes the rendering.
// The checked-in alerts/ and dashboards/ files are rendered from this by
// mixin/generate.sh; a Go test keeps them in step.
(import 'alerts.libsonnet') +
(import 'alerts-risks.libsonnet') +
(import 'dashboards.libsonnet') +
{
  _config+:: {
    // Series the exporter's /probe endpoint returns. Several replicas share
    // one job (examples/prometheus-replicas.yml); probing with several
    // modules means several jobs: widen this to e.g. job=~"resumption|resumption_insecure".
    probeSelector: 'job="resumption"',
    // Series from the exporter's own /metrics endpoint.
    exporterSelector: 'job="resumption_exporter"',
    // What identifies one probed target across alerts and joins.
    targetLabels: ['job', 'instance'],

    // A ticket key still in use after this long counts as "not rotated"; a
    // ticket lifetime above it outlives the rotation it asks for.
    keyMaxAgeSeconds: 86400,
    // The exporter's --history.active-window: a key replaced at its deadline
    // stays "active" this much longer, so the alert threshold adds it and a
    // daily rotator does not flap.
    activeWindowSeconds: 900,
    // The stateless fallback on the fingerprint gauge looks back over
    // keyMaxAgeSeconds + activeWindowSeconds and also needs the series this
    // dense over that span, so that a gap (exporter down, target
    // unreachable) cannot hide a rotation.
    fingerprintMinSamples: 24,

    // Sessions the server still resumes after this long are a forward
    // secrecy exposure: whoever steals the key later decrypts that traffic.
    acceptedMaxAgeSeconds: 86400,
    // RFC 8446, section 4.6.1: ticket_lifetime must not exceed seven days.
    tls13MaxTicketLifetimeSeconds: 604800,
    // A resumption chain still resumed this long after its full handshake
    // is unbounded: RFC 8446's 7-day ticket lifetime cap, which a chain
    // bounded as its section 4.6.1 recommends would not outlive.
    resumptionChainMaxAgeSeconds: 604800,

    // `for:` durations. generate.sh --fast shortens all of them (and the rule
    // group interval) for end-to-end tests; thresholds stay as they are.
    forKeyNotRotated: '30m',
    forLifetime: '30m',
    forAcceptedMaxAge: '15m',
    forProbeFailing: '10m',
    forConfigReload: '10m',
    forHistorySave: '15m',
    // Evaluation interval of the rule group; null leaves Prometheus's
    // global evaluation_interval in charge.
    ruleInterval: null,

    // The repository the exporter comes from (its Go module path), and where
    // its alerts/runbook.md is published: each alert links to the section
    // named after it (GitHub's heading anchor). Point runbookBase at your own
    // copy (a wiki, an internal Git host) if you keep one; the anchors stay.
    repositoryURL: 'https://github.com/resumption-exporter/resumption_exporter',
    runbookBase: self.repositoryURL + '/blob/main/alerts/runbook.md',

    // Dashboards.
    dashboardTags: ['resumption_exporter', 'tls'],
    dashboardRefresh: '1m',
    dashboardTimeFrom: 'now-7d',
    grafanaTimezone: 'utc',
  },
}
