package testservers

import (
	"crypto/rand"
	"os"
	"testing"
)

// WriteNginxTicketKey writes a random 80-byte nginx ssl_session_ticket_key
// file (key name, HMAC and AES keys) to path, mode 0600, and returns the
// 16-byte key name that starts every ticket encrypted under it.
func WriteNginxTicketKey(t testing.TB, path string) []byte {
	t.Helper()
	key := make([]byte, 80)
	rand.Read(key)
	if err := os.WriteFile(path, key, 0o600); err != nil {
		t.Fatal(err)
	}
	return key[:16]
}
