package integration

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/resumption-exporter/resumption_exporter/collector/history"
	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
	"github.com/resumption-exporter/resumption_exporter/probe"
)

const (
	firstSeen   = "tls_session_ticket_key_first_seen_timestamp_seconds"
	oldestSeen  = "tls_session_ticket_key_oldest_active_first_seen_timestamp_seconds"
	rotations   = "tls_session_ticket_key_rotations_observed"
	interval    = "tls_session_ticket_key_rotation_interval_seconds"
	keysActive  = "tls_session_ticket_keys_active"
	probeEvery  = 300 * time.Millisecond
	shortWindow = 1500 * time.Millisecond
)

// keyFile writes an nginx ticket key file (80 bytes: name, HMAC and AES
// keys) and returns the fingerprint of its 16-byte name.
func keyFile(t *testing.T, path string) uint64 {
	t.Helper()
	key := make([]byte, 80)
	rand.Read(key)
	if err := os.WriteFile(path, key, 0o600); err != nil {
		t.Fatal(err)
	}
	return probe.Fingerprint(key[:16])
}

// nginxWithKeys serves with two key files: the first encrypts, the second
// still decrypts, the way operators rotate.
func nginxWithKeys(t *testing.T, pki *testservers.PKI, current, previous string) *testservers.Server {
	t.Helper()
	testservers.Require(t, "nginx")
	return testservers.StartNginx(t, pki, fmt.Sprintf(
		"ssl_protocols TLSv1.2 TLSv1.3; ssl_session_ticket_key %s; ssl_session_ticket_key %s;", current, previous))
}

// nginxWithKeyFiles writes NAME.key (encrypts) and NAME-old.key (only
// decrypts) into dir and serves with them; fp is the encrypting key's.
func nginxWithKeyFiles(t *testing.T, pki *testservers.PKI, dir, name string) (srv *testservers.Server, cur, prev string, fp uint64) {
	t.Helper()
	cur, prev = filepath.Join(dir, name+".key"), filepath.Join(dir, name+"-old.key")
	keyFile(t, prev)
	fp = keyFile(t, cur)
	return nginxWithKeys(t, pki, cur, prev), cur, prev, fp
}

func shortHistory(r *runner, window time.Duration) {
	r.withHistory(history.Options{ActiveWindow: window})
}

// nginx whose key files the test rotates (new key first, old one kept,
// reload) every few seconds: each rotation changes the fingerprint, is
// counted, and its measured interval matches the real one within a probe
// interval; first-seen moves forward.
func TestNginxKeyRotation(t *testing.T) {
	pki := testservers.NewPKI(t)
	srv, cur, prev, fp := nginxWithKeyFiles(t, pki, t.TempDir(), "current")
	p := newRunner(t, pki, nil)
	shortHistory(p, shortWindow)

	const rotationsWanted = 3
	const rotateEvery = 3 * time.Second
	var rotatedAt []time.Time
	var lastFirstSeen float64
	for r := 0; r <= rotationsWanted; r++ {
		if r > 0 {
			os.Rename(cur, prev)
			fp = keyFile(t, cur)
			srv.Reload(t)
		}
		rotatedAt = append(rotatedAt, time.Now())
		for deadline := time.Now().Add(rotateEvery); time.Now().Before(deadline); time.Sleep(probeEvery) {
			o := p.probe(t, srv.Addr)
			if got := o.series[fingerprint]; got != float64(fp) {
				t.Fatalf("after %d rotations: fingerprint %v, want %d (the current key file's name)\n%s", r, got, fp, o)
			}
			if fs := o.series[firstSeen]; fs < lastFirstSeen {
				t.Fatalf("first seen went back from %v to %v", lastFirstSeen, fs)
			} else if fs > lastFirstSeen {
				if lastFirstSeen != 0 && r == 0 {
					t.Fatalf("first seen moved without a rotation")
				}
				lastFirstSeen = fs
			}
		}
	}
	// Let the last old key fall out of the active window.
	var o observation
	for end := time.Now().Add(2 * shortWindow); time.Now().Before(end); time.Sleep(probeEvery) {
		o = p.probe(t, srv.Addr)
	}
	o.expect(t, map[string]float64{rotations: rotationsWanted, keysActive: 1, fingerprint: float64(fp)})
	real := rotatedAt[rotationsWanted].Sub(rotatedAt[rotationsWanted-1])
	measured := time.Duration(o.series[interval] * float64(time.Second))
	if diff := (measured - real).Abs(); diff > probeEvery+500*time.Millisecond {
		t.Errorf("rotation interval %s, real %s: off by %s", measured, real, diff)
	}
	if o.series[oldestSeen] != o.series[firstSeen] {
		t.Errorf("after the old keys went inactive, oldest active first seen %v != newest %v", o.series[oldestSeen], o.series[firstSeen])
	}
	if want := float64(rotatedAt[rotationsWanted].Unix()); o.series[firstSeen] < want-1 {
		t.Errorf("first seen %v is before the last rotation at %v", o.series[firstSeen], want)
	}
}

// nginx with one fixed key file, probed many times: no rotation, ever.
func TestNginxFixedKey(t *testing.T) {
	pki := testservers.NewPKI(t)
	srv, _, _, fp := nginxWithKeyFiles(t, pki, t.TempDir(), "current")
	p := newRunner(t, pki, nil)
	shortHistory(p, 500*time.Millisecond)
	var first float64
	for i := 0; i < 12; i++ {
		o := p.probe(t, srv.Addr)
		o.expect(t, map[string]float64{fingerprint: float64(fp), rotations: 0, keysActive: 1, success: 1}, interval)
		if i == 0 {
			first = o.series[firstSeen]
		} else if o.series[firstSeen] != first {
			t.Fatalf("probe %d: first seen %v, was %v", i, o.series[firstSeen], first)
		}
		if i == 5 {
			srv.Reload(t) // a reload with the same key file is not a rotation
		}
		time.Sleep(probeEvery)
	}
}

// HAProxy in TCP mode round-robins over two nginx backends with different
// keys: two active keys, and no rotation however often the fingerprint of a
// single probe flips.
func TestBalancedBackendsAreNotRotation(t *testing.T) {
	testservers.Require(t, "haproxy")
	pki := testservers.NewPKI(t)
	dir := t.TempDir()
	var backends []string
	fps := map[float64]bool{}
	for _, name := range []string{"a", "b"} {
		srv, _, _, fp := nginxWithKeyFiles(t, pki, dir, name)
		fps[float64(fp)] = true
		backends = append(backends, srv.Addr)
	}
	lb := testservers.StartHAProxyTCP(t, backends...)
	p := newRunner(t, pki, nil)
	shortHistory(p, 3*time.Second)
	var o observation
	for i := 0; i < 15; i++ {
		o = p.probe(t, lb.Addr)
		if !fps[o.series[fingerprint]] {
			t.Fatalf("probe %d: fingerprint %v is neither backend's key\n%s", i, o.series[fingerprint], o)
		}
		if o.series[rotations] != 0 {
			t.Fatalf("probe %d: %v rotations reported behind a balancer\n%s", i, o.series[rotations], o)
		}
		time.Sleep(probeEvery)
	}
	o.expect(t, map[string]float64{keysActive: 2, rotations: 0}, interval)
	if len(o.result.KeyNames) != 2 {
		t.Logf("last probe saw %d key names (both backends are seen over several probes)", len(o.result.KeyNames))
	}
}
