package mixin

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// RequireTool returns the path of an external program a test needs
// (jsonnet, promtool, amtool). When it is missing the test is skipped,
// unless CI=true: the test script installs them, so there a missing tool is
// a failure and not a silently skipped check.
func RequireTool(tb testing.TB, name string) string {
	tb.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("CI") == "true" {
		tb.Fatalf("%s is required with CI=true (apt-get install %s): %v", name, debianPackage(name), err)
	}
	tb.Skipf("%s not installed (apt-get install %s): %v", name, debianPackage(name), err)
	return ""
}

func debianPackage(tool string) string {
	switch tool {
	case "promtool":
		return "prometheus"
	case "amtool":
		return "prometheus-alertmanager"
	default:
		return tool
	}
}

// RequireContract returns the metric names README.md's tables promise (see
// ContractMetrics), failing the test when the file or its tables are missing.
func RequireContract(tb testing.TB) map[string]bool {
	tb.Helper()
	readme, err := os.ReadFile(filepath.Join(RepoRoot(), "README.md"))
	if err != nil {
		tb.Fatal(err)
	}
	allowed := ContractMetrics(readme)
	if len(allowed) == 0 {
		tb.Fatal("README.md has no metric tables")
	}
	return allowed
}
