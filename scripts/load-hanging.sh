#!/usr/bin/env bash
# Loopback load test: LOAD_PROBES (default 2000) concurrent probes of
# hanging servers, with and without the exporter's limits; prints the
# exporter's RSS, descriptors, goroutines and healthy-probe latency. It
# starts everything on 127.0.0.1 and stops it by PID; see load_test.go.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec go test -tags load -count=1 -run '^TestLoadHanging$' -v -timeout 10m .
