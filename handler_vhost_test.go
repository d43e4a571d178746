package main

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"net/http"
	"testing"
)

// Virtual hosts on one address, told apart only by server_name, with ticket
// keys of their own keep one key history each: a probe of one name never
// shows the other's key as active, nor its sightings as rotations; the same
// name probed again continues its own history.
func TestProbeServerNameKeepsOwnKeyHistory(t *testing.T) {
	_, srv := newTestExporter(t, options{})
	// Each name's tickets start with a 16-byte key name of its own, as
	// OpenSSL's do; a ticket under another name's key is not resumed.
	keyName := func(serverName string) []byte { h := sha256.Sum256([]byte(serverName)); return h[:16] }
	addr := startTLSServer(t, func(c *tls.Config) {
		c.WrapSession = func(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
			blob, err := c.EncryptTicket(cs, ss)
			return append(keyName(cs.ServerName), blob...), err
		}
		c.UnwrapSession = func(identity []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
			name := keyName(cs.ServerName)
			if !bytes.HasPrefix(identity, name) {
				return nil, nil
			}
			return c.DecryptTicket(identity[len(name):], cs)
		}
	})
	fingerprints := map[string]float64{}
	for i, name := range []string{"vhost-a.example", "vhost-b.example", "vhost-a.example", "vhost-b.example"} {
		code, body := get(t, srv.URL+"/probe?module=insecure&target="+addr+"&server_name="+name, nil)
		mfs := parseMetrics(t, body)
		if v, _ := value(t, mfs, "probe_success", nil); code != http.StatusOK || v != 1 {
			t.Fatalf("probe %d (%s): status %d, probe_success %v", i, name, code, v)
		}
		fp, ok := value(t, mfs, "tls_session_ticket_key_fingerprint", nil)
		if !ok {
			t.Fatalf("probe %d (%s): no key fingerprint", i, name)
		}
		if prev, seen := fingerprints[name]; seen && prev != fp {
			t.Errorf("probe %d (%s): fingerprint %v, the earlier probe of that name saw %v", i, name, fp, prev)
		}
		fingerprints[name] = fp
		if active, _ := value(t, mfs, "tls_session_ticket_keys_active", nil); active != 1 {
			t.Errorf("probe %d (%s): %v keys active, want 1 (its own)", i, name, active)
		}
		if rot, _ := value(t, mfs, "tls_session_ticket_key_rotations_observed", nil); rot != 0 {
			t.Errorf("probe %d (%s): %v rotations observed, want 0", i, name, rot)
		}
	}
	if fingerprints["vhost-a.example"] == fingerprints["vhost-b.example"] {
		t.Errorf("both names showed key %v; the server gives each its own", fingerprints["vhost-a.example"])
	}
}
