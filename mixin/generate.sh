#!/bin/sh
# Renders the monitoring mixin into the repository's alerts/ and dashboards/.
#
#   mixin/generate.sh              rewrite the checked-in files
#   mixin/generate.sh OUTDIR       write OUTDIR/alerts/... and OUTDIR/dashboards/...
#   mixin/generate.sh --fast OUTDIR  the same with every `for:` and the rule
#                                  evaluation interval at 1s (end-to-end tests)
#
# Needs the jsonnet binary (Debian: apt-get install jsonnet; or
# go run github.com/google/go-jsonnet/cmd/jsonnet).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
fast=false
if [ "${1:-}" = "--fast" ]; then
	fast=true
	shift
	if [ $# -ne 1 ]; then
		echo "usage: $0 --fast OUTDIR" >&2
		exit 2
	fi
fi
out=${1:-$here/..}
if [ $# -gt 1 ]; then
	echo "usage: $0 [--fast] [OUTDIR]" >&2
	exit 2
fi
JSONNET=${JSONNET:-jsonnet}

mkdir -p "$out/alerts" "$out/dashboards"
# -m writes one file per top-level key; -S writes the strings as they are.
"$JSONNET" -J "$here" -S -m "$out" --tla-code "fast=$fast" "$here/render.jsonnet" >/dev/null
