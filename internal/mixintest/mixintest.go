// Package mixintest holds what the tests of alerts/ and dashboards/ share
// about the mixin and need a *testing.T for, so that package mixin itself
// does not import testing.
package mixintest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/resumption-exporter/resumption_exporter/mixin"
)

// RequireContract returns the metric names README.md's tables promise (see
// mixin.ContractMetrics), failing the test when the file or its tables are
// missing.
func RequireContract(tb testing.TB) map[string]bool {
	tb.Helper()
	readme, err := os.ReadFile(filepath.Join(mixin.RepoRoot(), "README.md"))
	if err != nil {
		tb.Fatal(err)
	}
	allowed := mixin.ContractMetrics(readme)
	if len(allowed) == 0 {
		tb.Fatal("README.md has no metric tables")
	}
	return allowed
}
