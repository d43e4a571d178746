package testservers

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// DebianNginxSSL is the SSL part of Debian bookworm's stock
// /etc/nginx/nginx.conf (http level; also valid in a server block). nginx
// 1.22's built-in ssl_protocols lacks TLSv1.3, so without this line a server
// speaks TLS 1.2 at most. Session settings are nginx's defaults there:
// ssl_session_cache none (a session ID is sent but never resumed),
// ssl_session_timeout 5m, tickets on with a random key per (re)load.
const DebianNginxSSL = `ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3; # Dropping SSLv3, ref: POODLE
ssl_prefer_server_ciphers on;
`

// NginxServer returns a server block listening with TLS on 127.0.0.1:port,
// with the PKI's certificate and the given directives inside; StartNginx
// runs exactly one of these, StartNginxConf callers may combine several.
func NginxServer(pki *PKI, port int, directives string) string {
	return fmt.Sprintf(`server {
    listen 127.0.0.1:%d ssl;
    server_name %s;
    ssl_certificate %s;
    ssl_certificate_key %s;
    location / { return 200 "ok\n"; }
%s
}
`, port, ServerName, pki.CertFile, pki.KeyFile, indent(directives))
}

// StartNginx runs nginx with one TLS server on a free port of 127.0.0.1;
// serverDirectives go inside its server block (see NginxServer), for
// example "ssl_session_cache shared:SSL:1m;".
func StartNginx(t testing.TB, pki *PKI, serverDirectives string) *Server {
	t.Helper()
	return StartNginxConf(t, pki, func(port int) string {
		return NginxServer(pki, port, serverDirectives)
	})
}

// StartNginxConf runs nginx with an http block whose body httpBody returns
// for the port picked; one of its servers must listen on 127.0.0.1:port with
// the PKI's certificate (NginxServer writes one), since readiness is a TLS
// handshake there. The main context, events block and temporary paths are
// filled in; the master runs in the foreground with workers
// (`daemon off; master_process on;`), logging at level info to error.log in
// Server.Dir.
func StartNginxConf(t testing.TB, pki *PKI, httpBody func(port int) string) *Server {
	t.Helper()
	bin := LookPath(t, "nginx")
	dir := t.TempDir()
	return Start(t, Spec{
		Name:   "nginx",
		Binary: bin,
		Dir:    dir,
		Logs:   []string{"error.log"},
		Ready:  []ReadyCheck{TLSReady(pki.Pool)},
		Reload: reloadNginx,
		Config: func(port int) ([]string, string, error) {
			conf := filepath.Join(dir, "nginx.conf")
			if err := os.WriteFile(conf, []byte(nginxConf(bin, dir, httpBody(port))), 0o644); err != nil {
				return nil, "", err
			}
			// Directives given with -g must not be in the file too;
			// -e sends startup messages (before error_log is read) to
			// the same file instead of the compiled-in path.
			return []string{
				"-p", dir + "/",
				"-c", conf,
				"-e", filepath.Join(dir, "error.log"),
				"-g", fmt.Sprintf("daemon off; master_process on; pid %s; error_log %s info;",
					filepath.Join(dir, "nginx.pid"), filepath.Join(dir, "error.log")),
			}, conf, nil
		},
	})
}

// nginxConf is the whole configuration file around the caller's http body.
func nginxConf(bin, dir, httpBody string) string {
	var b strings.Builder
	if isRoot() {
		// Workers then read the same files as the master and write
		// temporary files into dir, which only root can enter.
		b.WriteString("user root;\n")
	}
	b.WriteString("worker_processes 1;\nevents { worker_connections 256; }\nhttp {\n")
	fmt.Fprintf(&b, "    access_log %s;\n", filepath.Join(dir, "access.log"))
	// Every temporary path defaults to /var/lib/nginx, which the master
	// creates at startup; keep them in dir so nothing outside is touched.
	for _, tp := range nginxTempPaths(bin) {
		fmt.Fprintf(&b, "    %s %s;\n", tp, filepath.Join(dir, strings.TrimSuffix(tp, "_temp_path")))
	}
	b.WriteString(indent(httpBody))
	b.WriteString("}\n")
	return b.String()
}

// nginxTempPaths lists the *_temp_path directives this nginx knows: the
// modules behind fastcgi, uwsgi and scgi can be compiled out (Debian's
// nginx-light flavour did), and an unknown directive is a fatal error.
func nginxTempPaths(bin string) []string {
	paths := []string{"client_body_temp_path", "proxy_temp_path"}
	// nginx -V prints its configure arguments on stderr.
	out, _ := exec.Command(bin, "-V").CombinedOutput()
	for _, m := range []string{"fastcgi", "uwsgi", "scgi"} {
		if !strings.Contains(string(out), "--without-http_"+m+"_module") {
			paths = append(paths, m+"_temp_path")
		}
	}
	return paths
}

// reloadNginx sends SIGHUP: the master re-reads nginx.conf (with the same -g
// directives), starts new workers and asks the old ones to finish; old
// workers close their listeners at once and retitle themselves "worker
// process is shutting down", so from then on only new workers accept. A
// configuration error leaves the old workers running, which fails the wait
// with the error log in the message.
func reloadNginx(t testing.TB, s *Server) {
	t.Helper()
	reloadBySignal(t, s, syscall.SIGHUP, func(pid int) bool {
		return strings.Contains(cmdline(pid), "shutting down")
	})
}

// indent prefixes every non-empty line with four spaces, so configuration
// written by tests reads well in Server.ConfigFile.
func indent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = "    " + l
		}
	}
	return strings.Join(lines, "\n") + "\n"
}
