package integration

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resumption-exporter/resumption_exporter/collector/history"
	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
	"github.com/resumption-exporter/resumption_exporter/probe"
)

// The runbook's fixes for sessions resumed after more than a day, scaled
// down: the exporter's clock is moved two days ahead between two probes
// while the server's real clock moves agedWait, so a server that still
// resumes the first probe's session shows an accepted age above a day (the
// alert's condition). The fixes are the runbook's directives with a
// lifetime of 2 s instead of 1 h, which a bounded test can outwait.
const (
	agedWait = 3 * time.Second
	agedSkew = 2 * 24 * time.Hour
)

var (
	ageID   = "tls_session_id_accepted_max_age_seconds"
	age12   = `tls_session_ticket_accepted_max_age_seconds{version="TLS 1.2"}`
	age13   = `tls_session_ticket_accepted_max_age_seconds{version="TLS 1.3"}`
	ageAll  = []string{ageID, age12, age13}
	ageTick = []string{age12, age13}
)

// agedServer starts a server and returns its address and the operator's
// action between the two probes (nil: none).
type agedServer func(*testing.T, *testservers.PKI) (addr string, between func(*testing.T))

type ageFix struct {
	section, name string
	alert         []string // max-age series that must exceed a day with the problem
	problem       agedServer
	fixed         agedServer
	// bounds says the fix bounds the age and keeps resumption (a timeout,
	// a rotation): a third probe at once resumes the second's sessions and
	// shows their age. Without it the fix turns the mechanisms off, and the
	// second probe resumes nothing of them.
	bounds bool
}

// ageSupported is the tls_resumption_supported series of the mechanism a
// max-age series is about.
var ageSupported = map[string]string{ageID: sessionID, age12: ticket12, age13: psk}

func plain(start func(*testing.T, *testservers.PKI) string) agedServer {
	return func(t *testing.T, pki *testservers.PKI) (string, func(*testing.T)) { return start(t, pki), nil }
}

// TestRunbookResumableAge runs runbookAgeFixes.
func TestRunbookResumableAge(t *testing.T) {
	for _, f := range runbookAgeFixes() {
		t.Run(f.section+"/"+f.name, func(t *testing.T) {
			t.Run("problem", func(t *testing.T) {
				o, _ := agedProbe(t, f.problem)
				for _, s := range f.alert {
					if v, ok := o.series[s]; !ok || v <= day {
						t.Errorf("%s = %v (present %v), want above %d s\n%s", s, v, ok, day, o)
					}
				}
			})
			t.Run("fixed", func(t *testing.T) {
				o, again := agedProbe(t, f.fixed)
				for _, s := range f.alert {
					if v, ok := o.series[s]; ok && v > day {
						t.Errorf("%s = %v after the fix, want at most %d s or absent\n%s", s, v, day, o)
					}
				}
				if !f.bounds {
					for _, s := range f.alert {
						if v, ok := o.series[ageSupported[s]]; !ok || v != 0 {
							t.Errorf("%s = %v (present %v) after the fix, want 0: the fix turns it off\n%s", ageSupported[s], v, ok, o)
						}
					}
					return
				}
				// The fix still resumes a session younger than its bound,
				// and the series shows that session's age.
				o = again(t)
				for _, s := range f.alert {
					if v, ok := o.series[s]; !ok || v > agedWait.Seconds() {
						t.Errorf("%s = %v (present %v) on a probe at once, want the previous probe's session resumed, younger than %s\n%s", s, v, ok, agedWait, o)
					}
				}
			})
		})
	}
}

// agedProbe probes twice, agedWait apart in real time and agedSkew apart
// on the exporter's clock, and returns the second probe and a third one to
// make at once.
func agedProbe(t *testing.T, start agedServer) (observation, func(*testing.T) observation) {
	t.Helper()
	pki := testservers.NewPKI(t)
	addr, between := start(t, pki)
	var skew atomic.Int64
	r := newRunner(t, pki, nil)
	r.sessions = probe.NewSessions(probe.SessionsOptions{Now: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }})
	r.withHistory(history.Options{}) // a prober over the new session store
	if o := r.probe(t, addr); o.series[success] != 1 {
		t.Fatalf("first probe failed\n%s", o)
	}
	if between != nil {
		between(t)
	}
	time.Sleep(agedWait)
	skew.Store(int64(agedSkew))
	o := r.probe(t, addr)
	if o.series[success] != 1 {
		t.Fatalf("second probe failed\n%s", o)
	}
	return o, func(t *testing.T) observation {
		o := r.probe(t, addr)
		if o.series[success] != 1 {
			t.Fatalf("third probe failed\n%s", o)
		}
		return o
	}
}

func runbookAgeFixes() []ageFix {
	const (
		idSection     = "TLSSessionIDResumableAfterOneDay"
		ticketSection = "TLSSessionTicketResumableAfterOneDay"
		cache         = "ssl_session_cache shared:SSL:1m;"
	)
	apacheCache := func(t *testing.T) string {
		return "SSLSessionCache shmcb:" + filepath.Join(t.TempDir(), "scache") + "(512000)\n"
	}
	apache := func(global func(*testing.T) string) agedServer {
		return func(t *testing.T, pki *testservers.PKI) (string, func(*testing.T)) {
			testservers.Require(t, "apache2")
			srv := testservers.StartApacheConfig(t, pki, testservers.ApacheConfig{Global: global(t)})
			return srv.Addr, nil
		}
	}
	withCache := func(more string) func(*testing.T) string {
		return func(t *testing.T) string { return apacheCache(t) + more }
	}
	hap := func(cfg testservers.HAProxyConfig) agedServer { return plain(haproxyAt(cfg)) }
	return []ageFix{
		{section: idSection, name: "nginx ssl_session_timeout (2s)", alert: []string{ageID},
			problem: plain(nginxAt(cache)), fixed: plain(nginxAt(cache + " ssl_session_timeout 2s;")), bounds: true},
		{section: idSection, name: "nginx ssl_session_cache none", alert: []string{ageID},
			problem: plain(nginxAt(cache)), fixed: plain(nginxAt("ssl_session_cache none;"))},
		{section: idSection, name: "nginx ssl_session_cache off", alert: []string{ageID},
			problem: plain(nginxAt(cache)), fixed: plain(nginxAt("ssl_session_cache off;"))},
		{section: idSection, name: "Apache SSLSessionCacheTimeout (2)", alert: []string{ageID},
			problem: apache(withCache("")), fixed: apache(withCache("SSLSessionCacheTimeout 2\n")), bounds: true},
		{section: idSection, name: "Apache SSLSessionCache none", alert: []string{ageID},
			problem: apache(withCache("")), fixed: apache(func(*testing.T) string { return "SSLSessionCache none\n" })},
		{section: idSection, name: "HAProxy tune.ssl.lifetime (2s)", alert: []string{ageID},
			problem: hap(testservers.HAProxyConfig{}), fixed: hap(testservers.HAProxyConfig{Global: "tune.ssl.lifetime 2s"}), bounds: true},
		{section: idSection, name: "HAProxy tune.ssl.cachesize 0", alert: []string{ageID},
			problem: hap(testservers.HAProxyConfig{}), fixed: hap(testservers.HAProxyConfig{Global: "tune.ssl.cachesize 0"})},
		{section: ticketSection, name: "nginx ssl_session_timeout (2s)", alert: ageTick,
			problem: plain(nginxAt("")), fixed: plain(nginxAt("ssl_session_timeout 2s;")), bounds: true},
		{section: ticketSection, name: "nginx ssl_session_tickets off", alert: ageTick,
			problem: plain(nginxAt("")), fixed: plain(nginxAt("ssl_session_tickets off;"))},
		{section: ticketSection, name: "nginx one previous ssl_session_ticket_key, rotated twice", alert: ageTick,
			problem: nginxRotating(0), fixed: nginxRotating(2), bounds: true},
		{section: ticketSection, name: "Apache SSLSessionCacheTimeout (2)", alert: ageTick,
			problem: apache(withCache("")), fixed: apache(withCache("SSLSessionCacheTimeout 2\n")), bounds: true},
		{section: ticketSection, name: "HAProxy tune.ssl.lifetime (2s)", alert: ageTick,
			problem: hap(testservers.HAProxyConfig{}), fixed: hap(testservers.HAProxyConfig{Global: "tune.ssl.lifetime 2s"}), bounds: true},
		{section: ticketSection, name: "HAProxy tls-ticket-keys ring, set ssl tls-key twice", alert: ageTick,
			problem: haproxyRotating(0), fixed: haproxyRotating(2), bounds: true},
		{section: "Stateful TLS 1.3 tickets", name: "nginx tickets off: the session cache timeout (2s) bounds TLS 1.3", alert: []string{age13},
			problem: plain(nginxAt("ssl_session_tickets off; " + cache)), fixed: plain(nginxAt("ssl_session_tickets off; " + cache + " ssl_session_timeout 2s;")), bounds: true},
	}
}

// nginxRotating serves nginx with the runbook's two key files and rotates
// them the runbook's way `rotations` times between the probes.
func nginxRotating(rotations int) agedServer {
	return func(t *testing.T, pki *testservers.PKI) (string, func(*testing.T)) {
		dir := t.TempDir()
		cur, prev := filepath.Join(dir, "current.key"), filepath.Join(dir, "previous.key")
		writeRandKey(t, prev, "80")
		writeRandKey(t, cur, "80")
		srv := nginxWithKeys(t, pki, cur, prev)
		return srv.Addr, func(t *testing.T) {
			for range rotations {
				rotateNginxKeys(t, srv, cur, prev)
			}
		}
	}
}

// rotateNginxKeys is the runbook's rotation: the current key becomes the
// previous one, a new key from `openssl rand 80` the current one, reload.
func rotateNginxKeys(t *testing.T, srv *testservers.Server, cur, prev string) []byte {
	t.Helper()
	if err := os.Rename(cur, prev); err != nil {
		t.Fatal(err)
	}
	key := writeRandKey(t, cur, "80")
	srv.Reload(t)
	return key
}

// writeRandKey writes `openssl rand N` to path (via path.new and a rename,
// as the runbook does) and returns it.
func writeRandKey(t *testing.T, path, n string) []byte {
	t.Helper()
	key := opensslRand(t, n)
	if err := os.WriteFile(path+".new", key, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
	return key
}

// haproxyAdmin returns the runbook's `stats socket … level admin` line on a
// short path of its own (a unix socket path must fit in 108 bytes).
func haproxyAdmin(t *testing.T) (global, sock string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "hap-admin-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock = filepath.Join(dir, "admin.sock")
	return "stats socket " + sock + " mode 600 level admin", sock
}

// haproxyCLI sends one command to HAProxy's runtime API, as `echo CMD |
// socat stdio SOCK` does, and returns the answer.
func haproxyCLI(t *testing.T, sock, cmd string) string {
	t.Helper()
	c, err := net.DialTimeout("unix", sock, 2*time.Second)
	if err != nil {
		t.Fatalf("runtime API: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, cmd+"\n"); err != nil {
		t.Fatalf("runtime API: %v", err)
	}
	out, err := io.ReadAll(io.LimitReader(c, 64<<10))
	if err != nil {
		t.Fatalf("runtime API %q: %v (read %q)", cmd, err, out)
	}
	return string(out)
}

// haproxyRing serves HAProxy with a tls-ticket-keys file of three keys
// and the admin socket; setKey adds a key over the runtime API the
// runbook's way and returns it.
func haproxyRing(t *testing.T, pki *testservers.PKI) (srv *testservers.Server, keys [][]byte, setKey func(*testing.T) []byte) {
	t.Helper()
	global, sock := haproxyAdmin(t)
	var file []byte
	for range 3 {
		line := haproxyKeyLine(t)
		keys = append(keys, decodeKeyLine(t, line))
		file = append(file, line...)
	}
	path := writeKeyFile(t, "tls-ticket-keys", file)
	testservers.Require(t, "haproxy")
	srv = testservers.StartHAProxyConfig(t, pki, testservers.HAProxyConfig{Global: global, Bind: "tls-ticket-keys " + path})
	setKey = func(t *testing.T) []byte {
		if out := haproxyCLI(t, sock, "show tls-keys"); !strings.Contains(out, path) {
			t.Fatalf("show tls-keys does not list %s: %q", path, out)
		}
		line := bytes.TrimSpace(haproxyKeyLine(t))
		out := haproxyCLI(t, sock, "set ssl tls-key "+path+" "+string(line))
		if !strings.Contains(out, "TLS ticket key updated") {
			t.Fatalf("set ssl tls-key: %q", out)
		}
		return decodeKeyLine(t, line)
	}
	return srv, keys, setKey
}

func haproxyRotating(rotations int) agedServer {
	return func(t *testing.T, pki *testservers.PKI) (string, func(*testing.T)) {
		srv, _, setKey := haproxyRing(t, pki)
		return srv.Addr, func(t *testing.T) {
			for range rotations {
				setKey(t)
			}
		}
	}
}

// rotationFix is a rotation the runbook describes: the fingerprint the
// server shows before and after it.
type rotationFix struct {
	section, name string
	// start serves the server; before is the key name it must encrypt
	// under (nil: any), rotate does the runbook's rotation and returns the
	// key name expected after it (nil: any other than before's).
	start func(*testing.T, *testservers.PKI) (addr string, before []byte, rotate func(*testing.T) []byte)
}

// TestRunbookKeyRotation runs runbookRotations.
func TestRunbookKeyRotation(t *testing.T) {
	for _, f := range runbookRotations() {
		t.Run(f.section+"/"+f.name, func(t *testing.T) {
			pki := testservers.NewPKI(t)
			addr, before, rotate := f.start(t, pki)
			r := newRunner(t, pki, nil)
			o := r.probe(t, addr)
			fp, ok := o.series[fingerprint]
			if !ok || (before != nil && fp != float64(probe.Fingerprint(before))) {
				t.Fatalf("before the rotation: fingerprint %v (present %v), want %s\n%s", fp, ok, keyNameOf(before), o)
			}
			// Until the rotation the key stays.
			if again := r.probe(t, addr); again.series[fingerprint] != fp {
				t.Fatalf("without a rotation the fingerprint changed from %v to %v\n%s", fp, again.series[fingerprint], again)
			}
			after := rotate(t)
			o = r.probe(t, addr)
			got, ok := o.series[fingerprint]
			switch {
			case !ok:
				t.Errorf("after the rotation: no fingerprint\n%s", o)
			case after == nil && got == fp:
				t.Errorf("after the rotation: fingerprint still %v\n%s", got, o)
			case after != nil && got != float64(probe.Fingerprint(after)):
				t.Errorf("after the rotation: fingerprint %v, want %s's %d\n%s", got, keyNameOf(after), probe.Fingerprint(after), o)
			}
		})
	}
}

func keyNameOf(name []byte) string {
	if name == nil {
		return "any"
	}
	return fmt.Sprintf("%x", name)
}

func runbookRotations() []rotationFix {
	return []rotationFix{
		{section: "nginx", name: "key files rotated, reload", start: func(t *testing.T, pki *testservers.PKI) (string, []byte, func(*testing.T) []byte) {
			dir := t.TempDir()
			cur, prev := filepath.Join(dir, "current.key"), filepath.Join(dir, "previous.key")
			writeRandKey(t, prev, "80")
			key := writeRandKey(t, cur, "80")
			srv := nginxWithKeys(t, pki, cur, prev)
			return srv.Addr, key[:16], func(t *testing.T) []byte { return rotateNginxKeys(t, srv, cur, prev)[:16] }
		}},
		{section: "nginx", name: "no key file: a new key on reload", start: func(t *testing.T, pki *testservers.PKI) (string, []byte, func(*testing.T) []byte) {
			testservers.Require(t, "nginx")
			srv := testservers.StartNginx(t, pki, "ssl_protocols TLSv1.2 TLSv1.3;")
			return srv.Addr, nil, func(t *testing.T) []byte { srv.Reload(t); return nil }
		}},
		{section: "Apache httpd (mod_ssl)", name: "SSLSessionTicketKeyFile replaced, graceful restart", start: func(t *testing.T, pki *testservers.PKI) (string, []byte, func(*testing.T) []byte) {
			testservers.Require(t, "apache2")
			path := filepath.Join(t.TempDir(), "ticket.key")
			key := writeRandKey(t, path, "48")
			srv := testservers.StartApacheConfig(t, pki, testservers.ApacheConfig{Global: "SSLSessionTicketKeyFile " + path + "\n"})
			return srv.Addr, key[:16], func(t *testing.T) []byte {
				key := writeRandKey(t, path, "48")
				srv.Reload(t)
				return key[:16]
			}
		}},
		{section: "Apache httpd (mod_ssl)", name: "no key file: a new key on graceful restart", start: func(t *testing.T, pki *testservers.PKI) (string, []byte, func(*testing.T) []byte) {
			testservers.Require(t, "apache2")
			srv := testservers.StartApacheConfig(t, pki, testservers.ApacheConfig{})
			return srv.Addr, nil, func(t *testing.T) []byte { srv.Reload(t); return nil }
		}},
		{section: "HAProxy", name: "no tls-ticket-keys: a new key on reload", start: func(t *testing.T, pki *testservers.PKI) (string, []byte, func(*testing.T) []byte) {
			testservers.Require(t, "haproxy")
			srv := testservers.StartHAProxy(t, pki, "")
			return srv.Addr, nil, func(t *testing.T) []byte { srv.Reload(t); return nil }
		}},
		{section: "HAProxy", name: "tls-ticket-keys ring: penultimate key encrypts; set ssl tls-key", start: func(t *testing.T, pki *testservers.PKI) (string, []byte, func(*testing.T) []byte) {
			srv, keys, setKey := haproxyRing(t, pki)
			return srv.Addr, keys[1][:16], func(t *testing.T) []byte {
				setKey(t)
				return keys[2][:16] // the new key is the last; the one before it encrypts
			}
		}},
	}
}

// decodeKeyLine decodes one tls-ticket-keys line.
func decodeKeyLine(t *testing.T, line []byte) []byte {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(line)))
	if err != nil || len(key) != 80 {
		t.Fatalf("tls-ticket-keys line %q: %d bytes, %v", line, len(key), err)
	}
	return key
}

// keyPerServer is TLSSessionTicketKeySharedAcrossTargets' fix: two servers
// started with one key file show one fingerprint, with a key each two.
type keyPerServer struct {
	section, name string
	start         func(t *testing.T, pki *testservers.PKI, keyFile string) string
	keyBytes      string // `openssl rand N`
}

// TestRunbookKeyPerServer runs runbookKeyPerServer.
func TestRunbookKeyPerServer(t *testing.T) {
	for _, f := range runbookKeyPerServer() {
		t.Run(f.section+"/"+f.name, func(t *testing.T) {
			pki := testservers.NewPKI(t)
			shared := filepath.Join(t.TempDir(), "shared.key")
			writeRandKey(t, shared, f.keyBytes)
			own := func() string {
				p := filepath.Join(t.TempDir(), "own.key")
				writeRandKey(t, p, f.keyBytes)
				return p
			}
			fp := func(addr string) float64 {
				o := newRunner(t, pki, nil).probe(t, addr)
				v, ok := o.series[fingerprint]
				if !ok {
					t.Fatalf("%s: no fingerprint\n%s", addr, o)
				}
				return v
			}
			if a, b := fp(f.start(t, pki, shared)), fp(f.start(t, pki, shared)); a != b {
				t.Errorf("one key file: fingerprints %v and %v, want one (the alert's condition)", a, b)
			}
			if a, b := fp(f.start(t, pki, own())), fp(f.start(t, pki, own())); a == b {
				t.Errorf("a key file each: both fingerprints %v, want two", a)
			}
		})
	}
}

func runbookKeyPerServer() []keyPerServer {
	return []keyPerServer{
		{section: "TLSSessionTicketKeySharedAcrossTargets", name: "nginx ssl_session_ticket_key", keyBytes: "80",
			start: func(t *testing.T, pki *testservers.PKI, key string) string {
				return nginxAt("ssl_session_ticket_key "+key+";")(t, pki)
			}},
		{section: "TLSSessionTicketKeySharedAcrossTargets", name: "Apache SSLSessionTicketKeyFile", keyBytes: "48",
			start: func(t *testing.T, pki *testservers.PKI, key string) string {
				return apacheAt("SSLSessionTicketKeyFile "+key+"\n", "")(t, pki)
			}},
	}
}
