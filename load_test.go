//go:build load

package main

// A bounded loopback load test, not part of the test command: run it with
//
//	go test -tags load -run TestLoadHanging -v -timeout 10m .
//
// (or scripts/load-hanging.sh). It starts the exporter binary, hanging
// servers (accept TCP, never answer) and a healthy crypto/tls server, all
// on 127.0.0.1, fires LOAD_PROBES (2000) concurrent probes at the hanging
// ones, and reports the exporter's RSS, descriptors and goroutines and the
// latency of healthy probes meanwhile. Every process it starts is stopped by
// PID at cleanup; every loop is bounded.

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
)

func loadProbes() int {
	if n, err := strconv.Atoi(os.Getenv("LOAD_PROBES")); err == nil && n > 0 && n <= 5000 {
		return n
	}
	return 2000
}

type loadFigures struct {
	inFlight, goroutines, refused503 float64
	rssMiB, hwmMiB                   float64
	fds                              int
	healthyMax, healthyBase          time.Duration
	healthyRefused                   int
	goroutinesAfter                  float64
	emfile                           int // "too many open files" in the exporter's log
}

func TestLoadHanging(t *testing.T) {
	scenarios := []struct {
		name    string
		shell   string // run before the exporter, e.g. a ulimit
		args    []string
		targets int // hanging listeners the probes are spread over
	}{
		{"no limits (as before), 1 hanging target", "", []string{"--probe.max-concurrent=100000", "--probe.max-concurrent-per-target=100000"}, 1},
		{"defaults, 1 hanging target", "", nil, 1},
		{"defaults, 200 hanging targets", "", nil, 200},
		{"defaults under ulimit -n 1024, 200 hanging targets", "ulimit -n 1024", nil, 200},
	}
	healthy := startTLSServer(t, nil)
	var report []string
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			f := runLoad(t, sc.shell, sc.args, sc.targets, healthy)
			line := fmt.Sprintf("%-52s in_flight=%4.0f refused_503=%4.0f rss=%5.1fMiB peak_rss=%5.1fMiB fds=%5d goroutines=%5.0f→%3.0f healthy: base %s, under load max %s, refused %d; EMFILE in log %d",
				sc.name, f.inFlight, f.refused503, f.rssMiB, f.hwmMiB, f.fds, f.goroutines, f.goroutinesAfter, f.healthyBase.Round(time.Millisecond), f.healthyMax.Round(time.Millisecond), f.healthyRefused, f.emfile)
			t.Log(line)
			report = append(report, line)
		})
	}
	t.Logf("\n%s", strings.Join(report, "\n"))
}

func runLoad(t *testing.T, shell string, args []string, targets int, healthy string) loadFigures {
	p := testservers.StartExporterShell(t, shell, append([]string{"--log.level=warn"}, args...)...)
	var hang []string
	for range targets {
		hang = append(hang, hangingServer(t))
	}
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	defer client.CloseIdleConnections()

	var f loadFigures
	f.healthyBase, _ = healthyProbes(t, client, p, healthy, 5)

	n := loadProbes()
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodGet, p.URL("/probe?target="+hang[i%len(hang)]), nil)
			req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", "8")
			code := 0
			if resp, err := client.Do(req); err == nil {
				resp.Body.Close()
				code = resp.StatusCode
			}
			mu.Lock()
			statuses[code]++
			mu.Unlock()
		}()
	}
	time.Sleep(2 * time.Second) // let the burst arrive
	f.healthyMax, f.healthyRefused = healthyProbes(t, client, p, healthy, 10)
	m := scrapeMetrics(t, client, p)
	f.inFlight, f.goroutines = m["resumption_exporter_probes_in_flight"], m["go_goroutines"]
	f.rssMiB, f.hwmMiB, f.fds = procFigures(t, p.PID)

	wg.Wait()
	f.refused503 = float64(statuses[503])
	logs := fullLog(t, p)
	f.emfile = strings.Count(logs, "too many open files")
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, "too many open files") {
			t.Logf("first EMFILE in the exporter's log: %s", line)
			break
		}
	}
	t.Logf("statuses of the %d hanging probes: %v", n, statuses)
	for range 50 { // back to baseline once the probes ended
		if f.goroutinesAfter = scrapeMetrics(t, client, p)["go_goroutines"]; f.goroutinesAfter < 30 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return f
}

// fullLog returns the exporter's whole output.log: Server.Logs is only its
// tail, and EMFILE lines are counted over all of it.
func fullLog(t *testing.T, p *testservers.Server) string {
	b, err := os.ReadFile(filepath.Join(p.Dir, "output.log"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// healthyProbes probes the healthy server n times in a row and returns the
// slowest answer and how many were refused.
func healthyProbes(t *testing.T, client *http.Client, p *testservers.Server, target string, n int) (slowest time.Duration, refused int) {
	for range n {
		start := time.Now()
		resp, err := client.Get(p.URL("/probe?module=insecure&target=" + target))
		if err != nil {
			t.Errorf("healthy probe: %v", err)
			continue
		}
		resp.Body.Close()
		slowest = max(slowest, time.Since(start))
		if resp.StatusCode != 200 {
			refused++
		}
	}
	return slowest, refused
}

// scrapeMetrics returns the exporter's unlabelled gauges and the sum of
// each labelled family.
func scrapeMetrics(t *testing.T, client *http.Client, p *testservers.Server) map[string]float64 {
	resp, err := client.Get(p.URL("/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for name, mf := range parseMetrics(t, string(b)) {
		for _, m := range mf.GetMetric() {
			switch {
			case m.Gauge != nil:
				out[name] += m.GetGauge().GetValue()
			case m.Counter != nil:
				out[name] += m.GetCounter().GetValue()
			}
		}
	}
	return out
}

// procFigures reads the exporter's resident memory (now and peak) and open
// descriptors from /proc.
func procFigures(t *testing.T, pid int) (rssMiB, hwmMiB float64, fds int) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(fields[1], 64)
		switch fields[0] {
		case "VmRSS:":
			rssMiB = kb / 1024
		case "VmHWM:":
			hwmMiB = kb / 1024
		}
	}
	entries, err := os.ReadDir(filepath.Join("/proc", strconv.Itoa(pid), "fd"))
	if err != nil {
		t.Fatal(err)
	}
	return rssMiB, hwmMiB, len(entries)
}
