#!/usr/bin/env bash
# Installs the real HTTPS server tests/mtasts.rs runs on loopback (Debian bookworm): nginx
# (nginx-light: core, http_ssl, rewrite) serving the MTA-STS policy with a test CA's
# certificate. The tests start private instances (`nginx -c FILE -p DIR`, their own
# configuration, pid and log files in a temporary directory, on 127.0.0.1 at a spare port);
# the system-wide service is never started: when no policy-rc.d forbids starting services
# during the install, a temporary one does.
# Idempotent: an nginx already on PATH or in /usr/sbin is kept. Runs as root (through sudo when
# not root).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    exec sudo --preserve-env=DEBIAN_FRONTEND bash "$0" "$@"
  fi
  echo "setup-https.sh: must run as root (and sudo is not available)" >&2
  exit 1
fi

if [ ! -x /usr/sbin/nginx ]; then
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 0755 /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends nginx-light
fi
/usr/sbin/nginx -v
