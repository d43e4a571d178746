// Package wire owns every TLS byte the probe reads or writes: record
// framing (AppendRecords; FlightReader, which turns a peer's bytes, fed as
// they arrive, into handshake messages, alerts and protected records), one
// type per handshake message with Marshal and Parse on cryptobyte
// (ClientHello for TLS 1.2 and 1.3, ServerHello and HelloRetryRequest, both
// kinds of NewSessionTicket), alerts, the TLS 1.2 keys that finish a
// resumed handshake, and the decryption of a server's TLS 1.3
// application-epoch records, because the TLS 1.3 NewSessionTicket travels
// encrypted and crypto/tls keeps only part of it.
//
// Marshal returns a handshake message (type, length, body); only
// AppendRecords and the record protection write record headers. Parsers
// take the body, as FlightReader delivers it. testdata/ holds real
// servers' flights that the tests and fuzz targets read.
//
// The package opens no sockets. Every parser bounds what it allocates by
// the size of its input and names, in its errors, the part that was
// malformed.
package wire
