#!/usr/bin/env bash
# Installs Dovecot 2.4 as Debian 13 (trixie) ships it, for tests/dovecot24.rs: a minimal trixie
# tree made by debootstrap with dovecot-core, dovecot-imapd and dovecot-pop3d, in
# /opt/chainfix-test/dovecot24 (CHAINFIX_DOVECOT24_ROOT overrides). Debian 12's own Dovecot is
# 2.3, and 2.4's binaries need trixie's libc, so the tests run doveconf, dovecot, doveadm and
# chainfix itself inside that tree with chroot(8); they listen on 127.0.0.1 like the rest.
# Nothing in the tree is started here, and the host's packages are untouched (apart from
# debootstrap itself). About a minute and 60 MB of downloads.
# Idempotent: a tree whose doveconf already reports 2.4 is kept. Runs as root (through sudo
# when not root). DEBIAN_MIRROR overrides the mirror (default http://deb.debian.org/debian).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    exec sudo --preserve-env=DEBIAN_FRONTEND,CHAINFIX_DOVECOT24_ROOT,DEBIAN_MIRROR bash "$0" "$@"
  fi
  echo "setup-dovecot24.sh: must run as root (and sudo is not available)" >&2
  exit 1
fi

root=${CHAINFIX_DOVECOT24_ROOT:-/opt/chainfix-test/dovecot24}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

if [ -x "$root/usr/bin/doveconf" ] && chroot "$root" /usr/sbin/dovecot --version | grep -q '^2\.4\.'; then
  echo "Dovecot $(chroot "$root" /usr/sbin/dovecot --version) in $root (kept)"
  exit 0
fi
if ! command -v debootstrap >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends debootstrap
fi
rm -rf "$root.partial"
mkdir -p "$(dirname "$root")"
# The packages' maintainer scripts create the users dovecot and dovenull inside the tree;
# no service starts (there is no init in a chroot).
debootstrap --variant=minbase --include=dovecot-core,dovecot-imapd,dovecot-pop3d \
  trixie "$root.partial" "$mirror" >"$(dirname "$root")/dovecot24-debootstrap.log" 2>&1 || {
  tail -20 "$(dirname "$root")/dovecot24-debootstrap.log" >&2
  exit 1
}
rm -rf "$root"
mv "$root.partial" "$root"
echo "Dovecot $(chroot "$root" /usr/sbin/dovecot --version) in $root"
