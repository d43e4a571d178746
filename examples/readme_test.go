package examples

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
)

// readmeCommand matches a `promtool ...` command quoted in README.md.
var readmeCommand = regexp.MustCompile("`(promtool check service-discovery[^`]*)`")

// TestReadmeServiceDiscoveryCommand runs the promtool command README.md
// gives for the replica example, as a reader would, from the repository
// root. It must answer with the targets well before promtool's default
// discovery wait of 30 s, which made it look hung (hence --timeout).
func TestReadmeServiceDiscoveryCommand(t *testing.T) {
	promtool := testservers.LookPath(t, "promtool")
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	// The README wraps lines: a command may span two.
	m := readmeCommand.FindSubmatch([]byte(strings.ReplaceAll(string(readme), "\n", " ")))
	if m == nil {
		t.Fatal("README.md quotes no `promtool check service-discovery ...` command")
	}
	args := strings.Fields(string(m[1]))[1:]
	if !strings.Contains(string(m[1]), "--timeout=") {
		t.Errorf("README's %q waits 30 s for discovery: give it --timeout", m[1])
	}
	t.Chdir("..")
	out := command(t, 15*time.Second, promtool, args...)
	var ts []discovered
	if err := json.Unmarshal(out, &ts); err != nil || len(ts) == 0 {
		t.Fatalf("%s: %d targets, %v\n%s", m[1], len(ts), err, out)
	}
}
