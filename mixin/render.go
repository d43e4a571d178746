// Package mixin renders the monitoring mixin (the jsonnet beside this file)
// and holds what the tests of alerts/, dashboards/ and examples/ share:
// rendering, the queries of a dashboard, the metric names a PromQL
// expression uses and the metric contract in README.md.
package mixin

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"
)

// Generated lists the files mixin/generate.sh writes, relative to the
// repository root (or to the directory given to Render).
func Generated() []string {
	return []string{
		"alerts/resumption-alerts.yml",
		"dashboards/resumption-overview.json",
		"dashboards/resumption-target.json",
	}
}

// Timing chooses the `for:` durations of a rendering.
type Timing bool

const (
	// RealTiming renders the checked-in files.
	RealTiming Timing = false
	// FastTiming renders every `for:` and the rule group's evaluation
	// interval as 1s, for end-to-end tests; thresholds stay as they are.
	FastTiming Timing = true
)

// RenderTimeout bounds a rendering in tests. It only catches a hang:
// Debian's jsonnet (C++) takes about 10 s of CPU for generate.sh, mostly in
// std.manifestYamlDoc, and several times that on a loaded machine.
const RenderTimeout = 5 * time.Minute

// Dir returns the directory holding the mixin's sources.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(file)
}

// RepoRoot returns the repository's root directory.
func RepoRoot() string {
	return filepath.Dir(Dir())
}

// Render runs generate.sh with the given jsonnet binary, writing the files
// of Generated below outDir.
func Render(ctx context.Context, jsonnet, outDir string, timing Timing) error {
	args := []string{filepath.Join(Dir(), "generate.sh")}
	if timing == FastTiming {
		args = append(args, "--fast")
	}
	args = append(args, outDir)
	cmd := exec.CommandContext(ctx, "sh", args...)
	cmd.Env = append(os.Environ(), "JSONNET="+jsonnet)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("generate.sh %v: %w: %s", args[1:], err, stderr.Bytes())
	}
	for _, f := range Generated() {
		if _, err := os.Stat(filepath.Join(outDir, f)); err != nil {
			return fmt.Errorf("generate.sh did not write %s: %w", f, err)
		}
	}
	return nil
}
