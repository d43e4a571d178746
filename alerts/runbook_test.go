package alerts

import (
	"bufio"
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/resumption-exporter/resumption_exporter/collector/findings"
)

// modulePath reads the module path from the repository's go.mod: the
// repository the runbook is published in.
func modulePath(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if path, ok := strings.CutPrefix(sc.Text(), "module "); ok {
			return strings.TrimSpace(path)
		}
	}
	t.Fatal("go.mod has no module line")
	return ""
}

// runbookAnchors returns the anchors of runbook.md's headings.
func runbookAnchors(t *testing.T) map[string]bool {
	t.Helper()
	runbook, err := os.ReadFile("runbook.md")
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	for _, m := range heading.FindAllSubmatch(runbook, -1) {
		anchors[findings.GitHubAnchor(string(m[1]))] = true
	}
	return anchors
}

// TestRunbookURLs: every runbook_url points into this repository's
// alerts/runbook.md, at a heading that exists there, named after the
// alert. (TestAlertsAreDocumented checks the anchors too; this pins the
// base to where the file lives.)
func TestRunbookURLs(t *testing.T) {
	want := "https://" + modulePath(t) + "/blob/main/alerts/runbook.md"
	anchors := runbookAnchors(t)
	rules := loadRules(t, rulesFile).rules()
	if len(rules) == 0 {
		t.Fatal("no rules")
	}
	for _, r := range rules {
		base, anchor, _ := strings.Cut(r.Annotations["runbook_url"], "#")
		if base != want {
			t.Errorf("%s: runbook_url base %q, want %q", r.Alert, base, want)
		}
		if anchor != findings.GitHubAnchor(r.Alert) || !anchors[anchor] {
			t.Errorf("%s: runbook_url anchor #%s: want #%s, a heading of runbook.md", r.Alert, anchor, findings.GitHubAnchor(r.Alert))
		}
	}
}
