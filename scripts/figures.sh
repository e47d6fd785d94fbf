#!/usr/bin/env bash
# Regenerate the pictures of networks in docs/images (Figure 3 of the paper):
#   scripts/figures.sh [ARCHC]
# ARCHC is the archc binary (default: build it with cargo). Each network is drawn as SVG by
# `archc graph`, then rendered to PNG by headless Chromium (Debian's `chromium` package:
# apt-get install chromium), so the screenshot shows what a browser shows.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/docs/images"
archc="${1:-}"
if [ -z "$archc" ]; then
    cargo build --release --quiet --no-default-features --manifest-path "$root/Cargo.toml"
    archc="${CARGO_TARGET_DIR:-$root/target}/release/archc"
fi
chromium="$(command -v chromium || command -v chromium-browser || true)"
mkdir -p "$out"
draw() { # FILE NETWORK NAME [--expand]
    "$archc" graph "$root/architectures/$1" --network "$2" --format svg ${4:-} --out "$out/$3.svg"
    if [ -z "$chromium" ]; then
        echo "figures.sh: no chromium; wrote $3.svg only" >&2
        return
    fi
    read -r w h < <(sed -n '1s/.*width="\([0-9]*\)" height="\([0-9]*\)".*/\1 \2/p' "$out/$3.svg")
    "$chromium" --headless --no-sandbox --disable-gpu --hide-scrollbars \
        --force-device-scale-factor=1 --window-size="$w,$h" \
        --screenshot="$out/$3.png" "file://$out/$3.svg" 2>/dev/null
    echo "docs/images/$3.svg and .png (${w}x${h})"
}
draw resnet.arch resnet34 resnet34
draw resnet.arch plain34 plain34
draw vgg.arch vgg19 vgg19
draw cifar.arch cifar_resnet20 cifar_resnet20 --expand
