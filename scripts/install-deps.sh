#!/usr/bin/env bash
# Installs Debian packages for the tests (run as root by scripts/test.sh with
# the packages missing), without letting apt start their system services:
# the tests run their own nginx, apache2 and haproxy on 127.0.0.1 and need
# nothing listening on 80/443.
#
#   scripts/install-deps.sh PACKAGE...
#
# Services are held back by a policy-rc.d that denies every start (exit
# 101). It exists only while apt runs: left behind, it would keep every
# later service start on this machine from happening. A policy-rc.d that was
# there before is left as it is.
#
# Environment, for the test of this script (scripts/installdeps_test.go):
#   POLICY_RC_D  the policy file (default /usr/sbin/policy-rc.d)
#   APT_GET      the apt-get to run (default apt-get)
set -euo pipefail

if (($# == 0)); then
	echo "usage: $0 PACKAGE..." >&2
	exit 2
fi
policy=${POLICY_RC_D:-/usr/sbin/policy-rc.d}
apt_get=${APT_GET:-apt-get}

if [[ ! -e $policy && ! -L $policy ]]; then
	remove_policy() { rm -f -- "$policy"; }
	trap remove_policy EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	printf '#!/bin/sh\n# written by resumption_exporter scripts/install-deps.sh for one apt run\nexit 101\n' >"$policy"
	chmod 755 "$policy"
fi

echo "install-deps.sh: installing $*"
# Postfix's postinst asks what kind of mail system this is; the tests bring
# their own main.cf, so none.
if [[ " $* " == *" postfix "* ]] && command -v debconf-set-selections >/dev/null; then
	echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
fi
"$apt_get" update
DEBIAN_FRONTEND=noninteractive "$apt_get" install -y --no-install-recommends "$@"
