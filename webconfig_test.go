package main

import (
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"gopkg.in/yaml.v3"

	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
)

// examplePassword is the password whose hash examples/web-config.yml ships.
const examplePassword = "change-me-example-password"

// The shipped --web.config.file example works as documented: the exporter
// started with it (its certificate paths pointed at a test PKI) serves only
// HTTPS, and answers 401 without the documented user and password.
func TestWebConfigExample(t *testing.T) {
	raw, err := os.ReadFile("examples/web-config.yml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		TLS   map[string]string `yaml:"tls_server_config"`
		Users map[string]string `yaml:"basic_auth_users"`
	}
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	if err := bcrypt.CompareHashAndPassword([]byte(cfg.Users["prometheus"]), []byte(examplePassword)); err != nil {
		t.Fatalf("the example's hash is not of the documented password: %v", err)
	}
	pki := testservers.NewPKI(t)
	text := strings.NewReplacer(cfg.TLS["cert_file"], pki.CertFile, cfg.TLS["key_file"], pki.KeyFile).Replace(string(raw))
	webConfig := filepath.Join(t.TempDir(), "web-config.yml")
	writeFile(t, webConfig, text)

	p := testservers.StartExporterTLS(t, pki.Pool, "--web.config.file="+webConfig)
	target := startTLSServer(t, nil)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pki.Pool}}}
	defer client.CloseIdleConnections()
	probeURL := "https://" + p.Addr + "/probe?module=insecure&target=" + target
	tests := []struct {
		name, user, password string
		code                 int
	}{
		{"no credentials", "", "", http.StatusUnauthorized},
		{"wrong password", "prometheus", "guess", http.StatusUnauthorized},
		{"unknown user", "admin", examplePassword, http.StatusUnauthorized},
		{"documented credentials", "prometheus", examplePassword, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, probeURL, nil)
			if tt.user != "" {
				req.SetBasicAuth(tt.user, tt.password)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.code {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.code, body)
			}
			if tt.code == http.StatusOK {
				if v, _ := value(t, parseMetrics(t, string(body)), "probe_success", nil); v != 1 {
					t.Errorf("probe through the web config failed:\n%s", body)
				}
			}
		})
	}
	// Plain HTTP gets no metrics.
	resp, err := http.Get("http://" + p.Addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK || strings.Contains(string(body), "go_goroutines") {
		t.Errorf("plain HTTP answered %d with metrics", resp.StatusCode)
	}
}
