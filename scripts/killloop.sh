#!/usr/bin/env bash
# Kill loop: start `archc train` on a tiny network and synthetic data, SIGKILL it at a random
# moment, resume it with --resume, and again, until the run finishes; then compare its metric
# rows and final weights with those of a run never interrupted (same seed). They must be equal
# (timing columns aside). See docs/reliability.md.
#
#   scripts/killloop.sh [KILLS]        # at least KILLS kills (default 20)
#
# Environment: ARCHC (the binary; default: `cargo build`, then $CARGO_TARGET_DIR/debug/archc),
# ITERATIONS (default 150), WORK (a folder to keep; default a temporary one), SEED (the kill
# schedule; default 1).
#
# The seed fixes the kill schedule as fractions of D (below): the k-th kill comes at the same
# fraction of D in every run with that seed. The seed is printed first, and every failure ends
# with the command that repeats the run (same seed, iterations and kills); the moments of the
# kills are listed in WORK/kills.log.
#
# The moment of each kill is uniform in [0, D]: D is the time an uninterrupted run takes to its
# first checkpoint, plus its remaining time divided by KILLS + 1 (so KILLS starts cannot finish
# the run, timing alike), and a kill lands anywhere: at start-up, in a step, in an evaluation,
# in a checkpoint write. Exits 1 when a resume is refused or fails, when the results differ, or
# when the run finished after fewer than KILLS kills (raise ITERATIONS).
set -euo pipefail
cd "$(dirname "$0")/.."

kills_wanted=${1:-20}
iterations=${ITERATIONS:-150}
seed=${SEED:-1}
RANDOM=$seed
echo "killloop: seed ${seed} (repeat with: SEED=${seed} ITERATIONS=${iterations} scripts/killloop.sh ${kills_wanted})"
fail() {
    echo "killloop: $*"
    if [ -f "$WORK/kills.log" ]; then
        echo "killloop: the kills (start, delay in ms, exit status):"
        tail -n 20 "$WORK/kills.log"
    fi
    echo "killloop: FAILED with seed ${seed}; repeat with: SEED=${seed} ITERATIONS=${iterations} scripts/killloop.sh ${kills_wanted}"
    exit 1
}
if [ -z "${ARCHC:-}" ]; then
    cargo build --quiet --bin archc
    ARCHC="${CARGO_TARGET_DIR:-target}/debug/archc"
fi
if [ -z "${WORK:-}" ]; then
    WORK=$(mktemp -d)
    trap 'rm -rf "$WORK"' EXIT
fi
mkdir -p "$WORK"
rm -rf "$WORK/whole" "$WORK/killed" "$WORK/kills.log"

cat > "$WORK/tiny.arch" <<'ARCH'
block basic(c) {
    conv 3x3, c, stride: stride
    conv 3x3, c
}

network tiny {
    input    3x16x16
    classes  10
    shortcut B
    stem     conv 3x3, 8
    stage1   basic(8) x 1
    stage2   basic(16) x 1, stride: 2
    head     fc 1024, act: relu, fc classes
}
ARCH
# A resumed run takes its hyper-parameters from its config.json.
args=(train "$WORK/tiny.arch" -n tiny --data synthetic:400 --iterations "$iterations"
    --progress lines)
fresh=(--batch-size 16 --log-every 1 --eval-every 3 --seed 7)

now_ms() { date +%s%3N; }

# The uninterrupted run, timed: to its first checkpoint, and to its end.
t0=$(now_ms)
"$ARCHC" "${args[@]}" "${fresh[@]}" --out "$WORK/whole" 2> "$WORK/whole.log" &
pid=$!
first=""
while kill -0 "$pid" 2> /dev/null; do
    if [ -z "$first" ] && [ -f "$WORK/whole/checkpoints/last/state.json" ]; then
        first=$(( $(now_ms) - t0 ))
    fi
    sleep 0.02
done
wait "$pid" || fail "the uninterrupted run failed: $(tail -5 "$WORK/whole.log")"
whole_ms=$(( $(now_ms) - t0 ))
first=${first:-$whole_ms}
span=$(( first + (whole_ms - first) / (kills_wanted + 1) ))
echo "killloop: uninterrupted run ${whole_ms} ms (first checkpoint at ${first} ms); kills uniform in [0, ${span}] ms; seed ${seed}"

# The killed run. `leftovers`: the checkpoint folders a save in progress has, with their times.
leftovers() {
    local d="$WORK/killed/checkpoints"
    stat -c '%n %y %z' "$d"/.*.tmp "$d"/.*.old 2> /dev/null | sort || true
}
kills=0
mid_write=0
mid_swap=0
starts=0
t0=$(now_ms)
while :; do
    starts=$((starts + 1))
    if [ "$starts" -gt $((kills_wanted * 30 + 30)) ]; then
        fail "no end after $starts starts"
    fi
    before=$(leftovers)
    resume=("${fresh[@]}")
    if [ -f "$WORK/killed/config.json" ]; then resume=(--resume); fi
    "$ARCHC" "${args[@]}" --out "$WORK/killed" "${resume[@]}" 2> "$WORK/killed.log" &
    pid=$!
    # A fraction of the span drawn from the seed (30 bits), so that a seed gives the same
    # schedule relative to the run's duration on any machine.
    delay=$(( (RANDOM * 32768 + RANDOM) * (span + 1) / 1073741824 ))
    deadline=$(( $(now_ms) + delay ))
    while kill -0 "$pid" 2> /dev/null && [ "$(now_ms)" -lt "$deadline" ]; do
        sleep 0.005
    done
    kill -KILL "$pid" 2> /dev/null || true
    rc=0
    { wait "$pid"; } 2> /dev/null || rc=$?  # no "Killed" line per kill
    echo "$starts $delay $rc" >> "$WORK/kills.log"
    if [ "$rc" -eq 0 ]; then
        break
    elif [ "$rc" -ne 137 ]; then
        fail "start $starts exited with $rc: $(tail -5 "$WORK/killed.log")"
    fi
    kills=$((kills + 1))
    # What the kill interrupted: a checkpoint being written (a new `.NAME.tmp/` left behind),
    # or one being swapped into place (a new `.NAME.old/`, maybe with no `NAME/`).
    new=$(comm -13 <(echo "$before") <(leftovers))
    if grep -q '\.old ' <<< "$new"; then
        mid_swap=$((mid_swap + 1))
    elif [ -n "$new" ]; then
        mid_write=$((mid_write + 1))
    fi
done
killed_ms=$(( $(now_ms) - t0 ))

# The comparison: every metric row (timing columns cut), both files; the final weights,
# momentum and mean of both checkpoints.
untimed_csv() { cut -d, -f1-8 "$1"; }
untimed_jsonl() { sed -E 's/,"images_per_s":.*$//' "$1"; }
same=1
cmp -s <(untimed_csv "$WORK/whole/metrics.csv") <(untimed_csv "$WORK/killed/metrics.csv") || same=0
cmp -s <(untimed_jsonl "$WORK/whole/metrics.jsonl") <(untimed_jsonl "$WORK/killed/metrics.jsonl") || same=0
for c in last best; do
    for f in model.safetensors optimizer.safetensors mean.safetensors; do
        cmp -s "$WORK/whole/checkpoints/$c/$f" "$WORK/killed/checkpoints/$c/$f" || same=0
    done
done
# Temporaries of writes a kill interrupted (`.metrics.csv.tmp1234`, `.error.png.tmp1234`) are
# removed by the next resume: the finished run folder holds none.
stale=$(find "$WORK/killed" -maxdepth 1 -name '.*.tmp*' -o -maxdepth 1 -name '.archc-write-test-*')
if [ -n "$stale" ]; then
    echo "killloop: temporaries left in the run folder:"
    echo "$stale"
    same=0
fi
rows=$(($(wc -l < "$WORK/whole/metrics.csv") - 1))
echo "killloop: ${kills} kills (${mid_write} in a checkpoint write, ${mid_swap} in a checkpoint swap), ${starts} starts, ${killed_ms} ms; ${rows} metric rows"
if [ "$same" -ne 1 ]; then
    echo "killloop: DIFFERENT from the uninterrupted run:"
    diff <(untimed_csv "$WORK/whole/metrics.csv") <(untimed_csv "$WORK/killed/metrics.csv") | head -20 || true
    fail "the killed run differs from the uninterrupted one"
fi
echo "killloop: equal to the uninterrupted run (metrics.csv, metrics.jsonl, last and best checkpoints)"
if [ "$kills" -lt "$kills_wanted" ]; then
    fail "only $kills kills before the run finished (wanted $kills_wanted): raise ITERATIONS"
fi
