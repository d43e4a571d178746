package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var buildOnce struct {
	sync.Once
	path string
	err  error
}

// exporterBinary builds the exporter once per test run, as the Dockerfile
// does (static, no cgo).
func exporterBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "resumption-exporter-bin")
		if err != nil {
			buildOnce.err = err
			return
		}
		buildOnce.path = filepath.Join(dir, "resumption_exporter")
		cmd := exec.Command("go", "build", "-trimpath", "-o", buildOnce.path, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildOnce.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildOnce.err != nil {
		t.Fatal(buildOnce.err)
	}
	return buildOnce.path
}

// process is an exporter started by a test, stopped by PID at cleanup.
type process struct {
	cmd  *exec.Cmd
	addr string
	logs *syncBuffer
	done chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startExporter runs the binary on a free 127.0.0.1 port with args and waits
// until /-/healthy answers.
func startExporter(t *testing.T, args ...string) *process {
	t.Helper()
	return startExporterShell(t, "", args...)
}

// startExporterShell is startExporter with shell commands (such as ulimit)
// run first by /bin/sh, which then execs the exporter under the same PID.
func startExporterShell(t *testing.T, shell string, args ...string) *process {
	t.Helper()
	addr := freePort(t)
	p := &process{addr: addr, logs: &syncBuffer{}, done: make(chan struct{})}
	args = append([]string{"--web.listen-address=" + addr}, args...)
	p.cmd = exec.Command(exporterBinary(t), args...)
	if shell != "" {
		p.cmd = exec.Command("/bin/sh", append([]string{"-c", shell + `; exec "$0" "$@"`, exporterBinary(t)}, args...)...)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.stop(syscall.SIGTERM) })
	for i := 0; i < 100; i++ {
		if resp, err := http.Get("http://" + addr + "/-/healthy"); err == nil {
			resp.Body.Close()
			return p
		}
		select {
		case <-p.done:
			t.Fatalf("exporter exited at start:\n%s", p.logs)
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("exporter not healthy after 5 s:\n%s", p.logs)
	return nil
}

// stop signals the process by PID and waits, at most 5 s, then kills it.
func (p *process) stop(sig syscall.Signal) {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *process) url(path string) string { return "http://" + p.addr + path }

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestReloadKeepsGoodConfig(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "config.yml")
	writeFile(t, cfg, "modules:\n  a:\n    timeout: 3s\n")
	p := startExporter(t, "--config.file="+cfg)
	knows := func(module string) bool {
		_, body := get(t, p.url("/probe?target=x&module="+module), nil)
		return !strings.Contains(body, "unknown module")
	}
	reloadOK := func() float64 {
		_, body := get(t, p.url("/metrics"), nil)
		v, _ := value(t, parseMetrics(t, body), "resumption_exporter_config_last_reload_successful", nil)
		return v
	}
	if !knows("a") || knows("b") || reloadOK() != 1 {
		t.Fatal("initial config not in force")
	}

	writeFile(t, cfg, "modules:\n  b:\n    timout: 3s\n")
	resp, err := http.Post(p.url("/-/reload"), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("POST /-/reload of a bad file: %d, want 500", resp.StatusCode)
	}
	if !knows("a") || reloadOK() != 0 {
		t.Error("bad reload replaced the config or was not reported")
	}
	if !strings.Contains(p.logs.String(), "timout") {
		t.Errorf("log does not say what is wrong:\n%s", p.logs)
	}

	writeFile(t, cfg, "modules:\n  b:\n    timeout: 3s\n")
	p.cmd.Process.Signal(syscall.SIGHUP)
	for i := 0; i < 100 && !knows("b"); i++ {
		time.Sleep(50 * time.Millisecond)
	}
	if !knows("b") || knows("a") || reloadOK() != 1 {
		t.Error("SIGHUP did not load the new config")
	}
}

func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good.yml"), filepath.Join(dir, "bad.yml")
	writeFile(t, good, "modules:\n  a: {}\n")
	writeFile(t, bad, "modules:\n  a:\n    checks: [tickets]\n")
	tests := []struct {
		args []string
		code int
	}{
		{[]string{"--config.check"}, 0}, // the embedded config
		{[]string{"--config.check", "--config.file=" + good}, 0},
		{[]string{"--config.check", "--config.file=" + bad}, 1},
		{[]string{"--config.check", "--config.file=" + filepath.Join(dir, "missing.yml")}, 1},
		{[]string{"--history.save-interval=0s"}, 2},
		{[]string{"--history.max-targets=0"}, 2},
		{[]string{"--probe.max-concurrent=-1"}, 2},
		{[]string{"--probe.max-concurrent-per-target=0"}, 2},
		{[]string{"--probe.allowed-targets=10.1.2.3/8"}, 2},
		{[]string{"--probe.allowed-targets=::1"}, 2},
		{[]string{"--config.check", "--probe.allowed-targets=10.0.0.0/8", "--probe.allowed-targets=*.example.com:443"}, 0},
	}
	for _, tt := range tests {
		out, err := exec.Command(exporterBinary(t), tt.args...).CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		if code != tt.code {
			t.Errorf("%v: exit %d, want %d\n%s", tt.args, code, tt.code, out)
		}
	}
}

func TestStartsOnEmbeddedConfig(t *testing.T) {
	p := startExporter(t)
	code, body := get(t, p.url("/config"), nil)
	if code != 200 || !strings.Contains(body, "insecure:") {
		t.Errorf("/config: %d\n%s", code, body)
	}
	addr := startTLSServer(t, nil)
	_, body = get(t, p.url("/probe?module=insecure&target="+addr), nil)
	if v, _ := value(t, parseMetrics(t, body), "probe_success", nil); v != 1 {
		t.Errorf("probe_success %v from the built binary:\n%s", v, body)
	}
}
