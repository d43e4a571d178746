package testservers

import (
	"crypto/x509"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// programReadyTimeout bounds the start of the exporter, Prometheus and
// Alertmanager: Prometheus replays its (empty) WAL and loads rules first.
const programReadyTimeout = 30 * time.Second

// StartExporter runs the exporter (BuildExporter) on a free port of
// 127.0.0.1 with args after --web.listen-address, and returns once
// /-/healthy answers. Its logs are shown when the test fails.
func StartExporter(t testing.TB, args ...string) *Server {
	t.Helper()
	return startHTTPProgram(t, "resumption_exporter", BuildExporter(t), "/-/healthy", "", func(_, listen string) []string {
		return append([]string{"--web.listen-address=" + listen}, args...)
	})
}

// StartExporterTLS is StartExporter for an exporter whose --web.config.file
// (among args) serves TLS: it is ready once a handshake verified by pool
// succeeds, since /-/healthy then needs TLS and perhaps credentials.
func StartExporterTLS(t testing.TB, pool *x509.CertPool, args ...string) *Server {
	t.Helper()
	return Start(t, Spec{
		Name:   "resumption_exporter",
		Binary: BuildExporter(t),
		Config: func(port int) ([]string, string, error) {
			return append([]string{"--web.listen-address=127.0.0.1:" + strconv.Itoa(port)}, args...), "", nil
		},
		Ready:         []ReadyCheck{TLSReady(pool)},
		ReadyTimeout:  programReadyTimeout,
		LogsOnFailure: true,
	})
}

// StartExporterShell is StartExporter with shell commands (such as ulimit)
// run first by /bin/sh, which then execs the exporter under the same PID.
// An empty shell runs nothing first.
func StartExporterShell(t testing.TB, shell string, args ...string) *Server {
	t.Helper()
	bin := BuildExporter(t)
	script := `exec "$0" "$@"`
	if shell != "" { // "; exec" alone is a syntax error
		script = shell + "; " + script
	}
	return startHTTPProgram(t, "resumption_exporter", "/bin/sh", "/-/healthy", "", func(_, listen string) []string {
		return append([]string{"-c", script, bin, "--web.listen-address=" + listen}, args...)
	})
}

// StartPrometheus runs Debian's prometheus with configFile on a free port of
// 127.0.0.1, its TSDB in Server.Dir, and returns once /-/ready answers. Its
// logs are shown when the test fails.
func StartPrometheus(t testing.TB, configFile string) *Server {
	t.Helper()
	return startHTTPProgram(t, "prometheus", LookPath(t, "prometheus"), "/-/ready", configFile, func(dir, listen string) []string {
		return []string{
			"--config.file=" + configFile,
			"--storage.tsdb.path=" + filepath.Join(dir, "data"),
			"--web.listen-address=" + listen,
		}
	})
}

// StartAlertmanager runs Debian's prometheus-alertmanager with configFile on
// a free port of 127.0.0.1, without clustering (which would listen on every
// address), its storage in Server.Dir, and returns once /-/ready answers.
// Its logs are shown when the test fails.
func StartAlertmanager(t testing.TB, configFile string) *Server {
	t.Helper()
	return startHTTPProgram(t, "alertmanager", LookPath(t, "prometheus-alertmanager"), "/-/ready", configFile, func(dir, listen string) []string {
		return []string{
			"--config.file=" + configFile,
			"--storage.path=" + filepath.Join(dir, "data"),
			"--web.listen-address=" + listen,
			"--cluster.listen-address=",
		}
	})
}

// startHTTPProgram starts a Go server of the Prometheus kind: args gets
// its directory and the listen address, and it is ready once readyPath
// answers 200.
func startHTTPProgram(t testing.TB, name, binary, readyPath, configFile string, args func(dir, listen string) []string) *Server {
	t.Helper()
	dir := t.TempDir()
	return Start(t, Spec{
		Name:   name,
		Binary: binary,
		Dir:    dir,
		Config: func(port int) ([]string, string, error) {
			return args(dir, "127.0.0.1:"+strconv.Itoa(port)), configFile, nil
		},
		Ready:         []ReadyCheck{HTTPReady(readyPath)},
		ReadyTimeout:  programReadyTimeout,
		LogsOnFailure: true,
	})
}
