#!/usr/bin/env bash
# The GPU check, in two halves (docs/training.md, "The GPU check"):
#
#   scripts/gpu-check.sh prepare         here, on a CPU machine with Rust and network
#   bash gpu-bin/gpu-check.sh run OUTDIR  on the GPU machine, from the packed folder
#
# `prepare` builds archc with the `tch` feature against torch 2.11.0 (PyPI's Linux wheel, a
# CUDA 13.0 build; its own venv and cargo target, so torch 2.9.0's caches stay as they are),
# in the `gpu-check` profile (optimised: training's data pipeline is Rust; stripped), and packs
# the binary, the zoo and the check's Python half (scripts/gpu_check.py, scripts/gpu_nets.py:
# torch only, no torchvision) with this script into the git-ignored folder gpu-bin/. It checks
# the reference networks against torchvision (torch 2.9.0's venv), runs the packed `run` in its
# CPU smoke mode (archc on libtorch-cpu, torch 2.11.0 on the CPU: every command line, path and
# writer of the device half), checks the folder is under 64 MiB and prints its path last.
# The folder is built as gpu-bin.new and replaces gpu-bin only when all of that passed.
#
# `run OUTDIR` needs python3 with torch (its lib folder holds the LibTorch the binary loads)
# and writes OUTDIR/gpu-check.json, OUTDIR/gpu.md and OUTDIR/gpu-check.log within 8 minutes.
# `run OUTDIR --cpu-smoke` is the CPU mode.
#
# Overrides: ARCHC_GPU_TARGET (cargo target, default ~/.cache/archc/target-gpu), ARCHC_GPU_VENV
# (torch 2.11.0's venv, default ~/.cache/archc/venv-torch-2.11.0-cu130), ARCHC_TORCH_VENV
# (torch 2.9.0 with torchvision, default ~/.cache/archc/venv-torch-2.9.0), ARCHC_GPU_PYTHON
# (run's python, default python3), ARCHC_GPU_TIMEOUT (run's limit in seconds, default 480).
set -euo pipefail

usage() {
    echo "usage: scripts/gpu-check.sh prepare | gpu-check.sh run OUTDIR [--cpu-smoke]" >&2
    exit 2
}

prepare() {
    local root target venv venv29 folder new bin size smoke
    root="$(cd "$(dirname "$0")/.." && pwd)"
    target="${ARCHC_GPU_TARGET:-$HOME/.cache/archc/target-gpu}"
    venv="${ARCHC_GPU_VENV:-$HOME/.cache/archc/venv-torch-2.11.0-cu130}"
    venv29="${ARCHC_TORCH_VENV:-$HOME/.cache/archc/venv-torch-2.9.0}"
    folder="$root/gpu-bin"
    new="$root/gpu-bin.new"
    start=$SECONDS

    echo "== build: archc --features tch, profile gpu-check, against torch 2.11.0 ($venv)"
    CARGO_TARGET_DIR="$target" ARCHC_TORCH_VENV="$venv" ARCHC_TORCH_VERSION=2.11.0 \
        ARCHC_TORCHVISION_VERSION='' LIBTORCH_BYPASS_VERSION_CHECK=1 \
        "$root/scripts/libtorch.sh" cargo build --manifest-path "$root/Cargo.toml" \
        --profile gpu-check --features tch --bin archc
    bin="$target/gpu-check/archc"
    echo "   ($(( SECONDS - start )) s)"

    echo "== pack: $new"
    rm -rf "$new"
    mkdir -p "$new/architectures"
    cp "$bin" "$new/archc"
    strip "$new/archc" 2>/dev/null || true
    cp "$root"/architectures/*.arch "$new/architectures/"
    cp "$root/scripts/gpu_check.py" "$root/scripts/gpu_nets.py" "$new/"
    cp "$0" "$new/gpu-check.sh"
    chmod +x "$new/archc" "$new/gpu-check.sh"
    {
        echo "commit: $(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)$(git -C "$root" diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
        echo "built: $(date -u '+%Y-%m-%d %H:%M UTC')"
        echo "torch: $("$venv/bin/python" -c 'import torch; print(torch.__version__, "CUDA", torch.version.cuda)')"
        echo "run: bash gpu-bin/gpu-check.sh run OUTDIR"
    } > "$new/MANIFEST"

    echo "== the reference networks are torchvision's (torch 2.9.0, torchvision 0.24.0)"
    ARCHC_TORCH_VENV="$venv29" "$root/scripts/libtorch.sh" python "$new/gpu_check.py" same-as-torchvision

    echo "== the device half in its CPU smoke mode (archc on libtorch-cpu, torch 2.11.0 on the CPU)"
    smoke="$(mktemp -d)"
    # No 8-minute limit here: a 2-core machine shared with builds may take longer.
    ARCHC_GPU_PYTHON="$venv/bin/python" ARCHC_GPU_TIMEOUT=3600 bash "$new/gpu-check.sh" run \
        "$smoke" --cpu-smoke --budget-s 3000
    for f in gpu-check.json gpu.md gpu-check.log; do
        [ -s "$smoke/$f" ] || { echo "the smoke run wrote no $f" >&2; exit 1; }
    done
    rm -rf "$smoke"

    size=$(du -sk "$new" | cut -f1)
    if [ "$size" -ge $(( 64 * 1024 )) ]; then
        echo "gpu-bin is $size KiB, over the 64 MiB the device tool carries" >&2
        exit 1
    fi
    rm -rf "$folder"
    mv "$new" "$folder"
    echo "== ready: $(( size / 1024 )) MiB ($size KiB), $(( SECONDS - start )) s; on the device: bash gpu-bin/gpu-check.sh run \$OUT (carry gpu-bin)"
    echo "$folder"
}

run() {
    local here py lib out
    [ $# -ge 1 ] || usage
    out="$1"
    shift
    here="$(cd "$(dirname "$0")" && pwd)"
    py="${ARCHC_GPU_PYTHON:-python3}"
    [ -x "$here/archc" ] || { echo "no archc beside $0: run the copy in the folder that prepare packed" >&2; exit 2; }
    # The binary loads LibTorch from torch's own lib folder (never packed: gigabytes); its CUDA
    # libraries are found from there by torch's RUNPATH.
    lib="$("$py" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')"
    export LD_LIBRARY_PATH="$lib:${LD_LIBRARY_PATH:-}"
    mkdir -p "$out"
    # 8 minutes at most (ARCHC_GPU_TIMEOUT); the Python half skips the training runs left
    # after 7 (--budget-s).
    timeout "${ARCHC_GPU_TIMEOUT:-480}" "$py" "$here/gpu_check.py" run "$out" \
        --archc "$here/archc" --zoo "$here/architectures" "$@"
}

case "${1:-}" in
    prepare) prepare ;;
    run) shift; run "$@" ;;
    *) usage ;;
esac
