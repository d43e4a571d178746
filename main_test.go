package main

import (
	"fmt"
	"net/http"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
)

// TestMain fails the package's tests when a goroutine outlives them: a
// probe, a refused request or a reload must leave nothing running. Idle
// keep-alive connections of the tests' own HTTP client are closed first.
// The exporter binary the tests build (testservers.BuildExporter) is
// removed at the end.
func TestMain(m *testing.M) {
	code := testservers.Main(m)
	http.DefaultClient.CloseIdleConnections()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
