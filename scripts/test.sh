#!/usr/bin/env bash
# The project's test command: installs the Debian servers the integration
# tests run (when root), then vets, checks formatting and runs every test
# with the race detector. CI runs it through .ci/run with CI=true, which turns
# tests that would skip for a missing server into failures.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Debian packages the tests use: the TLS servers probed by the integration
# tests (the STARTTLS ones too: Postfix, Dovecot, vsftpd, PostgreSQL, slapd,
# Prosody; and GnuTLS's gnutls-serv, in a network namespace set up with
# iproute2's ip), promtool (prometheus) and amtool
# (prometheus-alertmanager) for the alert rules, jsonnet for the dashboards,
# chromium for the landing-page test in a real browser, and the CA bundle.
# As root, scripts/install-deps.sh installs the missing ones without
# starting their services.
packages=(nginx apache2 haproxy openssl prometheus prometheus-alertmanager jsonnet chromium ca-certificates
	postfix dovecot-imapd dovecot-pop3d vsftpd postgresql slapd prosody gnutls-bin iproute2)

installed() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

missing=()
if command -v dpkg-query >/dev/null; then
	for p in "${packages[@]}"; do
		installed "$p" || missing+=("$p")
	done
else
	echo "test.sh: not a Debian system; cannot check for: ${packages[*]}" >&2
fi

if ((${#missing[@]} > 0)); then
	if [[ $(id -u) -eq 0 ]]; then
		scripts/install-deps.sh "${missing[@]}"
	else
		echo "test.sh: missing Debian packages: ${missing[*]}" >&2
		echo "test.sh: install them with: sudo apt-get install --no-install-recommends ${missing[*]}" >&2
		echo "test.sh: tests needing them will skip${CI:+ (or fail, since CI=$CI)}" >&2
	fi
fi

echo "test.sh: go vet"
go vet ./...
# load_test.go (scripts/load-hanging.sh) builds only with -tags load: vet it
# too, so that it cannot stop compiling unnoticed.
go vet -tags load .

echo "test.sh: gofmt"
# Every Go file but testdata (fixtures may be unformatted on purpose); find
# rather than git, so that an exported tree without .git works too.
unformatted=$(find . -name '*.go' -not -path '*/testdata/*' -not -path './.git/*' -not -path './vendor/*' -print0 |
	xargs -0 -r gofmt -l)
if [[ -n $unformatted ]]; then
	echo "test.sh: files not formatted with gofmt:" >&2
	echo "$unformatted" >&2
	exit 1
fi

echo "test.sh: bash -n bench/run"
# The benchmark script is not run here (it takes minutes); its Go parts are
# compiled and its proxy tested by go test below.
bash -n bench/run

# The race detector needs cgo (and so a C compiler).
race=(-race)
if [[ $(go env CGO_ENABLED) != 1 ]] || ! command -v "$(go env CC)" >/dev/null; then
	echo "test.sh: cgo or a C compiler is unavailable; running without -race" >&2
	race=()
fi

echo "test.sh: go test ${race[*]} ./... (and the examples/probecrd module)"
# examples/probecrd is a module of its own, so that the Kubernetes types it
# checks the Probe resource against stay out of the exporter's go.mod.
if ! go test "${race[@]}" -count=1 -timeout 40m ./... ||
	! (cd examples/probecrd && go test -count=1 -timeout 10m ./...); then
	echo "test.sh: FAIL (go test)"
	exit 1
fi

# A short run of every fuzz target beyond its seed corpus (which go test has
# just run): FUZZTIME each, 10s unless set. A crash is written under the
# package's testdata/fuzz/ and fails the run.
fuzztime=${FUZZTIME:-10s}
fuzzlog=$(mktemp)
# corpus_size counts the inputs in a fuzz target's corpus directory, 0 when
# there is none yet.
corpus_size() {
	local inputs=()
	[[ -d $1 ]] && inputs=("$1"/*)
	echo "${#inputs[@]}"
}
trap 'rm -f "$fuzzlog"' EXIT
echo "test.sh: fuzzing every target for $fuzztime"
mapfile -t fuzzfiles < <(grep -rl --include='*_test.go' --exclude-dir=testdata --exclude-dir=.git '^func Fuzz' . | sort)
for file in "${fuzzfiles[@]}"; do
	[[ $file == ./examples/* ]] && continue # other modules
	for name in $(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$file"); do
		dir=$(dirname "$file")
		echo "test.sh: fuzz $name ($dir)"
		corpus="$dir/testdata/fuzz/$name"
		before=$(corpus_size "$corpus")
		if go test -run '^$' -fuzz "^$name\$" -fuzztime "$fuzztime" "$dir" >"$fuzzlog" 2>&1; then
			rc=0
		else
			rc=$?
		fi
		cat "$fuzzlog"
		if ((rc == 0)); then
			continue
		fi
		if grep -qx '    context deadline exceeded' "$fuzzlog" && (($(corpus_size "$corpus") == before)); then
			# Go's fuzz coordinator can report its own -fuzztime deadline
			# as a failure (go.dev/issue/75804, unfixed in Go 1.26): no
			# input failed and none was written. A real failure writes one.
			echo "test.sh: fuzz $name: the -fuzztime deadline was reported as a failure with no failing input (go.dev/issue/75804); not a finding"
			continue
		fi
		echo "test.sh: FAIL (fuzz $name)"
		exit 1
	done
done
echo "test.sh: PASS"
