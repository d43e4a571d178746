package collector

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/resumption-exporter/resumption_exporter/collector/history"
	"github.com/resumption-exporter/resumption_exporter/probe"
)

// descInfo is what a Desc says about its metric.
type descInfo struct {
	name, help string
	labels     []string
}

var descPattern = regexp.MustCompile(`fqName: ("(?:[^"\\]|\\.)*"), help: ("(?:[^"\\]|\\.)*"), .*variableLabels: \{([^}]*)\}`)

// parseDesc reads a Desc's name, help and label names. client_golang has no
// accessors for them; its String form is stable and tested here.
func parseDesc(t *testing.T, d *prometheus.Desc) descInfo {
	t.Helper()
	m := descPattern.FindStringSubmatch(d.String())
	if m == nil {
		t.Fatalf("cannot parse %s", d)
	}
	name, err1 := strconv.Unquote(m[1])
	help, err2 := strconv.Unquote(m[2])
	if err1 != nil || err2 != nil {
		t.Fatalf("cannot parse %s", d)
	}
	var labels []string
	if m[3] != "" {
		labels = strings.Split(m[3], ",")
	}
	return descInfo{name, help, labels}
}

// describe returns what c describes, by metric name.
func describe(t *testing.T, c prometheus.Collector) map[string]descInfo {
	t.Helper()
	ch := make(chan *prometheus.Desc)
	go func() { c.Describe(ch); close(ch) }()
	infos := map[string]descInfo{}
	for d := range ch {
		info := parseDesc(t, d)
		infos[info.name] = info
	}
	return infos
}

// exposition renders sample lines ("name{labels} value") as the text format,
// with the HELP and TYPE lines the collector describes.
func exposition(t *testing.T, descs map[string]descInfo, samples []string) string {
	t.Helper()
	byName := map[string][]string{}
	for _, s := range samples {
		name, _, _ := strings.Cut(s, " ")
		name, _, _ = strings.Cut(name, "{")
		byName[name] = append(byName[name], s)
	}
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(byName)) {
		d, ok := descs[name]
		if !ok {
			t.Fatalf("expected metric %s is not described by the collector", name)
		}
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s gauge\n", name, d.help, name)
		for _, s := range byName[name] {
			b.WriteString(s + "\n")
		}
	}
	return b.String()
}

func TestProbeCollector(t *testing.T) {
	start := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	fpA, fpB := probe.Fingerprint([]byte("key A")), probe.Fingerprint([]byte("key B"))
	secs := func(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'g', -1, 64) }
	unix := func(ts time.Time) string { return strconv.FormatInt(ts.Unix(), 10) }

	// A result with every field set.
	full := &probe.Result{
		Target: "example.com:443", Module: "tls", Start: start,
		Duration: 1234 * time.Millisecond,
		Success:  true,
		Addr:     "192.0.2.7:443", IPProtocol: 4, IPAddrHash: 3_000_000_001, DNSLookup: 4 * time.Millisecond,
		Versions: map[uint16]bool{probe.VersionTLS12: true, probe.VersionTLS13: true},
		Checks: []probe.Check{
			{Mechanism: probe.MechanismSessionID, Completed: true, Issued: true, Resumed: true, FullHandshake: 20 * time.Millisecond, ResumedHandshake: 5 * time.Millisecond,
				FirstOfferResumed: true, OffersResumed: 1},
			{Mechanism: probe.MechanismSessionTicket, Completed: true, Issued: true, Resumed: false, FullHandshake: 21 * time.Millisecond,
				OffersRefused: 8},
			{Mechanism: probe.MechanismPSK, Completed: true, Issued: true, Resumed: true, FullHandshake: 30 * time.Millisecond, ResumedHandshake: 7 * time.Millisecond,
				OffersResumed: 1, OffersRefused: 2},
		},
		Tickets: map[uint16]probe.Tickets{
			probe.VersionTLS12: {Version: probe.VersionTLS12, Count: 1, LifetimeHint: 7200, Format: probe.FormatStateless, KeyNameBytes: 16, KeysSeen: 2},
			probe.VersionTLS13: {Version: probe.VersionTLS13, Count: 2, LifetimeHint: 300, Format: probe.FormatStateful, MaxEarlyData: 16384},
		},
		KeyNames: []probe.KeyName{{Fingerprint: fpA, Tickets: 3}, {Fingerprint: fpB, Tickets: 1}},
		AcceptedMaxAge: map[probe.Mechanism]time.Duration{
			probe.MechanismSessionID:     90 * time.Second,
			probe.MechanismSessionTicket: time.Hour,
			probe.MechanismPSK:           10 * time.Minute,
		},
	}
	fullKeys := &history.KeyState{
		Since: start.Add(-72 * time.Hour), HasKeys: true,
		NewestActiveFirstSeen: start.Add(-2 * time.Hour), OldestActiveFirstSeen: start.Add(-26 * time.Hour),
		ActiveKeys: 2, Rotations: 3, LastRotationInterval: 24 * time.Hour,
	}
	c := full.Checks
	tk := full.Tickets
	fullWant := []string{
		"probe_success 1",
		"probe_duration_seconds " + secs(full.Duration),
		`probe_tls_version_info{version="TLS 1.3"} 1`,
		`tls_version_supported{version="TLS 1.2"} 1`,
		`tls_version_supported{version="TLS 1.3"} 1`,
		`tls_resumption_check_success{mechanism="session_id"} 1`,
		`tls_resumption_check_success{mechanism="session_ticket"} 1`,
		`tls_resumption_check_success{mechanism="psk"} 1`,
		`tls_resumption_supported{mechanism="session_id"} 1`,
		`tls_resumption_supported{mechanism="session_ticket"} 0`,
		`tls_resumption_supported{mechanism="psk"} 1`,
		`tls_resumption_handshake_duration_seconds{handshake="full",mechanism="session_id"} ` + secs(c[0].FullHandshake),
		`tls_resumption_handshake_duration_seconds{handshake="resumed",mechanism="session_id"} ` + secs(c[0].ResumedHandshake),
		`tls_resumption_handshake_duration_seconds{handshake="full",mechanism="session_ticket"} ` + secs(c[1].FullHandshake),
		`tls_resumption_handshake_duration_seconds{handshake="full",mechanism="psk"} ` + secs(c[2].FullHandshake),
		`tls_resumption_handshake_duration_seconds{handshake="resumed",mechanism="psk"} ` + secs(c[2].ResumedHandshake),
		fmt.Sprintf(`tls_session_ticket_lifetime_hint_seconds{version="TLS 1.2"} %d`, tk[probe.VersionTLS12].LifetimeHint),
		fmt.Sprintf(`tls_session_ticket_lifetime_hint_seconds{version="TLS 1.3"} %d`, tk[probe.VersionTLS13].LifetimeHint),
		fmt.Sprintf(`tls_session_ticket_max_early_data_bytes{version="TLS 1.3"} %d`, tk[probe.VersionTLS13].MaxEarlyData),
		fmt.Sprintf(`tls_session_ticket_info{format="stateless",key_name_bytes="%d",version="TLS 1.2"} 1`, tk[probe.VersionTLS12].KeyNameBytes),
		`tls_session_ticket_info{format="stateful",key_name_bytes="0",version="TLS 1.3"} 1`,
		fmt.Sprintf("tls_session_ticket_key_fingerprint %d", fpA),
		`tls_session_ticket_accepted_max_age_seconds{version="TLS 1.2"} ` + secs(full.AcceptedMaxAge[probe.MechanismSessionTicket]),
		`tls_session_ticket_accepted_max_age_seconds{version="TLS 1.3"} ` + secs(full.AcceptedMaxAge[probe.MechanismPSK]),
		"tls_session_id_accepted_max_age_seconds " + secs(full.AcceptedMaxAge[probe.MechanismSessionID]),
		"tls_session_ticket_history_since_timestamp_seconds " + unix(fullKeys.Since),
		"tls_session_ticket_key_first_seen_timestamp_seconds " + unix(fullKeys.NewestActiveFirstSeen),
		"tls_session_ticket_key_oldest_active_first_seen_timestamp_seconds " + unix(fullKeys.OldestActiveFirstSeen),
		fmt.Sprintf("tls_session_ticket_keys_active %d", fullKeys.ActiveKeys),
		fmt.Sprintf("tls_session_ticket_key_rotations_observed %d", fullKeys.Rotations),
		"tls_session_ticket_key_rotation_interval_seconds " + secs(fullKeys.LastRotationInterval),
		"probe_ip_protocol 4",
		"probe_ip_addr_hash 3000000001",
		"probe_dns_lookup_time_seconds 0.004",
		`tls_resumption_offers{mechanism="session_id",result="resumed"} 1`,
		`tls_resumption_offers{mechanism="session_id",result="refused"} 0`,
		`tls_resumption_first_offer_resumed{mechanism="session_id"} 1`,
		`tls_resumption_offers{mechanism="session_ticket",result="resumed"} 0`,
		`tls_resumption_offers{mechanism="session_ticket",result="refused"} 8`,
		`tls_resumption_first_offer_resumed{mechanism="session_ticket"} 0`,
		`tls_resumption_offers{mechanism="psk",result="resumed"} 1`,
		`tls_resumption_offers{mechanism="psk",result="refused"} 2`,
		`tls_resumption_first_offer_resumed{mechanism="psk"} 0`,
		`tls_session_ticket_keys_seen{version="TLS 1.2"} 2`,
		`tls_session_ticket_keys_seen{version="TLS 1.3"} 0`,
	}

	// A probe that failed: the PSK chain broke, nothing else is known.
	failed := &probe.Result{
		Target: "example.com:443", Module: "tls", Start: start,
		Duration: 3 * time.Second,
		Failure:  "psk: reading ServerHello: connection reset",
		Checks:   []probe.Check{{Mechanism: probe.MechanismPSK, Err: "reading ServerHello: connection reset"}},
	}
	failedKeys := &history.KeyState{Since: start}

	// TLS 1.2 only, unnamed tickets; a history that holds keys from
	// earlier probes but saw no rotation; an unmeasured handshake.
	tls12 := &probe.Result{
		Duration: 500 * time.Millisecond,
		Success:  true,
		Versions: map[uint16]bool{probe.VersionTLS12: true, probe.VersionTLS13: false},
		Checks:   []probe.Check{{Mechanism: probe.MechanismSessionTicket, Completed: true, Issued: true}},
		Tickets: map[uint16]probe.Tickets{
			probe.VersionTLS12: {Version: probe.VersionTLS12, Count: 1, LifetimeHint: 0, Format: probe.FormatStatelessUnnamed},
		},
	}
	tls12Keys := &history.KeyState{Since: start.Add(-time.Hour), HasKeys: true, NewestActiveFirstSeen: start.Add(-time.Hour), OldestActiveFirstSeen: start.Add(-time.Hour), ActiveKeys: 1}

	tests := []struct {
		name   string
		result *probe.Result
		keys   *history.KeyState
		want   []string
	}{
		{"every field set", full, fullKeys, fullWant},
		{"every field set, no history", full, nil, slices.DeleteFunc(slices.Clone(fullWant), func(s string) bool {
			return strings.HasPrefix(s, "tls_session_ticket_history_since") || strings.HasPrefix(s, "tls_session_ticket_key_first_seen") ||
				strings.HasPrefix(s, "tls_session_ticket_key_oldest") || strings.HasPrefix(s, "tls_session_ticket_keys_active") ||
				strings.HasPrefix(s, "tls_session_ticket_key_rotation")
		})},
		{"failed probe", failed, failedKeys, []string{
			"probe_success 0",
			"probe_duration_seconds " + secs(failed.Duration),
			"probe_dns_lookup_time_seconds 0",
			`tls_resumption_check_success{mechanism="psk"} 0`,
			"tls_session_ticket_history_since_timestamp_seconds " + unix(failedKeys.Since),
		}},
		{"TLS 1.2 only, unnamed tickets", tls12, tls12Keys, []string{
			"probe_success 1",
			"probe_duration_seconds " + secs(tls12.Duration),
			"probe_dns_lookup_time_seconds 0",
			`tls_session_ticket_keys_seen{version="TLS 1.2"} 0`,
			`probe_tls_version_info{version="TLS 1.2"} 1`,
			`tls_version_supported{version="TLS 1.2"} 1`,
			`tls_version_supported{version="TLS 1.3"} 0`,
			`tls_resumption_check_success{mechanism="session_ticket"} 1`,
			`tls_resumption_supported{mechanism="session_ticket"} 0`,
			`tls_session_ticket_lifetime_hint_seconds{version="TLS 1.2"} 0`,
			`tls_session_ticket_info{format="stateless_unnamed",key_name_bytes="0",version="TLS 1.2"} 1`,
			"tls_session_ticket_history_since_timestamp_seconds " + unix(tls12Keys.Since),
			"tls_session_ticket_key_first_seen_timestamp_seconds " + unix(tls12Keys.NewestActiveFirstSeen),
			"tls_session_ticket_key_oldest_active_first_seen_timestamp_seconds " + unix(tls12Keys.OldestActiveFirstSeen),
			"tls_session_ticket_keys_active 1",
			"tls_session_ticket_key_rotations_observed 0",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			coll := NewProbeCollector(tt.result, tt.keys)
			want := exposition(t, describe(t, coll), tt.want)
			if err := testutil.CollectAndCompare(coll, strings.NewReader(want)); err != nil {
				t.Error(err)
			}
		})
	}
}

// The fingerprint is published exactly: 48 bits fit a float64's mantissa.
func TestKeyFingerprintIsExact(t *testing.T) {
	const widest = 1<<48 - 1
	r := &probe.Result{KeyNames: []probe.KeyName{{Fingerprint: widest}}}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewProbeCollector(r, nil))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "tls_session_ticket_key_fingerprint" {
			if got := mf.GetMetric()[0].GetGauge().GetValue(); uint64(got) != widest {
				t.Errorf("fingerprint %v, want %d", got, uint64(widest))
			}
			return
		}
	}
	t.Error("no tls_session_ticket_key_fingerprint")
}

func TestHistoryMetrics(t *testing.T) {
	const maxTargets = 2
	h := history.New(history.Options{MaxTargets: maxTargets})
	reg := prometheus.NewPedanticRegistry()
	NewHistoryMetrics(reg, h)
	targets := []string{"a:443", "b:443", "c:443"}
	for _, target := range targets {
		h.Observe(target, "tls", []probe.KeyName{{Fingerprint: 1, Tickets: 1}})
	}
	h.Observe("down:443", "tls", nil) // no key: no history
	const failures = 2
	for range failures {
		if err := h.WriteFile(filepath.Join(t.TempDir(), "missing", "history.json")); err == nil {
			t.Fatal("WriteFile into a missing directory succeeded")
		}
	}
	want := fmt.Sprintf(`# HELP resumption_exporter_history_save_failures_total Failed writes of the key history file (--history.path).
# TYPE resumption_exporter_history_save_failures_total counter
resumption_exporter_history_save_failures_total %d
# HELP resumption_exporter_key_histories (target, module) ticket-key histories held in memory.
# TYPE resumption_exporter_key_histories gauge
resumption_exporter_key_histories %d
# HELP resumption_exporter_key_histories_evicted_total Ticket-key histories dropped to stay within --history.max-targets, the least recently seen with a key first.
# TYPE resumption_exporter_key_histories_evicted_total counter
resumption_exporter_key_histories_evicted_total %d
`, failures, maxTargets, len(targets)-maxTargets)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

// readmeTable returns the metric rows (name → label names) of the README
// table that follows the line containing heading.
func readmeTable(t *testing.T, readme, heading string) map[string][]string {
	t.Helper()
	_, after, ok := strings.Cut(readme, heading)
	if !ok {
		t.Fatalf("README.md has no %q", heading)
	}
	row := regexp.MustCompile("^\\| `([a-zA-Z_:][a-zA-Z0-9_:]*)` \\|([^|]*)\\|")
	label := regexp.MustCompile("`([a-zA-Z_][a-zA-Z0-9_]*)`")
	rows := map[string][]string{}
	inTable := false
	for _, line := range strings.Split(after, "\n") {
		if !strings.HasPrefix(line, "|") {
			if inTable {
				break
			}
			continue
		}
		inTable = true
		m := row.FindStringSubmatch(line)
		if m == nil {
			continue // header or separator
		}
		var labels []string
		for _, l := range label.FindAllStringSubmatch(m[2], -1) {
			labels = append(labels, l[1])
		}
		rows[m[1]] = labels
	}
	if len(rows) == 0 {
		t.Fatalf("README.md: no metric rows after %q", heading)
	}
	return rows
}

// README.md's metric tables and the code must not drift apart: every metric
// the collector describes is documented with its labels, and every target
// fact documented is described.
func TestMetricsMatchREADME(t *testing.T) {
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	facts := readmeTable(t, string(data), "Facts about a target")
	own := readmeTable(t, string(data), "The exporter's own metrics")

	probeDescs := describe(t, NewProbeCollector(&probe.Result{}, nil))
	reg := prometheus.NewPedanticRegistry()
	NewHistoryMetrics(reg, history.New(history.Options{}))
	exporterDescs := map[string]descInfo{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		exporterDescs[mf.GetName()] = descInfo{name: mf.GetName()}
	}
	if len(exporterDescs) != 3 {
		t.Errorf("NewHistoryMetrics registered %d metrics, want 3", len(exporterDescs))
	}

	for _, set := range []struct {
		table map[string][]string
		descs map[string]descInfo
		what  string
		// complete: every row of the table must be emitted by this package.
		complete bool
	}{
		{facts, probeDescs, "target facts", true},
		{own, exporterDescs, "exporter metrics", false},
	} {
		for name, d := range set.descs {
			labels, ok := set.table[name]
			if !ok {
				t.Errorf("%s is emitted but missing from README.md's %s table", name, set.what)
				continue
			}
			if !slices.Equal(slices.Sorted(slices.Values(d.labels)), slices.Sorted(slices.Values(labels))) {
				t.Errorf("%s: labels %v, README.md says %v", name, d.labels, labels)
			}
		}
		if !set.complete {
			continue
		}
		for name := range set.table {
			if _, ok := set.descs[name]; !ok {
				t.Errorf("README.md documents %s among %s, but the collector does not describe it", name, set.what)
			}
		}
	}
}
