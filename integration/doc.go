// Package integration probes Debian's real TLS servers (nginx, Apache,
// HAProxy, openssl s_server), started on 127.0.0.1 by the tests, and asserts
// the exact metrics the exporter publishes for each configuration. It holds
// tests only; with CI=true a missing server fails the run instead of
// skipping.
package integration
