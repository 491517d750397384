#!/usr/bin/env bash
# Builds the release binary, renders the man pages and completions from it (so they always
# match the real options), then the .deb (cargo-deb) and the .rpm (cargo-generate-rpm).
# Output: target/debian/*.deb and target/generate-rpm/*.rpm.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked
bin=target/release/chainfix
rm -rf target/assets && mkdir -p target/assets/man target/assets/completions
"$bin" generate man --out-dir target/assets/man
"$bin" generate completions bash > target/assets/completions/chainfix.bash
"$bin" generate completions zsh > target/assets/completions/_chainfix
"$bin" generate completions fish > target/assets/completions/chainfix.fish
cargo deb --no-build --locked
cargo generate-rpm
ls -l target/debian/*.deb target/generate-rpm/*.rpm
