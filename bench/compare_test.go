package bench

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
)

var quick = flag.Bool("bench.quick", false, "shorter runs of the scale and testssl benchmarks")

var keyTypes = []struct {
	name string
	kt   testservers.KeyType
}{
	{"P-256", testservers.ECDSAP256},
	{"RSA-2048", testservers.RSA2048},
}

// BenchmarkVersusBlackbox probes one nginx (defaults plus a shared session
// cache) with resumption_exporter's default module and blackbox_exporter's
// one-handshake TCP+TLS module, interleaved, one pair per iteration, and
// reports median wall time per probe, CPU per probe of each exporter and of
// the nginx worker during each one's probes, and their ratios.
func BenchmarkVersusBlackbox(b *testing.B) {
	for _, k := range keyTypes {
		// The default module stands in once earlier probes met one
		// server; "full" (full_handshake_interval: 0) makes every
		// check's full handshake on every probe, as a first probe does.
		for _, module := range []string{"default", "full"} {
			name := k.name
			if module == "full" {
				name += "-full"
			}
			b.Run(name, func(b *testing.B) { versusBlackbox(b, k.kt, module) })
		}
	}
}

func versusBlackbox(b *testing.B, kt testservers.KeyType, module string) {
	testservers.Require(b, "nginx")
	pki := testservers.NewPKIWithKey(b, kt)
	nginx := testservers.StartNginx(b, pki, nginxShared)
	exporter := startExporter(b, pki)
	exporter.module = module
	ps := []*prober{exporter, startBlackbox(b, pki)}
	for range 5 { // to the steady state: earlier sessions to replay
		for _, p := range ps {
			p.probe(b, nginx.Addr)
		}
	}
	srv := serverPIDs(nginx)
	var wall [2][]time.Duration
	var cpu, srvCPU [2]time.Duration
	n := 0
	for b.Loop() {
		for j := range ps {
			i := (j + n) % 2 // alternate who goes first
			p := ps[i]
			c0, s0 := cpuTime(p.srv.PID), cpuTime(srv...)
			wall[i] = append(wall[i], p.probe(b, nginx.Addr))
			cpu[i] += cpuTime(p.srv.PID) - c0
			srvCPU[i] += cpuTime(srv...) - s0
		}
		n++
	}
	per := func(d time.Duration) float64 { return ms(d) / float64(n) }
	b.ReportMetric(ms(median(wall[0])), "exporter_ms")
	b.ReportMetric(ms(median(wall[1])), "blackbox_ms")
	b.ReportMetric(ms(median(wall[0]))/ms(median(wall[1])), "wall_x")
	b.ReportMetric(per(cpu[0]), "exporter_cpu_ms")
	b.ReportMetric(per(cpu[1]), "blackbox_cpu_ms")
	b.ReportMetric(float64(cpu[0])/float64(max(cpu[1], 1)), "cpu_x")
	b.ReportMetric(per(srvCPU[0]), "server_cpu_exporter_ms")
	b.ReportMetric(per(srvCPU[1]), "server_cpu_blackbox_ms")
	b.ReportMetric(float64(srvCPU[0])/float64(max(srvCPU[1], 1)), "server_cpu_x")
	if cpu[0] > 0 {
		b.ReportMetric(float64(n)/cpu[0].Seconds(), "probes/s/core")
	}
}

// BenchmarkHandshakesPerProbe counts, on the server's side, the connections
// and handshakes one steady-state probe imposes: openssl s_server's own
// counters (SSL_CTX_sess_accept, _accept_good, _hits), read from its -www
// status page before and after.
func BenchmarkHandshakesPerProbe(b *testing.B) {
	testservers.Require(b, "openssl")
	pki := testservers.NewPKI(b)
	for _, name := range []string{"resumption_exporter", "blackbox_exporter"} {
		b.Run(name, func(b *testing.B) {
			srv := testservers.StartOpenSSL(b, pki)
			p := startBlackbox(b, pki)
			if name == "resumption_exporter" {
				p = startExporter(b, pki)
			}
			for range 3 {
				p.probe(b, srv.Addr)
			}
			before := testservers.OpenSSLStats(b, srv.Addr, pki)
			n := 0
			for b.Loop() {
				p.probe(b, srv.Addr)
				n++
			}
			after := testservers.OpenSSLStats(b, srv.Addr, pki)
			// after counts its own status request: one full handshake.
			accepts := after[testservers.OpenSSLAccepts] - before[testservers.OpenSSLAccepts] - 1
			done := after[testservers.OpenSSLFinished] - before[testservers.OpenSSLFinished] - 1
			hits := after[testservers.OpenSSLHits] - before[testservers.OpenSSLHits]
			b.ReportMetric(float64(accepts)/float64(n), "connections/probe")
			b.ReportMetric(float64(done-hits)/float64(n), "full/probe")
			b.ReportMetric(float64(hits)/float64(n), "resumed/probe")
		})
	}
}

// BenchmarkRoundTrips probes nginx through a DelayProxy that makes it 40 ms
// (20 ms each way) away and reports the median steady-state probe in round
// trips, for both exporters, and the first probe of the exporter (nothing to
// replay yet).
func BenchmarkRoundTrips(b *testing.B) {
	const oneWay = 20 * time.Millisecond
	testservers.Require(b, "nginx")
	pki := testservers.NewPKI(b)
	nginx := testservers.StartNginx(b, pki, nginxShared)
	far := testservers.DelayProxy(b, nginx.Addr, oneWay)
	ps := []*prober{startExporter(b, pki), startBlackbox(b, pki)}
	rtt := func(d time.Duration) float64 { return float64(d) / float64(2*oneWay) }
	first := ps[0].probe(b, far)
	for range 2 {
		for _, p := range ps {
			p.probe(b, far)
		}
	}
	var wall [2][]time.Duration
	for b.Loop() {
		for i, p := range ps {
			wall[i] = append(wall[i], p.probe(b, far))
		}
	}
	b.ReportMetric(rtt(first), "exporter_first_rtt")
	b.ReportMetric(rtt(median(wall[0])), "exporter_rtt")
	b.ReportMetric(rtt(median(wall[1])), "blackbox_rtt")
}

// BenchmarkTestssl runs testssl.sh's session-resumption and lifetime checks
// (-S) and its Ticketbleed check (-T) against nginx on loopback, kept off
// the network (--ip, --nodns none; it phones out only with --phone-out),
// and compares each run with the exporter's median probe of the same nginx.
func BenchmarkTestssl(b *testing.B) {
	testservers.Require(b, "nginx", "testssl")
	pki := testservers.NewPKI(b)
	nginx := testservers.StartNginx(b, pki, nginxShared)
	exp := startExporter(b, pki)
	var wall []time.Duration
	for range 20 {
		wall = append(wall, exp.probe(b, nginx.Addr))
	}
	bin := testservers.LookPath(b, "testssl")
	var total time.Duration
	n := 0
	for b.Loop() {
		total += runTestssl(b, bin, nginx.Port, pki.CAFile)
		n++
	}
	run := total / time.Duration(n)
	b.ReportMetric(run.Seconds(), "testssl_s")
	b.ReportMetric(ms(median(wall)), "exporter_ms")
	b.ReportMetric(float64(run)/float64(median(wall)), "testssl_x")
}

// runTestssl runs testssl once, in a process group of its own that is
// killed, by PID, if it outlives its bound.
func runTestssl(b *testing.B, bin string, port int, caFile string) time.Duration {
	const bound = 5 * time.Minute
	cmd := exec.Command(bin, "--quiet", "--color", "0", "--warnings", "off", "--nodns", "none",
		"--ip", "127.0.0.1", "--add-ca", caFile, "-S", "-T", fmt.Sprintf("%s:%d", testservers.ServerName, port))
	cmd.Dir = b.TempDir()
	cmd.Env = append(os.Environ(), "TERM=dumb")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out limitedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	timer := time.AfterFunc(bound, func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	err := cmd.Wait()
	timer.Stop()
	took := time.Since(start)
	if err != nil && took >= bound {
		b.Fatalf("testssl ran past %s:\n%s", bound, out.String())
	}
	if !regexp.MustCompile(`(?i)ticketbleed`).MatchString(out.String()) {
		b.Fatalf("testssl (%v) did not run its checks:\n%s", err, out.String())
	}
	return took
}

// limitedBuffer keeps the first 1 MiB written to it.
type limitedBuffer struct{ b []byte }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := 1<<20 - len(l.b); room > 0 {
		l.b = append(l.b, p[:min(len(p), room)]...)
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string { return string(l.b) }
