// Package scripts holds the tests of the shell scripts beside them.
package scripts

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// fakeAptGet is an apt-get that installs nothing: it records its arguments
// and the policy-rc.d answer a service start would get while it runs, and
// fails when FAKE_APT_FAIL is set.
const fakeAptGet = `#!/bin/sh
policy="$POLICY_RC_D"
if [ -x "$policy" ]; then "$policy" nginx start; echo "$* policy=$?" >>"$FAKE_APT_LOG"; else echo "$* policy=none" >>"$FAKE_APT_LOG"; fi
[ -z "$FAKE_APT_FAIL" ]
`

// TestInstallDepsPolicyRCD runs scripts/install-deps.sh with a fake apt-get
// and a policy-rc.d in a temporary directory: service starts are denied
// while apt runs, the file is gone afterwards (also when apt fails), and a
// policy-rc.d that was there before is neither used nor changed.
func TestInstallDepsPolicyRCD(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash not installed")
	}
	const own = "#!/bin/sh\n# the administrator's own\nexit 0\n"
	tests := []struct {
		name       string
		existing   string // policy-rc.d before the run; "" none
		aptFails   bool
		wantPolicy string // what a service start got during install
	}{
		{name: "absent before", wantPolicy: "policy=101"},
		{name: "absent before, apt fails", aptFails: true, wantPolicy: "policy=101"},
		{name: "present before", existing: own, wantPolicy: "policy=0"},
		{name: "present before, apt fails", existing: own, aptFails: true, wantPolicy: "policy=0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			policy := filepath.Join(dir, "policy-rc.d")
			if tt.existing != "" {
				if err := os.WriteFile(policy, []byte(tt.existing), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			apt := filepath.Join(dir, "apt-get")
			if err := os.WriteFile(apt, []byte(fakeAptGet), 0o755); err != nil {
				t.Fatal(err)
			}
			log := filepath.Join(dir, "apt.log")
			cmd := exec.Command(bash, "install-deps.sh", "nginx", "haproxy")
			cmd.Env = append(os.Environ(), "POLICY_RC_D="+policy, "APT_GET="+apt, "FAKE_APT_LOG="+log)
			if tt.aptFails {
				cmd.Env = append(cmd.Env, "FAKE_APT_FAIL=1")
			}
			cmd.WaitDelay = 10 * time.Second
			out, err := cmd.CombinedOutput()
			if (err != nil) != tt.aptFails {
				t.Fatalf("install-deps.sh: err %v, want failure %v\n%s", err, tt.aptFails, out)
			}

			calls, err := os.ReadFile(log)
			if err != nil {
				t.Fatalf("apt-get never ran: %v\n%s", err, out)
			}
			first := strings.SplitN(string(calls), "\n", 2)[0]
			if want := "update " + tt.wantPolicy; first != want {
				t.Errorf("apt-get ran as %q, want %q", first, want)
			}
			if !tt.aptFails && !strings.Contains(string(calls), "install -y --no-install-recommends nginx haproxy "+tt.wantPolicy) {
				t.Errorf("apt-get calls:\n%s", calls)
			}

			got, err := os.ReadFile(policy)
			switch {
			case tt.existing == "" && !os.IsNotExist(err):
				t.Errorf("policy-rc.d left behind (err %v): %q", err, got)
			case tt.existing != "" && !bytes.Equal(got, []byte(tt.existing)):
				t.Errorf("existing policy-rc.d changed to %q (err %v)", got, err)
			}
		})
	}
}

// TestReadmeNamesInstalledPackages: Getting started says what the test
// command installs, so every package of test.sh's list must appear there.
func TestReadmeNamesInstalledPackages(t *testing.T) {
	script, err := os.ReadFile("test.sh")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^packages=\(([^)]*)\)`).FindSubmatch(script)
	if m == nil {
		t.Fatal("test.sh has no packages=(...) list")
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	start := bytes.Index(readme, []byte("## Getting started"))
	end := bytes.Index(readme, []byte("## The exporter"))
	if start < 0 || end < start {
		t.Fatal("README.md has no Getting started section before The exporter")
	}
	section := string(readme[start:end])
	for _, p := range strings.Fields(string(m[1])) {
		if !regexp.MustCompile(`\b` + regexp.QuoteMeta(p) + `\b`).MatchString(section) {
			t.Errorf("README's Getting started does not say that test.sh installs %s", p)
		}
	}
	if i, j := strings.Index(section, "curl "), strings.Index(section, "./scripts/test.sh"); i < 0 || j < i {
		t.Errorf("the first probe (curl) must come right after go run ., before ./scripts/test.sh")
	}
}
