#!/usr/bin/env bash
# Fuzz the compiler for a given time:   scripts/fuzz.sh [SECONDS] [JOBS]
#
# Installs cargo-fuzz if missing. The corpus starts from the zoo and the bad-input fixtures.
# libFuzzer needs nightly features; on a stable toolchain RUSTC_BOOTSTRAP=1 enables them.
# Crashes land in fuzz/artifacts/compile/; keep each as a fixture in tests/fixtures/bad (or
# tests/fixtures/fuzz) with its diagnostic snapshot once fixed.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
jobs="${2:-1}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
mkdir -p fuzz/corpus/compile
cp architectures/*.arch tests/fixtures/bad/*.arch fuzz/corpus/compile/ 2>/dev/null || true
export RUSTC_BOOTSTRAP=1
cargo fuzz run compile fuzz/corpus/compile -- \
    -max_total_time="$secs" -jobs="$jobs" -workers="$jobs" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
    2>&1 | tee fuzz/last-run.log | grep -E "^#[0-9]+.*(DONE|pulse)|ERROR|SUMMARY|Done" || true
tail -n 3 fuzz/last-run.log
