// Package e2e runs the whole monitoring path for real on 127.0.0.1: Debian's
// nginx with a fixed session-ticket key, the exporter binary started from a
// persisted key history, Debian's prometheus with the example scrape
// configuration and the mixin's rules, prometheus-alertmanager with the
// example routing, and a webhook receiver in the test. It holds tests only;
// with CI=true a missing program fails the run instead of skipping.
package e2e
