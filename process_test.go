package main

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
)

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestReloadKeepsGoodConfig(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "config.yml")
	writeFile(t, cfg, "modules:\n  a:\n    timeout: 3s\n")
	p := testservers.StartExporter(t, "--config.file="+cfg)
	knows := func(module string) bool {
		_, body := get(t, p.URL("/probe?target=x&module="+module), nil)
		return !strings.Contains(body, "unknown module")
	}
	reloadOK := func() float64 {
		_, body := get(t, p.URL("/metrics"), nil)
		v, _ := value(t, parseMetrics(t, body), "resumption_exporter_config_last_reload_successful", nil)
		return v
	}
	if !knows("a") || knows("b") || reloadOK() != 1 {
		t.Fatal("initial config not in force")
	}

	writeFile(t, cfg, "modules:\n  b:\n    timout: 3s\n")
	resp, err := http.Post(p.URL("/-/reload"), "", nil)
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
	if !strings.Contains(p.Logs(), "timout") {
		t.Errorf("log does not say what is wrong:\n%s", p.Logs())
	}

	writeFile(t, cfg, "modules:\n  b:\n    timeout: 3s\n")
	p.Signal(t, syscall.SIGHUP)
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
		out, err := exec.Command(testservers.BuildExporter(t), tt.args...).CombinedOutput()
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
	p := testservers.StartExporter(t)
	code, body := get(t, p.URL("/config"), nil)
	if code != 200 || !strings.Contains(body, "insecure:") {
		t.Errorf("/config: %d\n%s", code, body)
	}
	addr := startTLSServer(t, nil)
	_, body = get(t, p.URL("/probe?module=insecure&target="+addr), nil)
	if v, _ := value(t, parseMetrics(t, body), "probe_success", nil); v != 1 {
		t.Errorf("probe_success %v from the built binary:\n%s", v, body)
	}
}
