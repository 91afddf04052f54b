#!/usr/bin/env bash
# Fuzzes one target of fuzz/ for a while (needs nightly Rust and cargo-fuzz):
#
#   scripts/fuzz.sh TARGET [SECONDS]     (default 300 seconds)
#   scripts/fuzz.sh list
#
# Targets: scan_message, scan_attachment, rewrite_links, tokens, sender_software,
# smtp_data, smtp_session. The first run seeds the target's corpus (kept in
# $PORTCULLIS_FUZZ, default $HOME/.cache/portcullis-fuzz) from the spam corpus
# (scripts/corpus.sh) and a few hand-made inputs; later runs go on from what
# earlier ones found. A failing input is written to fuzz/artifacts/TARGET/;
# replay it with `cargo +nightly fuzz run TARGET FILE` from fuzz/, and keep it as
# a regression test in the crate that failed.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${1:?usage: scripts/fuzz.sh TARGET [SECONDS] | list}"
seconds="${2:-300}"
if [ "$target" = list ]; then
    (cd fuzz && cargo +nightly fuzz list)
    exit 0
fi
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/portcullis-fuzz-target}"
base="${PORTCULLIS_FUZZ:-$HOME/.cache/portcullis-fuzz}"
corpus="$base/$target"
if [ ! -d "$corpus" ]; then
    mkdir -p "$corpus"
    python3 scripts/fuzz_seeds.py "$target" "$corpus"
fi
# Fuzz the dependency versions that ship: start from the workspace's lock file.
cp Cargo.lock fuzz/Cargo.lock
cd fuzz
# Inputs up to 256 KiB (messages); one fails at 10 s or 2 GiB, and one over 2 s is
# kept as a slow-unit artifact (a sign of quadratic work).
exec cargo +nightly fuzz run -O "$target" "$corpus" -- \
    -max_total_time="$seconds" -max_len=262144 -rss_limit_mb=2048 -timeout=10 -report_slow_units=2 \
    -print_final_stats=1
