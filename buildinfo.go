package main

import (
	"runtime/debug"

	"github.com/prometheus/common/version"
)

// buildStamp is what github.com/prometheus/common/version tells about the
// build: the landing page, --version, the start-up log and
// resumption_exporter_build_info show it.
type buildStamp struct {
	Version, Revision, Branch, BuildDate string
}

// withBuildInfo fills the fields that -ldflags -X left empty from the
// build information the Go toolchain embeds. `go build` and `go install`
// in a checkout record the commit (vcs.revision, vcs.time, vcs.modified)
// and, since Go 1.24, a main-module version derived from it; a module
// fetched by `go install module@version` carries that version; `go run`
// records neither, and the version reads "(devel)". The branch is never
// recorded, so without -ldflags it is "unknown".
func (s buildStamp) withBuildInfo(bi *debug.BuildInfo) buildStamp {
	if bi == nil {
		return s
	}
	settings := map[string]string{}
	for _, kv := range bi.Settings {
		settings[kv.Key] = kv.Value
	}
	if s.Version == "" {
		s.Version = bi.Main.Version
	}
	if s.Revision == "" && settings["vcs.revision"] != "" {
		s.Revision = settings["vcs.revision"]
		if settings["vcs.modified"] == "true" {
			s.Revision += "-modified"
		}
	}
	if s.BuildDate == "" {
		s.BuildDate = settings["vcs.time"] // the commit's time: the only date a reproducible build has
	}
	if s.Branch == "" {
		s.Branch = "unknown"
	}
	return s
}

// stampVersion completes common/version's build variables from the Go
// build information, once at start and before anything reads them.
func stampVersion() {
	bi, _ := debug.ReadBuildInfo()
	s := buildStamp{version.Version, version.Revision, version.Branch, version.BuildDate}.withBuildInfo(bi)
	version.Version, version.Revision, version.Branch, version.BuildDate = s.Version, s.Revision, s.Branch, s.BuildDate
}
