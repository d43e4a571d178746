package testservers

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// buildTimeout bounds `go build` of the exporter.
const buildTimeout = 5 * time.Minute

// exporterBuild is the exporter binary of this test binary: built by the
// first BuildExporter, removed by Main.
var exporterBuild struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// BuildExporter builds the exporter the way the Dockerfile does (static,
// CGO_ENABLED=0, -trimpath), once per test binary, and returns the
// binary's path. It lives in a temporary directory that Main removes; a
// package that builds it should run its tests through Main.
func BuildExporter(t testing.TB) string {
	t.Helper()
	goTool := LookPath(t, "go")
	exporterBuild.once.Do(func() {
		exporterBuild.path, exporterBuild.err = buildExporter(goTool)
	})
	if exporterBuild.err != nil {
		t.Fatalf("testservers: building the exporter: %v", exporterBuild.err)
	}
	return exporterBuild.path
}

func buildExporter(goTool string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	// The module root, wherever in it the test runs.
	gomod, err := exec.CommandContext(ctx, goTool, "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	dir, err := os.MkdirTemp("", "resumption-exporter-bin-")
	if err != nil {
		return "", err
	}
	exporterBuild.dir = dir
	bin := filepath.Join(dir, "resumption_exporter")
	cmd := exec.CommandContext(ctx, goTool, "build", "-trimpath", "-o", bin, ".")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build in %s: %w\n%s", root, err, out)
	}
	return bin, nil
}

// Main runs the tests of m and then removes what BuildExporter built. Use
// it as `func TestMain(m *testing.M) { os.Exit(testservers.Main(m)) }`.
func Main(m *testing.M) int {
	code := m.Run()
	if exporterBuild.dir != "" {
		os.RemoveAll(exporterBuild.dir)
	}
	return code
}
