package testservers

import (
	"os"
	"path/filepath"
	"testing"
)

// serviceDir returns a fresh directory that the unprivileged users of
// servers that drop root (postfix, dovecot, postgres) can traverse:
// t.TempDir's parent is private to the test's user. It is removed when the
// test ends.
func serviceDir(t testing.TB, name string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "resumption-exporter-"+name+"-")
	if err != nil {
		t.Fatalf("testservers: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatalf("testservers: %v", err)
	}
	return dir
}

// copyKeyPair copies the server certificate and key into dir, owned by uid
// and gid when those are not -1 (a server that reads them after dropping
// root, or that insists on owning its key, as PostgreSQL does).
func copyKeyPair(pki *PKI, dir string, uid, gid int) (cert, key string, err error) {
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for _, f := range [][2]string{{pki.CertFile, cert}, {pki.KeyFile, key}} {
		b, err := os.ReadFile(f[0])
		if err != nil {
			return "", "", err
		}
		if err := os.WriteFile(f[1], b, 0o600); err != nil {
			return "", "", err
		}
		if err := os.Chown(f[1], uid, gid); err != nil {
			return "", "", err
		}
	}
	return cert, key, nil
}
