// Package bench measures what a probe costs against blackbox_exporter and
// testssl.sh, on loopback; bench/run prints its figures as one table.
package bench

import (
	"os"
	"testing"

	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
)

func TestMain(m *testing.M) { os.Exit(testservers.Main(m)) }
