package bench

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
)

// clockTick is the unit of utime and stime in /proc/PID/stat: USER_HZ,
// 100 on every Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// cpuTime returns the user plus system CPU time pids have used so far
// (from /proc/PID/stat), skipping processes that are gone.
func cpuTime(pids ...int) time.Duration {
	var total time.Duration
	for _, pid := range pids {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
		if err != nil {
			continue
		}
		// Fields after the command name, which is in parentheses;
		// utime and stime are fields 14 and 15 of proc(5).
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseUint(f[11], 10, 64)
		s, _ := strconv.ParseUint(f[12], 10, 64)
		total += time.Duration(u+s) * clockTick
	}
	return total
}

// rssBytes returns a process's resident set size (VmRSS).
func rssBytes(pid int) int64 {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// prober is an exporter process with a module trusting the test PKI, asked
// over HTTP the way Prometheus asks it.
type prober struct {
	name   string
	srv    *testservers.Server
	module string
	client *http.Client
}

// probe asks the prober to probe target once and returns how long the HTTP
// answer took; it fails the benchmark when the probe did not succeed.
func (p *prober) probe(b *testing.B, target string) time.Duration {
	took, err := p.try(target)
	if err != nil {
		b.Fatal(err)
	}
	return took
}

// try is probe for goroutines other than the benchmark's own.
func (p *prober) try(target string) (time.Duration, error) {
	start := time.Now()
	resp, err := p.client.Get(p.srv.URL("/probe?module=" + p.module + "&target=" + target))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", p.name, err)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	took := time.Since(start)
	if err != nil || !bytes.Contains(body, []byte("\nprobe_success 1\n")) {
		return took, fmt.Errorf("%s probe of %s failed (%v):\n%s", p.name, target, err, body)
	}
	return took, nil
}

func writeFile(b *testing.B, name, content string) string {
	path := filepath.Join(b.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		b.Fatal(err)
	}
	return path
}

// startExporter runs resumption_exporter with its default module trusting
// pki and naming the server "localhost".
func startExporter(b *testing.B, pki *testservers.PKI, extra ...string) *prober {
	cfg := writeFile(b, "resumption.yml", fmt.Sprintf(`modules:
  default:
    preferred_ip_protocol: ip4
    tls_config:
      ca_file: %[1]s
      server_name: %[2]s
  full:
    preferred_ip_protocol: ip4
    full_handshake_interval: 0s
    tls_config:
      ca_file: %[1]s
      server_name: %[2]s
`, pki.CAFile, testservers.ServerName))
	srv := testservers.StartExporter(b, append([]string{"--config.file=" + cfg}, extra...)...)
	return &prober{name: "resumption_exporter", srv: srv, module: "default", client: &http.Client{Timeout: 30 * time.Second}}
}

// startBlackbox runs Debian's blackbox_exporter with a tcp module that does
// one TLS handshake, blackbox's way of probing a TLS server.
func startBlackbox(b *testing.B, pki *testservers.PKI) *prober {
	testservers.Require(b, "prometheus-blackbox-exporter")
	cfg := writeFile(b, "blackbox.yml", fmt.Sprintf(`modules:
  tls:
    prober: tcp
    timeout: 5s
    tcp:
      preferred_ip_protocol: ip4
      tls: true
      tls_config:
        ca_file: %s
        server_name: %s
`, pki.CAFile, testservers.ServerName))
	dir := b.TempDir()
	srv := testservers.Start(b, testservers.Spec{
		Name:   "blackbox_exporter",
		Binary: testservers.LookPath(b, "prometheus-blackbox-exporter"),
		Dir:    dir,
		Config: func(port int) ([]string, string, error) {
			return []string{"--config.file=" + cfg, "--web.listen-address=127.0.0.1:" + strconv.Itoa(port)}, cfg, nil
		},
		Ready:         []testservers.ReadyCheck{testservers.HTTPReady("/-/healthy")},
		ReadyTimeout:  30 * time.Second,
		LogsOnFailure: true,
	})
	return &prober{name: "blackbox_exporter", srv: srv, module: "tls", client: &http.Client{Timeout: 30 * time.Second}}
}

// nginxShared is nginx's defaults plus a shared session cache, so that every
// mechanism resumes.
const nginxShared = "ssl_protocols TLSv1.2 TLSv1.3; ssl_session_cache shared:SSL:10m;"

// serverPIDs are the processes doing a server's TLS work: its workers, or
// the master when it has none (s_server).
func serverPIDs(s *testservers.Server) []int {
	if w := s.Workers(); len(w) > 0 {
		return w
	}
	return []int{s.PID}
}
