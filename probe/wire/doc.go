// Package wire reads and writes the few TLS messages the probe needs to see
// on the wire: records, handshake messages, the ServerHello, both kinds of
// NewSessionTicket, alerts, and a TLS 1.2 ClientHello for resumption offers
// that crypto/tls cannot make. It also decrypts the server's TLS 1.3
// application-epoch records, because the TLS 1.3 NewSessionTicket travels
// encrypted and crypto/tls keeps only part of it.
//
// Everything here works on bytes already captured: the package opens no
// sockets. Every parser bounds what it allocates by the size of its input
// and names, in its errors, the part that was malformed.
package wire
