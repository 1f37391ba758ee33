#!/usr/bin/env bash
# Fails when a generated file in the repository is not what its generator writes:
# shaders/fft.wgsl must equal, byte for byte, the output of tools/gen_fft_wgsl.py.
# Run by .ci/run; needs only python3.
set -euo pipefail
cd "$(dirname "$0")/.."

tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT

python3 tools/gen_fft_wgsl.py >"$tmp"
if ! cmp -s "$tmp" shaders/fft.wgsl; then
    diff -u shaders/fft.wgsl "$tmp" | head -n 40 >&2 || true
    echo "shaders/fft.wgsl is not what tools/gen_fft_wgsl.py generates; run: python3 tools/gen_fft_wgsl.py > shaders/fft.wgsl" >&2
    exit 1
fi
echo "shaders/fft.wgsl is up to date with tools/gen_fft_wgsl.py"
