package testservers

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// DebianApacheSSLConf is what Debian bookworm's stock
// /etc/apache2/mods-available/ssl.conf sets, minus the entropy, passphrase and
// MIME lines that do not affect TLS. It is server-wide configuration
// (SSLSessionCache is not allowed in a virtual host): pass it as
// ApacheConfig.Global. ${APACHE_RUN_DIR} is defined as a directory inside
// Server.Dir.
//
// Debian's file says of tickets, above the last line: "Warning: Session
// Tickets require regular reloading of the server! Make sure you do this
// (e.g. via logrotate) before changing this setting!" — without
// SSLSessionTicketKeyFile, the ticket key is random and changes only when
// the server (gracefully) restarts. So a stock Apache resumes by session ID
// only, from a 512000-byte shmcb cache, for 300 s.
const DebianApacheSSLConf = `SSLSessionCache     shmcb:${APACHE_RUN_DIR}/ssl_scache(512000)
SSLSessionCacheTimeout  300
SSLCipherSuite HIGH:!aNULL
SSLProtocol all -SSLv3
SSLSessionTickets off
`

// apacheModuleDir is where Debian's apache2-bin installs modules.
const apacheModuleDir = "/usr/lib/apache2/modules"

// ApacheConfig is what a test adds to the generated apache2.conf.
type ApacheConfig struct {
	// Global goes at server level, before the virtual host:
	// SSLSessionCache, DebianApacheSSLConf, SSLSessionTicketKeyFile (also
	// valid in the virtual host), …
	Global string
	// VirtualHost goes inside the one <VirtualHost 127.0.0.1:PORT>, after
	// SSLEngine and the certificate.
	VirtualHost string
	// OtherHosts are more name-based TLS virtual hosts on the same port,
	// after the first: each maps its ServerName to its directives (such as
	// its own SSLSessionTicketKeyFile); they serve the same certificate.
	OtherHosts map[string]string
}

// StartApache runs apache2 with a self-contained configuration (no part of
// /etc/apache2 is read) and one TLS virtual host on a free port of
// 127.0.0.1 holding vhostDirectives.
func StartApache(t testing.TB, pki *PKI, vhostDirectives string) *Server {
	t.Helper()
	return StartApacheConfig(t, pki, ApacheConfig{VirtualHost: vhostDirectives})
}

// StartApacheConfig is StartApache with server-level directives too. The
// server runs as `apache2 -d DIR -f DIR/apache2.conf -DFOREGROUND` with the
// event MPM; as root its children run as www-data (Apache refuses to serve
// as root), and only the parent, still root, reads the key and certificate.
func StartApacheConfig(t testing.TB, pki *PKI, cfg ApacheConfig) *Server {
	t.Helper()
	bin := LookPath(t, "apache2")
	dir := t.TempDir()
	for _, d := range []string{"run", "htdocs"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatalf("testservers: %v", err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "htdocs", "index.html"), []byte("ok\n"), 0o644); err != nil {
		t.Fatalf("testservers: %v", err)
	}
	if isRoot() {
		// www-data children serve htdocs, so they must be able to walk
		// down to it: t.TempDir() and its parent are created 0700.
		for _, d := range []string{filepath.Dir(dir), dir} {
			if err := os.Chmod(d, 0o711); err != nil {
				t.Fatalf("testservers: %v", err)
			}
		}
	}
	return Start(t, Spec{
		Name:   "apache2",
		Binary: bin,
		Dir:    dir,
		Logs:   []string{"error.log", "access.log"},
		Ready:  []ReadyCheck{TLSReady(pki.Pool)},
		Reload: reloadApache,
		Config: func(port int) ([]string, string, error) {
			conf := filepath.Join(dir, "apache2.conf")
			if err := os.WriteFile(conf, []byte(apacheConf(dir, port, pki, cfg)), 0o644); err != nil {
				return nil, "", err
			}
			return []string{"-d", dir, "-f", conf, "-DFOREGROUND"}, conf, nil
		},
	})
}

func apacheConf(dir string, port int, pki *PKI, cfg ApacheConfig) string {
	var b strings.Builder
	fmt.Fprintf(&b, "ServerRoot %q\n", dir)
	fmt.Fprintf(&b, "Define APACHE_RUN_DIR %q\n", filepath.Join(dir, "run"))
	fmt.Fprintf(&b, "DefaultRuntimeDir %q\n", filepath.Join(dir, "run"))
	fmt.Fprintf(&b, "PidFile %q\n", filepath.Join(dir, "apache2.pid"))
	// The shared modules a TLS virtual host needs; mpm_event is Debian's
	// default MPM, authz_core provides `Require` and dir serves index.html for /.
	for _, m := range []string{"mpm_event", "authz_core", "dir", "socache_shmcb", "ssl"} {
		fmt.Fprintf(&b, "LoadModule %s_module %s/mod_%s.so\n", m, apacheModuleDir, m)
	}
	if isRoot() {
		b.WriteString("User www-data\nGroup www-data\n")
	}
	fmt.Fprintf(&b, "ServerName %s\n", ServerName)
	fmt.Fprintf(&b, "Listen 127.0.0.1:%d https\n", port)
	fmt.Fprintf(&b, "ErrorLog %q\nLogLevel info\n", filepath.Join(dir, "error.log"))
	fmt.Fprintf(&b, "LogFormat \"%%h %%t \\\"%%r\\\" %%>s %%{SSL_PROTOCOL}x resumed=%%{SSL_SESSION_RESUMED}x\" tls\n")
	fmt.Fprintf(&b, "CustomLog %q tls\n", filepath.Join(dir, "access.log"))
	// One child to start with keeps reloads quick to observe; Apache adds
	// children under load as usual.
	b.WriteString("StartServers 1\nMinSpareThreads 5\nMaxSpareThreads 50\nThreadsPerChild 25\n")
	b.WriteString("SSLPassPhraseDialog builtin\n")
	b.WriteString(cfg.Global)
	b.WriteString("\n")
	apacheVirtualHost(&b, dir, port, pki, ServerName, cfg.VirtualHost)
	for _, name := range slices.Sorted(maps.Keys(cfg.OtherHosts)) {
		apacheVirtualHost(&b, dir, port, pki, name, cfg.OtherHosts[name])
	}
	return b.String()
}

func apacheVirtualHost(b *strings.Builder, dir string, port int, pki *PKI, name, directives string) {
	fmt.Fprintf(b, "<VirtualHost 127.0.0.1:%d>\n", port)
	fmt.Fprintf(b, "    ServerName %s\n", name)
	fmt.Fprintf(b, "    DocumentRoot %q\n", filepath.Join(dir, "htdocs"))
	fmt.Fprintf(b, "    <Directory %q>\n        Require all granted\n    </Directory>\n", filepath.Join(dir, "htdocs"))
	b.WriteString("    SSLEngine on\n")
	fmt.Fprintf(b, "    SSLCertificateFile %q\n", pki.CertFile)
	fmt.Fprintf(b, "    SSLCertificateKeyFile %q\n", pki.KeyFile)
	b.WriteString(indent(directives))
	b.WriteString("</VirtualHost>\n")
}

// reloadApache sends SIGUSR1, Apache's graceful restart: the parent re-reads
// the configuration (making new SSL contexts, hence new ticket keys when no
// key file is set) and starts a new generation of children; old children
// finish their connections and exit. The wait ends when all old children
// are gone, because until then an old child may still accept a connection.
func reloadApache(t testing.TB, s *Server) {
	t.Helper()
	reloadBySignal(t, s, syscall.SIGUSR1, nil)
}
