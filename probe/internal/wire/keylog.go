package wire

import (
	"bytes"
	"encoding/hex"
)

// Key log labels (NSS key log format) that TLS 1.3 connections write.
const (
	LabelServerTrafficSecret0 = "SERVER_TRAFFIC_SECRET_0"
	labelClientTrafficSecret0 = "CLIENT_TRAFFIC_SECRET_0"
	labelServerHandshake      = "SERVER_HANDSHAKE_TRAFFIC_SECRET"
	labelClientHandshake      = "CLIENT_HANDSHAKE_TRAFFIC_SECRET"
	LabelClientRandom         = "CLIENT_RANDOM" // TLS 1.2 master secret
)

// ParseKeyLog reads NSS key log lines ("LABEL <client_random> <secret>", both
// hex), as crypto/tls writes them to Config.KeyLogWriter, and returns each
// label's secret. It expects one connection's log: when a label repeats, the
// last line wins. Comments and lines that are not key log lines are skipped.
func ParseKeyLog(b []byte) map[string][]byte {
	secrets := map[string][]byte{}
	for line := range bytes.Lines(b) {
		fields := bytes.Fields(line)
		if len(fields) != 3 || fields[0][0] == '#' {
			continue
		}
		secret := make([]byte, hex.DecodedLen(len(fields[2])))
		if _, err := hex.Decode(secret, fields[2]); err != nil {
			continue
		}
		secrets[string(fields[0])] = secret
	}
	return secrets
}
