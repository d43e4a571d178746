package probe

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
)

// ticketsInClear makes a Go server put the session state in its tickets
// unencrypted, as Hebrok et al. found servers doing.
func ticketsInClear(c *tls.Config) {
	c.WrapSession = func(_ tls.ConnectionState, ss *tls.SessionState) ([]byte, error) { return ss.Bytes() }
	c.UnwrapSession = func(id []byte, _ tls.ConnectionState) (*tls.SessionState, error) { return parseOrNone(id) }
}

// parseOrNone is UnwrapSession's answer to a ticket: a session, or none
// (an error would end the connection, and Go calls it for empty tickets).
func parseOrNone(b []byte) (*tls.SessionState, error) {
	ss, err := tls.ParseSessionState(b)
	if err != nil {
		return nil, nil
	}
	return ss, nil
}

// ticketsFixedNonce makes a Go server encrypt its tickets with AES-CTR
// under one key and one fixed nonce: every ticket uses the same keystream.
func ticketsFixedNonce(t *testing.T) func(*tls.Config) {
	key := make([]byte, 16)
	rand.Read(key)
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	iv := make([]byte, aes.BlockSize) // the flaw
	crypt := func(in []byte) []byte {
		out := make([]byte, len(in))
		cipher.NewCTR(block, iv).XORKeyStream(out, in)
		return out
	}
	return func(c *tls.Config) {
		c.WrapSession = func(_ tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
			b, err := ss.Bytes()
			return crypt(b), err
		}
		c.UnwrapSession = func(id []byte, _ tls.ConnectionState) (*tls.SessionState, error) {
			return parseOrNone(crypt(id))
		}
	}
}

func weaknessVerdicts(ws []TicketWeakness) map[string]bool {
	out := map[string]bool{}
	for _, w := range ws {
		out[fmt.Sprintf("%s %s", VersionName(w.Version), w.Weakness)] = w.Found
	}
	return out
}

func TestTicketWeaknessGoServers(t *testing.T) {
	pki := testservers.NewPKI(t)
	tests := []struct {
		name   string
		server func(*tls.Config)
		want   map[string]bool
		absent []string
	}{
		{
			name:   "state in clear",
			server: ticketsInClear,
			want:   map[string]bool{"TLS 1.2 secret_in_clear": true, "TLS 1.3 secret_in_clear": true},
			absent: []string{"TLS 1.2 keystream_reuse", "TLS 1.3 keystream_reuse"},
		},
		{
			name:   "fixed AES-CTR nonce",
			server: ticketsFixedNonce(t),
			want: map[string]bool{"TLS 1.2 secret_in_clear": false, "TLS 1.3 secret_in_clear": false,
				"TLS 1.2 keystream_reuse": true, "TLS 1.3 keystream_reuse": true},
		},
		{
			name: "stock Go",
			want: map[string]bool{"TLS 1.2 secret_in_clear": false, "TLS 1.3 secret_in_clear": false,
				"TLS 1.2 keystream_reuse": false, "TLS 1.3 keystream_reuse": false},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := startGoServer(t, pki, tt.server)
			r := Run(context.Background(), addr, "test", testModule(t, pki, nil), nil, testLogger(t))
			if !r.Success {
				t.Fatal(r.Failure)
			}
			got := weaknessVerdicts(r.Risks.TicketWeaknesses)
			for k, want := range tt.want {
				if v, ok := got[k]; !ok || v != want {
					t.Errorf("%s = %v (present %v), want %v", k, v, ok, want)
				}
			}
			for _, k := range tt.absent {
				if v, ok := got[k]; ok {
					t.Errorf("%s = %v, want absent", k, v)
				}
			}
			for k, v := range got {
				if strings.HasSuffix(k, "zero_key") && v {
					t.Errorf("%s on a Go server", k)
				}
			}
		})
	}
}

// The secrets the weakness checks compare never reach the probe's log
// or its Result: the server records every session secret it issues, and
// neither the debug log nor the printed Result holds one, raw or in hex.
func TestWeaknessSecretsNotLogged(t *testing.T) {
	pki := testservers.NewPKI(t)
	var mu sync.Mutex
	var secrets [][]byte
	addr := startGoServer(t, pki, func(c *tls.Config) {
		ticketsInClear(c) // the ticket carries its secret: the log must not show the ticket either
		wrap := c.WrapSession
		c.WrapSession = func(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
			b, err := ss.Bytes()
			if err != nil {
				return nil, err
			}
			s, err := parseSessionPrefix(b, 1)
			if err != nil {
				return nil, err
			}
			mu.Lock()
			secrets = append(secrets, s.secret)
			mu.Unlock()
			return wrap(cs, ss)
		}
	})
	var log bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r := Run(context.Background(), addr, "test", testModule(t, pki, nil), nil, logger)
	if got := weaknessVerdicts(r.Risks.TicketWeaknesses); !got["TLS 1.3 secret_in_clear"] {
		t.Fatalf("weaknesses %v: the check did not see the secrets it must keep quiet", got)
	}
	out := log.String() + fmt.Sprintf("%+v %#v", r, r)
	mu.Lock()
	defer mu.Unlock()
	if len(secrets) < 2 {
		t.Fatalf("server issued %d sessions", len(secrets))
	}
	for _, s := range secrets {
		for _, form := range []string{hex.EncodeToString(s), strings.ToUpper(hex.EncodeToString(s)), string(s), hex.EncodeToString(s[:8])} {
			if strings.Contains(out, form) {
				t.Fatalf("a session secret appears in the debug output:\n%s", log.String())
			}
		}
	}
}
