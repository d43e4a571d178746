package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// notification is one alert as Alertmanager's webhook delivered it, with
// the path it was posted to (the example configuration gives each receiver
// its own path).
type notification struct {
	Path        string
	Receiver    string
	Status      string // of the alert: firing or resolved
	Labels      map[string]string
	Annotations map[string]string
}

// webhook is an Alertmanager webhook receiver on 127.0.0.1 that keeps every
// alert posted to it.
type webhook struct {
	srv *httptest.Server

	mu       sync.Mutex
	received []notification
	errs     []string
}

// webhookPayload is the part of Alertmanager's webhook body (version 4) the
// test reads.
type webhookPayload struct {
	Version  string `json:"version"`
	Receiver string `json:"receiver"`
	Alerts   []struct {
		Status      string            `json:"status"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"alerts"`
}

func startWebhook(t *testing.T) *webhook {
	t.Helper()
	w := &webhook{}
	w.srv = httptest.NewServer(http.HandlerFunc(w.serve))
	t.Cleanup(w.srv.Close)
	return w
}

func (w *webhook) serve(rw http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var p webhookPayload
	if err == nil {
		err = json.Unmarshal(body, &p)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil || r.Method != http.MethodPost {
		w.errs = append(w.errs, r.Method+" "+r.URL.Path+": "+string(body))
		http.Error(rw, "not an Alertmanager notification", http.StatusBadRequest)
		return
	}
	for _, a := range p.Alerts {
		w.received = append(w.received, notification{
			Path: r.URL.Path, Receiver: p.Receiver, Status: a.Status,
			Labels: a.Labels, Annotations: a.Annotations,
		})
	}
}

// notifications returns a copy of what arrived so far, and the requests that
// were not Alertmanager notifications.
func (w *webhook) notifications() ([]notification, []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]notification(nil), w.received...), append([]string(nil), w.errs...)
}
