#!/usr/bin/env bash
# Installs the real DNS servers that tests/domain.rs runs on loopback (Debian bookworm):
#   - knot: the authoritative server (knotd) serving the test zones, which the tests sign
#     at run time with keys made at run time;
#   - ldnsutils: ldns-keygen and ldns-signzone, which make those keys and signatures (with an
#     explicit validity window, so a test can also serve a tampered signature);
#   - unbound: the validating resolver, trusting the test zone's key as its trust anchor.
# The packages' own services are not used: the tests start private instances on spare ports
# (policy-rc.d keeps apt from starting the system ones while installing). Idempotent.
# Runs as root (through sudo when not root).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    exec sudo --preserve-env=DEBIAN_FRONTEND bash "$0" "$@"
  fi
  echo "setup-dns.sh: must run as root (and sudo is not available)" >&2
  exit 1
fi

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'; }

need=()
for pkg in knot ldnsutils unbound; do
  installed "$pkg" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  # Keep apt from starting the system knot and unbound (they would take port 53).
  policy=/usr/sbin/policy-rc.d
  made_policy=no
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    made_policy=yes
  fi
  apt-get update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need[@]}"
  [ "$made_policy" = no ] || rm -f "$policy"
fi

for prog in knotd knotc ldns-keygen ldns-signzone unbound unbound-checkconf; do
  command -v "$prog" >/dev/null || { echo "setup-dns.sh: $prog missing after install" >&2; exit 1; }
done
