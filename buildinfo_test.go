package main

import (
	"context"
	"os/exec"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
)

func TestBuildStampWithBuildInfo(t *testing.T) {
	checkout := &debug.BuildInfo{
		Main: debug.Module{Path: "github.com/resumption-exporter/resumption_exporter", Version: "v0.3.1-0.20261201083000-3407189abcde+dirty"},
		Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "3407189abcde0123456789abcdef0123456789ab"},
			{Key: "vcs.time", Value: "2026-12-01T08:30:00Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	goRun := &debug.BuildInfo{Main: debug.Module{Path: "github.com/resumption-exporter/resumption_exporter", Version: "(devel)"}}
	tests := []struct {
		name    string
		ldflags buildStamp
		bi      *debug.BuildInfo
		want    buildStamp
	}{
		{
			name: "go build in a modified checkout",
			bi:   checkout,
			want: buildStamp{Version: "v0.3.1-0.20261201083000-3407189abcde+dirty", Revision: "3407189abcde0123456789abcdef0123456789ab-modified", Branch: "unknown", BuildDate: "2026-12-01T08:30:00Z"},
		},
		{
			name: "go install module@version",
			bi:   &debug.BuildInfo{Main: debug.Module{Version: "v0.4.0"}},
			want: buildStamp{Version: "v0.4.0", Branch: "unknown"},
		},
		{
			name: "go run: no VCS data",
			bi:   goRun,
			want: buildStamp{Version: "(devel)", Branch: "unknown"},
		},
		{
			name:    "release build: -ldflags win",
			ldflags: buildStamp{Version: "0.4.0", Revision: "abc123", Branch: "main", BuildDate: "20261201-08:00:00"},
			bi:      checkout,
			want:    buildStamp{Version: "0.4.0", Revision: "abc123", Branch: "main", BuildDate: "20261201-08:00:00"},
		},
		{
			name:    "ldflags set version only, as the Dockerfile may",
			ldflags: buildStamp{Version: "0.4.0"},
			bi:      checkout,
			want:    buildStamp{Version: "0.4.0", Revision: "3407189abcde0123456789abcdef0123456789ab-modified", Branch: "unknown", BuildDate: "2026-12-01T08:30:00Z"},
		},
		{
			name: "no build information",
			want: buildStamp{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.ldflags.withBuildInfo(tt.bi); got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestVersionFromBuildInfo: the built binary fills version and branch
// itself. The test binary is built without VCS stamping (and so is a
// `go run`), so the version reads (devel): empty, stampVersion did not run.
func TestVersionFromBuildInfo(t *testing.T) {
	bin := testservers.BuildExporter(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("--version: %v\n%s", err, out)
	}
	first, _, _ := strings.Cut(string(out), "\n")
	if want := "resumption_exporter, version (devel) (branch: unknown, revision: "; !strings.HasPrefix(first, want) {
		t.Errorf("--version says %q, want it to start with %q", first, want)
	}
}
