package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
	"github.com/resumption-exporter/resumption_exporter/probe"
)

func allowList(t *testing.T, entries ...string) *probe.AllowList {
	t.Helper()
	l, err := probe.ParseAllowList("--probe.allowed-targets", entries)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func refusedTotal(t *testing.T, url, reason string) float64 {
	t.Helper()
	_, body := get(t, url+"/metrics", nil)
	v, ok := value(t, parseMetrics(t, body), "resumption_exporter_probes_refused_total", map[string]string{"reason": reason})
	if !ok {
		t.Fatalf("no resumption_exporter_probes_refused_total{reason=%q}", reason)
	}
	return v
}

// Every way an attacker tried to reach what the allow-list does not hold is
// answered 403 (or 400 for spellings that are no target) and counted; what
// it holds is probed as before.
func TestProbeAllowList(t *testing.T) {
	addr := startTLSServer(t, nil)
	_, port, _ := net.SplitHostPort(addr)
	accepted := 0
	var mu sync.Mutex
	countAddr := testservers.ServeTCP(t, func(net.Conn) { mu.Lock(); accepted++; mu.Unlock() })
	_, countPort, _ := net.SplitHostPort(countAddr)

	tests := []struct {
		name    string
		entries []string
		target  string
		code    int
		reason  string // counted refusal, or part of a 400 body
	}{
		{"allowed address", []string{"127.0.0.1:" + port}, addr, 200, ""},
		{"allowed name and address", []string{"localhost", "127.0.0.0/8", "[::1]"}, "localhost:" + port, 200, ""},
		{"unspecified address", []string{"10.0.0.0/8"}, "0.0.0.0:" + port, 403, "target_not_allowed"},
		{"mapped loopback", []string{"10.0.0.0/8"}, "[::ffff:127.0.0.1]:" + port, 403, "target_not_allowed"},
		{"rebinding name", []string{"10.0.0.0/8"}, "localhost:" + port, 403, "address_not_allowed"},
		{"name glob miss", []string{"*.example.com"}, "localhost:" + port, 403, "target_not_allowed"},
		{"name allowed, address not", []string{"localhost", "10.0.0.0/8"}, "localhost:" + countPort, 403, "address_not_allowed"},
		{"other port", []string{"127.0.0.1:1-1000"}, addr, 403, "target_not_allowed"},
		{"short IPv4", []string{"10.0.0.0/8"}, "127.1:" + port, 400, "numeric label"},
		{"signed port", nil, "127.0.0.1:+" + port, 400, "no sign or leading zero"},
		{"zero-padded port", nil, "127.0.0.1:00" + port, 400, "no sign or leading zero"},
		{"typo parameter, target not allowed", []string{"10.0.0.0/8"}, addr + "&hostnme=a.example", 400, `unknown query parameter "hostnme"`},
		{"bad server_name, target not allowed", []string{"10.0.0.0/8"}, addr + "&server_name=a%20b", 400, "is not a host name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, srv := newTestExporter(t, options{allowList: allowList(t, tt.entries...)})
			code, body := get(t, srv.URL+"/probe?module=insecure&target="+tt.target, nil)
			if code != tt.code {
				t.Fatalf("status %d, want %d: %s", code, tt.code, body)
			}
			switch {
			case code == 200:
				if v, _ := value(t, parseMetrics(t, body), "probe_success", nil); v != 1 {
					t.Errorf("allowed probe failed:\n%s", body)
				}
			case code == 400:
				if !strings.Contains(body, tt.reason) {
					t.Errorf("body %q lacks %q", body, tt.reason)
				}
			default:
				if strings.Count(strings.TrimSpace(body), "\n") != 0 || !strings.Contains(body, "allow") || strings.Contains(body, "127.0.0.1:"+countPort) {
					t.Errorf("body %q: want one line saying what is not allowed, without the resolved address", body)
				}
				if n := refusedTotal(t, srv.URL, tt.reason); n != 1 {
					t.Errorf("refused_total{%s} = %v, want 1", tt.reason, n)
				}
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if accepted != 0 {
		t.Errorf("a refused probe connected %d times", accepted)
	}
}

// allowed_targets in the configuration file reloads, and narrows the
// flag's list without widening it.
func TestAllowedTargetsReload(t *testing.T) {
	addr := startTLSServer(t, nil)
	_, port, _ := net.SplitHostPort(addr)
	cfg := filepath.Join(t.TempDir(), "config.yml")
	write := func(entries string) {
		writeFile(t, cfg, "modules:\n  insecure:\n    tls_config:\n      insecure_skip_verify: true\nallowed_targets: ["+entries+"]\n")
	}
	write("127.0.0.1")
	e, srv := newTestExporter(t, options{configFile: cfg, allowList: allowList(t, "127.0.0.0/8:"+port, "10.0.0.1")})
	status := func(target string) int {
		code, _ := get(t, srv.URL+"/probe?module=insecure&target="+target, nil)
		return code
	}
	if got := status(addr); got != 200 {
		t.Errorf("allowed by both lists: %d", got)
	}
	if got := status("10.0.0.1:" + port); got != 403 {
		t.Errorf("allowed by the flag only: %d, want 403", got)
	}
	write("127.0.0.2")
	if err := e.reload(); err != nil {
		t.Fatal(err)
	}
	if got := status(addr); got != 403 {
		t.Errorf("after the reload removed it: %d, want 403", got)
	}
	write("10.0.0.0/8:0443")
	if err := e.reload(); err == nil || !strings.Contains(err.Error(), "allowed_targets") {
		t.Errorf("reload of a bad entry: %v", err)
	}
}

// hangingServer accepts connections and never answers.
func hangingServer(t *testing.T) string {
	return testservers.ServeTCP(t, func(c net.Conn) { io.Copy(io.Discard, c) })
}

// waitInFlight polls /metrics until n probes are in flight, for at most 5 s.
func waitInFlight(t *testing.T, url string, n float64) {
	t.Helper()
	var v float64
	for i := 0; i < 100; i++ {
		_, body := get(t, url+"/metrics", nil)
		if v, _ = value(t, parseMetrics(t, body), "resumption_exporter_probes_in_flight", nil); v == n {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%v probes in flight, want %v", v, n)
}

// With the probe slots taken by hanging targets, more probes are refused at
// once with 503 and counted, the listener keeps answering, and slots come
// back when the hanging probes time out. Targets are keyed in their
// canonical form: two spellings of one target share its slots.
func TestProbeConcurrencyLimits(t *testing.T) {
	hang := hangingServer(t)
	_, hangPort := mustSplit(t, hang)
	healthy := startTLSServer(t, nil)
	_, srv := newTestExporter(t, options{maxConcurrent: 3, maxPerTarget: 2})
	scrape := http.Header{"X-Prometheus-Scrape-Timeout-Seconds": {"3"}}

	var wg sync.WaitGroup
	for _, target := range []string{"localhost:" + hangPort, "LocalHost.:" + hangPort} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			get(t, srv.URL+"/probe?target="+target, scrape)
		}()
	}
	waitInFlight(t, srv.URL, 2)

	// The hanging target's slots are full, in any spelling.
	code, body := get(t, srv.URL+"/probe?target=localhost:"+hangPort, nil)
	if code != 503 || !strings.Contains(body, "--probe.max-concurrent-per-target") {
		t.Errorf("third probe of the hanging target: %d %q, want 503", code, body)
	}
	// Another target still gets the last slot.
	code, body = get(t, srv.URL+"/probe?module=insecure&target="+healthy, nil)
	if v, _ := value(t, parseMetrics(t, body), "probe_success", nil); code != 200 || v != 1 {
		t.Errorf("healthy probe beside hanging ones: %d\n%s", code, body)
	}

	// Fill the last slot, then many more are refused at once, and the
	// listener keeps accepting.
	other := hangingServer(t)
	wg.Add(1)
	go func() { defer wg.Done(); get(t, srv.URL+"/probe?target="+other, scrape) }()
	waitInFlight(t, srv.URL, 3)
	client := &http.Client{Timeout: 5 * time.Second} // a refusal that waited would fail here
	var refusedMu sync.Mutex
	refused := map[int]int{}
	var burst sync.WaitGroup
	for i := 0; i < 50; i++ {
		burst.Add(1)
		go func() {
			defer burst.Done()
			resp, err := client.Get(srv.URL + "/probe?module=insecure&target=" + healthy)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			refusedMu.Lock()
			refused[resp.StatusCode]++
			refusedMu.Unlock()
		}()
	}
	burst.Wait()
	if refused[503] != 50 {
		t.Errorf("burst over a full limiter: statuses %v, want 50 × 503", refused)
	}
	if code, _ := get(t, srv.URL+"/-/healthy", nil); code != 200 {
		t.Errorf("/-/healthy: %d while the limiter is full", code)
	}
	// A malformed request is a 400 however busy the exporter is.
	for _, q := range []string{
		"target=" + healthy + "&module=nope", "target=127.0.0.1:+1", "target=",
		"target=" + healthy + "&hostnme=a.example", "target=" + healthy + "&server_name=a/b",
		"target=" + healthy + "&server_name=a.example&hostname=b.example",
	} {
		if code, _ := get(t, srv.URL+"/probe?"+q, nil); code != 400 {
			t.Errorf("/probe?%s while the limiter is full: %d, want 400", q, code)
		}
	}
	if n := refusedTotal(t, srv.URL, "concurrency"); n != 50 {
		t.Errorf("refused_total{concurrency} = %v, want 50", n)
	}
	if n := refusedTotal(t, srv.URL, "target_concurrency"); n != 1 {
		t.Errorf("refused_total{target_concurrency} = %v, want 1", n)
	}

	wg.Wait() // the hanging probes time out with the scrape
	waitInFlight(t, srv.URL, 0)
	code, _ = get(t, srv.URL+"/probe?module=insecure&target="+healthy, nil)
	if code != 200 {
		t.Errorf("probe after the hanging ones ended: %d", code)
	}
}

func mustSplit(t *testing.T, addr string) (string, string) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return h, p
}

func TestDefaultMaxConcurrent(t *testing.T) {
	for _, tt := range []struct {
		soft uint64
		want int
	}{
		{0, 1}, {64, 1}, {72, 1}, {256, 24}, {1024, 120}, {20000, 1000}, {1 << 20, 1000},
	} {
		if got := defaultMaxConcurrent(tt.soft); got != tt.want {
			t.Errorf("defaultMaxConcurrent(%d) = %d, want %d", tt.soft, got, tt.want)
		}
	}
}

// The exporter logs its descriptor limit, with the soft limit already raised
// by the Go runtime (since 1.19) to one below the hard limit (so that it can
// tell a later prlimit from its own change), and says when no allow-list is
// set.
func TestStartupLogsLimits(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	_, hard, err := fdLimit()
	if err != nil || hard <= 256 {
		t.Skipf("hard descriptor limit %d (%v): nothing to raise", hard, err)
	}
	p := testservers.StartExporterShell(t, "ulimit -S -n 256")
	logs := p.Logs()
	for _, want := range []string{
		fmt.Sprintf("soft=%d hard=%d", hard-1, hard),
		fmt.Sprintf("max_concurrent_probes=%d", defaultMaxConcurrent(hard-1)),
		"No --probe.allowed-targets",
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("start-up log lacks %q:\n%s", want, logs)
		}
	}
}

// Two spellings of one target are one target: the second probe offers the
// sessions the first one obtained.
func TestSpellingsShareSessions(t *testing.T) {
	_, srv := newTestExporter(t, options{})
	_, port := mustSplit(t, startTLSServer(t, nil))
	get(t, srv.URL+"/probe?module=insecure&target=localhost:"+port, nil)
	_, body := get(t, srv.URL+"/probe?module=insecure&target=LocalHost.:"+port, nil)
	if age, ok := value(t, parseMetrics(t, body), "tls_session_ticket_accepted_max_age_seconds", map[string]string{"version": "TLS 1.3"}); !ok || age <= 0 {
		t.Errorf("LocalHost. did not reuse localhost's sessions: accepted max age %v (present %v)", age, ok)
	}
}

// A 400 repeats a short prefix of a long input, on one line.
func TestBadRequestEchoIsShort(t *testing.T) {
	_, srv := newTestExporter(t, options{})
	long := strings.Repeat("%0A%E9", 2000)
	for _, q := range []string{"target=" + long + ":443", "target=example.com:" + long, "target=example.com:443&module=" + long} {
		code, body := get(t, srv.URL+"/probe?"+q, nil)
		if code != 400 || len(body) > 300 || strings.Count(strings.TrimSpace(body), "\n") != 0 {
			t.Errorf("status %d, %d-byte body %q: want a short one-line 400", code, len(body), body)
		}
	}
	// A scrape timeout that parses, but is a long spelling of 0.1 s, less
	// than --timeout-offset.
	tiny := http.Header{"X-Prometheus-Scrape-Timeout-Seconds": {"0.1" + strings.Repeat("0", 4000)}}
	code, body := get(t, srv.URL+"/probe?target=example.com:443", tiny)
	if code != 400 || len(body) > 300 || !strings.Contains(body, "leaves no time") {
		t.Errorf("tiny scrape timeout: status %d, %d-byte body %q: want a short 400 saying it leaves no time", code, len(body), body)
	}
}

// The limiter refuses over either limit, frees slots on release (once, however
// often release is called) and keeps no entry for an idle target.
func TestLimiter(t *testing.T) {
	l := newLimiter(3, 2)
	steps := []struct {
		target string
		reason string // "" = admitted
	}{
		{"a:1", ""}, {"a:1", ""}, {"a:1", reasonTargetConcurrency}, {"b:1", ""}, {"c:1", reasonConcurrency},
	}
	var releases []func()
	for i, s := range steps {
		release, reason, msg := l.acquire(s.target)
		if reason != s.reason || (release == nil) != (s.reason != "") || (s.reason != "" && msg == "") {
			t.Fatalf("step %d (%s): reason %q msg %q, want %q", i, s.target, reason, msg, s.reason)
		}
		if release != nil {
			releases = append(releases, release)
		}
	}
	releases[0]()
	releases[0]()
	if l.InFlight() != 2 {
		t.Errorf("in flight %d after one release (called twice), want 2", l.InFlight())
	}
	for _, r := range releases[1:] {
		r()
	}
	if l.InFlight() != 0 || len(l.byTarget) != 0 {
		t.Errorf("after all releases: %d in flight, %d targets kept", l.InFlight(), len(l.byTarget))
	}
}

// Issue 10's descriptor exhaustion: under a descriptor limit of 256, a
// burst of probes of hanging servers takes only the slots the limit leaves
// room for; the rest are refused with 503 at once (not after waiting for a
// slot), /-/healthy keeps answering, and the exporter never runs out of
// descriptors (net/http would log "Accept error: ... too many open files").
func TestDescriptorExhaustionBurst(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	const probes = 100
	p := testservers.StartExporterShell(t, "ulimit -n 256", "--log.level=warn")
	var hang []string
	for range 8 { // 8 × the per-target limit is more than the global one
		hang = append(hang, hangingServer(t))
	}
	// The admitted probes hang until their 6 s timeout and then fail; a
	// refusal that waited for one of their slots would take 4 s or more.
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	defer client.CloseIdleConnections()
	var mu sync.Mutex
	statuses := map[int]int{}
	var slowRefusals []time.Duration
	var wg sync.WaitGroup
	for i := range probes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodGet, p.URL("/probe?target="+hang[i%len(hang)]), nil)
			req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", "6")
			start := time.Now()
			resp, err := client.Do(req)
			took := time.Since(start)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Errorf("probe %d: %v", i, err)
				return
			}
			resp.Body.Close()
			statuses[resp.StatusCode]++
			if resp.StatusCode == 503 && took >= 4*time.Second {
				slowRefusals = append(slowRefusals, took)
			}
		}()
	}
	admitted := defaultMaxConcurrent(256)
	waitInFlight(t, p.URL(""), float64(admitted))
	if code, body := get(t, p.URL("/-/healthy"), nil); code != 200 {
		t.Errorf("/-/healthy during the burst: %d %q", code, body)
	}
	wg.Wait()
	if statuses[200] != admitted || statuses[503] != probes-admitted || len(slowRefusals) > 0 {
		t.Errorf("%d probes under a limit of %d: statuses %v, refusals after 4 s or more: %v; want %d × 200, %d × 503 at once",
			probes, admitted, statuses, slowRefusals, admitted, probes-admitted)
	}
	waitInFlight(t, p.URL(""), 0)
	log, err := os.ReadFile(filepath.Join(p.Dir, "output.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"too many open files", "accept error"} {
		if strings.Contains(strings.ToLower(string(log)), bad) {
			t.Errorf("the exporter's log says %q:\n%s", bad, p.Logs())
		}
	}
}
