#!/usr/bin/env bash
# Fuzz the compiler for a given time:   scripts/fuzz.sh [SECONDS] [JOBS]
#
# Installs cargo-fuzz if missing. The corpus starts from the zoo, the bad-input fixtures and the
# small seeds of fuzz/seeds/ (merges, split, in.c, from/outputs, decimals and functions);
# fuzz/arch.dict gives libFuzzer the language's tokens.
# libFuzzer needs nightly features; on a stable toolchain RUSTC_BOOTSTRAP=1 enables them.
# Crashes land in fuzz/artifacts/compile/; keep each as a fixture in tests/fixtures/bad (or
# tests/fixtures/fuzz) with its diagnostic snapshot once fixed.
#
# The exit status is the fuzzer's: 0 when the time ran out with no crash, non-zero when
# libFuzzer found a crash, a timeout or an out-of-memory (or could not start). The run's
# summary (date, commit, time, inputs run, corpus size, coverage, status) is printed and
# written to fuzz/runs/DATE.txt; docs/reliability.md quotes such files, which are committed.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
jobs="${2:-1}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
mkdir -p fuzz/corpus/compile fuzz/runs
cp architectures/*.arch tests/fixtures/bad/*.arch fuzz/seeds/*.arch fuzz/corpus/compile/ 2>/dev/null || true
export RUSTC_BOOTSTRAP=1
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
corpus_before=$(find fuzz/corpus/compile -type f | wc -l)
log=fuzz/last-run.log
# With -jobs, libFuzzer writes each job's output to fuzz-N.log in the current folder.
rm -f fuzz-*.log
status=0
cargo fuzz run compile fuzz/corpus/compile -- \
    -max_total_time="$secs" -jobs="$jobs" -workers="$jobs" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
    -dict=fuzz/arch.dict \
    > "$log" 2>&1 || status=$?
# Each job's log (fuzz-N.log; with -jobs libFuzzer also copies it into its own output when the
# job ends, so those copies in $log are not counted again); without jobs, $log itself.
logs=()
for f in fuzz-*.log; do
    if [ -f "$f" ]; then logs+=("$f"); fi
done
if [ "${#logs[@]}" -eq 0 ]; then logs=("$log"); fi
grep -hE "^#[0-9]+.*(DONE|pulse)|ERROR|SUMMARY|Done" "${logs[@]}" || true

# Inputs run: libFuzzer's closing "Done N runs in S second(s)" line of each job; a job that
# crashed has none, and then its last "#N" status line counts.
runs=0
for f in "${logs[@]}"; do
    n=$(grep -oE "^Done [0-9]+ runs" "$f" | tail -n 1 | grep -oE "[0-9]+" || true)
    if [ -z "$n" ]; then
        n=$(grep -oE "^#[0-9]+" "$f" | tail -n 1 | tr -d '#' || true)
    fi
    runs=$((runs + ${n:-0}))
done
cov=$(grep -hoE "cov: [0-9]+" "${logs[@]}" | grep -oE "[0-9]+" | sort -n | tail -n 1 || true)
corpus_after=$(find fuzz/corpus/compile -type f | wc -l)
artifacts=$(find fuzz/artifacts/compile -type f -newermt "$started" 2> /dev/null | sort || true)
summary="fuzz/runs/${started//:/}.txt"
{
    echo "date:        $started"
    echo "commit:      $(git rev-parse --short HEAD 2> /dev/null || echo unknown)$(git diff --quiet HEAD -- grammar compiler fuzz 2> /dev/null || echo ' (with local changes to grammar/, compiler/ or fuzz/)')"
    echo "command:     scripts/fuzz.sh $secs $jobs"
    echo "machine:     $(nproc) cores"
    echo "inputs run:  $runs"
    echo "corpus:      $corpus_before files before, $corpus_after after"
    echo "coverage:    ${cov:-?} edges (libFuzzer's cov:)"
    echo "exit status: $status"
    if [ -n "$artifacts" ]; then
        echo "artifacts:"
        sed 's/^/  /' <<< "$artifacts"
    fi
    echo "last lines of $log:"
    tail -n 5 "$log" | sed 's/^/  /'
} > "$summary"
rm -f fuzz-*.log
echo "== fuzz summary ($summary)"
cat "$summary"
exit "$status"
