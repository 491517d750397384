#!/usr/bin/env bash
# Packaging check (run by .ci/run): build the .deb and .rpm with packaging/build.sh, install
# the .deb with dpkg, and check what a sysadmin would: `chainfix --version`, `man chainfix`,
# bash completion, and that the .rpm lists the same files.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

need=()
for pkg in rpm man-db bash-completion; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
# Debian's minimal images exclude man pages from packages; allow ours.
if [ -f /etc/dpkg/dpkg.cfg.d/excludes ]; then
  $SUDO sed -i '/usr\/share\/man/d' /etc/dpkg/dpkg.cfg.d/excludes
fi
command -v cargo-deb >/dev/null || cargo install --locked cargo-deb@3.8.0
command -v cargo-generate-rpm >/dev/null || cargo install --locked cargo-generate-rpm@0.21.1

bash packaging/build.sh
deb=$(ls target/debian/chainfix_*.deb | head -n 1)
rpm=$(ls target/generate-rpm/chainfix-*.rpm | head -n 1)
$SUDO dpkg -i "$deb"

installed=$(/usr/bin/chainfix --version)
echo "installed: $installed"
[ "$installed" = "chainfix $(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)" ]
# man-db prefers a formatted page it cached earlier when that is newer than the source, and
# the packaged pages carry the build day's timestamp (SOURCE_DATE_EPOCH): drop any cached copy
# of ours, so that the pages checked are the ones just installed.
$SUDO rm -f /var/cache/man/cat1/chainfix*
MANPAGER=cat man chainfix | grep -q 'chainfix-inspect'
MANPAGER=cat man chainfix-repair | grep -q -- '--install-dir'
# The sections an admin reads without the README, and nothing wider than 80 columns.
page=$(MANWIDTH=80 MANPAGER=cat man chainfix-repair)
for section in SYNOPSIS OPTIONS 'EXIT STATUS' FILES FINDINGS ENVIRONMENT EXAMPLES 'SEE ALSO'; do
  echo "$page" | grep -qx "$section" || { echo "man chainfix-repair lacks $section"; exit 1; }
done
width=$(echo "$page" | LC_ALL=C.UTF-8 wc -L)
[ "$width" -le 80 ] || { echo "man chainfix-repair is $width columns wide at MANWIDTH=80"; exit 1; }
completions=$(bash -c 'source /usr/share/bash-completion/bash_completion 2>/dev/null || true
  source /usr/share/bash-completion/completions/chainfix
  COMP_WORDS=(chainfix rep); COMP_CWORD=1; COMP_LINE="chainfix rep"; COMP_POINT=${#COMP_LINE}
  _chainfix chainfix rep chainfix; printf "%s\n" "${COMPREPLY[@]}"')
echo "$completions" | grep -qx repair

# The same files in both packages (the zsh directory differs by distribution; man pages may
# be compressed in the .deb).
normalise() { sed -e 's#^\./#/#' -e 's#\.gz$##' -e 's#/zsh/vendor-completions/#/zsh/site-functions/#' \
  | grep -E '^/usr/(bin|share/(man|bash-completion|zsh|fish|doc/chainfix/README))' | grep -v '/$' | sort; }
diff <(dpkg-deb -c "$deb" | awk '{print $6}' | normalise) <(rpm -qlp "$rpm" | normalise)
echo "packages OK: $deb $rpm"
