#!/usr/bin/env bash
# Run a command with LibTorch (PyTorch's libraries) set up for building and running archc's
# `tch` feature:   scripts/libtorch.sh cargo test -p archc-runtime --features tch
#
# Creates a virtual environment with torch (default 2.9.0) and torchvision on first use
# (about 4 GB of wheels from PyPI), then sets VIRTUAL_ENV, PATH, LIBTORCH_USE_PYTORCH and
# LD_LIBRARY_PATH for the command. ARCHC_TORCH_VENV and ARCHC_TORCH_VERSION change the venv
# and the version (a version other than the one burn-tch expects also needs
# LIBTORCH_BYPASS_VERSION_CHECK=1); ARCHC_TORCHVISION_VERSION set empty installs no
# torchvision; ARCHC_TORCH_INDEX_URL installs torch from that index instead of PyPI (PyPI's
# Linux wheels are CUDA builds: 2.9.0 for CUDA 12.8, 2.11.0 for CUDA 13.0). The venv is never
# committed (.gitignore).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${ARCHC_TORCH_VENV:-$root/.venv}"
version="${ARCHC_TORCH_VERSION:-2.9.0}"
vision="${ARCHC_TORCHVISION_VERSION-0.24.0}"
packages=("torch==$version")
imports="torch, safetensors"
if [ -n "$vision" ]; then
    packages+=("torchvision==$vision")
    imports="$imports, torchvision"
fi
index=()
if [ -n "${ARCHC_TORCH_INDEX_URL:-}" ]; then
    index=(--index-url "$ARCHC_TORCH_INDEX_URL" --extra-index-url https://pypi.org/simple)
fi
if [ -L "$venv" ] && [ ! -e "$venv" ]; then rm "$venv"; fi
if ! "$venv/bin/python" -c "import $imports" 2>/dev/null; then
    echo "scripts/libtorch.sh: installing ${packages[*]} into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "${index[@]}" "${packages[@]}" safetensors numpy
fi
export VIRTUAL_ENV="$venv"
export PATH="$venv/bin:$PATH"
export LIBTORCH_USE_PYTORCH=1
lib="$("$venv/bin/python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')"
export LD_LIBRARY_PATH="$lib:${LD_LIBRARY_PATH:-}"
exec "$@"
