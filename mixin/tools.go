package mixin

import (
	"os"
	"os/exec"
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
