package testservers

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"

	"github.com/resumption-exporter/resumption_exporter/probe/starttls"
)

// postgresBin finds a PostgreSQL server binary (postgres, initdb) in
// Debian's versioned directories, newest first, then in $PATH.
func postgresBin(name string) (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return pgMajor(b) - pgMajor(a) })
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return lookPath(name)
}

func pgMajor(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// StartPostgres initialises a database cluster in a fresh directory (initdb,
// as the postgres user, with --auth=reject so that no client can log in) and
// runs the server in the foreground as postgres (through setpriv, which
// execs it: the PID is the postmaster's) with ssl=on and the test
// certificate, listening on 127.0.0.1:PORT and a Unix socket in its
// directory. args are more "-c name=value" pairs. It logs connections to its
// stderr (output.log). Must run as root.
func StartPostgres(t testing.TB, pki *PKI, args ...string) *Server {
	t.Helper()
	requireRoot(t, "PostgreSQL")
	postgres, err := postgresBin("postgres")
	if err != nil {
		Require(t, "postgres")
	}
	initdb, err := postgresBin("initdb")
	if err != nil {
		Require(t, "initdb")
	}
	setpriv := LookPath(t, "setpriv")
	pg, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("testservers: the postgres user: %v", err)
	}
	uid, _ := strconv.Atoi(pg.Uid)
	gid, _ := strconv.Atoi(pg.Gid)
	dir := serviceDir(t, "postgres")
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatalf("testservers: %v", err)
	}
	data := filepath.Join(dir, "data")
	spec := Spec{
		Name:   "postgres",
		Binary: setpriv,
		Dir:    dir,
		Ready:  []ReadyCheck{StartTLSReady(starttls.Postgres, pki.Pool)},
		Config: func(port int) ([]string, string, error) {
			cert, key, err := copyKeyPair(pki, dir, uid, gid)
			if err != nil {
				return nil, "", err
			}
			if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); err != nil {
				cmd := exec.Command(initdb, "-D", data, "--auth=reject", "-U", "postgres", "--no-sync")
				cmd.Dir = dir
				cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
				if out, err := cmd.CombinedOutput(); err != nil {
					return nil, "", fmt.Errorf("initdb: %v\n%s", err, out)
				}
			}
			argv := []string{"--reuid", pg.Uid, "--regid", pg.Gid, "--init-groups", "--",
				postgres, "-D", data,
				"-c", "listen_addresses=127.0.0.1",
				"-c", "port=" + strconv.Itoa(port),
				"-k", dir,
				"-c", "ssl=on",
				"-c", "ssl_cert_file=" + cert,
				"-c", "ssl_key_file=" + key,
				"-c", "log_connections=on",
			}
			for _, a := range args {
				argv = append(argv, "-c", a)
			}
			return argv, filepath.Join(data, "postgresql.conf"), nil
		},
	}
	return Start(t, spec)
}
