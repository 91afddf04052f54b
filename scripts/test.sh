#!/usr/bin/env bash
# Runs the whole test suite: formatting, lints (the fuzz targets included), unit
# and end-to-end tests.
# Installs the real peers the end-to-end tests talk to (swaks, Postfix with
# smtp-source/smtp-sink, dnsmasq) when they are missing. A missing peer is a
# failure, never a skipped test.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/portcullis-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

scripts/install-peers.sh

echo "== cargo fmt"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
# The fuzz targets are checked here so they keep compiling; scripts/fuzz.sh runs
# them (nightly). They build against the workspace's own dependency versions.
echo "== fuzz targets (checked, not run)"
cp Cargo.lock fuzz/Cargo.lock
cargo fmt --manifest-path fuzz/Cargo.toml -- --check
cargo clippy --manifest-path fuzz/Cargo.toml --all-targets -- -D warnings
echo "== tests"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --locked --no-fail-fast
else
    cargo test --workspace --locked --no-fail-fast
fi
