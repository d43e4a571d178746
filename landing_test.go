package main

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
)

// TestLandingPageListsModules: the landing page offers the configured
// modules, with their checks, and follows a reload.
func TestLandingPageListsModules(t *testing.T) {
	e, srv := newTestExporter(t, options{})
	code, body := get(t, srv.URL+"/", nil)
	if code != 200 {
		t.Fatalf("GET /: %d", code)
	}
	for _, want := range []string{
		`<select id="module" name="module">`,
		`<option value="default" selected>default (session_id, session_ticket, psk)</option>`,
		`<option value="insecure">insecure (session_id, session_ticket, psk)</option>`,
		`<option value="tls13">tls13 (psk)</option>`,
		`<option value="smtp_starttls">smtp_starttls (STARTTLS smtp; session_id, session_ticket, psk)</option>`,
		`<option value="postgres_starttls">postgres_starttls (STARTTLS postgres; session_id, session_ticket, psk)</option>`,
		`<tr><td>tls12</td><td>none</td><td>session_id, session_ticket</td><td>psk_without_dhe, ticketbleed, ticket_weakness, ticket_renewal</td><td>TLS 1.2</td><td>verified</td><td>10s</td></tr>`,
		`<tr><td>insecure</td><td>none</td><td>session_id, session_ticket, psk</td><td>psk_without_dhe, ticketbleed, ticket_weakness, ticket_renewal</td><td>TLS 1.2, TLS 1.3</td><td>not verified</td><td>10s</td></tr>`,
		`<tr><td>smtp_starttls</td><td>smtp</td><td>session_id, session_ticket, psk</td>`,
		`<a href="config">/config</a>`,
		`<form action="probe" method="get" id="probe-form">`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("landing page lacks %s", want)
		}
	}

	path := filepath.Join(t.TempDir(), "config.yml")
	if err := os.WriteFile(path, []byte("modules:\n  internal:\n    checks: [psk]\n    tls_config:\n      min_version: TLS13\n      server_name: <b>x</b>\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := e.config.Load(path); err != nil {
		t.Fatal(err)
	}
	_, body = get(t, srv.URL+"/", nil)
	if !strings.Contains(body, `<option value="internal">internal (psk)</option>`) || strings.Contains(body, `value="insecure"`) {
		t.Errorf("landing page does not show the reloaded modules:\n%s", body)
	}
}

// TestLandingPageInBrowser loads the landing page of the real mux in
// headless Chromium, chooses a module, submits the form against an
// in-process TLS server and reads the probe's debug output. With
// LANDING_SCREENSHOTS=DIR it keeps screenshots of both pages there.
func TestLandingPageInBrowser(t *testing.T) {
	path := testservers.LookPath(t, "chromium") // skips without it, fails with CI=true
	e, srv := newTestExporter(t, options{})
	target := startTLSServer(t, nil) // its certificate is from a throwaway CA: module insecure

	// chromedp starts Chromium on a pipe, with a new empty --user-data-dir,
	// and kills it and every process still using that directory when ctx
	// is cancelled.
	ctx, cancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1000, 900),
	)
	defer cancel()
	ctx, cancelTab := chromedp.NewContext(ctx)
	defer cancelTab()
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	defer cancelTimeout()

	if err := chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS("#module")),
	); err != nil {
		t.Fatalf("loading the landing page: %v", err)
	}
	options, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("#module option")).map(o => o.value)`))
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Sorted(maps.Keys(e.config.Modules())) // the embedded config's, in name order
	if !slices.Equal(options, want) {
		t.Errorf("module choices %v, want %v", options, want)
	}
	chosen, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("module").value`))
	if err != nil || chosen != "default" {
		t.Errorf("module chosen at first: %q (%v), want default", chosen, err)
	}

	if err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS("#target"), target),
		chromedp.SetValue(chromedp.CSS("#module"), "insecure"),
		chromedp.Click(chromedp.CSS("#debug")),
	); err != nil {
		t.Fatalf("filling in the form: %v", err)
	}
	screenshot(t, ctx, "landing.png")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#probe-form input[type="submit"]`))); err != nil {
		t.Fatalf("submitting the form: %v", err)
	}
	awaitPage(t, ctx, "/probe")
	location, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"module=insecure", "target=" + strings.ReplaceAll(target, ":", "%3A"), "debug=true"} {
		if !strings.Contains(location, want) {
			t.Errorf("form went to %s, want %s in it", location, want)
		}
	}
	result, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
	if err != nil {
		t.Fatal(err)
	}
	screenshot(t, ctx, "probe.png")
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^Logs for the probe:`),
		regexp.MustCompile(`(?m)^probe_success 1$`),
		regexp.MustCompile(`(?m)^tls_resumption_supported\{mechanism="psk"\} 1$`),
	} {
		if !want.MatchString(result) {
			t.Errorf("result page lacks %s:\n%s", want, result)
		}
	}
}

// awaitPage waits until the tab shows a fully loaded page at path. While
// the browser navigates, evaluating fails ("target navigated"): retry.
func awaitPage(t *testing.T, ctx context.Context, path string) {
	t.Helper()
	for {
		done, err := chromedp.Run(ctx, chromedp.Evaluate[bool](
			fmt.Sprintf("location.pathname === %q && document.readyState === \"complete\"", path)))
		if err == nil && done {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("page %s did not load: %v (last: %v)", path, ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// screenshot keeps a PNG of the page in $LANDING_SCREENSHOTS, if set.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("LANDING_SCREENSHOTS")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}
