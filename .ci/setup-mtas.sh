#!/usr/bin/env bash
# Installs the real MTAs that tests/mta.rs runs on loopback (Debian bookworm):
#   - Postfix from apt (debconf "No configuration": nothing is set up or started system-wide),
#     plus openssl and libidn12 (the one library Exim needs beyond Postfix's dependencies);
#   - Dovecot 2.3 from apt (dovecot-imapd, dovecot-pop3d; they create the dovecot and dovenull
#     users). The tests run private instances (`dovecot -c FILE`) on spare loopback ports; a
#     system-wide Dovecot the package may have started is not used;
#   - Exim (exim4-daemon-light) only *extracted* into /opt/chainfix-test/exim, because Debian's
#     exim4 and postfix packages conflict (both provide mail-transport-agent). The tests run
#     /opt/chainfix-test/exim/usr/sbin/exim4 with a private -C configuration;
#   - the Debian-exim system user and group that Exim's binary has compiled in;
#   - exim4-config (Debian's update-exim4.conf and its conf.d/template) extracted into
#     /opt/chainfix-test/exim4-config, which tests/deploy_exim.rs runs in a private root to
#     check the Exim deployment instructions in both Debian layouts.
# Idempotent: what is already in place is kept. Runs as root (through sudo when not root).
set -euo pipefail

EXIM_ROOT=/opt/chainfix-test/exim
EXIM_BIN=$EXIM_ROOT/usr/sbin/exim4
EXIM_CONFIG_ROOT=/opt/chainfix-test/exim4-config
export DEBIAN_FRONTEND=noninteractive

if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    exec sudo --preserve-env=DEBIAN_FRONTEND bash "$0" "$@"
  fi
  echo "setup-mtas.sh: must run as root (and sudo is not available)" >&2
  exit 1
fi

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'; }

need=()
for pkg in postfix openssl libidn12 dovecot-imapd dovecot-pop3d; do
  installed "$pkg" || need+=("$pkg")
done
updated=no
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  updated=yes
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
# "No configuration" leaves the system Postfix unconfigured and stopped; the tests only ever
# run private instances with `postfix -c DIR`.

# Debian-exim: the user and group compiled into Debian's exim4 binary (EXIM_USER).
getent group Debian-exim >/dev/null || groupadd --system Debian-exim
getent passwd Debian-exim >/dev/null || useradd --system --gid Debian-exim --no-create-home \
  --home-dir /nonexistent --shell /usr/sbin/nologin Debian-exim

if [ ! -x "$EXIM_BIN" ]; then
  [ "$updated" = yes ] || apt-get update -qq
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  # apt-get download drops privileges to _apt: give it a directory it may write to, or apt
  # falls back to an unsandboxed download with a warning.
  chmod 0755 "$work"
  if getent passwd _apt >/dev/null; then chown _apt "$work"; fi
  (cd "$work" && apt-get download -qq exim4-daemon-light)
  deb=$(ls "$work"/exim4-daemon-light_*.deb)
  # Extract beside the target, then move into place, so a half-extracted tree never counts.
  mkdir -p "$(dirname "$EXIM_ROOT")"
  chmod 0755 "$(dirname "$EXIM_ROOT")"
  rm -rf "$EXIM_ROOT.new"
  dpkg -x "$deb" "$EXIM_ROOT.new"
  dpkg-deb -f "$deb" Version >"$EXIM_ROOT.new/VERSION"
  rm -rf "$EXIM_ROOT"
  mv "$EXIM_ROOT.new" "$EXIM_ROOT"
fi

# Debian's exim4-config, extracted the same way (it depends on exim4-base, which conflicts with
# nothing here, but installing it would create /etc/exim4 system-wide).
if [ ! -x "$EXIM_CONFIG_ROOT/usr/sbin/update-exim4.conf" ]; then
  [ "$updated" = yes ] || apt-get update -qq
  updated=yes
  work=$(mktemp -d)
  chmod 0755 "$work"
  if getent passwd _apt >/dev/null; then chown _apt "$work"; fi
  (cd "$work" && apt-get download -qq exim4-config)
  deb=$(ls "$work"/exim4-config_*.deb)
  mkdir -p "$(dirname "$EXIM_CONFIG_ROOT")"
  rm -rf "$EXIM_CONFIG_ROOT.new"
  dpkg -x "$deb" "$EXIM_CONFIG_ROOT.new"
  dpkg-deb -f "$deb" Version >"$EXIM_CONFIG_ROOT.new/VERSION"
  rm -rf "$EXIM_CONFIG_ROOT" "$work"
  mv "$EXIM_CONFIG_ROOT.new" "$EXIM_CONFIG_ROOT"
fi

if ldd "$EXIM_BIN" | grep 'not found'; then
  echo "setup-mtas.sh: libraries missing for $EXIM_BIN (see above)" >&2
  exit 1
fi
postconf -d mail_version
dovecot --version
"$EXIM_BIN" -bV 2>/dev/null | head -1 || true
openssl version
