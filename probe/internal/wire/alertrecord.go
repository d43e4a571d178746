package wire

// Protected alerts a client sends on a connection crypto/tls completed:
// crypto/tls sends no fatal alert on request (Conn.Close and CloseWrite send
// only close_notify), so a client that must end a connection with one writes
// the record itself, under the traffic keys crypto/tls logged
// (Config.KeyLogWriter).

// AlertInternalError is internal_error(80): the client failed for a reason
// of its own, not the peer's protocol behaviour.
const AlertInternalError = alertInternalError

// LabelClientTrafficSecret0 is the key log label of a TLS 1.3 connection's
// first client application traffic secret.
const LabelClientTrafficSecret0 = labelClientTrafficSecret0

// ClientAlert12 returns alert a as the client's record number seq of a
// TLS 1.2 connection on an AEAD suite, protected under the client write key
// derived from the master secret and the hello randoms (RFC 5246 §6.3).
// After a full handshake the client's Finished was record 0 of its epoch, so
// the next record is seq 1.
func ClientAlert12(suite uint16, master, clientRandom, serverRandom []byte, seq uint64, a Alert) ([]byte, error) {
	k, err := NewKeys12(suite, master, clientRandom, serverRandom)
	if err != nil {
		return nil, err
	}
	k.client.seq = seq
	return k.client.Seal(nil, RecordAlert, a.Marshal()), nil
}

// ClientAlert13 returns alert a as the client's record number seq under a
// TLS 1.3 client application traffic secret (RFC 8446 §5.2: an alert
// record of the application epoch is protected like application data). A
// client that has written no application data sends it as seq 0.
func ClientAlert13(suite uint16, clientTrafficSecret []byte, seq uint64, a Alert) ([]byte, error) {
	s, err := NewSealer13(suite, clientTrafficSecret)
	if err != nil {
		return nil, err
	}
	s.p.seq = seq
	return s.Seal(nil, RecordAlert, a.Marshal())
}
